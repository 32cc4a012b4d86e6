//! The bodies of the IPC commands: plain async functions over [`Desktop`], so they run (and are
//! tested) without a webview. Each one parses its input, calls `gatehouse-core`, and maps the error;
//! no SQL and no business rules live here.

use gatehouse_core::StoreError;
use gatehouse_core::admin::{self, AgentOverview, ApprovalOverview, RevokeSummary};
use gatehouse_core::approvals::{ApprovalView, Decision, Remember};
use gatehouse_core::audit::{Event, EventFilter};
use gatehouse_core::store::approvals::{self as approval_rows, ApprovalStatus};
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::store::rules::RuleRow;
use gatehouse_core::vault::VaultStatus;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::IpcError;
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
    let vault = d.vault.status().await;
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

pub async fn events_page(d: &Desktop, query: EventQueryInput) -> Result<Vec<Event>, IpcError> {
    let limit = check_limit(query.limit)?;
    let filter = EventFilter {
        client_id: query.client_id,
        before_id: query.before_id,
    };
    Ok(admin::events_page(&d.store, filter, limit).await?)
}

/// Placeholder until `audit::EventQuery` lands.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EventQueryInput {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub before_id: Option<i64>,
    pub limit: u32,
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

pub async fn connections_list(d: &Desktop) -> Result<Vec<ConnectionRow>, IpcError> {
    Ok(d.vault.list().await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gatehouse_core::authority::{AuthorizeOutcome, AuthorizeParams};
    use gatehouse_core::oauth::registration::RegistrationRequest;
    use gatehouse_server::instance::{Instance, InstanceOptions};

    use super::*;
    use crate::error::IpcErrorCode;

    const REDIRECT: &str = "http://127.0.0.1:8765/callback";
    /// RFC 7636's example S256 challenge: the tests never exchange the code.
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

    fn approve(scopes: Option<&[&str]>) -> DecisionInput {
        DecisionInput {
            approve: true,
            scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            remember: Remember::Once,
            uses: None,
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
            EventQueryInput {
                client_id: None,
                before_id: None,
                limit: 5,
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
            EventQueryInput {
                client_id: None,
                before_id: None,
                limit: 1,
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
