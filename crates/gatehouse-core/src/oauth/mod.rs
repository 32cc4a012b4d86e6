//! OAuth vocabulary shared by the authorization logic and the HTTP layer: RFC error codes, client
//! credentials as presented, and the pure checks (PKCE, redirects, scopes, registration).

pub mod pkce;
pub mod rar;
pub mod redirect;
pub mod registration;
pub mod scope;

use serde::Serialize;

use crate::store::StoreError;

/// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2 and RFC 9396 §5,
/// serialized with their RFC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ConsentRequired,
    ServerError,
    TemporarilyUnavailable,
    InvalidRedirectUri,
    InvalidClientMetadata,
    UnsupportedTokenType,
    /// OpenID CIBA §13: the binding message is invalid or unacceptable.
    InvalidBindingMessage,
    /// RFC 9396 §5: an `authorization_details` value is malformed or of an unknown type.
    InvalidAuthorizationDetails,
    /// CIBA §11 and RFC 8628 §3.5: the person has not decided yet.
    AuthorizationPending,
    /// CIBA §11 and RFC 8628 §3.5: polling faster than the interval.
    SlowDown,
    /// CIBA §11 and RFC 8628 §3.5: the request expired before it was decided.
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidBindingMessage => "invalid_binding_message",
            ErrorCode::InvalidAuthorizationDetails => "invalid_authorization_details",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }
}

/// An OAuth error as the protocol reports it: a code and a description safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Closed => {
                tracing::warn!(error = %e, "request failed: the store cannot record it");
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Gatehouse cannot record this request right now; nothing was changed. Try again.",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                OAuthError::new(
                    ErrorCode::ServerError,
                    "internal error; nothing was changed",
                )
            }
        }
    }
}

impl From<rusqlite::Error> for OAuthError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::classify(e).into()
    }
}

/// How a client authenticated at the token, revocation or introspection endpoint
/// (RFC 6749 §2.3.1, RFC 7591 `token_endpoint_auth_method`).
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// HTTP Basic with the client id and secret.
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the form body.
    Post { client_id: String, secret: String },
    /// A public client naming itself with `client_id`.
    None { client_id: String },
    /// Nothing identified the client.
    Missing,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredentials::Basic { client_id, .. } => write!(f, "Basic({client_id}, <secret>)"),
            ClientCredentials::Post { client_id, .. } => write!(f, "Post({client_id}, <secret>)"),
            ClientCredentials::None { client_id } => write!(f, "None({client_id})"),
            ClientCredentials::Missing => write!(f, "Missing"),
        }
    }
}

impl ClientCredentials {
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Basic { client_id, .. }
            | ClientCredentials::Post { client_id, .. }
            | ClientCredentials::None { client_id } => Some(client_id),
            ClientCredentials::Missing => None,
        }
    }
    pub fn method(&self) -> &'static str {
        match self {
            ClientCredentials::Basic { .. } => "client_secret_basic",
            ClientCredentials::Post { .. } => "client_secret_post",
            ClientCredentials::None { .. } => "none",
            ClientCredentials::Missing => "missing",
        }
    }
}
