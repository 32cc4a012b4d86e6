//! Out-of-band approval of an agent's action: OpenID CIBA in poll mode (`/bc-authorize`) and the
//! RFC 8628 device authorization grant (`/device_authorization`), and their token grants.
//!
//! Both file an action approval (kind `action`) that the person decides in Gatehouse, after the
//! policy had its say: a matching deny rule (or the pause switch) denies at once, allow rules that
//! cover the request approve at once, anything else asks the person. The agent polls the token
//! endpoint with the `auth_req_id` or `device_code`, which are secrets: only their SHA-256 is kept.
//!
//! The token of an approved action carries exactly the approved `authorization_details`, lives at
//! most five minutes, has no refresh token, and is limited to one use (an introspection answering
//! active) when it carries details, unless the person allowed more. Gatehouse issues no ID tokens:
//! `openid` in `scope` is accepted and ignored.

use std::time::Duration;

use crate::approvals::{ActionRequest, Decision, action_targets, detail_types};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::authority::{Authority, TokenParams, TokenResponse, ms, reject, secs};
use crate::oauth::registration::{CIBA_GRANT, DEVICE_GRANT};
use crate::oauth::{ClientCredentials, ErrorCode, OAuthError, rar, scope};
use crate::policy::{self, PolicyDecision, PolicyRequest};
use crate::secret::{Secret, SecretKind, TokenHash, random_id};
use crate::store::agents::Agent;
use crate::store::approvals::{self as approval_rows, ApprovalRow, ApprovalStatus};
use crate::store::backchannel::{self as rows, ActionToken, BackchannelKind, NewBackchannel};
use crate::store::tokens::Token;
use crate::store::{StoreError, WriteTx, agents};

/// Polling interval announced to agents (a loopback server paced by a person).
pub const INTERVAL_MS: i64 = 1000;
/// A poll may come this much earlier than the interval before it is `slow_down`.
pub const POLL_JITTER_MS: i64 = 200;
/// The longest an action token lives.
pub const ACTION_TOKEN_TTL: Duration = Duration::from_secs(300);
/// After approval, how long the agent has to collect its token.
pub const REDEEM_WINDOW_MS: i64 = 60_000;
/// The longest `binding_message` shown.
pub const MAX_BINDING_MESSAGE: usize = 100;
/// RFC 8628 §6.1: consonants only, no vowels (no words) and no ambiguous letters.
pub const USER_CODE_CHARS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A `/bc-authorize` or `/device_authorization` request as received.
#[derive(Debug, Clone, Default)]
pub struct BackchannelParams {
    pub login_hint: Option<String>,
    pub binding_message: Option<String>,
    pub requested_expiry: Option<String>,
    pub scope: Option<String>,
    pub resource: Vec<String>,
    pub authorization_details: Option<String>,
    /// A parameter that appeared more than once, if any.
    pub repeated: Option<String>,
}

/// The acknowledgement: the handle (`auth_req_id` or `device_code`), its life and the interval.
#[derive(Debug)]
pub struct BackchannelAck {
    pub handle: Secret,
    pub expires_in: i64,
    pub interval: i64,
    /// For the device grant: the code the agent shows the person (`WDJB-MJHT`).
    pub user_code: Option<String>,
    pub approval_id: String,
}

/// A fresh RFC 8628 user code, shown with a dash: `WDJB-MJHT`.
pub fn user_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut s = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            s.push('-');
        }
        s.push(USER_CODE_CHARS[rng.random_range(0..USER_CODE_CHARS.len())] as char);
    }
    s
}

fn invalid_request(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, msg)
}

/// What was asked, validated.
struct Asked {
    scopes: Vec<String>,
    resources: Vec<String>,
    details: Option<serde_json::Value>,
    summary: Vec<String>,
    warnings: Vec<String>,
    binding_message: Option<String>,
    ttl: Duration,
}

impl Authority {
    /// `POST /bc-authorize` (CIBA §7): files an action approval for a confidential client.
    pub async fn bc_authorize(
        &self,
        p: BackchannelParams,
        creds: ClientCredentials,
    ) -> Result<BackchannelAck, OAuthError> {
        let agent = self.authenticate("bc-authorize", &creds).await?;
        if agent.is_public() {
            return Err(self
                .refuse(
                    "bc-authorize",
                    &agent,
                    OAuthError::new(
                        ErrorCode::InvalidClient,
                        "CIBA needs a confidential client (client_secret_basic or client_secret_post)",
                    ),
                )
                .await);
        }
        let checked = self
            .check_request(&agent, &p, CIBA_GRANT)
            .await
            .and_then(|asked| {
                if p.login_hint.as_deref().is_none_or(str::is_empty) {
                    return Err(invalid_request(
                        "login_hint is required (any value names the person using this Gatehouse)",
                    ));
                }
                Ok(asked)
            });
        let asked = match checked {
            Ok(a) => a,
            Err(e) => return Err(self.refuse("bc-authorize", &agent, e).await),
        };
        self.file(agent, asked, BackchannelKind::Ciba).await
    }

    /// `POST /device_authorization` (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        p: BackchannelParams,
        creds: ClientCredentials,
    ) -> Result<BackchannelAck, OAuthError> {
        let agent = self.authenticate("device_authorization", &creds).await?;
        let asked = match self.check_request(&agent, &p, DEVICE_GRANT).await {
            Ok(a) => a,
            Err(e) => return Err(self.refuse("device_authorization", &agent, e).await),
        };
        self.file(agent, asked, BackchannelKind::Device).await
    }

    async fn refuse(&self, endpoint: &'static str, agent: &Agent, err: OAuthError) -> OAuthError {
        let (e2, id) = (err.clone(), agent.client_id.clone());
        match self
            .store()
            .write(move |tx| reject(tx, endpoint, Some(&id), e2).map(|_| ()))
            .await
        {
            Ok(()) => err,
            Err(e) => e.into(),
        }
    }

    async fn check_request(
        &self,
        agent: &Agent,
        p: &BackchannelParams,
        grant: &str,
    ) -> Result<Asked, OAuthError> {
        if let Some(name) = &p.repeated {
            return Err(invalid_request(format!(
                "the parameter {name} appears more than once"
            )));
        }
        if agent.is_suspended() {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                crate::authority::SUSPENDED_MESSAGE,
            ));
        }
        if !agent.allows_grant(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client did not register the grant {grant}"),
            ));
        }
        let mut scopes = scope::parse(p.scope.as_deref().unwrap_or("")).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is not a valid list of scopes (RFC 6749 §3.3)",
            )
        })?;
        // Gatehouse issues no ID tokens: `openid` is accepted and ignored.
        scopes.retain(|s| s != "openid");
        if let Some(registered) = &agent.scope {
            let allowed = scope::parse(registered).unwrap_or_default();
            if !scope::is_subset(&scopes, &allowed) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "the request asks for scopes this client did not register",
                ));
            }
        }
        let resources = scope::parse_resources(&p.resource)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e))?;
        let (details, summary, warnings) = match p.authorization_details.as_deref() {
            Some(raw) => {
                let parsed = rar::parse(raw)?;
                // Rendered against the person's own domains now: the approval's hash covers it.
                let own_domains = self.store().read(crate::admin::read_own_domains).await?;
                let (summary, warnings) = rar::render_all(&parsed, &own_domains);
                (Some(rar::to_json(&parsed)), summary, warnings)
            }
            None => {
                let summary = if scopes.is_empty() {
                    vec!["Act on your behalf (no scope or details were given)".to_owned()]
                } else {
                    scopes
                        .iter()
                        .map(|s| format!("Use the scope {s}"))
                        .collect()
                };
                (None, summary, Vec::new())
            }
        };
        let binding_message = match p.binding_message.as_deref() {
            Some(m) if m.chars().count() > MAX_BINDING_MESSAGE => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidBindingMessage,
                    format!("binding_message is longer than {MAX_BINDING_MESSAGE} characters"),
                ));
            }
            Some(m) if m.chars().any(char::is_control) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidBindingMessage,
                    "binding_message contains control characters",
                ));
            }
            Some(m) if !m.trim().is_empty() => Some(m.to_owned()),
            _ => None,
        };
        let max = self.broker().ttl();
        let ttl = match p.requested_expiry.as_deref() {
            None => max,
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_secs(n).min(max),
                _ => {
                    return Err(invalid_request(
                        "requested_expiry must be a positive number of seconds",
                    ));
                }
            },
        };
        Ok(Asked {
            scopes,
            resources,
            details,
            summary,
            warnings,
            binding_message,
            ttl,
        })
    }

    async fn file(
        &self,
        agent: Agent,
        asked: Asked,
        kind: BackchannelKind,
    ) -> Result<BackchannelAck, OAuthError> {
        let handle = Secret::generate(match kind {
            BackchannelKind::Ciba => SecretKind::AuthReqId,
            BackchannelKind::Device => SecretKind::DeviceCode,
        });
        let hash = handle.hash();
        let approval_id = random_id("apr_");
        let user_code = (kind == BackchannelKind::Device).then(user_code);
        let req = ActionRequest {
            client_id: agent.client_id.clone(),
            client_name: agent.client_name.clone(),
            verified: false,
            via: kind.as_str().to_owned(),
            binding_message: asked.binding_message,
            user_code: user_code.clone(),
            scopes: asked.scopes,
            resources: asked.resources,
            authorization_details: asked.details,
            summary: asked.summary,
            warnings: asked.warnings,
            broader: None,
        };
        let broker = self.broker().clone();
        let session_id = self.session_id().to_owned();
        let (aid, ttl) = (approval_id.clone(), asked.ttl);
        let (row, decision) = self
            .store()
            .write(
                move |tx| -> Result<(ApprovalRow, PolicyDecision), OAuthError> {
                    let mut req = req;
                    if let Some(code) = &req.user_code
                        && rows::user_code_taken(tx.conn(), code)?
                    {
                        req.user_code = Some(user_code_free(tx)?);
                    }
                    let row = broker.file_action(tx, &aid, &req, ttl)?;
                    rows::insert(
                        tx.conn(),
                        &hash,
                        &NewBackchannel {
                            kind,
                            client_id: &req.client_id,
                            approval_id: &aid,
                            user_code: req.user_code.as_deref(),
                            interval_ms: INTERVAL_MS,
                            expires_at: row.expires_at,
                        },
                    )?;
                    agents::touch(tx.conn(), &req.client_id, tx.now())?;
                    let (actions, resources) = action_targets(&req);
                    let request = PolicyRequest {
                        client_id: req.client_id.clone(),
                        actions,
                        resources,
                    };
                    let decision = policy::evaluate(tx.conn(), &request, tx.now(), &session_id)?;
                    policy::record_hits(tx, &request, &decision)?;
                    let settled = match &decision {
                        PolicyDecision::Allow { .. } => Some(Decision::approve()),
                        PolicyDecision::Deny { .. } => Some(Decision::deny()),
                        PolicyDecision::Ask { .. } => None,
                    };
                    let row = match settled {
                        Some(d) => broker
                            .decide_in_tx(tx, &aid, &d, "policy")?
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        None => row,
                    };
                    Ok((row, decision))
                },
            )
            .await?;
        match decision {
            PolicyDecision::Ask { .. } => self.broker().announce(&row),
            _ => self.broker().notify_decided(&row.id, row.status, "policy"),
        }
        let expires_in = (row.expires_at - self.clock().now())
            .max(0)
            .div_euclid(1000);
        Ok(BackchannelAck {
            handle,
            expires_in,
            interval: INTERVAL_MS / 1000,
            user_code: row
                .request
                .get("user_code")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            approval_id,
        })
    }

    /// The token grants `urn:openid:params:grant-type:ciba` and
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    pub(crate) async fn backchannel_token(
        &self,
        agent: Agent,
        p: TokenParams,
        kind: BackchannelKind,
    ) -> Result<TokenResponse, OAuthError> {
        let (grant, param, presented) = match kind {
            BackchannelKind::Ciba => (CIBA_GRANT, "auth_req_id", p.auth_req_id),
            BackchannelKind::Device => (DEVICE_GRANT, "device_code", p.device_code),
        };
        if kind == BackchannelKind::Ciba && agent.is_public() {
            return Err(self
                .refuse(
                    "token",
                    &agent,
                    OAuthError::new(ErrorCode::InvalidClient, "CIBA needs a confidential client"),
                )
                .await);
        }
        if !agent.allows_grant(grant) {
            let err = OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client did not register the grant {grant}"),
            );
            return Err(self.refuse("token", &agent, err).await);
        }
        let presented = presented
            .filter(|c| !c.is_empty())
            .ok_or_else(|| invalid_request(format!("{param} is required")))?;
        let hash = TokenHash::of(&presented);
        drop(presented);
        let access = Secret::generate(SecretKind::AccessToken);
        let access_hash = access.hash();
        let ttl = ms(self.config().access_ttl.min(ACTION_TOKEN_TTL));
        let client_id = agent.client_id.clone();
        enum Polled {
            Issued {
                scope: String,
                details: Option<serde_json::Value>,
            },
            Refused(OAuthError),
            /// Refused as expired, having just expired this approval.
            Expired(String, OAuthError),
        }
        let polled = self
            .store()
            .write(move |tx| -> Result<Polled, OAuthError> {
                let now = tx.now();
                let refused =
                    |code: ErrorCode, why: &str| Polled::Refused(OAuthError::new(code, why));
                let invalid = |tx: &mut WriteTx<'_>, why: &str| -> Result<Polled, StoreError> {
                    let err = OAuthError::new(ErrorCode::InvalidGrant, why);
                    Ok(Polled::Refused(reject(tx, "token", Some(&client_id), err)?))
                };
                let Some(bc) = rows::get(tx.conn(), &hash)?
                    .filter(|b| b.client_id == client_id && b.kind == kind.as_str())
                else {
                    return Ok(invalid(tx, &format!("the {param} is not valid"))?);
                };
                if bc.redeemed_at.is_some() {
                    return Ok(invalid(tx, &format!("the {param} was already redeemed"))?);
                }
                let too_soon = bc
                    .last_poll_at
                    .is_some_and(|last| now - last < bc.interval_ms - POLL_JITTER_MS);
                rows::record_poll(tx.conn(), &hash, now)?;
                if too_soon {
                    return Ok(refused(
                        ErrorCode::SlowDown,
                        "polling faster than the interval; wait longer between polls",
                    ));
                }
                let Some(row) = approval_rows::get(tx.conn(), &bc.approval_id)? else {
                    return Ok(invalid(tx, &format!("the {param} is not valid"))?);
                };
                match row.status {
                    ApprovalStatus::Pending if now >= row.expires_at => {
                        crate::approvals::expire_in(tx, &row)?;
                        Ok(Polled::Expired(
                            row.id.clone(),
                            OAuthError::new(
                                ErrorCode::ExpiredToken,
                                "the request expired before the person decided",
                            ),
                        ))
                    }
                    ApprovalStatus::Pending => Ok(refused(
                        ErrorCode::AuthorizationPending,
                        "the person has not decided yet",
                    )),
                    ApprovalStatus::Denied => {
                        Ok(refused(ErrorCode::AccessDenied, "the request was denied"))
                    }
                    ApprovalStatus::Expired => Ok(refused(
                        ErrorCode::ExpiredToken,
                        "the request expired before the person decided",
                    )),
                    ApprovalStatus::Approved => {
                        if row.decided_at.is_some_and(|d| now >= d + REDEEM_WINDOW_MS) {
                            return Ok(refused(
                                ErrorCode::ExpiredToken,
                                "the approved request was not collected in time",
                            ));
                        }
                        if !rows::redeem(tx.conn(), &hash, now)? {
                            return Ok(invalid(tx, &format!("the {param} was already redeemed"))?);
                        }
                        let req: ActionRequest = serde_json::from_value(row.request.clone())
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        let scopes = row.granted_scopes.clone().unwrap_or_default();
                        let details = req.authorization_details.clone();
                        let uses = rows::granted_uses(tx.conn(), &row.id)?
                            .or(details.is_some().then_some(1));
                        let grant_id = rows::insert_action_grant(
                            tx.conn(),
                            &client_id,
                            &scopes,
                            &req.resources,
                            &row.id,
                            details.as_ref(),
                            now,
                        )?;
                        rows::insert_action_token(
                            tx.conn(),
                            &access_hash,
                            &ActionToken {
                                grant_id,
                                client_id: &client_id,
                                scopes: &scopes,
                                audience: &req.resources,
                                details: details.as_ref(),
                                uses,
                                expires_at: now + ttl,
                            },
                            now,
                        )?;
                        agents::touch(tx.conn(), &client_id, now)?;
                        tx.append(NewEvent::new(
                            EventKind::TokenIssued,
                            Outcome::Ok,
                            Some(&client_id),
                            serde_json::json!({
                                "grant_id": grant_id,
                                "via": kind.as_str(),
                                "approval_id": row.id,
                                "access_token_id": access_hash.id(),
                                "refresh_token_id": null,
                                "scopes": scopes,
                                "audience": req.resources,
                                "detail_types": detail_types(details.as_ref()),
                                "uses": uses,
                                "expires_at": now + ttl,
                            }),
                        ))?;
                        Ok(Polled::Issued {
                            scope: scopes.join(" "),
                            details,
                        })
                    }
                }
            })
            .await?;
        match polled {
            Polled::Issued { scope, details } => Ok(TokenResponse {
                access_token: access,
                expires_in: secs(ttl),
                refresh_token: None,
                scope,
                authorization_details: details,
            }),
            Polled::Refused(e) => Err(e),
            Polled::Expired(id, e) => {
                self.broker()
                    .notify_decided(&id, ApprovalStatus::Expired, "timeout");
                Err(e)
            }
        }
    }

    /// Spends one use of a use-limited token (an introspection answering active). False if it
    /// had none left.
    pub(crate) async fn spend_use(&self, t: &Token) -> Result<bool, OAuthError> {
        let (hash, client_id, id) = (t.hash, t.client_id.clone(), t.id.clone());
        self.store()
            .write(move |tx| -> Result<bool, OAuthError> {
                let Some(left) = rows::spend_use(tx.conn(), &hash)? else {
                    return Ok(false);
                };
                tx.append(NewEvent::new(
                    EventKind::TokenUsed,
                    Outcome::Ok,
                    Some(&client_id),
                    serde_json::json!({ "token_id": id, "uses_left": left }),
                ))?;
                Ok(true)
            })
            .await
    }
}

/// A user code not yet taken (codes are never reused while their row exists).
fn user_code_free(tx: &mut WriteTx<'_>) -> Result<String, StoreError> {
    for _ in 0..16 {
        let code = user_code();
        if !rows::user_code_taken(tx.conn(), &code)? {
            return Ok(code);
        }
    }
    Err(StoreError::Corrupt("no free user code".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_have_eight_consonants_and_a_dash() {
        for _ in 0..100 {
            let c = user_code();
            assert_eq!(c.len(), 9);
            assert_eq!(&c[4..5], "-");
            assert!(
                c.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| USER_CODE_CHARS.contains(&b))
            );
        }
    }
}
