//! RFC 7591 dynamic client registration: the request as a client sends it, its defaults, and the
//! checks that turn it into metadata Gatehouse stores.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, OAuthError, redirect, scope};

/// Grant types a client may register.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    CIBA_GRANT,
    DEVICE_GRANT,
];
/// OpenID CIBA (poll mode); confidential clients only.
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// RFC 8628 device authorization grant.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Client authentication methods Gatehouse supports.
pub const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

/// A registration request. Unknown members are kept and echoed (RFC 7591 §3.2.1 lets the server
/// ignore them; echoing what was accepted is friendlier to clients that check).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub application_type: Option<String>,
}

/// Validated client metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub application_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The remaining informational fields, echoed as registered.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn bad_metadata(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, msg)
}

fn short_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, OAuthError> {
    match v {
        Some(s) if s.chars().count() > max => Err(bad_metadata(format!(
            "{field} is longer than {max} characters"
        ))),
        Some(s) if s.chars().any(char::is_control) => {
            Err(bad_metadata(format!("{field} contains control characters")))
        }
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Applies RFC 7591 defaults and Gatehouse's rules.
pub fn validate(req: RegistrationRequest) -> Result<ClientMetadata, OAuthError> {
    let auth_method = req
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&auth_method.as_str()) {
        return Err(bad_metadata(format!(
            "token_endpoint_auth_method {auth_method:?} is not supported; use one of none, client_secret_basic, client_secret_post"
        )));
    }
    let grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty() {
        return Err(bad_metadata("grant_types must not be empty"));
    }
    if let Some(g) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(bad_metadata(format!(
            "grant type {g:?} is not supported; use authorization_code, refresh_token, {CIBA_GRANT} or {DEVICE_GRANT}"
        )));
    }
    if auth_method == "none" && grant_types.iter().any(|g| g == CIBA_GRANT) {
        return Err(bad_metadata(
            "the CIBA grant is for confidential clients: register client_secret_basic or client_secret_post",
        ));
    }
    let has_code = grant_types.iter().any(|g| g == "authorization_code");
    let response_types = req.response_types.unwrap_or_else(|| {
        if has_code {
            vec!["code".into()]
        } else {
            Vec::new()
        }
    });
    if response_types.iter().any(|r| r != "code") {
        return Err(bad_metadata("only the response type \"code\" is supported"));
    }
    if grant_types.iter().any(|g| g == "authorization_code")
        != response_types.iter().any(|r| r == "code")
    {
        return Err(bad_metadata(
            "grant_types authorization_code and response_types code go together (RFC 7591 §2.1)",
        ));
    }
    let redirect_uris = req.redirect_uris.unwrap_or_default();
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    if redirect_uris.len() > 20 {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "too many redirect_uris (at most 20)",
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > 2000 {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "a redirect_uri is longer than 2000 characters",
            ));
        }
        redirect::validate(uri)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, format!("{uri}: {e}")))?;
    }
    let application_type = req.application_type.unwrap_or_else(|| "web".into());
    if application_type != "web" && application_type != "native" {
        return Err(bad_metadata(
            "application_type must be \"web\" or \"native\"",
        ));
    }
    let scope = match req.scope {
        Some(s) => Some(
            scope::parse(&s)
                .ok_or_else(|| bad_metadata("scope is not a valid space-separated list of scopes"))?
                .join(" "),
        ),
        None => None,
    };
    let client_name = short_text("client_name", req.client_name, 200)?;

    let mut extra = serde_json::Map::new();
    for (k, v) in [
        ("client_uri", req.client_uri),
        ("logo_uri", req.logo_uri),
        ("tos_uri", req.tos_uri),
        ("policy_uri", req.policy_uri),
        ("software_id", req.software_id),
        ("software_version", req.software_version),
    ] {
        if let Some(v) = short_text(k, v, 2000)? {
            if k.ends_with("_uri") && !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err(bad_metadata(format!("{k} must be an http(s) URL")));
            }
            extra.insert(k.into(), v.into());
        }
    }
    if let Some(c) = req.contacts {
        if c.len() > 10 || c.iter().any(|s| s.len() > 320) {
            return Err(bad_metadata(
                "contacts: at most 10 entries of 320 characters",
            ));
        }
        extra.insert("contacts".into(), c.into());
    }
    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method: auth_method,
        grant_types,
        response_types,
        application_type,
        client_name,
        scope,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> Result<ClientMetadata, OAuthError> {
        validate(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let m = req(serde_json::json!({ "redirect_uris": ["http://127.0.0.1:1/cb"] })).unwrap();
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(m.grant_types, vec!["authorization_code"]);
        assert_eq!(m.response_types, vec!["code"]);
        assert_eq!(m.application_type, "web");
    }

    #[test]
    fn rules() {
        let cases: &[(serde_json::Value, Option<ErrorCode>)] = &[
            (
                serde_json::json!({ "redirect_uris": ["http://localhost:3000/cb"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "application_type": "native" }),
                None,
            ),
            (
                serde_json::json!({ "redirect_uris": [] }),
                Some(ErrorCode::InvalidRedirectUri),
            ),
            (serde_json::json!({}), Some(ErrorCode::InvalidRedirectUri)),
            (serde_json::json!({ "grant_types": [CIBA_GRANT] }), None),
            (
                serde_json::json!({ "grant_types": [CIBA_GRANT], "token_endpoint_auth_method": "none" }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "grant_types": [DEVICE_GRANT], "token_endpoint_auth_method": "none" }),
                None,
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://example.com/cb"] }),
                Some(ErrorCode::InvalidRedirectUri),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb#x"] }),
                Some(ErrorCode::InvalidRedirectUri),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["implicit"] }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["password"] }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "response_types": ["token"] }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "application_type": "desktop" }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "scope": "a\"b" }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
            (
                serde_json::json!({ "redirect_uris": ["http://127.0.0.1/cb"], "client_name": "x\u{7}" }),
                Some(ErrorCode::InvalidClientMetadata),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(req(json.clone()).err().map(|e| e.code), *want, "{json}");
        }
    }
}
