//! The authorization server's logic, free of HTTP: registration (RFC 7591), the authorization
//! request and consent hand-off, the token endpoint (code exchange with PKCE, refresh rotation with
//! reuse detection), revocation (RFC 7009) and introspection (RFC 7662).
//!
//! Every state change commits together with its audit event; a rejection that changes state (a
//! replayed code revoking its family) commits the change and the event, then reports the error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::approvals::{Broker, ConsentRequest};
use crate::audit::{self, EventKind, NewEvent, Outcome};
use crate::clock::{Clock, Millis};
use crate::oauth::registration::{self, ClientMetadata, RegistrationRequest};
use crate::oauth::{ClientCredentials, ErrorCode, OAuthError, pkce, rar, redirect, scope};
use crate::policy;
use crate::secret::{Secret, SecretKind, TokenHash, hashes_equal, random_id};
use crate::store::agents::{self, Agent};
use crate::store::approvals::{self as approval_rows, ApprovalStatus};
use crate::store::backchannel::BackchannelKind;
use crate::store::grants::{self, NewCode};
use crate::store::tokens::{self, NewToken, TokenKind};
use crate::store::{Store, StoreError, WriteTx, consents};

/// Why a suspended agent is refused (`access_denied`): the person did it, and can undo it.
pub const SUSPENDED_MESSAGE: &str = "the person suspended this agent in Gatehouse: it gets no new \
     codes, tokens or approvals, and its tokens are inactive, until they resume it";

/// Lifetimes and the issuer.
#[derive(Debug, Clone)]
pub struct AuthorityConfig {
    /// `http://127.0.0.1:PORT`, known once the listener is bound.
    pub issuer: String,
    pub code_ttl: Duration,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub approval_ttl: Duration,
}

impl AuthorityConfig {
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            approval_ttl: Duration::from_secs(120),
        }
    }
}

/// A successful registration. The secret is shown to the client once and never stored.
#[derive(Debug)]
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub issued_at_secs: i64,
    pub metadata: ClientMetadata,
}

/// The parameters of an authorization request, as received.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Vec<String>,
    pub prompt: Option<String>,
    /// RFC 9396 `authorization_details`, raw (a JSON array).
    pub authorization_details: Option<String>,
    /// A parameter that appeared more than once (RFC 6749 §3.1 forbids it), if any.
    pub repeated: Option<String>,
}

/// What `/authorize` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    ErrorPage {
        status: u16,
        title: String,
        message: String,
    },
    /// Send the browser to the client (with a code, or with an error).
    Redirect(String),
    /// The person must decide: send the browser to the waiting page for this approval.
    AwaitConsent { approval_id: String },
}

/// What the waiting page answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentProgress {
    Pending {
        client_name: String,
        expires_at: Millis,
    },
    Redirect(String),
    ErrorPage {
        status: u16,
        title: String,
        message: String,
    },
}

/// The parameters of a token request, as received.
#[derive(Debug, Clone, Default)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub resource: Vec<String>,
    /// CIBA's `auth_req_id`.
    pub auth_req_id: Option<String>,
    /// RFC 8628's `device_code`.
    pub device_code: Option<String>,
    pub repeated: Option<String>,
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: i64,
    pub refresh_token: Option<Secret>,
    pub scope: String,
    /// The RFC 9396 details the access token carries.
    pub authorization_details: Option<serde_json::Value>,
}

/// RFC 7662 introspection response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            token_type: None,
            exp: None,
            iat: None,
            aud: None,
            iss: None,
            authorization_details: None,
        }
    }
}

/// The authorization server.
#[derive(Debug)]
pub struct Authority {
    store: Store,
    clock: Arc<dyn Clock>,
    config: AuthorityConfig,
    broker: Broker,
    session_id: Arc<str>,
    /// Token uses not yet written: token hash -> (client, last use). Flushed in batches so an
    /// introspection costs a read, not a write.
    usage: Mutex<HashMap<TokenHash, (String, Millis)>>,
}

pub(crate) fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

pub(crate) fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// A rejection to record, then report.
pub(crate) fn reject(
    tx: &mut WriteTx<'_>,
    endpoint: &str,
    client_id: Option<&str>,
    err: OAuthError,
) -> Result<OAuthError, StoreError> {
    tx.append(NewEvent::new(
        EventKind::RequestRejected,
        Outcome::Rejected,
        client_id,
        serde_json::json!({ "endpoint": endpoint, "error": err.code.as_str(), "reason": err.description }),
    ))?;
    Ok(err)
}

/// A code or refresh token came back after it was used, so it leaked: revokes every token of its
/// grant, audits `kind` with `detail` plus `tokens_revoked`, and returns the `invalid_grant` to report.
fn revoke_leaked(
    tx: &mut WriteTx<'_>,
    kind: EventKind,
    client_id: &str,
    grant_id: i64,
    reason: &str,
    mut detail: serde_json::Value,
    message: &str,
) -> Result<OAuthError, StoreError> {
    let revoked = grants::revoke_family(tx.conn(), grant_id, reason, tx.now())?;
    detail["tokens_revoked"] = revoked.into();
    tx.append(NewEvent::new(
        kind,
        Outcome::Rejected,
        Some(client_id),
        detail,
    ))?;
    Ok(OAuthError::new(ErrorCode::InvalidGrant, message))
}

impl Authority {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: AuthorityConfig) -> Self {
        let session_id: Arc<str> = random_id("ses_").into();
        let broker = Broker::new(
            store.clone(),
            clock.clone(),
            config.approval_ttl,
            session_id.clone(),
        )
        .with_issuer(&config.issuer);
        Self {
            store,
            clock,
            config,
            broker,
            session_id,
            usage: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
    /// Changes how long approvals filed from now on wait for the person, without a restart.
    pub fn set_approval_ttl(&self, ttl: Duration) {
        self.broker.set_ttl(ttl);
    }
    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// This server run's session id: `session` rules (remembered "until restart") carry it and
    /// die with it. Pass it to [`policy::create_rule`] and [`policy::evaluate`].
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Decides an action request against the live rules and the pause switch, read from the
    /// store now: `Deny` while paused or when a deny rule matches, `Ask` when an ask rule
    /// matches, `Allow` when allow rules cover every (action, resource) pair, `Ask` otherwise.
    ///
    /// `actions` are action types (`message_send`; the scopes when the request has no
    /// authorization details) and `resources` the targets (URLs, recipients, `resource`s).
    ///
    /// This only reads. Whoever acts on the decision records the hits in the same write
    /// transaction with [`policy::record_hits`]. To decide and act atomically (so a `once` rule
    /// is used exactly once), call [`policy::evaluate`]`(tx.conn(), &request, tx.now(),
    /// authority.session_id())` inside that transaction instead, then `record_hits`.
    pub async fn policy_decide(
        &self,
        client_id: &str,
        actions: Vec<String>,
        resources: Vec<String>,
    ) -> Result<policy::PolicyDecision, StoreError> {
        let request = policy::PolicyRequest {
            client_id: client_id.to_owned(),
            actions,
            resources,
        };
        let now = self.clock.now();
        let session_id = self.session_id.clone();
        self.store
            .read(move |c| {
                policy::evaluate(c, &request, now, &session_id).map_err(StoreError::from)
            })
            .await
    }

    /// Records a request refused before it reached the protocol (bad Host, foreign Origin...).
    /// Best effort: the request is refused whether or not the event could be written.
    pub async fn record_rejection(&self, endpoint: &str, reason: &str) {
        let endpoint = truncate(endpoint, 200);
        let reason = truncate(reason, 300);
        let r = self
            .store
            .write(move |tx| {
                tx.append(NewEvent::new(
                    EventKind::RequestRejected,
                    Outcome::Rejected,
                    None,
                    serde_json::json!({ "endpoint": endpoint, "error": "forbidden", "reason": reason }),
                ))
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not record a rejected request");
        }
    }

    // ---- RFC 7591 registration -------------------------------------------------------------

    pub async fn register(&self, req: RegistrationRequest) -> Result<Registered, OAuthError> {
        let meta = registration::validate(req)?;
        let client_id = random_id("agt_");
        let secret = (meta.token_endpoint_auth_method != "none")
            .then(|| Secret::generate(SecretKind::ClientSecret));
        let hash = secret.as_ref().map(Secret::hash);
        let (id, m) = (client_id.clone(), meta.clone());
        let now = self
            .store
            .write(move |tx| -> Result<Millis, OAuthError> {
                agents::insert(tx.conn(), &id, &m, hash.as_ref(), tx.now())?;
                tx.append(NewEvent::new(
                    EventKind::AgentRegistered,
                    Outcome::Ok,
                    Some(&id),
                    serde_json::json!({
                        "client_name": m.client_name,
                        "auth_method": m.token_endpoint_auth_method,
                        "application_type": m.application_type,
                        "redirect_uris": m.redirect_uris,
                        "grant_types": m.grant_types,
                    }),
                ))?;
                Ok(tx.now())
            })
            .await?;
        Ok(Registered {
            client_id,
            client_secret: secret,
            issued_at_secs: secs(now),
            metadata: meta,
        })
    }

    // ---- /authorize --------------------------------------------------------------------------

    fn redirect_with(&self, redirect_uri: &str, params: &[(&str, &str)]) -> String {
        let mut url = match url::Url::parse(redirect_uri) {
            Ok(u) => u,
            Err(_) => return redirect_uri.to_owned(),
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            q.append_pair("iss", &self.config.issuer);
        }
        url.into()
    }

    fn redirect_error(&self, redirect_uri: &str, err: &OAuthError, state: Option<&str>) -> String {
        let mut p = vec![
            ("error", err.code.as_str()),
            ("error_description", err.description.as_str()),
        ];
        if let Some(s) = state {
            p.push(("state", s));
        }
        self.redirect_with(redirect_uri, &p)
    }

    fn redirect_code(&self, redirect_uri: &str, code: &Secret, state: Option<&str>) -> String {
        let mut p = vec![("code", code.expose())];
        if let Some(s) = state {
            p.push(("state", s));
        }
        self.redirect_with(redirect_uri, &p)
    }

    pub async fn authorize(&self, p: AuthorizeParams) -> AuthorizeOutcome {
        let page = |title: &str, message: String| AuthorizeOutcome::ErrorPage {
            status: 400,
            title: title.into(),
            message,
        };
        if let Some(name) = p
            .repeated
            .as_deref()
            .filter(|n| *n == "client_id" || *n == "redirect_uri")
        {
            return page(
                "Invalid request",
                format!("The parameter {name} appears more than once."),
            );
        }
        let Some(client_id) = p.client_id.clone().filter(|c| !c.is_empty()) else {
            return page("Invalid request", "The request has no client_id.".into());
        };
        let lookup = client_id.clone();
        let (agent, paused) = match self
            .store
            .read(move |c| -> Result<_, StoreError> {
                Ok((agents::get(c, &lookup)?, policy::is_paused(c)?))
            })
            .await
        {
            Ok(a) => a,
            Err(e) => return unavailable_page(e),
        };
        let Some(agent) = agent.filter(|a| a.revoked_at.is_none()) else {
            self.record_rejection_for(
                "authorize",
                Some(&client_id),
                ErrorCode::InvalidClient,
                "unknown or revoked client",
            )
            .await;
            return page(
                "Unknown agent",
                "This agent is not registered with Gatehouse, or it was revoked.".into(),
            );
        };
        let (redirect_uri, given) = match p.redirect_uri.as_deref() {
            Some(r) if redirect::matches(&agent.redirect_uris, r) => (r.to_owned(), true),
            Some(_) => {
                self.record_rejection_for(
                    "authorize",
                    Some(&client_id),
                    ErrorCode::InvalidRequest,
                    "redirect_uri is not registered",
                )
                .await;
                return page("Invalid redirect", "The redirect_uri does not match any registered for this agent, so Gatehouse will not send you there.".into());
            }
            None if agent.redirect_uris.len() == 1 => (agent.redirect_uris[0].clone(), false),
            None => {
                return page(
                    "Invalid request",
                    "The request has no redirect_uri and the agent registered several.".into(),
                );
            }
        };
        let state = p.state.as_deref();
        // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
        if paused {
            let err = OAuthError::new(ErrorCode::AccessDenied, policy::PAUSED_MESSAGE);
            self.record_rejection_for("authorize", Some(&client_id), err.code, &err.description)
                .await;
            return AuthorizeOutcome::Redirect(self.redirect_error(&redirect_uri, &err, state));
        }
        if agent.is_suspended() {
            let err = OAuthError::new(ErrorCode::AccessDenied, SUSPENDED_MESSAGE);
            self.record_rejection_for("authorize", Some(&client_id), err.code, &err.description)
                .await;
            return AuthorizeOutcome::Redirect(self.redirect_error(&redirect_uri, &err, state));
        }
        match self.check_authorize(&agent, &p) {
            Ok((scopes, resources)) => match self
                .begin_consent(&agent, &redirect_uri, given, scopes, resources, &p)
                .await
            {
                Ok(outcome) => outcome,
                Err(e) => AuthorizeOutcome::Redirect(self.redirect_error(&redirect_uri, &e, state)),
            },
            Err(err) => {
                self.record_rejection_for(
                    "authorize",
                    Some(&client_id),
                    err.code,
                    &err.description,
                )
                .await;
                AuthorizeOutcome::Redirect(self.redirect_error(&redirect_uri, &err, state))
            }
        }
    }

    fn check_authorize(
        &self,
        agent: &Agent,
        p: &AuthorizeParams,
    ) -> Result<(Vec<String>, Vec<String>), OAuthError> {
        if let Some(name) = &p.repeated {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("the parameter {name} appears more than once"),
            ));
        }
        match p.response_type.as_deref() {
            None => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "response_type is required",
                ));
            }
            Some("code") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ));
            }
        }
        if !agent.allows_grant("authorization_code") {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client did not register the authorization_code grant",
            ));
        }
        pkce::check_challenge(
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
        )
        .map_err(|e| OAuthError::new(ErrorCode::InvalidRequest, e.to_string()))?;
        let scopes = scope::parse(p.scope.as_deref().unwrap_or("")).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is not a valid list of scopes (RFC 6749 §3.3)",
            )
        })?;
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
        if p.state.as_ref().is_some_and(|s| s.len() > 2000) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "state is too long",
            ));
        }
        if let Some(raw) = &p.authorization_details {
            rar::parse(raw)?;
        }
        Ok((scopes, resources))
    }

    async fn begin_consent(
        &self,
        agent: &Agent,
        redirect_uri: &str,
        redirect_uri_given: bool,
        scopes: Vec<String>,
        resources: Vec<String>,
        p: &AuthorizeParams,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        // Details are shown with the person's own domains as they are now; both go into the
        // request, so the approval's hash covers exactly what was shown.
        let details = p
            .authorization_details
            .as_deref()
            .map(rar::parse)
            .transpose()?;
        let own_domains = match &details {
            Some(_) => self.store.read(crate::admin::read_own_domains).await?,
            None => Vec::new(),
        };
        let (summary, warnings) = details
            .as_deref()
            .map(|d| rar::render_all(d, &own_domains))
            .unwrap_or_default();
        let req = ConsentRequest {
            client_id: agent.client_id.clone(),
            client_name: agent.client_name.clone(),
            verified: false,
            redirect_uri: redirect_uri.to_owned(),
            redirect_uri_given,
            redirect_host: redirect::display_host(redirect_uri),
            scopes,
            resources,
            state: p.state.clone(),
            code_challenge: p.code_challenge.clone().unwrap_or_default(),
            authorization_details: details.as_deref().map(rar::to_json),
            summary,
            warnings,
            own_domains,
        };
        let prompt_none = p
            .prompt
            .as_deref()
            .is_some_and(|v| v.split(' ').any(|x| x == "none"));
        let code = Secret::generate(SecretKind::AuthorizationCode);
        let code_hash = code.hash();
        let approval_id = random_id("apr_");
        let broker = self.broker.clone();
        let session_id = self.session_id.clone();
        let code_ttl = ms(self.config.code_ttl);
        let r = req.clone();
        let aid = approval_id.clone();
        enum Began {
            Remembered,
            Filed(Box<approval_rows::ApprovalRow>),
            NeedsConsent,
        }
        let began = self
            .store
            .write(move |tx| -> Result<Began, OAuthError> {
                let now = tx.now();
                // Authorization details describe one action each: a remembered consent covers
                // scopes, never them, so a request with details always asks.
                let remembered = match r.authorization_details {
                    Some(_) => None,
                    None => consents::find_covering(
                        tx.conn(),
                        &r.client_id,
                        &r.redirect_host,
                        &r.scopes,
                        &r.resources,
                        &session_id,
                        now,
                    )?,
                };
                if let Some(consent) = remembered {
                    let grant_id = grants::insert(
                        tx.conn(),
                        &r.client_id,
                        &r.scopes,
                        &r.resources,
                        None,
                        Some(consent.id),
                        now,
                    )?;
                    let code = NewCode {
                        grant_id,
                        client_id: &r.client_id,
                        redirect_uri: &r.redirect_uri,
                        redirect_uri_given: r.redirect_uri_given,
                        code_challenge: &r.code_challenge,
                        expires_at: now + code_ttl,
                    };
                    grants::insert_code(tx.conn(), &code_hash, &code, now)?;
                    agents::touch(tx.conn(), &r.client_id, now)?;
                    tx.append(NewEvent::new(
                        EventKind::ConsentRemembered,
                        Outcome::Ok,
                        Some(&r.client_id),
                        serde_json::json!({
                            "consent_id": consent.id,
                            "remember": consent.remember,
                            "grant_id": grant_id,
                            "redirect_host": r.redirect_host,
                            "scopes": r.scopes,
                            "resources": r.resources,
                        }),
                    ))?;
                    return Ok(Began::Remembered);
                }
                if prompt_none {
                    let err = OAuthError::new(
                        ErrorCode::ConsentRequired,
                        "prompt=none, and no remembered consent covers this request",
                    );
                    reject(tx, "authorize", Some(&r.client_id), err)?;
                    return Ok(Began::NeedsConsent);
                }
                let row = broker.file_consent(tx, &aid, &r)?;
                Ok(Began::Filed(Box::new(row)))
            })
            .await?;
        Ok(match began {
            Began::Remembered => AuthorizeOutcome::Redirect(self.redirect_code(
                redirect_uri,
                &code,
                req.state.as_deref(),
            )),
            Began::NeedsConsent => AuthorizeOutcome::Redirect(self.redirect_error(
                redirect_uri,
                &OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the person has not consented to this request",
                ),
                req.state.as_deref(),
            )),
            Began::Filed(row) => {
                self.broker.announce(&row);
                AuthorizeOutcome::AwaitConsent { approval_id }
            }
        })
    }

    async fn record_rejection_for(
        &self,
        endpoint: &'static str,
        client_id: Option<&str>,
        code: ErrorCode,
        reason: &str,
    ) {
        let client_id = client_id.map(|c| truncate(c, 200));
        let reason = reason.to_owned();
        let r = self
            .store
            .write(move |tx| {
                reject(
                    tx,
                    endpoint,
                    client_id.as_deref(),
                    OAuthError::new(code, reason),
                )
                .map(|_| ())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not record a rejected request");
        }
    }

    /// The waiting page: pending, or where to send the browser once the person decided.
    pub async fn consent_progress(&self, approval_id: &str) -> ConsentProgress {
        let id = approval_id.to_owned();
        let row = match self
            .store
            .read(move |c| approval_rows::get(c, &id).map_err(StoreError::from))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return match unavailable_page(e) {
                    AuthorizeOutcome::ErrorPage {
                        status,
                        title,
                        message,
                    } => ConsentProgress::ErrorPage {
                        status,
                        title,
                        message,
                    },
                    _ => unreachable_page(),
                };
            }
        };
        let Some(row) = row.filter(|r| r.kind == "consent") else {
            return ConsentProgress::ErrorPage {
                status: 404,
                title: "Not found".into(),
                message: "There is no such consent request.".into(),
            };
        };
        let Ok(req) = serde_json::from_value::<ConsentRequest>(row.request.clone()) else {
            return unreachable_page();
        };
        let state = req.state.as_deref();
        let denied = |why: &str| {
            ConsentProgress::Redirect(self.redirect_error(
                &req.redirect_uri,
                &OAuthError::new(ErrorCode::AccessDenied, why),
                state,
            ))
        };
        match row.status {
            ApprovalStatus::Pending if self.clock.now() >= row.expires_at => {
                if let Err(e) = self.broker.expire(&row.id).await {
                    tracing::warn!(error = %e, "could not expire approval");
                }
                denied("the consent request expired before the person decided")
            }
            ApprovalStatus::Pending => {
                ConsentProgress::Pending { client_name: req.client_name.clone().unwrap_or(req.client_id.clone()), expires_at: row.expires_at }
            }
            ApprovalStatus::Denied => denied("the person denied the request"),
            ApprovalStatus::Expired => denied("the consent request expired before the person decided"),
            ApprovalStatus::Approved if row.completed_at.is_some() => ConsentProgress::ErrorPage {
                status: 400,
                title: "Already used".into(),
                message: "This consent was already handed to the agent. Start the sign-in again from the agent.".into(),
            },
            ApprovalStatus::Approved => {
                let code = Secret::generate(SecretKind::AuthorizationCode);
                let code_hash = code.hash();
                let code_ttl = ms(self.config.code_ttl);
                let granted = row.granted_scopes.clone().unwrap_or_default();
                let r = req.clone();
                let id = row.id.clone();
                let done = self
                    .store
                    .write(move |tx| -> Result<bool, OAuthError> {
                        let now = tx.now();
                        if !approval_rows::complete(tx.conn(), &id, now)? {
                            return Ok(false);
                        }
                        let grant_id = grants::insert(tx.conn(), &r.client_id, &granted, &r.resources, Some(&id), None, now)?;
                        if let Some(details) = &r.authorization_details {
                            grants::set_authorization_details(tx.conn(), grant_id, details)?;
                        }
                        let code = NewCode {
                            grant_id,
                            client_id: &r.client_id,
                            redirect_uri: &r.redirect_uri,
                            redirect_uri_given: r.redirect_uri_given,
                            code_challenge: &r.code_challenge,
                            expires_at: now + code_ttl,
                        };
                        grants::insert_code(tx.conn(), &code_hash, &code, now)?;
                        tx.append(NewEvent::new(
                            EventKind::CodeIssued,
                            Outcome::Ok,
                            Some(&r.client_id),
                            serde_json::json!({ "approval_id": id, "grant_id": grant_id, "scopes": granted, "resources": r.resources }),
                        ))?;
                        Ok(true)
                    })
                    .await;
                match done {
                    Ok(true) => ConsentProgress::Redirect(self.redirect_code(&req.redirect_uri, &code, state)),
                    Ok(false) => ConsentProgress::ErrorPage {
                        status: 400,
                        title: "Already used".into(),
                        message: "This consent was already handed to the agent.".into(),
                    },
                    Err(e) => ConsentProgress::Redirect(self.redirect_error(&req.redirect_uri, &e, state)),
                }
            }
        }
    }

    // ---- client authentication --------------------------------------------------------------

    /// Authenticates the caller of the token, revocation or introspection endpoint.
    pub(crate) async fn authenticate(
        &self,
        endpoint: &'static str,
        creds: &ClientCredentials,
    ) -> Result<Agent, OAuthError> {
        Ok(self.authenticate_reading_pause(endpoint, creds).await?.0)
    }

    /// [`Self::authenticate`], also reading the pause switch in the same store read.
    async fn authenticate_reading_pause(
        &self,
        endpoint: &'static str,
        creds: &ClientCredentials,
    ) -> Result<(Agent, bool), OAuthError> {
        let result = self.store.read({
            let creds = creds.clone();
            move |c| -> Result<(Result<Agent, &'static str>, bool), OAuthError> {
                Ok((check_credentials(c, &creds)?, policy::is_paused(c)?))
            }
        });
        let (checked, paused) = result.await?;
        match checked {
            Ok(agent) => Ok((agent, paused)),
            Err(reason) => {
                let client = creds.client_id().map(|c| truncate(c, 200));
                let err = OAuthError::new(ErrorCode::InvalidClient, reason);
                let e2 = err.clone();
                self.store
                    .write(move |tx| reject(tx, endpoint, client.as_deref(), e2).map(|_| ()))
                    .await?;
                Err(err)
            }
        }
    }

    // ---- /token --------------------------------------------------------------------------------

    pub async fn token(
        &self,
        p: TokenParams,
        creds: ClientCredentials,
    ) -> Result<TokenResponse, OAuthError> {
        if let Some(name) = &p.repeated {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("the parameter {name} appears more than once"),
            ));
        }
        let (agent, paused) = self.authenticate_reading_pause("token", &creds).await?;
        if paused || agent.is_suspended() {
            // Paused or suspended: no grant of any type issues a token, not even a refresh.
            let message = if paused {
                policy::PAUSED_MESSAGE
            } else {
                SUSPENDED_MESSAGE
            };
            let err = OAuthError::new(ErrorCode::AccessDenied, message);
            let (e2, id) = (err.clone(), agent.client_id.clone());
            self.store
                .write(move |tx| reject(tx, "token", Some(&id), e2).map(|_| ()))
                .await?;
            return Err(err);
        }
        match p.grant_type.as_deref() {
            None => Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "grant_type is required",
            )),
            Some("authorization_code") => self.exchange_code(agent, p).await,
            Some("refresh_token") => self.refresh(agent, p).await,
            Some(registration::CIBA_GRANT) => {
                self.backchannel_token(agent, p, BackchannelKind::Ciba)
                    .await
            }
            Some(registration::DEVICE_GRANT) => {
                self.backchannel_token(agent, p, BackchannelKind::Device)
                    .await
            }
            Some(other) => {
                let err = OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type {} is not supported", truncate(other, 100)),
                );
                let (e2, id) = (err.clone(), agent.client_id.clone());
                self.store
                    .write(move |tx| reject(tx, "token", Some(&id), e2).map(|_| ()))
                    .await?;
                Err(err)
            }
        }
    }

    async fn exchange_code(
        &self,
        agent: Agent,
        p: TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let code = p
            .code
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is required"))?;
        let requested_resources = scope::parse_resources(&p.resource)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e))?;
        let code_hash = TokenHash::of(&code);
        drop(code);
        let access = Secret::generate(SecretKind::AccessToken);
        let refresh = agent
            .allows_grant("refresh_token")
            .then(|| Secret::generate(SecretKind::RefreshToken));
        let (access_hash, refresh_hash) = (access.hash(), refresh.as_ref().map(Secret::hash));
        let (access_ttl, refresh_ttl) = (ms(self.config.access_ttl), ms(self.config.refresh_ttl));
        let client_id = agent.client_id.clone();
        let outcome = self
            .store
            .write(move |tx| -> Result<Result<(String, Option<serde_json::Value>), OAuthError>, OAuthError> {
                let now = tx.now();
                let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidGrant, why);
                let Some(stored) = grants::get_code(tx.conn(), &code_hash)? else {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the authorization code is not valid"))?));
                };
                if stored.client_id != client_id {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the authorization code is not valid"))?));
                }
                // A code that comes back after it was redeemed was intercepted or replayed: revoke
                // everything it issued (OAuth 2.1 §4.1.3).
                let replayed = |tx: &mut WriteTx<'_>| -> Result<OAuthError, StoreError> {
                    revoke_leaked(tx, EventKind::CodeReplayed, &client_id, stored.grant_id, "authorization code replayed",
                        serde_json::json!({ "grant_id": stored.grant_id }),
                        "the authorization code was already used; every token issued from it is now revoked")
                };
                if stored.used_at.is_some() {
                    return Ok(Err(replayed(tx)?));
                }
                if now >= stored.expires_at {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the authorization code has expired"))?));
                }
                let redirect_ok = match p.redirect_uri.as_deref() {
                    Some(r) => r == stored.redirect_uri,
                    None => !stored.redirect_uri_given,
                };
                if !redirect_ok {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("redirect_uri does not match the authorization request"))?));
                }
                if let Err(e) = pkce::verify(p.code_verifier.as_deref(), &stored.code_challenge) {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid(&e.to_string()))?));
                }
                let Some(grant) = grants::get(tx.conn(), stored.grant_id)?.filter(|g| g.revoked_at.is_none()) else {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the grant was revoked"))?));
                };
                if !scope::is_subset(&requested_resources, &grant.resources) {
                    let err = OAuthError::new(ErrorCode::InvalidTarget, "resource was not part of the authorization");
                    return Ok(Err(reject(tx, "token", Some(&client_id), err)?));
                }
                // Redeem only a request that passed every check: a refused one (wrong verifier or
                // redirect) leaves the code for the client's corrected retry until it expires.
                if !grants::mark_code_used(tx.conn(), &code_hash, now)? {
                    return Ok(Err(replayed(tx)?));
                }
                let audience = if requested_resources.is_empty() { grant.resources.clone() } else { requested_resources };
                issue(tx, &grant, &client_id, &grant.scopes, &audience, &access_hash, refresh_hash.as_ref(), now + access_ttl, now + refresh_ttl, "authorization_code")?;
                Ok(Ok((grant.scopes.join(" "), grant.authorization_details.clone())))
            })
            .await?;
        let (scope, authorization_details) = outcome?;
        Ok(TokenResponse {
            access_token: access,
            expires_in: secs(access_ttl),
            refresh_token: refresh,
            scope,
            authorization_details,
        })
    }

    async fn refresh(&self, agent: Agent, p: TokenParams) -> Result<TokenResponse, OAuthError> {
        let presented = p
            .refresh_token
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                OAuthError::new(ErrorCode::InvalidRequest, "refresh_token is required")
            })?;
        let requested_scopes = match p.scope.as_deref() {
            Some(s) => Some(scope::parse(s).ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidScope,
                    "scope is not a valid list of scopes",
                )
            })?),
            None => None,
        };
        let requested_resources = scope::parse_resources(&p.resource)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e))?;
        let old_hash = TokenHash::of(&presented);
        drop(presented);
        let access = Secret::generate(SecretKind::AccessToken);
        let refresh = Secret::generate(SecretKind::RefreshToken);
        let (access_hash, refresh_hash) = (access.hash(), refresh.hash());
        let access_ttl = ms(self.config.access_ttl);
        let client_id = agent.client_id.clone();
        let (scope, authorization_details) = self
            .store
            .write(move |tx| -> Result<Result<(String, Option<serde_json::Value>), OAuthError>, OAuthError> {
                let now = tx.now();
                let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidGrant, why);
                let old = tokens::get(tx.conn(), &old_hash)?.filter(|t| t.kind == TokenKind::Refresh && t.client_id == client_id);
                let Some(old) = old else {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the refresh token is not valid"))?));
                };
                // RFC 9700 §4.14.2: a rotated refresh token came back, so it was stolen or
                // replayed. Kill the whole family.
                let reused = |tx: &mut WriteTx<'_>| -> Result<OAuthError, StoreError> {
                    revoke_leaked(tx, EventKind::RefreshReuseDetected, &client_id, old.grant_id, "refresh token reused",
                        serde_json::json!({ "grant_id": old.grant_id, "token_id": old.id }),
                        "the refresh token was already used; every token of this grant is now revoked")
                };
                if old.rotated_at.is_some() {
                    return Ok(Err(reused(tx)?));
                }
                if old.revoked_at.is_some() {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the refresh token was revoked"))?));
                }
                if now >= old.expires_at {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the refresh token has expired"))?));
                }
                let Some(grant) = grants::get(tx.conn(), old.grant_id)?.filter(|g| g.revoked_at.is_none()) else {
                    return Ok(Err(reject(tx, "token", Some(&client_id), invalid("the grant was revoked"))?));
                };
                let scopes = requested_scopes.unwrap_or_else(|| old.scopes.clone());
                if !scope::is_subset(&scopes, &old.scopes) {
                    let err = OAuthError::new(ErrorCode::InvalidScope, "a refresh may narrow the scope, never widen it");
                    return Ok(Err(reject(tx, "token", Some(&client_id), err)?));
                }
                if !scope::is_subset(&requested_resources, &old.audience) {
                    let err = OAuthError::new(ErrorCode::InvalidTarget, "a refresh may narrow the resources, never widen them");
                    return Ok(Err(reject(tx, "token", Some(&client_id), err)?));
                }
                // Rotate only a request that is granted: a refused one (wider scope or resource)
                // leaves the refresh token usable, so the client's corrected retry is not "reuse".
                if !tokens::mark_rotated(tx.conn(), &old_hash, now)? {
                    return Ok(Err(reused(tx)?));
                }
                let audience = if requested_resources.is_empty() { old.audience.clone() } else { requested_resources };
                // The new access token may be narrowed; the new refresh token keeps what the grant
                // allows, and the family keeps its absolute expiry.
                tokens::insert(
                    tx.conn(),
                    &access_hash,
                    &NewToken { kind: TokenKind::Access, grant_id: grant.id, client_id: &client_id, scopes: &scopes, audience: &audience, expires_at: now + access_ttl },
                    now,
                )?;
                tokens::insert(
                    tx.conn(),
                    &refresh_hash,
                    &NewToken { kind: TokenKind::Refresh, grant_id: grant.id, client_id: &client_id, scopes: &old.scopes, audience: &old.audience, expires_at: old.expires_at },
                    now,
                )?;
                // A refresh keeps the details the grant was approved with (RFC 9396 §7).
                if let Some(details) = &grant.authorization_details {
                    tokens::set_authorization_details(tx.conn(), &access_hash, details)?;
                    tokens::set_authorization_details(tx.conn(), &refresh_hash, details)?;
                }
                agents::touch(tx.conn(), &client_id, now)?;
                tx.append(NewEvent::new(
                    EventKind::TokenRefreshed,
                    Outcome::Ok,
                    Some(&client_id),
                    serde_json::json!({
                        "grant_id": grant.id,
                        "previous_refresh_token_id": old.id,
                        "access_token_id": access_hash.id(),
                        "refresh_token_id": refresh_hash.id(),
                        "scopes": scopes,
                        "audience": audience,
                        "expires_at": now + access_ttl,
                    }),
                ))?;
                Ok(Ok((scopes.join(" "), grant.authorization_details.clone())))
            })
            .await??;
        Ok(TokenResponse {
            access_token: access,
            expires_in: secs(access_ttl),
            refresh_token: Some(refresh),
            scope,
            authorization_details,
        })
    }

    // ---- RFC 7009 revocation -----------------------------------------------------------------

    /// Revokes a token the caller owns. Unknown tokens and other clients' tokens succeed silently
    /// (RFC 7009 §2.2), so the endpoint reveals nothing.
    pub async fn revoke(
        &self,
        token: Option<String>,
        creds: ClientCredentials,
    ) -> Result<(), OAuthError> {
        let agent = self.authenticate("revoke", &creds).await?;
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?;
        let hash = TokenHash::of(&token);
        drop(token);
        let client_id = agent.client_id;
        self.store
            .write(move |tx| -> Result<(), OAuthError> {
                let now = tx.now();
                let Some(t) = tokens::get(tx.conn(), &hash)?.filter(|t| t.client_id == client_id) else { return Ok(()) };
                if t.revoked_at.is_some() {
                    return Ok(());
                }
                let (family, revoked) = match t.kind {
                    TokenKind::Refresh => (true, grants::revoke_family(tx.conn(), t.grant_id, "refresh token revoked by the client", now)?),
                    TokenKind::Access => (false, usize::from(tokens::revoke(tx.conn(), &hash, now)?)),
                };
                tx.append(NewEvent::new(
                    EventKind::TokenRevoked,
                    Outcome::Ok,
                    Some(&client_id),
                    serde_json::json!({ "token_id": t.id, "kind": t.kind, "grant_id": t.grant_id, "whole_grant": family, "tokens_revoked": revoked, "by": "client" }),
                ))?;
                Ok(())
            })
            .await
    }

    // ---- RFC 7662 introspection -------------------------------------------------------------

    /// Introspects a token for a confidential client; a client sees only its own tokens.
    pub async fn introspect(
        &self,
        token: Option<String>,
        creds: ClientCredentials,
    ) -> Result<Introspection, OAuthError> {
        let token = token.filter(|t| !t.is_empty());
        let hash = token.as_deref().map(TokenHash::of);
        drop(token);
        let now = self.clock.now();
        let found = self
            .store
            .read(
                move |c| -> Result<
                    (Result<Agent, &'static str>, Option<tokens::Token>),
                    OAuthError,
                > {
                    let agent = check_credentials(c, &creds)?;
                    let token = match (&agent, hash) {
                        // Paused: every agent is stopped, so no token is active.
                        (Ok(_), Some(_)) if policy::is_paused(c)? => None,
                        (Ok(_), Some(h)) => tokens::get(c, &h)?,
                        _ => None,
                    };
                    Ok((agent, token))
                },
            )
            .await?;
        let agent = match found.0 {
            Ok(a) if a.is_public() => {
                return Err(self.introspection_refused("introspection needs a confidential client (client_secret_basic or client_secret_post)", &a.client_id).await);
            }
            Ok(a) => a,
            Err(reason) => return Err(self.introspection_refused(reason, "").await),
        };
        let Some(t) = found.1 else {
            return Ok(Introspection::inactive());
        };
        // A suspended agent's tokens are inactive until the person resumes it (the caller is the
        // token's owner, checked next).
        if agent.is_suspended() {
            return Ok(Introspection::inactive());
        }
        if t.client_id != agent.client_id || !t.is_live(now) {
            return Ok(Introspection::inactive());
        }
        if t.uses_left.is_some() && !self.spend_use(&t).await? {
            return Ok(Introspection::inactive());
        }
        if let Ok(mut usage) = self.usage.lock() {
            usage.insert(t.hash, (t.client_id.clone(), now));
        }
        Ok(Introspection {
            active: true,
            scope: Some(t.scopes.join(" ")),
            client_id: Some(t.client_id),
            token_type: (t.kind == TokenKind::Access).then_some("Bearer"),
            exp: Some(secs(t.expires_at)),
            iat: Some(secs(t.created_at)),
            aud: (!t.audience.is_empty()).then_some(t.audience),
            iss: Some(self.config.issuer.clone()),
            authorization_details: t.authorization_details,
        })
    }

    // ---- resource calls (the gateway) -------------------------------------------------------

    /// Authenticates an agent's bearer access token presented on a resource call (the gateway):
    /// the token must be a live access token of an agent that is not revoked, and Gatehouse must
    /// not be paused. Counts a use of a use-limited token (like introspection) and records the
    /// last use in the batched usage map. Audience and scopes are checked by the caller
    /// ([`crate::gateway::check_token`]).
    pub async fn authenticate_resource_call(
        &self,
        token: &str,
    ) -> Result<tokens::Token, crate::gateway::Refusal> {
        use crate::gateway::Refusal;
        let invalid =
            || Refusal::InvalidToken("the access token is unknown, expired or revoked".into());
        if token.is_empty() {
            return Err(invalid());
        }
        let hash = TokenHash::of(token);
        let now = self.clock.now();
        let found = self
            .store
            .read(
                move |c| -> Result<(bool, Option<tokens::Token>, Option<Agent>), StoreError> {
                    let paused = policy::is_paused(c)?;
                    let t = tokens::get(c, &hash)?;
                    let agent = match &t {
                        Some(t) => agents::get(c, &t.client_id)?,
                        None => None,
                    };
                    Ok((paused, t, agent))
                },
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read a token for a resource call");
                Refusal::InvalidToken("the token could not be checked".into())
            })?;
        let (paused, t, agent) = found;
        let Some(agent) = agent.filter(|a| a.revoked_at.is_none()) else {
            return Err(invalid());
        };
        let Some(t) = t.filter(|t| t.kind == TokenKind::Access && t.is_live(now)) else {
            return Err(invalid());
        };
        if paused {
            return Err(Refusal::Denied(policy::PAUSED_MESSAGE.into()));
        }
        if agent.is_suspended() {
            return Err(Refusal::Denied(SUSPENDED_MESSAGE.into()));
        }
        if t.uses_left.is_some() && !self.spend_use(&t).await.map_err(|_| invalid())? {
            return Err(invalid());
        }
        if let Ok(mut usage) = self.usage.lock() {
            usage.insert(t.hash, (t.client_id.clone(), now));
        }
        Ok(t)
    }

    async fn introspection_refused(&self, reason: &str, client_id: &str) -> OAuthError {
        let err = OAuthError::new(ErrorCode::InvalidClient, reason);
        let client = (!client_id.is_empty()).then(|| client_id.to_owned());
        let e2 = err.clone();
        if let Err(e) = self
            .store
            .write(move |tx| reject(tx, "introspect", client.as_deref(), e2).map(|_| ()))
            .await
        {
            return e.into();
        }
        err
    }

    // ---- housekeeping -----------------------------------------------------------------------

    /// Writes batched "last used" times. No audit event: a use is not a state change.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        let batch: Vec<(TokenHash, (String, Millis))> = match self.usage.lock() {
            Ok(mut u) if !u.is_empty() => u.drain().collect(),
            _ => return Ok(0),
        };
        let n = batch.len();
        self.store
            .write(move |tx| {
                for (hash, (client, at)) in &batch {
                    tokens::record_use(tx.conn(), hash, *at)?;
                    agents::touch(tx.conn(), client, *at)?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(n)
    }

    /// Expires due approvals, flushes usage and indexes new audit events for full-text search,
    /// until the task is dropped.
    pub async fn maintain(self: Arc<Self>) {
        let chores = async {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut n: u32 = 0;
            loop {
                tick.tick().await;
                if let Err(e) = self.broker.expire_due().await {
                    tracing::warn!(error = %e, "could not expire approvals");
                }
                n = n.wrapping_add(1);
                if n.is_multiple_of(8)
                    && let Err(e) = self.flush_usage().await
                {
                    tracing::warn!(error = %e, "could not record token use");
                }
            }
        };
        tokio::join!(chores, self.index_events_loop());
    }

    /// The background full-text indexer: every 250 ms, the audit events appended since (by this
    /// process or another, such as the CLI), one batch per write; while a long backlog lasts,
    /// batch after batch, other writes sharing the writer in between. Its own loop, so a backlog
    /// never delays approval expiry.
    async fn index_events_loop(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match self.store.index_events(audit::INDEX_BATCH).await {
                    Ok(n) if n == audit::INDEX_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not index audit events for search");
                        break;
                    }
                }
            }
        }
    }
}

/// Checks presented credentials against the registration. The inner `Err` is the reason to log,
/// worded so it is safe to return to the client.
fn check_credentials(
    c: &rusqlite::Connection,
    creds: &ClientCredentials,
) -> Result<Result<Agent, &'static str>, StoreError> {
    let Some(client_id) = creds.client_id() else {
        return Ok(Err("client authentication is required"));
    };
    let Some(agent) = agents::get(c, client_id)? else {
        return Ok(Err("client authentication failed"));
    };
    if agent.revoked_at.is_some() {
        return Ok(Err("client authentication failed"));
    }
    if agent.auth_method != creds.method() {
        return Ok(Err(match agent.auth_method.as_str() {
            "none" => "this is a public client: send client_id only, without a secret",
            "client_secret_post" => "this client authenticates with client_secret_post",
            _ => "this client authenticates with client_secret_basic",
        }));
    }
    let presented = match creds {
        ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => secret,
        ClientCredentials::None { .. } => return Ok(Ok(agent)),
        ClientCredentials::Missing => return Ok(Err("client authentication is required")),
    };
    match &agent.secret_hash {
        Some(stored) if hashes_equal(&TokenHash::of(presented).0, stored) => Ok(Ok(agent)),
        _ => Ok(Err("client authentication failed")),
    }
}

#[allow(clippy::too_many_arguments)]
fn issue(
    tx: &mut WriteTx<'_>,
    grant: &grants::Grant,
    client_id: &str,
    scopes: &[String],
    audience: &[String],
    access: &TokenHash,
    refresh: Option<&TokenHash>,
    access_exp: Millis,
    refresh_exp: Millis,
    via: &str,
) -> Result<(), StoreError> {
    let now = tx.now();
    let conn = tx.conn();
    tokens::insert(
        conn,
        access,
        &NewToken {
            kind: TokenKind::Access,
            grant_id: grant.id,
            client_id,
            scopes,
            audience,
            expires_at: access_exp,
        },
        now,
    )?;
    if let Some(r) = refresh {
        tokens::insert(
            conn,
            r,
            &NewToken {
                kind: TokenKind::Refresh,
                grant_id: grant.id,
                client_id,
                scopes: &grant.scopes,
                audience: &grant.resources,
                expires_at: refresh_exp,
            },
            now,
        )?;
    }
    if let Some(details) = &grant.authorization_details {
        tokens::set_authorization_details(conn, access, details)?;
        if let Some(r) = refresh {
            tokens::set_authorization_details(conn, r, details)?;
        }
    }
    agents::touch(conn, client_id, now)?;
    tx.append(NewEvent::new(
        EventKind::TokenIssued,
        Outcome::Ok,
        Some(client_id),
        serde_json::json!({
            "grant_id": grant.id,
            "via": via,
            "access_token_id": access.id(),
            "refresh_token_id": refresh.map(TokenHash::id),
            "scopes": scopes,
            "audience": audience,
            "expires_at": access_exp,
        }),
    ))?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn unavailable_page(e: StoreError) -> AuthorizeOutcome {
    tracing::warn!(error = %e, "authorization request failed");
    AuthorizeOutcome::ErrorPage {
        status: 503,
        title: "Temporarily unavailable".into(),
        message: "Gatehouse cannot record requests right now; nothing was changed. Try again in a moment.".into(),
    }
}

fn unreachable_page() -> ConsentProgress {
    ConsentProgress::ErrorPage {
        status: 500,
        title: "Internal error".into(),
        message: "This consent request cannot be read.".into(),
    }
}
