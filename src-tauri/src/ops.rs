//! The bodies of the IPC commands: plain async functions over [`Desktop`], so they run (and are
//! tested) without a webview. Each one parses its input, calls `gatehouse-core`, and maps the error;
//! no SQL and no business rules live here.

use gatehouse_core::StoreError;
use gatehouse_core::admin::{
    self, AgentOverview, ApprovalOverview, ExportFormat, KillSummary, RevokeSummary,
};
use gatehouse_core::approvals::{ApprovalView, Decision, Remember};
use gatehouse_core::audit::{self, Event, EventQuery};
use gatehouse_core::settings::{self, Settings};
use gatehouse_core::store::approvals::{self as approval_rows, ApprovalStatus};
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::store::rules::RuleRow;
use gatehouse_core::vault::VaultStatus;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{IpcError, IpcErrorCode};
use crate::state::{BY, Desktop};

/// The channel the audit log records for decisions made in the app's windows.
pub const WINDOW_CHANNEL: &str = "window";

/// The most rows one page or list may ask for.
const MAX_LIMIT: u32 = 1000;

/// What the header and the tray show about the running Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub issuer: String,
    pub data_dir: String,
    pub paused: bool,
    pub pending_count: u32,
    pub vault_sealed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub vault_reason: Option<String>,
}

/// The person's answer from the consent window or the Approvals view.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DecisionInput {
    pub approve: bool,
    /// A subset of the requested scopes; absent grants all of them.
    #[serde(default)]
    #[ts(optional)]
    pub scopes: Option<Vec<String>>,
    #[ts(type = "\"once\" | \"1h\" | \"8h\" | \"session\" | \"always\"")]
    pub remember: Remember,
    /// For an action: how many times its token may be used.
    #[serde(default)]
    #[ts(optional)]
    pub uses: Option<u32>,
    /// For an action that offers a broader pattern (an MCP tool call: the tool with any
    /// arguments): a remembered decision covers that pattern instead of exactly this request.
    #[serde(default)]
    #[ts(optional)]
    pub broader: Option<bool>,
}

/// `gatehouse://decided`: one approval decided (or expired), and through which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct DecidedNotice {
    pub id: String,
    #[ts(type = "\"pending\" | \"approved\" | \"denied\" | \"expired\"")]
    pub status: ApprovalStatus,
    pub channel: String,
}

fn check_limit(limit: u32) -> Result<usize, IpcError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(IpcError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    Ok(limit as usize)
}

pub async fn status(d: &Desktop) -> Result<AppStatus, IpcError> {
    let paused = admin::is_paused(&d.store).await?;
    let pending = d.authority.broker().pending().await?;
    let vault = d.vault_status().await;
    Ok(app_status(d, paused, pending.len(), vault))
}

/// Builds the status from what the caller already read (the live task reads these anyway).
pub fn app_status(d: &Desktop, paused: bool, pending: usize, vault: VaultStatus) -> AppStatus {
    let (vault_sealed, vault_reason) = match vault {
        VaultStatus::Unsealed => (false, None),
        VaultStatus::Sealed { reason } => (true, Some(reason)),
    };
    AppStatus {
        issuer: d.issuer.clone(),
        data_dir: d.data_dir.display().to_string(),
        paused,
        pending_count: u32::try_from(pending).unwrap_or(u32::MAX),
        vault_sealed,
        vault_reason,
    }
}

pub async fn approvals_pending(d: &Desktop) -> Result<Vec<ApprovalView>, IpcError> {
    Ok(d.authority.broker().pending().await?)
}

pub async fn approvals_history(d: &Desktop, limit: u32) -> Result<Vec<ApprovalOverview>, IpcError> {
    let limit = check_limit(limit)?;
    Ok(admin::approvals_overview(&d.store, limit, false).await?)
}

pub async fn approval_get(d: &Desktop, id: String) -> Result<ApprovalOverview, IpcError> {
    let lookup = id.clone();
    let row = d
        .store
        .read(move |c| approval_rows::get(c, &lookup).map_err(StoreError::from))
        .await?
        .ok_or_else(|| IpcError::not_found(format!("no approval has the id {id}")))?;
    let view = ApprovalView::from_row(&row)?;
    // The same projection `admin::approvals_overview` makes of each row it lists.
    Ok(ApprovalOverview {
        view,
        status: row.status,
        decided_after_ms: row.decided_at.map(|at| at - row.created_at),
        channel: row.channel,
        decided_at: row.decided_at,
        granted_scopes: row.granted_scopes,
        remember: row.remember,
    })
}

pub async fn approval_decide(
    d: &Desktop,
    id: String,
    decision: DecisionInput,
) -> Result<ApprovalStatus, IpcError> {
    decide(d, &id, decision_from(decision), WINDOW_CHANNEL).await
}

fn decision_from(input: DecisionInput) -> Decision {
    Decision {
        approve: input.approve,
        scopes: input.scopes,
        remember: input.remember,
        uses: input.uses,
        broader: input.broader.unwrap_or(false),
    }
}

/// Decides through the broker (first decision wins), for every channel the app has.
pub async fn decide(
    d: &Desktop,
    id: &str,
    decision: Decision,
    channel: &str,
) -> Result<ApprovalStatus, IpcError> {
    let row = d.authority.broker().decide(id, decision, channel).await?;
    Ok(row.status)
}

pub async fn agents_list(d: &Desktop) -> Result<Vec<AgentOverview>, IpcError> {
    let now = d.authority.clock().now();
    Ok(admin::agents_overview(&d.store, now).await?)
}

pub async fn agent_revoke(d: &Desktop, client_id: String) -> Result<RevokeSummary, IpcError> {
    Ok(admin::revoke_agent(&d.store, &client_id, BY).await?)
}

/// A page of the Activity view, newest first (keyset by `beforeId`).
pub async fn events_page(d: &Desktop, query: EventQuery) -> Result<Vec<Event>, IpcError> {
    check_event_query(&query)?;
    Ok(admin::events_query(&d.store, query).await?)
}

fn check_event_query(q: &EventQuery) -> Result<(), IpcError> {
    if q.limit > audit::MAX_PAGE {
        return Err(IpcError::invalid(format!(
            "limit must be at most {}, not {}",
            audit::MAX_PAGE,
            q.limit
        )));
    }
    let known = audit::event_kinds();
    if let Some(kind) = q.kinds.iter().find(|k| !known.contains(&k.as_str())) {
        return Err(IpcError::invalid(format!("{kind:?} is not an event kind")));
    }
    if let Some(outcome) = q.outcome.as_deref()
        && !["ok", "denied", "rejected"].contains(&outcome)
    {
        return Err(IpcError::invalid(format!(
            "outcome must be ok, denied or rejected, not {outcome:?}"
        )));
    }
    Ok(())
}

/// Every event kind's name, for the kind filter.
pub fn event_kinds() -> Vec<String> {
    audit::event_kinds()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Writes every event matching `query` to a new file in the Downloads folder (the home folder
/// when there is none).
pub async fn events_export(
    d: &Desktop,
    query: EventQuery,
    format: ExportFormat,
) -> Result<ExportResult, IpcError> {
    check_event_query(&query)?;
    let dir = dirs::download_dir()
        .or_else(dirs::home_dir)
        .ok_or_else(|| {
            IpcError::new(
                IpcErrorCode::Unavailable,
                "there is no Downloads folder to export to",
            )
        })?;
    let (path, file) = new_export_file(&dir, d.authority.clock().now(), format)?;
    let count = match admin::export_events(&d.store, query, format, file).await {
        Ok(n) => n,
        Err(e) => {
            // Leave no half-written export behind.
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
    };
    Ok(ExportResult {
        path: path.display().to_string(),
        count,
    })
}

/// `gatehouse-events-YYYYMMDD-HHMMSS.jsonl` (or `.csv`) in `dir`, never overwriting a file.
fn new_export_file(
    dir: &std::path::Path,
    now: gatehouse_core::Millis,
    format: ExportFormat,
) -> Result<(std::path::PathBuf, std::fs::File), IpcError> {
    let ext = match format {
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Csv => "csv",
    };
    let stamp = utc_stamp(now);
    for n in 1..100 {
        let name = match n {
            1 => format!("gatehouse-events-{stamp}.{ext}"),
            _ => format!("gatehouse-events-{stamp}-{n}.{ext}"),
        };
        let path = dir.join(name);
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(IpcError::new(
                    IpcErrorCode::Unavailable,
                    format!("cannot create the export in {}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(IpcError::new(
        IpcErrorCode::Conflict,
        "too many exports with the same time stamp",
    ))
}

/// `YYYYMMDD-HHMMSS` in UTC for a time in ms since the epoch (Howard Hinnant's civil-from-days).
fn utc_stamp(ms: gatehouse_core::Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where an export went and how many events it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ExportResult {
    pub path: String,
    #[ts(type = "number")]
    pub count: u64,
}

/// Suspends or resumes an agent; returns it with what it holds.
pub async fn agent_suspend(
    d: &Desktop,
    client_id: String,
    suspended: bool,
) -> Result<AgentOverview, IpcError> {
    admin::suspend_agent(&d.store, &client_id, suspended, BY).await?;
    agents_list(d)
        .await?
        .into_iter()
        .find(|a| a.agent.client_id == client_id)
        .ok_or_else(|| IpcError::not_found(format!("no agent has the client id {client_id}")))
}

/// Revokes one grant and its tokens; returns how many tokens died.
pub async fn grant_revoke(d: &Desktop, grant_id: i64) -> Result<usize, IpcError> {
    Ok(admin::revoke_grant(&d.store, grant_id, BY).await?)
}

/// Pauses every agent, revokes every grant and token, denies everything pending.
pub async fn kill_switch(d: &Desktop) -> Result<KillSummary, IpcError> {
    Ok(admin::kill_switch(&d.store, BY).await?)
}

pub async fn settings_get(d: &Desktop) -> Result<Settings, IpcError> {
    Ok(settings::load(&d.store).await?)
}

/// Saves the settings (validated and audited by the core) and applies what applies at once: the
/// approval timeout for new requests. The listen address applies at the next start; the
/// notification kinds and start-at-login are the shell's to apply (see `commands`).
pub async fn settings_set(d: &Desktop, new: Settings) -> Result<Settings, IpcError> {
    let saved = settings::save(&d.store, &new, BY).await?;
    d.authority
        .set_approval_ttl(std::time::Duration::from_secs(saved.approval_timeout_secs));
    Ok(saved)
}

pub async fn rules_list(d: &Desktop) -> Result<Vec<RuleRow>, IpcError> {
    Ok(admin::rules_list(&d.store).await?)
}

pub async fn rule_delete(d: &Desktop, id: i64) -> Result<RuleRow, IpcError> {
    Ok(admin::rule_delete(&d.store, id, BY).await?)
}

/// Pauses or resumes every agent; returns whether Gatehouse is paused now.
pub async fn pause_set(d: &Desktop, paused: bool) -> Result<bool, IpcError> {
    admin::set_paused(&d.store, paused, BY).await?;
    Ok(paused)
}

/// A vault connection as the Connections view shows it: its metadata, never its secret (which
/// only the OS keyring holds). The same fields the core's `ConnectionRow` serializes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ConnectionView {
    #[ts(type = "number")]
    pub id: i64,
    pub name: String,
    /// `api_key`, `bearer` or `oauth`.
    pub kind: String,
    pub provider: String,
    pub label: String,
    pub base_url: String,
    pub header_name: Option<String>,
    pub scopes: Vec<String>,
    /// `active`, `expired` or `disconnected`.
    pub status: String,
    /// The keyring entry's name (service `gatehouse`), e.g. `connection:github`.
    pub keyring_ref: String,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
    #[ts(type = "number | null")]
    pub last_used_at: Option<i64>,
}

impl From<ConnectionRow> for ConnectionView {
    fn from(r: ConnectionRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            kind: r.kind,
            provider: r.provider,
            label: r.label,
            base_url: r.base_url,
            header_name: r.header_name,
            scopes: r.scopes,
            status: r.status,
            keyring_ref: r.keyring_ref,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

pub async fn connections_list(d: &Desktop) -> Result<Vec<ConnectionView>, IpcError> {
    Ok(d.vault
        .list()
        .await?
        .into_iter()
        .map(ConnectionView::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gatehouse_core::authority::{
        AuthorizeOutcome, AuthorizeParams, ConsentProgress, TokenParams,
    };
    use gatehouse_core::oauth::ClientCredentials;
    use gatehouse_core::oauth::registration::RegistrationRequest;
    use gatehouse_server::instance::{Instance, InstanceOptions};

    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:8765/callback";
    /// RFC 7636 appendix B's verifier and its S256 challenge.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// A real instance (lock, store, server on 127.0.0.1:0) on a temp dir.
    async fn desktop() -> (tempfile::TempDir, Desktop) {
        let dir = tempfile::tempdir().expect("tempdir");
        let instance = Instance::start(InstanceOptions {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("addr"),
            approval_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .expect("instance starts");
        (dir, Desktop::new(instance))
    }

    async fn stop(d: Desktop) {
        d.take_instance().expect("running").shutdown().await;
    }

    /// Registers an agent and files a consent approval for `scope`; returns (client id, approval id).
    async fn consent_request(d: &Desktop, name: &str, scope: &str) -> (String, String) {
        let registered = d
            .authority
            .register(RegistrationRequest {
                redirect_uris: Some(vec![REDIRECT.into()]),
                token_endpoint_auth_method: Some("none".into()),
                grant_types: Some(vec!["authorization_code".into()]),
                client_name: Some(name.into()),
                ..Default::default()
            })
            .await
            .expect("registers");
        let outcome = d
            .authority
            .authorize(AuthorizeParams {
                client_id: Some(registered.client_id.clone()),
                redirect_uri: Some(REDIRECT.into()),
                response_type: Some("code".into()),
                scope: Some(scope.into()),
                state: Some("s".into()),
                code_challenge: Some(CHALLENGE.into()),
                code_challenge_method: Some("S256".into()),
                ..Default::default()
            })
            .await;
        let AuthorizeOutcome::AwaitConsent { approval_id } = outcome else {
            panic!("expected a consent prompt, got {outcome:?}");
        };
        (registered.client_id, approval_id)
    }

    /// An agent holding a live grant and token: consent approved in the window, code exchanged.
    async fn agent_with_grant(d: &Desktop, name: &str) -> (String, i64) {
        let (client_id, id) = consent_request(d, name, "mail:read").await;
        approval_decide(d, id.clone(), approve(None))
            .await
            .expect("approves");
        let ConsentProgress::Redirect(url) = d.authority.consent_progress(&id).await else {
            panic!("no redirect after approval");
        };
        let url = url::Url::parse(&url).expect("redirect url");
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code");
        d.authority
            .token(
                TokenParams {
                    grant_type: Some("authorization_code".into()),
                    code: Some(code),
                    redirect_uri: Some(REDIRECT.into()),
                    code_verifier: Some(VERIFIER.into()),
                    ..Default::default()
                },
                ClientCredentials::None {
                    client_id: client_id.clone(),
                },
            )
            .await
            .expect("exchanges the code");
        let agents = agents_list(d).await.expect("agents");
        let agent = agents
            .iter()
            .find(|a| a.agent.client_id == client_id)
            .expect("listed");
        assert!(!agent.live_tokens.is_empty(), "the exchange issued a token");
        (client_id, agent.grants[0].id)
    }

    fn approve(scopes: Option<&[&str]>) -> DecisionInput {
        DecisionInput {
            approve: true,
            scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            remember: Remember::Once,
            uses: None,
            broader: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_window_decision_is_final_and_audited_with_its_channel() {
        let (_dir, d) = desktop().await;
        let (_, id) = consent_request(&d, "Claude Code", "mail:read calendar:read").await;

        let pending = approvals_pending(&d).await.expect("pending");
        assert_eq!(
            pending.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
            [id.as_str()]
        );
        assert_eq!(pending[0].client_name.as_deref(), Some("Claude Code"));
        assert_eq!(status(&d).await.expect("status").pending_count, 1);

        let decided = approval_decide(&d, id.clone(), approve(Some(&["mail:read"])))
            .await
            .expect("decides");
        assert_eq!(decided, ApprovalStatus::Approved);

        let again = approval_decide(&d, id.clone(), approve(None)).await;
        assert_eq!(
            again.expect_err("second decision").code,
            IpcErrorCode::AlreadyDecided
        );

        let got = approval_get(&d, id.clone()).await.expect("get");
        assert_eq!(got.status, ApprovalStatus::Approved);
        assert_eq!(got.channel.as_deref(), Some(WINDOW_CHANNEL));
        assert_eq!(got.granted_scopes, Some(vec!["mail:read".to_owned()]));
        assert!(approvals_pending(&d).await.expect("pending").is_empty());

        let history = approvals_history(&d, 10).await.expect("history");
        assert_eq!(
            history.first().map(|a| a.view.id.as_str()),
            Some(id.as_str())
        );
        let events = events_page(
            &d,
            EventQuery {
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .expect("events");
        let approved = events
            .iter()
            .find(|e| e.kind == "consent.approved")
            .expect("consent.approved audited");
        assert_eq!(
            approved.detail["channel"], WINDOW_CHANNEL,
            "{}",
            approved.detail
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failures_carry_the_contract_codes() {
        let (_dir, d) = desktop().await;
        let (_, id) = consent_request(&d, "Agent", "mail:read").await;
        let code = |r: Result<ApprovalStatus, IpcError>| r.expect_err("fails").code;

        assert_eq!(
            code(approval_decide(&d, "nope".into(), approve(None)).await),
            IpcErrorCode::NotFound
        );
        assert_eq!(
            code(approval_decide(&d, id.clone(), approve(Some(&["mail:send"]))).await),
            IpcErrorCode::InvalidInput,
        );
        assert_eq!(
            approval_get(&d, "nope".into())
                .await
                .expect_err("unknown")
                .code,
            IpcErrorCode::NotFound
        );
        assert_eq!(
            approvals_history(&d, 0).await.expect_err("limit").code,
            IpcErrorCode::InvalidInput
        );
        assert_eq!(
            rule_delete(&d, 4242).await.expect_err("no rule").code,
            IpcErrorCode::NotFound
        );
        assert_eq!(
            agent_revoke(&d, "agt_nope".into())
                .await
                .expect_err("no agent")
                .code,
            IpcErrorCode::NotFound
        );
        // Nothing above decided the approval.
        assert_eq!(approvals_pending(&d).await.expect("pending").len(), 1);
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn revoking_an_agent_denies_its_pending_approval() {
        let (_dir, d) = desktop().await;
        let (client_id, id) = consent_request(&d, "Agent", "mail:read").await;
        let agents = agents_list(&d).await.expect("agents");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].agent.client_id, client_id);

        let summary = agent_revoke(&d, client_id.clone()).await.expect("revokes");
        assert_eq!(summary.pending_approvals_denied, 1);
        let got = approval_get(&d, id).await.expect("get");
        assert_eq!(got.status, ApprovalStatus::Denied);
        assert_eq!(
            agent_revoke(&d, client_id).await.expect_err("twice").code,
            IpcErrorCode::Conflict
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pausing_shows_in_the_status_and_the_log() {
        let (_dir, d) = desktop().await;
        let before = status(&d).await.expect("status");
        assert!(!before.paused, "a fresh data dir starts unpaused");
        assert_eq!(before.issuer, d.issuer);

        assert!(pause_set(&d, true).await.expect("pauses"));
        assert!(status(&d).await.expect("status").paused);
        let newest = events_page(
            &d,
            EventQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .expect("events");
        assert_eq!(newest[0].kind, "agents.paused");
        assert_eq!(newest[0].detail["by"], crate::state::BY);

        assert!(!pause_set(&d, false).await.expect("resumes"));
        assert!(!status(&d).await.expect("status").paused);
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn activity_pages_filter_and_refuse_unknown_kinds() {
        let (_dir, d) = desktop().await;
        let (client_id, _) = consent_request(&d, "Agent", "mail:read").await;
        consent_request(&d, "Other", "mail:read").await;
        let q = EventQuery {
            client_id: Some(client_id.clone()),
            kinds: vec!["consent.requested".into()],
            limit: 10,
            ..Default::default()
        };
        let page = events_page(&d, q).await.expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].client_id.as_deref(), Some(client_id.as_str()));

        // Keyset: the page before the newest event holds only older ones.
        let newest = events_page(
            &d,
            EventQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .expect("newest");
        let older = events_page(
            &d,
            EventQuery {
                before_id: Some(newest[0].id),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("older");
        assert!(!older.is_empty() && older.iter().all(|e| e.id < newest[0].id));

        let bad_kind = EventQuery {
            kinds: vec!["token.stolen".into()],
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            events_page(&d, bad_kind).await.expect_err("kind").code,
            IpcErrorCode::InvalidInput
        );
        let bad_outcome = EventQuery {
            outcome: Some("maybe".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            events_page(&d, bad_outcome)
                .await
                .expect_err("outcome")
                .code,
            IpcErrorCode::InvalidInput
        );
        assert!(event_kinds().iter().any(|k| k == "agent.revoked"));
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn suspend_revoke_grant_and_kill_switch() {
        let (_dir, d) = desktop().await;
        let (client_id, grant_id) = agent_with_grant(&d, "Agent").await;

        let suspended = agent_suspend(&d, client_id.clone(), true)
            .await
            .expect("suspends");
        assert!(suspended.agent.suspended_at.is_some());
        let resumed = agent_suspend(&d, client_id.clone(), false)
            .await
            .expect("resumes");
        assert!(resumed.agent.suspended_at.is_none());
        assert_eq!(
            agent_suspend(&d, "agt_nope".into(), true)
                .await
                .expect_err("unknown")
                .code,
            IpcErrorCode::NotFound
        );

        assert_eq!(
            grant_revoke(&d, grant_id).await.expect("revokes the grant"),
            1
        );
        assert_eq!(
            grant_revoke(&d, grant_id).await.expect_err("twice").code,
            IpcErrorCode::Conflict
        );
        assert_eq!(
            grant_revoke(&d, 999_999).await.expect_err("unknown").code,
            IpcErrorCode::NotFound
        );

        // A second agent with a grant and a pending request: the kill switch stops all of it.
        agent_with_grant(&d, "Second").await;
        let (_, pending_id) = consent_request(&d, "Third", "mail:read").await;
        let summary = kill_switch(&d).await.expect("kill switch");
        assert_eq!(
            (summary.grants, summary.tokens, summary.pending_denied),
            (1, 1, 1)
        );
        assert_eq!(summary.agents, 3, "agents stay registered");
        assert!(status(&d).await.expect("status").paused);
        assert_eq!(
            approval_get(&d, pending_id).await.expect("get").status,
            ApprovalStatus::Denied
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn export_writes_a_new_file_with_every_matching_event() {
        let (_dir, d) = desktop().await;
        let (client_id, _) = consent_request(&d, "Agent", "mail:read").await;
        let out = tempfile::tempdir().expect("tempdir");
        let (path, file) = new_export_file(out.path(), 1_767_225_600_000, ExportFormat::Jsonl)
            .expect("creates the file");
        assert!(
            path.ends_with("gatehouse-events-20260101-000000.jsonl"),
            "{}",
            path.display()
        );
        let q = EventQuery {
            client_id: Some(client_id.clone()),
            ..Default::default()
        };
        let n = admin::export_events(&d.store, q, ExportFormat::Jsonl, file)
            .await
            .expect("exports");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(text.lines().count() as u64, n);
        assert!(n >= 2, "registration and request: {text}");
        // The same second again: a new name, never an overwrite.
        let (second, _) =
            new_export_file(out.path(), 1_767_225_600_000, ExportFormat::Csv).expect("second file");
        assert!(second.ends_with("gatehouse-events-20260101-000000.csv"));
        let (third, _) = new_export_file(out.path(), 1_767_225_600_000, ExportFormat::Jsonl)
            .expect("third file");
        assert!(
            third.ends_with("gatehouse-events-20260101-000000-2.jsonl"),
            "{}",
            third.display()
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn settings_round_trip_and_apply_the_timeout() {
        let (_dir, d) = desktop().await;
        let defaults = settings_get(&d).await.expect("defaults");
        assert!(defaults.notify_consent && defaults.notify_action && defaults.notify_gateway);
        let wanted = Settings {
            approval_timeout_secs: 30,
            notify_gateway: false,
            listen: Some(" 127.0.0.1:9999 ".into()),
            ..defaults.clone()
        };
        let saved = settings_set(&d, wanted).await.expect("saves");
        assert_eq!(saved.listen.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(settings_get(&d).await.expect("reads"), saved);
        assert_eq!(
            d.authority.broker().ttl(),
            std::time::Duration::from_secs(30)
        );

        // A new request now expires after the new timeout.
        let (_, id) = consent_request(&d, "Agent", "mail:read").await;
        let view = approvals_pending(&d).await.expect("pending");
        let v = view.iter().find(|v| v.id == id).expect("pending");
        assert_eq!(v.expires_at - v.created_at, 30_000);

        let bad = Settings {
            listen: Some("0.0.0.0:80".into()),
            ..saved.clone()
        };
        assert_eq!(
            settings_set(&d, bad).await.expect_err("not loopback").code,
            IpcErrorCode::InvalidInput
        );
        let bad = Settings {
            approval_timeout_secs: 1,
            ..saved
        };
        assert_eq!(
            settings_set(&d, bad).await.expect_err("too short").code,
            IpcErrorCode::InvalidInput
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn connections_list_reads_metadata_without_the_keyring() {
        let (_dir, d) = desktop().await;
        // Listing reads SQLite only, so it works with the keyring sealed (as in this test).
        assert_eq!(connections_list(&d).await.expect("lists"), Vec::new());
        stop(d).await;
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400_000), "20000229-000000");
        assert_eq!(utc_stamp(1_767_225_599_999), "20251231-235959");
    }

    #[test]
    fn status_and_decisions_cross_in_camel_case() {
        let s = AppStatus {
            issuer: "http://127.0.0.1:1".into(),
            data_dir: "/d".into(),
            paused: false,
            pending_count: 2,
            vault_sealed: true,
            vault_reason: Some("locked".into()),
        };
        let v = serde_json::to_value(&s).expect("serializes");
        assert_eq!(v["dataDir"], "/d");
        assert_eq!(v["pendingCount"], 2);
        assert_eq!(v["vaultSealed"], true);
        assert_eq!(v["vaultReason"], "locked");

        let d: DecisionInput = serde_json::from_value(serde_json::json!({
            "approve": true, "scopes": ["a"], "remember": "8h", "uses": 3
        }))
        .expect("parses");
        assert_eq!(d.remember, Remember::EightHours);
        assert_eq!(d.uses, Some(3));
        let bad = serde_json::from_value::<DecisionInput>(serde_json::json!({
            "approve": true, "remember": "forever"
        }));
        assert!(bad.is_err());
    }
}
