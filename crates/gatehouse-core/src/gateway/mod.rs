//! The credential-injecting gateway's decisions, pure and without I/O: who may call
//! `/gateway/{connection}/...`, what the policy's answer means for a call, and which headers are
//! never forwarded.
//!
//! Names, as shown at consent and in the RFC 9728 metadata:
//! - the resource (token audience) of a connection is `{issuer}/gateway/{connection}`;
//! - `{connection}:read` allows `GET`, `HEAD` and `OPTIONS`;
//! - `{connection}:write` allows every other method (it does not imply `:read`).
//!
//! The policy sees each call as the action `api_request` on the upstream URL. Without a rule,
//! reads go through, writes ask the person, and `DELETE` asks with a warning.

use crate::Authority;
use crate::approvals::ActionRequest;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::policy::{DenyReason, PAUSED_MESSAGE, PolicyDecision};
use crate::secret::random_id;
use crate::store::StoreError;
use crate::store::agents;
use crate::store::connections::ConnectionRow;

pub mod summary;

/// The policy action type of a gateway call (also the RFC 9396 detail type shown to the person).
pub const API_REQUEST: &str = "api_request";

/// The resource URI (token audience) of a connection.
pub fn resource_uri(issuer: &str, connection: &str) -> String {
    format!("{issuer}/gateway/{connection}")
}

/// Where the RFC 9728 metadata of a connection is served.
pub fn metadata_uri(issuer: &str, connection: &str) -> String {
    format!("{issuer}/.well-known/oauth-protected-resource/gateway/{connection}")
}

pub fn read_scope(connection: &str) -> String {
    format!("{connection}:read")
}

pub fn write_scope(connection: &str) -> String {
    format!("{connection}:write")
}

/// Whether a method only reads (`GET`, `HEAD`, `OPTIONS`). Methods are case-sensitive (RFC 9110).
pub fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The scope a call with `method` needs.
pub fn required_scope(connection: &str, method: &str) -> String {
    if is_read(method) {
        read_scope(connection)
    } else {
        write_scope(connection)
    }
}

/// What the gateway knows about the presented token once it has been authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub audience: &'a [String],
    pub scopes: &'a [String],
}

/// Why a call is refused, mapped to its HTTP answer by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401 without an error code: no bearer token was sent (RFC 6750 §3.1).
    NoToken,
    /// 401 `invalid_token`: unknown, expired, revoked, used up, or for another resource.
    InvalidToken(String),
    /// 403 `insufficient_scope`, naming the scope needed.
    InsufficientScope { scope: String },
    /// 403 `access_denied`: the policy, a pause, or the person said no.
    Denied(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::InvalidToken(_) => 401,
            Refusal::InsufficientScope { .. } | Refusal::Denied(_) => 403,
        }
    }
    /// The OAuth error code, if the answer carries one.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            Refusal::NoToken => None,
            Refusal::InvalidToken(_) => Some("invalid_token"),
            Refusal::InsufficientScope { .. } => Some("insufficient_scope"),
            Refusal::Denied(_) => Some("access_denied"),
        }
    }
    pub fn description(&self) -> String {
        match self {
            Refusal::NoToken => {
                "a Gatehouse access token is required (Authorization: Bearer)".into()
            }
            Refusal::InvalidToken(d) | Refusal::Denied(d) => d.clone(),
            Refusal::InsufficientScope { scope } => format!("this call needs the scope {scope}"),
        }
    }
}

/// Checks a live token's audience and scopes for a call. `None` means no token was presented.
pub fn check_token(
    token: Option<Presented<'_>>,
    issuer: &str,
    connection: &str,
    method: &str,
) -> Result<(), Refusal> {
    let Some(t) = token else {
        return Err(Refusal::NoToken);
    };
    let resource = resource_uri(issuer, connection);
    if !t.audience.contains(&resource) {
        return Err(Refusal::InvalidToken(format!(
            "the token's audience is not {resource}: request it with resource={resource}"
        )));
    }
    let scope = required_scope(connection, method);
    if !t.scopes.contains(&scope) {
        return Err(Refusal::InsufficientScope { scope });
    }
    Ok(())
}

/// What to do with a call the token allows, once the policy has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// Hold the call and ask the person, with these warnings.
    Ask {
        warnings: Vec<String>,
    },
    Refuse(Refusal),
}

impl Verdict {
    /// The decision as audited: `allow`, `ask` or `deny`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Forward => "allow",
            Verdict::Ask { .. } => "ask",
            Verdict::Refuse(_) => "deny",
        }
    }
}

/// Applies the gateway defaults to the policy's answer for `api_request` on the URL: a rule wins;
/// with no rule (`Ask` without rules), reads go through, writes ask, `DELETE` asks with a warning.
pub fn apply_policy(decision: &PolicyDecision, method: &str) -> Verdict {
    let delete_warning = || {
        (method == "DELETE")
            .then(|| "DELETE removes data upstream and may not be undoable".to_owned())
            .into_iter()
            .collect::<Vec<_>>()
    };
    match decision {
        PolicyDecision::Deny {
            reason: DenyReason::Paused,
        } => Verdict::Refuse(Refusal::Denied(PAUSED_MESSAGE.into())),
        PolicyDecision::Deny {
            reason: DenyReason::Rule { rule_id },
        } => Verdict::Refuse(Refusal::Denied(format!(
            "a policy rule denies this call (rule {rule_id})"
        ))),
        PolicyDecision::Allow { .. } => Verdict::Forward,
        PolicyDecision::Ask { rules } if rules.is_empty() && is_read(method) => Verdict::Forward,
        PolicyDecision::Ask { .. } => Verdict::Ask {
            warnings: delete_warning(),
        },
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

/// The header names listed in `Connection` header values, lowercased.
pub fn connection_listed<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether a header is hop-by-hop: a fixed one, any `Proxy-*`, or one named in `Connection`
/// (`listed`, from [`connection_listed`]).
pub fn is_hop_by_hop(name: &str, listed: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    HOP_BY_HOP.contains(&name.as_str()) || name.starts_with("proxy-") || listed.contains(&name)
}

/// Whether a request header must not go upstream: hop-by-hop, the agent's own credentials
/// (`Authorization`, `Cookie`), or `Host` (set from the upstream URL).
pub fn drop_request_header(name: &str, listed: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), "authorization" | "cookie" | "host") || is_hop_by_hop(&lower, listed)
}

/// Joins a connection's base URL with the path and query the agent asked for, without letting
/// the agent climb out of the base path (`..` segments are refused).
pub fn upstream_url(base_url: &str, path: &str, query: Option<&str>) -> Option<String> {
    if path.split('/').any(|s| {
        s == ".." || s == "." || s.eq_ignore_ascii_case("%2e%2e") || s.eq_ignore_ascii_case("%2e")
    }) {
        return None;
    }
    let mut url = format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

/// What one read of the database says about a call to a connection that exists.
#[derive(Debug, Clone)]
pub struct CallLookup {
    /// The connection's row, as read in the same transaction as the policy.
    pub row: ConnectionRow,
    /// The upstream URL and the policy's answer for it; `None` when the path is refused
    /// ([`upstream_url`]).
    pub decision: Option<(String, PolicyDecision)>,
}

/// Reads a connection's row and evaluates the policy for the call's upstream URL in ONE read
/// transaction (each read transaction after a write costs a page-cache revalidation, and the
/// gateway writes an audit event per call). `None` when there is no such connection.
pub async fn lookup_call(
    authority: &Authority,
    client_id: &str,
    connection: &str,
    path: &str,
    query: Option<&str>,
) -> Result<Option<CallLookup>, StoreError> {
    let now = authority.clock().now();
    let session_id = authority.session_id().to_owned();
    let (client_id, connection, path, query) = (
        client_id.to_owned(),
        connection.to_owned(),
        path.to_owned(),
        query.map(str::to_owned),
    );
    authority
        .store()
        .read(move |c| -> Result<Option<CallLookup>, StoreError> {
            let Some(row) = crate::store::connections::get(c, &connection)? else {
                return Ok(None);
            };
            let decision = match upstream_url(&row.base_url, &path, query.as_deref()) {
                None => None,
                Some(url) => {
                    let request = crate::policy::PolicyRequest {
                        client_id,
                        actions: vec![API_REQUEST.into()],
                        resources: vec![url.clone()],
                    };
                    let d = crate::policy::evaluate(c, &request, now, &session_id)?;
                    Some((url, d))
                }
            };
            Ok(Some(CallLookup { row, decision }))
        })
        .await
}

/// Files an action approval for a held gateway call and announces it; returns its id. The person
/// sees the method, the URL and, when given, a short summary of the body.
pub async fn ask(
    authority: &Authority,
    client_id: &str,
    method: &str,
    url: &str,
    body_summary: Option<String>,
    warnings: Vec<String>,
) -> Result<String, StoreError> {
    let mut detail = serde_json::json!({ "type": API_REQUEST, "method": method, "url": url });
    if let Some(b) = &body_summary {
        detail["body"] = serde_json::json!(b);
    }
    let lookup = client_id.to_owned();
    let client_name = authority
        .store()
        .read(move |c| agents::get(c, &lookup).map_err(StoreError::from))
        .await?
        .and_then(|a| a.client_name);
    let req = ActionRequest {
        client_id: client_id.to_owned(),
        client_name,
        verified: false,
        via: "gateway".into(),
        binding_message: None,
        user_code: None,
        scopes: Vec::new(),
        resources: vec![url.to_owned()],
        authorization_details: Some(serde_json::json!([detail])),
        summary: std::iter::once(format!("{method} {url}"))
            .chain(body_summary.map(|b| format!("Body: {b}")))
            .collect(),
        warnings,
        broader: None,
    };
    let id = random_id("apr_");
    let broker = authority.broker().clone();
    let (aid, ttl) = (id.clone(), broker.ttl());
    let row = authority
        .store()
        .write(move |tx| broker.file_action(tx, &aid, &req, ttl))
        .await?;
    authority.broker().announce(&row);
    Ok(id)
}

/// Records a gateway call (`gateway.call`): never bodies, headers or secrets. Best effort. A call
/// that went upstream (decision `allow` or `approved`) also sets the connection's `last_used_at`
/// in the same transaction.
pub async fn record_call(
    authority: &Authority,
    client_id: Option<&str>,
    detail: serde_json::Value,
) {
    let outcome = match detail.get("status").and_then(serde_json::Value::as_u64) {
        Some(s) if s < 400 => Outcome::Ok,
        Some(401 | 403) => Outcome::Denied,
        _ => Outcome::Rejected,
    };
    let client = client_id.map(str::to_owned);
    let forwarded = matches!(
        detail.get("decision").and_then(serde_json::Value::as_str),
        Some("allow" | "approved")
    );
    let connection = detail
        .get("connection")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let r = authority
        .store()
        .write(move |tx| {
            if let (true, Some(name)) = (forwarded, connection.as_deref()) {
                crate::store::connections::touch(tx.conn(), name, tx.now())?;
            }
            tx.append(NewEvent::new(
                EventKind::GatewayCall,
                outcome,
                client.as_deref(),
                detail,
            ))
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not record a gateway call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "http://127.0.0.1:5000";

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn names() {
        assert_eq!(resource_uri(ISS, "gh"), "http://127.0.0.1:5000/gateway/gh");
        assert_eq!(
            metadata_uri(ISS, "gh"),
            "http://127.0.0.1:5000/.well-known/oauth-protected-resource/gateway/gh"
        );
        assert_eq!(required_scope("gh", "GET"), "gh:read");
        assert_eq!(required_scope("gh", "HEAD"), "gh:read");
        assert_eq!(required_scope("gh", "OPTIONS"), "gh:read");
        assert_eq!(required_scope("gh", "POST"), "gh:write");
        assert_eq!(required_scope("gh", "DELETE"), "gh:write");
        assert_eq!(required_scope("gh", "get"), "gh:write");
    }

    #[test]
    fn token_checks() {
        let good_aud = s(&["http://127.0.0.1:5000/gateway/gh"]);
        let other_aud = s(&["http://127.0.0.1:5000/gateway/mail"]);
        let read = s(&["gh:read"]);
        let both = s(&["gh:read", "gh:write"]);
        let write = s(&["gh:write"]);
        let cases: Vec<(Option<Presented<'_>>, &str, Result<(), Refusal>)> = vec![
            (None, "GET", Err(Refusal::NoToken)),
            (
                Some(Presented {
                    audience: &[],
                    scopes: &read,
                }),
                "GET",
                Err(Refusal::InvalidToken(String::new())),
            ),
            (
                Some(Presented {
                    audience: &other_aud,
                    scopes: &read,
                }),
                "GET",
                Err(Refusal::InvalidToken(String::new())),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &read,
                }),
                "GET",
                Ok(()),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &read,
                }),
                "HEAD",
                Ok(()),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &read,
                }),
                "POST",
                Err(Refusal::InsufficientScope {
                    scope: "gh:write".into(),
                }),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &write,
                }),
                "GET",
                Err(Refusal::InsufficientScope {
                    scope: "gh:read".into(),
                }),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &write,
                }),
                "DELETE",
                Ok(()),
            ),
            (
                Some(Presented {
                    audience: &good_aud,
                    scopes: &both,
                }),
                "PUT",
                Ok(()),
            ),
        ];
        for (token, method, want) in cases {
            let got = check_token(token, ISS, "gh", method);
            match (&got, &want) {
                (Err(Refusal::InvalidToken(d)), Err(Refusal::InvalidToken(_))) => {
                    assert!(
                        d.contains("resource=http://127.0.0.1:5000/gateway/gh"),
                        "{d}"
                    );
                }
                _ => assert_eq!(got, want, "{method} {token:?}"),
            }
        }
        assert_eq!(Refusal::NoToken.status(), 401);
        assert_eq!(Refusal::NoToken.error(), None);
        assert_eq!(
            Refusal::InvalidToken(String::new()).error(),
            Some("invalid_token")
        );
        let scope = Refusal::InsufficientScope {
            scope: "gh:write".into(),
        };
        assert_eq!(
            (scope.status(), scope.error()),
            (403, Some("insufficient_scope"))
        );
    }

    #[test]
    fn policy_defaults_and_rules() {
        let none = PolicyDecision::Ask { rules: vec![] };
        let ask_rule = PolicyDecision::Ask { rules: vec![3] };
        let allow = PolicyDecision::Allow { rules: vec![1] };
        let deny = PolicyDecision::Deny {
            reason: DenyReason::Rule { rule_id: 2 },
        };
        let paused = PolicyDecision::Deny {
            reason: DenyReason::Paused,
        };
        let delete_warned = |v: &Verdict| matches!(v, Verdict::Ask { warnings } if warnings.len() == 1 && warnings[0].contains("DELETE"));
        assert_eq!(apply_policy(&none, "GET"), Verdict::Forward);
        assert_eq!(apply_policy(&none, "HEAD"), Verdict::Forward);
        assert_eq!(
            apply_policy(&none, "POST"),
            Verdict::Ask { warnings: vec![] }
        );
        assert_eq!(
            apply_policy(&none, "PATCH"),
            Verdict::Ask { warnings: vec![] }
        );
        assert!(delete_warned(&apply_policy(&none, "DELETE")));
        assert_eq!(
            apply_policy(&ask_rule, "GET"),
            Verdict::Ask { warnings: vec![] }
        );
        assert!(delete_warned(&apply_policy(&ask_rule, "DELETE")));
        assert_eq!(apply_policy(&allow, "POST"), Verdict::Forward);
        assert_eq!(apply_policy(&allow, "DELETE"), Verdict::Forward);
        for m in ["GET", "POST", "DELETE"] {
            let v = apply_policy(&deny, m);
            assert!(
                matches!(&v, Verdict::Refuse(Refusal::Denied(d)) if d.contains("rule 2")),
                "{v:?}"
            );
            assert_eq!(v.as_str(), "deny");
            let v = apply_policy(&paused, m);
            assert_eq!(v, Verdict::Refuse(Refusal::Denied(PAUSED_MESSAGE.into())));
        }
    }

    #[test]
    fn headers_not_forwarded() {
        let listed = connection_listed(["keep-alive, X-Secret-Hop", " close "]);
        assert_eq!(listed, s(&["keep-alive", "x-secret-hop", "close"]));
        let cases = [
            ("Connection", true),
            ("Keep-Alive", true),
            ("Proxy-Authorization", true),
            ("proxy-authenticate", true),
            ("TE", true),
            ("Trailer", true),
            ("Transfer-Encoding", true),
            ("Upgrade", true),
            ("X-Secret-Hop", true),
            ("Authorization", true),
            ("Cookie", true),
            ("Host", true),
            ("Content-Type", false),
            ("Content-Length", false),
            ("Accept", false),
            ("X-Request-Id", false),
        ];
        for (name, dropped) in cases {
            assert_eq!(drop_request_header(name, &listed), dropped, "{name}");
        }
        assert!(!is_hop_by_hop("Authorization", &[]));
        assert!(!is_hop_by_hop("Set-Cookie", &[]));
        assert!(is_hop_by_hop("transfer-encoding", &[]));
    }

    #[test]
    fn upstream_urls() {
        let base = "http://127.0.0.1:9/api/";
        assert_eq!(
            upstream_url(base, "repos/x", Some("a=1&b=2")).as_deref(),
            Some("http://127.0.0.1:9/api/repos/x?a=1&b=2")
        );
        assert_eq!(
            upstream_url("http://h/api", "", None).as_deref(),
            Some("http://h/api/")
        );
        assert_eq!(
            upstream_url("http://h", "x", Some("")).as_deref(),
            Some("http://h/x")
        );
        for bad in ["../etc", "a/../../b", "a/./b", "%2e%2e/x", "a/%2E%2E"] {
            assert_eq!(upstream_url(base, bad, None), None, "{bad}");
        }
    }
}
