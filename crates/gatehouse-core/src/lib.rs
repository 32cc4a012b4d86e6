//! Gatehouse's core: the SQLite store and its hash-chained audit log, OAuth authorization logic,
//! and the approval broker. No HTTP and no UI types live here; the server and the shells inject
//! what they need (approver channels, event subscribers).

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod authority;
pub mod backchannel;
pub mod clock;
pub mod gateway;
pub mod oauth;
pub mod policy;
pub mod secret;
pub mod store;
pub mod vault;

pub use authority::{Authority, AuthorityConfig};
pub use clock::{Clock, Millis, SystemClock};
pub use store::{DataDirLock, Store, StoreError, StoreOptions};
