//! The approval broker: files decisions the person must make, takes the first decision from any
//! channel (terminal, jsonl, tray, notification, window), refuses later ones, and expires what
//! nobody decided in time. An expiry is a one-time denial and never remembered.
//!
//! There is deliberately no way to decide over HTTP: only in-process channels call [`Broker::decide`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::{Clock, Millis};
use crate::oauth::scope::is_subset;
use crate::store::approvals::{self as rows, ApprovalRow, ApprovalStatus, Decided};
use crate::store::consents::{self, NewConsent};
use crate::store::{Store, StoreError, WriteTx};

/// How long a consent is remembered: the same five values as a rule's lifetime, one type.
pub use crate::policy::Lifetime as Remember;

/// What the person is asked to consent to at `/authorize`, and what completing it needs.
/// The approval is bound to the SHA-256 of exactly this, serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Whether Gatehouse vouches for the name. Dynamically registered names are self-asserted.
    pub verified: bool,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub redirect_host: String,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: String,
    /// RFC 9396 `authorization_details`, as validated (absent for a plain consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
    /// One plain-language line per authorization detail, rendered when the request was filed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
    /// Warnings shown with the request (e.g. a recipient outside the person's own domains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The person's own domains when the request was filed: what the warnings were computed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_domains: Vec<String>,
}

/// A person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approve: bool,
    /// Fewer scopes than were asked for; `None` grants all of them.
    pub scopes: Option<Vec<String>>,
    pub remember: Remember,
    /// For an action: how many times its token may be used (`None`: one use for a token carrying
    /// authorization details, otherwise unlimited within its short life).
    pub uses: Option<u32>,
    /// For an action whose request offers a broader pattern ([`ActionRequest::broader`], e.g. an
    /// MCP tool with any arguments): a remembered decision covers that pattern instead of exactly
    /// the resources asked for. Ignored when nothing is remembered.
    pub broader: bool,
}

impl Decision {
    pub fn approve() -> Self {
        Self {
            approve: true,
            scopes: None,
            remember: Remember::Once,
            uses: None,
            broader: false,
        }
    }
    pub fn deny() -> Self {
        Self {
            approve: false,
            scopes: None,
            remember: Remember::Once,
            uses: None,
            broader: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no approval has the id {0}")]
    NotFound(String),
    #[error("this approval was already {}", .0.as_str())]
    AlreadyDecided(ApprovalStatus),
    #[error("this approval expired before it was decided")]
    Expired,
    #[error("cannot grant scopes that were not requested: {}", .0.join(" "))]
    ScopesNotRequested(Vec<String>),
    #[error("the stored request no longer matches what was shown; refusing to decide it")]
    Tampered,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the person is asked to approve when an agent wants to act (CIBA `/bc-authorize` or the
/// RFC 8628 device grant). Like [`ConsentRequest`], the approval is bound to the hash of exactly
/// this, serialized, so `summary` (rendered when the request is filed) is covered too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub client_id: String,
    pub client_name: Option<String>,
    pub verified: bool,
    /// `ciba` or `device`.
    pub via: String,
    /// CIBA's `binding_message`: a short text the agent also shows, so the person can match them.
    pub binding_message: Option<String>,
    /// The RFC 8628 `user_code` the agent displays.
    pub user_code: Option<String>,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    /// The RFC 9396 `authorization_details` array, as validated.
    pub authorization_details: Option<serde_json::Value>,
    /// One plain-language line per detail (or per scope), as shown to the person.
    pub summary: Vec<String>,
    /// Warnings shown with the request (e.g. a recipient outside the person's own domains).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// A resource pattern a remembered decision may cover instead of exactly `resources` (the
    /// person's choice, [`Decision::broader`]): for an MCP tool call, the tool with any arguments.
    /// Skipped when absent, so requests filed before it existed hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broader: Option<String>,
}

/// An approval as every channel presents it (the jsonl contract's fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApprovalView {
    pub id: String,
    pub kind: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub verified: bool,
    pub redirect_host: Option<String>,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub authorization_details: Option<serde_json::Value>,
    pub binding_message: Option<String>,
    /// For action approvals: `ciba` or `device`.
    pub via: Option<String>,
    /// For device-grant approvals: the code the agent displays.
    pub user_code: Option<String>,
    /// Plain-language lines describing what is asked (empty for consent, whose scopes say it).
    pub summary: Vec<String>,
    pub warnings: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: Millis,
}

impl ApprovalView {
    pub fn from_row(row: &ApprovalRow) -> Result<Self, StoreError> {
        let corrupt =
            |e: serde_json::Error| StoreError::Corrupt(format!("approval {}: {e}", row.id));
        if row.kind == "action" {
            let req: ActionRequest =
                serde_json::from_value(row.request.clone()).map_err(corrupt)?;
            return Ok(ApprovalView {
                id: row.id.clone(),
                kind: row.kind.clone(),
                client_id: row.client_id.clone(),
                client_name: req.client_name,
                verified: req.verified,
                redirect_host: None,
                scopes: req.scopes,
                resources: req.resources,
                authorization_details: req.authorization_details,
                binding_message: req.binding_message,
                via: Some(req.via),
                user_code: req.user_code,
                summary: req.summary,
                warnings: req.warnings,
                created_at: row.created_at,
                expires_at: row.expires_at,
            });
        }
        let req: ConsentRequest = serde_json::from_value(row.request.clone()).map_err(corrupt)?;
        Ok(ApprovalView {
            id: row.id.clone(),
            kind: row.kind.clone(),
            client_id: row.client_id.clone(),
            client_name: req.client_name,
            verified: req.verified,
            redirect_host: Some(req.redirect_host),
            scopes: req.scopes,
            resources: req.resources,
            authorization_details: req.authorization_details,
            binding_message: None,
            via: None,
            user_code: None,
            summary: req.summary,
            warnings: req.warnings,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// What approvers hear about.
// A notice per approval, a handful a minute: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalNotice {
    Requested(ApprovalView),
    Decided {
        id: String,
        status: ApprovalStatus,
        channel: String,
    },
}

/// Files and decides approvals.
#[derive(Debug, Clone)]
pub struct Broker {
    store: Store,
    clock: Arc<dyn Clock>,
    /// How long a new approval waits, in milliseconds. Shared by every clone, so a changed
    /// setting applies to the next approval filed through any of them.
    ttl_ms: Arc<AtomicU64>,
    session_id: Arc<str>,
    /// The authorization server's issuer, when known: an approved consent for the resource
    /// `{issuer}/mcp/{name}` pins that MCP server's new tools ([`crate::mcp::pin_on_consent`]).
    issuer: Option<Arc<str>>,
    notices: broadcast::Sender<ApprovalNotice>,
    /// One waiter per request someone waits on: it learns the final status once decided.
    waiters: Arc<std::sync::Mutex<HashMap<String, watch::Sender<Option<ApprovalStatus>>>>>,
}

pub(crate) fn request_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Broker {
    pub fn new(store: Store, clock: Arc<dyn Clock>, ttl: Duration, session_id: Arc<str>) -> Self {
        let (notices, _) = broadcast::channel(1024);
        Self {
            store,
            clock,
            ttl_ms: Arc::new(AtomicU64::new(ttl.as_millis() as u64)),
            session_id,
            issuer: None,
            notices,
            waiters: Arc::default(),
        }
    }

    /// Sets the issuer (see [`Broker`]'s `issuer`): the authority does, with its own.
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Wakes whoever waits on `id` with its final status.
    fn wake(&self, id: &str, status: ApprovalStatus) {
        if let Ok(mut w) = self.waiters.lock()
            && let Some(tx) = w.remove(id)
        {
            let _ = tx.send(Some(status));
        }
    }

    /// Waits until the approval `id` is decided (or expires), at most `timeout`. Returns its
    /// status then: still `Pending` if the time ran out first.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<ApprovalStatus, StoreError> {
        let mut rx = match self.waiters.lock() {
            Ok(mut w) => w
                .entry(id.to_owned())
                .or_insert_with(|| watch::channel(None).0)
                .subscribe(),
            Err(_) => return Err(StoreError::Closed),
        };
        // Registered first, read second: a decision in between is not missed.
        let lookup = id.to_owned();
        let row = self
            .store
            .read(move |c| rows::get(c, &lookup).map_err(StoreError::from))
            .await?;
        let Some(row) = row else {
            return Ok(ApprovalStatus::Pending);
        };
        if row.status != ApprovalStatus::Pending {
            return Ok(row.status);
        }
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        Ok(match waited {
            Ok(Ok(status)) => status.unwrap_or(ApprovalStatus::Pending),
            _ => ApprovalStatus::Pending,
        })
    }

    /// Files an action approval (CIBA or device grant) inside the caller's transaction, expiring
    /// after `ttl` (at most the broker's). Call [`Broker::announce`] after the commit if the
    /// person must decide.
    pub fn file_action(
        &self,
        tx: &mut WriteTx<'_>,
        id: &str,
        req: &ActionRequest,
        ttl: Duration,
    ) -> Result<ApprovalRow, StoreError> {
        let row = insert_pending(tx, id, "action", &req.client_id, req, ttl.min(self.ttl()))?;
        tx.append(NewEvent::new(
            EventKind::ActionRequested,
            Outcome::Ok,
            Some(&req.client_id),
            serde_json::json!({
                "approval_id": id,
                "via": req.via,
                "client_name": req.client_name,
                "binding_message": req.binding_message,
                "user_code": req.user_code,
                "scopes": req.scopes,
                "resources": req.resources,
                "detail_types": detail_types(req.authorization_details.as_ref()),
                "warnings": req.warnings,
                "expires_at": row.expires_at,
            }),
        ))?;
        Ok(row)
    }

    /// Decides an approval inside the caller's transaction, for decisions made by Gatehouse
    /// itself (a policy rule). Call [`Broker::notify_decided`] after the commit.
    pub(crate) fn decide_in_tx(
        &self,
        tx: &mut WriteTx<'_>,
        id: &str,
        decision: &Decision,
        channel: &str,
    ) -> Result<Result<ApprovalRow, DecideError>, StoreError> {
        decide_in(
            tx,
            id,
            decision,
            channel,
            &self.session_id,
            self.issuer.as_deref(),
        )
    }

    /// Tells approvers and waiters that `id` was decided.
    pub fn notify_decided(&self, id: &str, status: ApprovalStatus, channel: &str) {
        self.wake(id, status);
        let _ = self.notices.send(ApprovalNotice::Decided {
            id: id.to_owned(),
            status,
            channel: channel.to_owned(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalNotice> {
        self.notices.subscribe()
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    /// Changes how long approvals filed from now on wait (those pending keep their expiry).
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    /// Files a consent approval inside the caller's transaction. Call [`Broker::announce`] after
    /// the transaction commits.
    pub(crate) fn file_consent(
        &self,
        tx: &mut WriteTx<'_>,
        id: &str,
        req: &ConsentRequest,
    ) -> Result<ApprovalRow, StoreError> {
        let row = insert_pending(tx, id, "consent", &req.client_id, req, self.ttl())?;
        tx.append(NewEvent::new(
            EventKind::ConsentRequested,
            Outcome::Ok,
            Some(&req.client_id),
            serde_json::json!({
                "approval_id": id,
                "client_name": req.client_name,
                "redirect_host": req.redirect_host,
                "scopes": req.scopes,
                "resources": req.resources,
                "summary": req.summary,
                "warnings": req.warnings,
                "expires_at": row.expires_at,
            }),
        ))?;
        Ok(row)
    }

    /// Tells approvers about a newly filed approval.
    pub fn announce(&self, row: &ApprovalRow) {
        match ApprovalView::from_row(row) {
            Ok(view) => {
                let _ = self.notices.send(ApprovalNotice::Requested(view));
            }
            Err(e) => tracing::error!(error = %e, "cannot present approval"),
        }
    }

    /// Pending approvals, oldest first (for approvers starting up, and for restarts).
    pub async fn pending(&self) -> Result<Vec<ApprovalView>, StoreError> {
        let rows = self
            .store
            .read(|c| rows::pending(c).map_err(StoreError::from))
            .await?;
        // One unreadable row must not hide every other pending approval from the person.
        Ok(rows
            .iter()
            .filter_map(|row| match ApprovalView::from_row(row) {
                Ok(view) => Some(view),
                Err(e) => {
                    tracing::error!(error = %e, "skipping an approval that cannot be presented");
                    None
                }
            })
            .collect())
    }

    /// Decides an approval. The first decision wins; later ones get [`DecideError::AlreadyDecided`].
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        channel: &str,
    ) -> Result<ApprovalRow, DecideError> {
        let id = id.to_owned();
        let id_for_notice = id.clone();
        let channel_owned = channel.to_owned();
        let session_id = self.session_id.clone();
        let issuer = self.issuer.clone();
        let result = self
            .store
            .write(
                move |tx| -> Result<Result<ApprovalRow, DecideError>, StoreError> {
                    decide_in(
                        tx,
                        &id,
                        &decision,
                        &channel_owned,
                        &session_id,
                        issuer.as_deref(),
                    )
                },
            )
            .await?;
        match &result {
            Ok(row) => {
                self.wake(&row.id, row.status);
                let _ = self.notices.send(ApprovalNotice::Decided {
                    id: row.id.clone(),
                    status: row.status,
                    channel: channel.to_owned(),
                });
            }
            Err(DecideError::Expired) => {
                self.wake(&id_for_notice, ApprovalStatus::Expired);
                let _ = self.notices.send(ApprovalNotice::Decided {
                    id: id_for_notice,
                    status: ApprovalStatus::Expired,
                    channel: "timeout".into(),
                });
            }
            Err(_) => {}
        }
        result
    }

    /// Expires every pending approval whose time is up; returns how many.
    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self
            .store
            .read(move |c| rows::due(c, now).map_err(StoreError::from))
            .await?;
        let mut n = 0;
        for row in due {
            if self.expire(&row.id).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Expires one approval if it is still pending and its time is up.
    pub async fn expire(&self, id: &str) -> Result<bool, StoreError> {
        let id_owned = id.to_owned();
        let expired = self
            .store
            .write(move |tx| {
                let Some(row) = rows::get(tx.conn(), &id_owned)? else {
                    return Ok(false);
                };
                if row.status != ApprovalStatus::Pending || tx.now() < row.expires_at {
                    return Ok(false);
                }
                expire_in(tx, &row)
            })
            .await?;
        if expired {
            self.wake(id, ApprovalStatus::Expired);
            let _ = self.notices.send(ApprovalNotice::Decided {
                id: id.to_owned(),
                status: ApprovalStatus::Expired,
                channel: "timeout".into(),
            });
        }
        Ok(expired)
    }
}

pub(crate) fn expire_in(tx: &mut WriteTx<'_>, row: &ApprovalRow) -> Result<bool, StoreError> {
    let now = tx.now();
    let d = Decided {
        status: ApprovalStatus::Expired,
        channel: "timeout",
        granted_scopes: None,
        remember: None,
    };
    if !rows::decide(tx.conn(), &row.id, &d, now)? {
        return Ok(false);
    }
    let kind = if row.kind == "action" {
        EventKind::ActionExpired
    } else {
        EventKind::ConsentExpired
    };
    tx.append(NewEvent::new(
        kind,
        Outcome::Denied,
        Some(&row.client_id),
        serde_json::json!({ "approval_id": row.id, "waited_ms": now - row.created_at }),
    ))?;
    Ok(true)
}

fn decide_in(
    tx: &mut WriteTx<'_>,
    id: &str,
    decision: &Decision,
    channel: &str,
    session_id: &str,
    issuer: Option<&str>,
) -> Result<Result<ApprovalRow, DecideError>, StoreError> {
    let now = tx.now();
    let Some(mut row) = rows::get(tx.conn(), id)? else {
        return Ok(Err(DecideError::NotFound(id.to_owned())));
    };
    if row.status != ApprovalStatus::Pending {
        return Ok(Err(DecideError::AlreadyDecided(row.status)));
    }
    if now >= row.expires_at {
        expire_in(tx, &row)?;
        return Ok(Err(DecideError::Expired));
    }
    let text = rows::request_text(tx.conn(), id)?.unwrap_or_default();
    if !crate::secret::hashes_equal(&request_hash(&text), &row.request_hash) {
        return Ok(Err(DecideError::Tampered));
    }
    if row.kind == "action" {
        return decide_action_in(tx, row, &text, decision, channel, session_id);
    }
    let req: ConsentRequest =
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let took_ms = now - row.created_at;
    if !decision.approve {
        let d = Decided {
            status: ApprovalStatus::Denied,
            channel,
            granted_scopes: None,
            remember: None,
        };
        rows::decide(tx.conn(), id, &d, now)?;
        tx.append(NewEvent::new(
            EventKind::ConsentDenied,
            Outcome::Denied,
            Some(&row.client_id),
            serde_json::json!({ "approval_id": id, "channel": channel, "decision_ms": took_ms }),
        ))?;
        row.status = ApprovalStatus::Denied;
        row.channel = Some(channel.to_owned());
        row.decided_at = Some(now);
        return Ok(Ok(row));
    }
    let granted = match granted_scopes(decision, &req.scopes) {
        Ok(granted) => granted,
        Err(e) => return Ok(Err(e)),
    };
    let remember = decision.remember;
    let d = Decided {
        status: ApprovalStatus::Approved,
        channel,
        granted_scopes: Some(&granted),
        remember: Some(remember.as_str()),
    };
    rows::decide(tx.conn(), id, &d, now)?;
    if remember != Remember::Once {
        consents::insert(
            tx.conn(),
            &NewConsent {
                client_id: &req.client_id,
                redirect_host: &req.redirect_host,
                scopes: &granted,
                resources: &req.resources,
                remember: remember.as_str(),
                session_id: (remember == Remember::Session).then_some(session_id),
                expires_at: remember.expires_at(now),
            },
            now,
        )?;
    }
    tx.append(NewEvent::new(
        EventKind::ConsentApproved,
        Outcome::Ok,
        Some(&row.client_id),
        serde_json::json!({
            "approval_id": id,
            "channel": channel,
            "decision_ms": took_ms,
            "scopes_requested": req.scopes,
            "scopes_granted": granted,
            "resources": req.resources,
            "remember": remember.as_str(),
        }),
    ))?;
    // Consenting to an MCP server's resource approves the tools it offers now: their definitions
    // are pinned, so a later change holds the tool until the person sees and re-approves it.
    crate::mcp::pin_on_consent(tx, issuer, &req.resources, &req.client_id)?;
    row.status = ApprovalStatus::Approved;
    row.channel = Some(channel.to_owned());
    row.decided_at = Some(now);
    row.granted_scopes = Some(granted);
    row.remember = Some(remember.as_str().to_owned());
    Ok(Ok(row))
}

/// The scopes an approval grants: the decision's, or all requested; never one not requested.
fn granted_scopes(decision: &Decision, requested: &[String]) -> Result<Vec<String>, DecideError> {
    let granted = decision
        .scopes
        .clone()
        .unwrap_or_else(|| requested.to_vec());
    if !is_subset(&granted, requested) {
        let extra = granted
            .into_iter()
            .filter(|s| !requested.contains(s))
            .collect();
        return Err(DecideError::ScopesNotRequested(extra));
    }
    Ok(granted)
}

/// Inserts a pending approval of `kind` for `req`, bound to the SHA-256 of `req` serialized,
/// expiring `ttl` from now.
fn insert_pending<R: Serialize>(
    tx: &mut WriteTx<'_>,
    id: &str,
    kind: &str,
    client_id: &str,
    req: &R,
    ttl: Duration,
) -> Result<ApprovalRow, StoreError> {
    let now = tx.now();
    let text = serde_json::to_string(req).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let row = ApprovalRow {
        id: id.to_owned(),
        kind: kind.into(),
        client_id: client_id.to_owned(),
        request: serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        request_hash: request_hash(&text),
        status: ApprovalStatus::Pending,
        created_at: now,
        expires_at: now + ttl.as_millis() as i64,
        decided_at: None,
        channel: None,
        granted_scopes: None,
        remember: None,
        completed_at: None,
    };
    rows::insert(tx.conn(), &row, &text).map_err(StoreError::classify)?;
    Ok(row)
}

/// The `type` of each RFC 9396 detail, in order.
pub(crate) fn detail_types(details: Option<&serde_json::Value>) -> Vec<String> {
    details
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.get("type").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What the policy sees of an action request (and what a remembered decision covers): the detail
/// types (or the scopes, without details) and the resources plus every detail's `locations`.
pub(crate) fn action_targets(req: &ActionRequest) -> (Vec<String>, Vec<String>) {
    let mut actions = detail_types(req.authorization_details.as_ref());
    if actions.is_empty() {
        actions = req.scopes.clone();
    }
    let mut resources = req.resources.clone();
    for d in req
        .authorization_details
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        for loc in d
            .get("locations")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
        {
            if !resources.iter().any(|r| r == loc) {
                resources.push(loc.to_owned());
            }
        }
    }
    actions.dedup();
    (actions, resources)
}

fn decide_action_in(
    tx: &mut WriteTx<'_>,
    mut row: ApprovalRow,
    text: &str,
    decision: &Decision,
    channel: &str,
    session_id: &str,
) -> Result<Result<ApprovalRow, DecideError>, StoreError> {
    let now = tx.now();
    let id = row.id.clone();
    let req: ActionRequest =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let took_ms = now - row.created_at;
    let granted = if decision.approve {
        match granted_scopes(decision, &req.scopes) {
            Ok(granted) => Some(granted),
            Err(e) => return Ok(Err(e)),
        }
    } else {
        None
    };
    let status = if decision.approve {
        ApprovalStatus::Approved
    } else {
        ApprovalStatus::Denied
    };
    let remember = decision.remember;
    let d = Decided {
        status,
        channel,
        granted_scopes: granted.as_deref(),
        remember: Some(remember.as_str()),
    };
    rows::decide(tx.conn(), &id, &d, now)?;
    if decision.approve {
        crate::store::backchannel::set_granted_uses(tx.conn(), &id, decision.uses)?;
    }
    // "Remember" turns the decision into policy rules, one per (action, resource) it covered.
    let mut rule_ids = Vec::new();
    if remember != Remember::Once {
        let (actions, resources) = action_targets(&req);
        // The person chose to remember the broader pattern the request offered (e.g. the tool
        // with any arguments): the rules cover it instead of the exact resources.
        let resources = match (&req.broader, decision.broader) {
            (Some(pattern), true) => vec![pattern.clone()],
            _ => resources,
        };
        let resources = if resources.is_empty() {
            vec!["*".to_owned()]
        } else {
            resources
        };
        let effect = if decision.approve {
            crate::policy::Effect::Allow
        } else {
            crate::policy::Effect::Deny
        };
        for action in actions
            .iter()
            .map(String::as_str)
            .chain(actions.is_empty().then_some("*"))
        {
            for resource in &resources {
                let spec = crate::policy::RuleSpec {
                    agent: req.client_id.clone(),
                    action: action.to_owned(),
                    resource: resource.clone(),
                    effect,
                    lifetime: remember,
                };
                match crate::policy::create_rule(tx, &spec, Some(session_id), &id)? {
                    Ok(rule) => rule_ids.push(rule.id),
                    Err(e) => {
                        tracing::warn!(error = %e, "a remembered decision could not become a rule")
                    }
                }
            }
        }
    }
    let (kind, outcome) = if decision.approve {
        (EventKind::ActionApproved, Outcome::Ok)
    } else {
        (EventKind::ActionDenied, Outcome::Denied)
    };
    tx.append(NewEvent::new(
        kind,
        outcome,
        Some(&row.client_id),
        serde_json::json!({
            "approval_id": id,
            "via": req.via,
            "channel": channel,
            "decision_ms": took_ms,
            "scopes_requested": req.scopes,
            "scopes_granted": granted,
            "resources": req.resources,
            "detail_types": detail_types(req.authorization_details.as_ref()),
            "remember": remember.as_str(),
            "uses": decision.uses,
            "rules_created": rule_ids,
        }),
    ))?;
    row.status = status;
    row.channel = Some(channel.to_owned());
    row.decided_at = Some(now);
    row.granted_scopes = granted;
    row.remember = Some(remember.as_str().to_owned());
    Ok(Ok(row))
}
