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
pub mod mcp;
pub mod oauth;
pub mod policy;
pub mod secret;
pub mod settings;
pub mod store;
pub mod vault;

pub use authority::{Authority, AuthorityConfig};
pub use clock::{Clock, Millis, SystemClock};
pub use store::{DataDirLock, Store, StoreError, StoreOptions};

/// What the `ts` feature promises the desktop UI: millisecond times and ids as `number` (ts-rs
/// would say `bigint` for an i64), `T | null` for options, serde's renames and skips.
#[cfg(all(test, feature = "ts"))]
mod ts_bindings {
    use crate::{admin, approvals, audit, settings, store};
    use ts_rs::TS;

    #[test]
    fn types_crossing_ipc_declare_numbers_nulls_and_serde_names() {
        let event = audit::Event::decl();
        assert!(event.contains("id: number"), "{event}");
        assert!(event.contains("ts: number"), "{event}");
        assert!(event.contains("client_id: string | null"), "{event}");
        assert!(event.contains("hash: string"), "{event}");
        assert!(event.contains("detail: JsonValue"), "{event}");

        let agent = store::agents::Agent::decl();
        assert!(!agent.contains("secret_hash"), "serde skips it: {agent}");
        assert!(agent.contains("suspended_at: number | null"), "{agent}");
        assert!(!agent.contains("bigint"), "{agent}");

        let token = store::tokens::Token::decl();
        assert!(!token.contains("hash:"), "serde skips it: {token}");
        assert!(token.contains("uses_left: number | null"), "{token}");
        assert_eq!(
            store::tokens::TokenKind::decl(),
            "type TokenKind = \"access\" | \"refresh\";"
        );
        assert!(store::approvals::ApprovalStatus::decl().contains("\"pending\""));

        for decl in [
            admin::AgentOverview::decl(),
            admin::ApprovalOverview::decl(),
            approvals::ApprovalView::decl(),
            store::grants::Grant::decl(),
            store::rules::RuleRow::decl(),
            admin::RevokeSummary::decl(),
        ] {
            assert!(!decl.contains("bigint"), "{decl}");
        }
        let overview = admin::ApprovalOverview::decl();
        assert!(overview.contains("decided_at: number | null"), "{overview}");
        assert!(
            overview.contains("expires_at: number"),
            "flattened view: {overview}"
        );
        let query = audit::EventQuery::decl();
        assert!(query.contains("clientId?: string | null"), "{query}");
        assert!(query.contains("kinds?: Array<string>"), "{query}");
        assert!(query.contains("beforeId?: number | null"), "{query}");
        assert!(query.contains("limit: number"), "{query}");
        let kill = admin::KillSummary::decl();
        assert!(kill.contains("pendingDenied: number"), "{kill}");
        let settings = settings::Settings::decl();
        assert!(
            settings.contains("approvalTimeoutSecs: number"),
            "{settings}"
        );
        assert!(settings.contains("listen: string | null"), "{settings}");
        assert!(settings.contains("startAtLogin: boolean"), "{settings}");
        assert_eq!(
            admin::ExportFormat::decl(),
            "type ExportFormat = \"jsonl\" | \"csv\";"
        );
        let agents = admin::AgentOverview::decl();
        assert!(
            agents.contains("client_id: string"),
            "flattened agent: {agents}"
        );
    }
}
