//! What the desktop app does to agents and grants, on a real SQLite file and a manual clock:
//! suspending and resuming an agent, revoking one grant, the kill switch, settings (and the
//! approval timeout they change at runtime).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Client, Env, T0, approval_id, authorize, consent_and_exchange, is_active, query, refresh,
    register,
};
use gatehouse_core::admin::{self, AdminError, KillSummary};
use gatehouse_core::approvals::Decision;
use gatehouse_core::authority::{AuthorizeOutcome, SUSPENDED_MESSAGE};
use gatehouse_core::backchannel::BackchannelParams;
use gatehouse_core::gateway::Refusal;
use gatehouse_core::oauth::ErrorCode;
use gatehouse_core::oauth::registration::{CIBA_GRANT, RegistrationRequest};
use gatehouse_core::settings::{self, Settings, SettingsError};
use gatehouse_core::store::approvals::ApprovalStatus;

async fn kinds_of(env: &Env, client_id: Option<&str>) -> Vec<String> {
    let q = gatehouse_core::audit::EventQuery {
        client_id: client_id.map(str::to_owned),
        limit: 1000,
        ..Default::default()
    };
    let mut kinds: Vec<String> = admin::events_query(&env.store, q)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    kinds.reverse();
    kinds
}

async fn status_of(env: &Env, id: &str) -> ApprovalStatus {
    let id = id.to_owned();
    env.store
        .read(move |c| {
            gatehouse_core::store::approvals::get(c, &id)
                .map(|r| r.unwrap().status)
                .map_err(gatehouse_core::StoreError::from)
        })
        .await
        .unwrap()
}

async fn ciba_client(env: &Env) -> Client {
    let r = env
        .authority
        .register(RegistrationRequest {
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            grant_types: Some(vec![CIBA_GRANT.into()]),
            client_name: Some("ciba agent".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    Client {
        client_id: r.client_id,
        secret: r.client_secret.unwrap().expose().to_owned(),
    }
}

#[tokio::test]
async fn a_suspended_agent_gets_nothing_new_and_its_tokens_are_inactive_until_resumed() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "Mail helper").await;
    let other = register(a, "Other").await;
    let tokens = consent_and_exchange(a, &c, "mail:read", Decision::approve()).await;
    let access = tokens.access_token.expose().to_owned();
    let refresh_token = tokens.refresh_token.unwrap().expose().to_owned();
    let other_tokens = consent_and_exchange(a, &other, "mail:read", Decision::approve()).await;
    // A consent still waiting when the person suspends the agent is denied.
    let waiting = approval_id(&authorize(a, &c, "mail:send").await);

    env.advance(Duration::from_secs(1));
    let agent = admin::suspend_agent(&env.store, &c.client_id, true, "test")
        .await
        .unwrap();
    assert_eq!(agent.suspended_at, Some(T0 + 1000));
    assert_eq!(status_of(&env, &waiting).await, ApprovalStatus::Denied);

    // Its tokens are inactive (introspection and the gateway); the other agent's are not.
    assert!(!is_active(a, &c, &access).await);
    assert!(is_active(a, &other, other_tokens.access_token.expose()).await);
    match a.authenticate_resource_call(&access).await {
        Err(Refusal::Denied(m)) => assert_eq!(m, SUSPENDED_MESSAGE),
        other => panic!("the gateway must refuse a suspended agent's token: {other:?}"),
    }
    // No new code, token or approval.
    match authorize(a, &c, "mail:read").await.outcome {
        AuthorizeOutcome::Redirect(url) => {
            let q = query(&url);
            assert_eq!(q["error"], "access_denied");
            assert!(q["error_description"].contains("suspended"), "{q:?}");
        }
        other => panic!("expected an access_denied redirect, got {other:?}"),
    }
    let err = refresh(a, &c, &refresh_token).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(err.description.contains("suspended"));

    // Suspending again changes nothing and writes nothing.
    let before = kinds_of(&env, Some(&c.client_id)).await.len();
    admin::suspend_agent(&env.store, &c.client_id, true, "test")
        .await
        .unwrap();
    assert_eq!(kinds_of(&env, Some(&c.client_id)).await.len(), before);

    // Resumed: the same tokens work again.
    let agent = admin::suspend_agent(&env.store, &c.client_id, false, "test")
        .await
        .unwrap();
    assert_eq!(agent.suspended_at, None);
    assert!(is_active(a, &c, &access).await);
    assert!(a.authenticate_resource_call(&access).await.is_ok());
    refresh(a, &c, &refresh_token).await.unwrap();

    let kinds = kinds_of(&env, Some(&c.client_id)).await;
    let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap();
    assert!(pos("consent.denied") < pos("agent.suspended"));
    assert!(pos("agent.suspended") < pos("agent.resumed"));

    assert!(matches!(
        admin::suspend_agent(&env.store, "agt_nobody", true, "test").await,
        Err(AdminError::UnknownAgent(_))
    ));
    admin::revoke_agent(&env.store, &other.client_id, "test")
        .await
        .unwrap();
    assert!(matches!(
        admin::suspend_agent(&env.store, &other.client_id, true, "test").await,
        Err(AdminError::AlreadyRevoked(_))
    ));
    let v = admin::verify_audit(&env.store).await.unwrap();
    assert!(v.first_bad.is_none());
}

#[tokio::test]
async fn a_suspended_agent_cannot_file_ciba_or_device_requests() {
    let env = Env::new();
    let c = ciba_client(&env).await;
    admin::suspend_agent(&env.store, &c.client_id, true, "test")
        .await
        .unwrap();
    let ask = BackchannelParams {
        login_hint: Some("me".into()),
        scope: Some("deploy".into()),
        ..Default::default()
    };
    let err = env
        .authority
        .bc_authorize(ask.clone(), c.creds())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(err.description.contains("suspended"));
    let pending = env.authority.broker().pending().await.unwrap();
    assert!(pending.is_empty(), "no approval was filed: {pending:?}");

    admin::suspend_agent(&env.store, &c.client_id, false, "test")
        .await
        .unwrap();
    env.authority.bc_authorize(ask, c.creds()).await.unwrap();
    assert_eq!(env.authority.broker().pending().await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoking_one_grant_kills_its_tokens_and_keeps_the_rest() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "Mail helper").await;
    let first = consent_and_exchange(a, &c, "mail:read", Decision::approve()).await;
    let second = consent_and_exchange(a, &c, "mail:send", Decision::approve()).await;
    let overview =
        admin::agents_overview(&env.store, gatehouse_core::Clock::now(env.clock.as_ref()))
            .await
            .unwrap();
    let grants = &overview[0].grants;
    assert_eq!(grants.len(), 2);
    let first_grant = grants.iter().find(|g| g.scopes == ["mail:read"]).unwrap();

    let killed = admin::revoke_grant(&env.store, first_grant.id, "test")
        .await
        .unwrap();
    assert_eq!(killed, 2, "the access and the refresh token");
    assert!(!is_active(a, &c, first.access_token.expose()).await);
    assert!(is_active(a, &c, second.access_token.expose()).await);
    let err = refresh(a, &c, first.refresh_token.unwrap().expose())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);

    assert!(matches!(
        admin::revoke_grant(&env.store, first_grant.id, "test").await,
        Err(AdminError::GrantAlreadyRevoked(_))
    ));
    assert!(matches!(
        admin::revoke_grant(&env.store, 9999, "test").await,
        Err(AdminError::UnknownGrant(9999))
    ));
    let q = gatehouse_core::audit::EventQuery {
        kinds: vec!["grant.revoked".into()],
        ..Default::default()
    };
    let events = admin::events_query(&env.store, q).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(c.client_id.as_str()));
    assert_eq!(events[0].detail["grant_id"], first_grant.id);
    assert_eq!(events[0].detail["tokens_revoked"], 2);
}

#[tokio::test]
async fn the_kill_switch_pauses_revokes_everything_and_denies_what_waits_in_one_go() {
    let env = Env::new();
    let a = &env.authority;
    let one = register(a, "One").await;
    let two = register(a, "Two").await;
    let t1 = consent_and_exchange(
        a,
        &one,
        "mail:read",
        common::approve_remembering(gatehouse_core::approvals::Remember::Always),
    )
    .await;
    let t2 = consent_and_exchange(a, &two, "files:read", Decision::approve()).await;
    let waiting = approval_id(&authorize(a, &two, "files:write").await);
    let ciba = ciba_client(&env).await;
    let ask = BackchannelParams {
        login_hint: Some("me".into()),
        scope: Some("deploy".into()),
        ..Default::default()
    };
    a.bc_authorize(ask, ciba.creds()).await.unwrap();

    let summary = admin::kill_switch(&env.store, "test").await.unwrap();
    assert_eq!(
        summary,
        KillSummary {
            agents: 3,
            grants: 2,
            tokens: 4,
            pending_denied: 2,
        }
    );
    assert!(admin::is_paused(&env.store).await.unwrap());
    assert_eq!(status_of(&env, &waiting).await, ApprovalStatus::Denied);
    assert!(a.broker().pending().await.unwrap().is_empty());
    // Agents stay registered; their tokens stay dead after resuming, and what was remembered is
    // forgotten: the next authorization asks the person again.
    admin::set_paused(&env.store, false, "test").await.unwrap();
    let asks = authorize(a, &one, "mail:read").await;
    approval_id(&asks);
    assert!(!is_active(a, &one, t1.access_token.expose()).await);
    assert!(!is_active(a, &two, t2.access_token.expose()).await);
    let overview =
        admin::agents_overview(&env.store, gatehouse_core::Clock::now(env.clock.as_ref()))
            .await
            .unwrap();
    assert_eq!(overview.len(), 3);
    assert!(overview.iter().all(|o| o.agent.revoked_at.is_none()));
    assert!(overview.iter().all(|o| o.live_tokens.is_empty()));
    assert!(
        overview
            .iter()
            .flat_map(|o| &o.grants)
            .all(|g| g.revoked_at.is_some())
    );

    let kinds = kinds_of(&env, None).await;
    let tail: Vec<&str> = kinds[kinds.len() - 6..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "agents.paused",
            "consent.denied",
            "action.denied",
            "kill_switch.pulled",
            "agents.resumed",
            "consent.requested",
        ]
    );
    // Pulled again (after the resume): it pauses again; only the consent asked since is left.
    let again = admin::kill_switch(&env.store, "test").await.unwrap();
    assert_eq!(
        (again.grants, again.tokens, again.pending_denied),
        (0, 0, 1)
    );
    let kinds = kinds_of(&env, None).await;
    assert_eq!(kinds.iter().filter(|k| *k == "agents.paused").count(), 2);
    assert!(
        admin::verify_audit(&env.store)
            .await
            .unwrap()
            .first_bad
            .is_none()
    );
}

#[tokio::test]
async fn settings_default_validate_audit_and_the_timeout_applies_without_restart() {
    let env = Env::new();
    let defaults = settings::load(&env.store).await.unwrap();
    assert_eq!(defaults, Settings::default());
    assert_eq!(defaults.approval_timeout_secs, 120);
    assert!(defaults.notify_consent && defaults.notify_action && defaults.notify_gateway);
    assert_eq!(defaults.listen, None);
    assert!(!defaults.start_at_login);

    for bad in [
        Settings {
            approval_timeout_secs: 9,
            ..Settings::default()
        },
        Settings {
            approval_timeout_secs: 3601,
            ..Settings::default()
        },
        Settings {
            listen: Some("0.0.0.0:8737".into()),
            ..Settings::default()
        },
        Settings {
            listen: Some("localhost".into()),
            ..Settings::default()
        },
    ] {
        assert!(
            matches!(
                settings::save(&env.store, &bad, "test").await,
                Err(SettingsError::Invalid(_))
            ),
            "{bad:?} must be refused"
        );
    }
    assert_eq!(settings::load(&env.store).await.unwrap(), defaults);

    let wanted = Settings {
        approval_timeout_secs: 30,
        notify_action: false,
        listen: Some(" [::1]:9000 ".into()),
        start_at_login: true,
        ..Settings::default()
    };
    let saved = settings::save(&env.store, &wanted, "test").await.unwrap();
    assert_eq!(saved.listen.as_deref(), Some("[::1]:9000"));
    assert_eq!(settings::load(&env.store).await.unwrap(), saved);
    // Saving the same again writes nothing.
    settings::save(&env.store, &saved, "test").await.unwrap();
    let q = gatehouse_core::audit::EventQuery {
        kinds: vec!["settings.changed".into()],
        ..Default::default()
    };
    let events = admin::events_query(&env.store, q).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["old"]["approvalTimeoutSecs"], 120);
    assert_eq!(events[0].detail["new"]["approvalTimeoutSecs"], 30);

    // The broker takes the new timeout for the next approval.
    let a = &env.authority;
    a.set_approval_ttl(Duration::from_secs(saved.approval_timeout_secs));
    let c = register(a, "Mail helper").await;
    let id = approval_id(&authorize(a, &c, "mail:read").await);
    let pending = a.broker().pending().await.unwrap();
    let view = pending.iter().find(|v| v.id == id).unwrap();
    assert_eq!(view.expires_at - view.created_at, 30_000);
}
