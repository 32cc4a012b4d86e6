//! The one error every IPC command returns: `{ code, message }`, with a code the UI can branch on
//! and a message safe to show (core errors never carry secrets; internal details go to the log).

use gatehouse_core::StoreError;
use gatehouse_core::admin::AdminError;
use gatehouse_core::approvals::DecideError;
use gatehouse_core::settings::SettingsError;
use gatehouse_core::vault::VaultError;
use serde::Serialize;
use ts_rs::TS;

/// What kind of failure, for the UI to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IpcErrorCode {
    NotFound,
    AlreadyDecided,
    Expired,
    InvalidInput,
    Conflict,
    /// The store is busy (another process holds the write lock) or failing; retrying may work.
    Unavailable,
    VaultSealed,
    Internal,
}

/// An IPC command's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    pub code: IpcErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: IpcErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(IpcErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(IpcErrorCode::NotFound, message)
    }

    /// Logs the detail and shows a generic message: internal failures may name files and SQL.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "command failed");
        Self::new(
            IpcErrorCode::Internal,
            "Gatehouse hit an internal error; the log has the details",
        )
    }
}

impl From<StoreError> for IpcError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Closed | StoreError::Locked(_) => {
                Self::new(IpcErrorCode::Unavailable, e.to_string())
            }
            StoreError::Io { .. } | StoreError::Sqlite(_) | StoreError::Corrupt(_) => {
                Self::internal(&e)
            }
        }
    }
}

impl From<DecideError> for IpcError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::NotFound(_) => Self::not_found(e.to_string()),
            DecideError::AlreadyDecided(_) => {
                Self::new(IpcErrorCode::AlreadyDecided, e.to_string())
            }
            DecideError::Expired => Self::new(IpcErrorCode::Expired, e.to_string()),
            DecideError::ScopesNotRequested(_) => Self::invalid(e.to_string()),
            DecideError::Tampered => Self::new(IpcErrorCode::Conflict, e.to_string()),
            DecideError::Store(s) => s.into(),
        }
    }
}

impl From<AdminError> for IpcError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::UnknownAgent(_)
            | AdminError::UnknownRule(_)
            | AdminError::UnknownGrant(_) => Self::not_found(e.to_string()),
            AdminError::AlreadyRevoked(_) | AdminError::GrantAlreadyRevoked(_) => {
                Self::new(IpcErrorCode::Conflict, e.to_string())
            }
            // The export file could not be written (disk full, no permission): the person can
            // free space or fix the folder and retry. The message names only the OS error.
            AdminError::Export(_) => Self::new(IpcErrorCode::Unavailable, e.to_string()),
            AdminError::InvalidRule(_) | AdminError::InvalidDomain(_) => {
                Self::invalid(e.to_string())
            }
            AdminError::Store(s) => s.into(),
        }
    }
}

impl From<SettingsError> for IpcError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(_) => Self::invalid(e.to_string()),
            SettingsError::Store(s) => s.into(),
        }
    }
}

impl From<VaultError> for IpcError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Sealed(_) => Self::new(IpcErrorCode::VaultSealed, e.to_string()),
            VaultError::UnknownConnection(_) => Self::not_found(e.to_string()),
            VaultError::NotActive { .. } | VaultError::AlreadyExists(_) => {
                Self::new(IpcErrorCode::Conflict, e.to_string())
            }
            VaultError::Invalid(_) => Self::invalid(e.to_string()),
            VaultError::Keyring(_) | VaultError::Upstream(_) => {
                Self::new(IpcErrorCode::Unavailable, e.to_string())
            }
            VaultError::Store(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::store::approvals::ApprovalStatus;

    #[test]
    fn serializes_as_code_and_message() {
        let e: IpcError = DecideError::AlreadyDecided(ApprovalStatus::Approved).into();
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(v["code"], "already_decided");
        assert_eq!(v["message"], "this approval was already approved");
        assert_eq!(v.as_object().map(|o| o.len()), Some(2));
    }

    #[test]
    fn codes_follow_the_contract() {
        let code = |e: IpcError| serde_json::to_value(e.code).expect("serializes");
        assert_eq!(code(DecideError::Expired.into()), "expired");
        assert_eq!(code(DecideError::NotFound("x".into()).into()), "not_found");
        assert_eq!(
            code(DecideError::ScopesNotRequested(vec!["a".into()]).into()),
            "invalid_input"
        );
        assert_eq!(
            code(AdminError::AlreadyRevoked("c".into()).into()),
            "conflict"
        );
        assert_eq!(
            code(VaultError::Sealed("locked".into()).into()),
            "vault_sealed"
        );
        assert_eq!(
            code(StoreError::Unavailable("busy".into()).into()),
            "unavailable"
        );
        let internal = IpcError::from(StoreError::Corrupt("row 7 /home/x/gatehouse.db".into()));
        assert_eq!(code(internal.clone()), "internal");
        assert!(
            !internal.message.contains("/home/x"),
            "internal details stay in the log"
        );
    }
}
