//! Policy rules and the pause switch on a real store with an injected clock: pausing (from a
//! second store on the same file, as the CLI does while `serve` runs) stops /authorize, every
//! token grant and introspection, and resuming restores them; rules are added, listed, decided
//! on, hit and removed, each change audited.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Env, approval_id, authorize, consent_and_exchange, is_active, query, refresh, register,
};
use gatehouse_core::admin::{self, AdminError};
use gatehouse_core::approvals::Decision;
use gatehouse_core::audit::EventFilter;
use gatehouse_core::authority::AuthorizeOutcome;
use gatehouse_core::clock::ManualClock;
use gatehouse_core::oauth::ErrorCode;
use gatehouse_core::policy::{
    self, DenyReason, Effect, Lifetime, PolicyDecision, PolicyRequest, RuleSpec,
};
use gatehouse_core::store::StoreError;
use gatehouse_core::{Store, StoreOptions};

/// Every event kind, oldest first.
async fn all_kinds(env: &Env) -> Vec<String> {
    let filter = EventFilter {
        client_id: None,
        before_id: None,
    };
    let mut events = admin::events_page(&env.store, filter, 1000).await.unwrap();
    events.reverse();
    events.into_iter().map(|e| e.kind).collect()
}

fn spec(agent: &str, action: &str, effect: Effect, lifetime: Lifetime) -> RuleSpec {
    RuleSpec {
        agent: agent.into(),
        action: action.into(),
        resource: "*".into(),
        effect,
        lifetime,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn pause_stops_every_agent_and_resume_restores_them() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "mailer").await;
    let tokens = consent_and_exchange(a, &c, "read", Decision::approve()).await;
    let access = tokens.access_token.expose().to_owned();
    let refresh_token = tokens.refresh_token.unwrap().expose().to_owned();
    assert!(is_active(a, &c, &access).await);
    let approvals_before = env.count("SELECT COUNT(*) FROM approvals");

    // The CLI pauses through its own store on the same file while the server runs.
    let cli = Store::open(
        env.dir.path(),
        StoreOptions::default(),
        Arc::new(ManualClock::new(common::T0)),
    )
    .unwrap();
    assert!(admin::set_paused(&cli, true, "cli").await.unwrap());
    assert!(
        !admin::set_paused(&cli, true, "cli").await.unwrap(),
        "already paused"
    );
    assert!(admin::is_paused(&env.store).await.unwrap());

    // /authorize: access_denied back to the client, and nothing filed for the person.
    let p = authorize(a, &c, "read").await;
    let AuthorizeOutcome::Redirect(url) = &p.outcome else {
        panic!("expected a redirect, got {:?}", p.outcome)
    };
    let q = query(url);
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].contains("paused"), "{q:?}");
    assert_eq!(q["state"], "xyz");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM approvals"),
        approvals_before
    );

    // The token endpoint issues nothing, not even a refresh; the refresh token is not burnt.
    let err = refresh(a, &c, &refresh_token).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(err.description.contains("paused"));
    // Introspection: agents are stopped, so no token is active.
    assert!(!is_active(a, &c, &access).await);
    // The policy denies everything.
    assert_eq!(
        a.policy_decide(&c.client_id, strings(&["message_send"]), vec![])
            .await
            .unwrap(),
        PolicyDecision::Deny {
            reason: DenyReason::Paused
        }
    );

    assert!(admin::set_paused(&cli, false, "cli").await.unwrap());
    assert!(!admin::is_paused(&env.store).await.unwrap());
    assert!(is_active(a, &c, &access).await);
    let renewed = refresh(a, &c, &refresh_token).await.unwrap();
    assert!(is_active(a, &c, renewed.access_token.expose()).await);
    approval_id(&authorize(a, &c, "read").await);

    let kinds = all_kinds(&env).await;
    let paused_at = kinds.iter().position(|k| k == "agents.paused").unwrap();
    let resumed_at = kinds.iter().position(|k| k == "agents.resumed").unwrap();
    assert!(paused_at < resumed_at);
    assert_eq!(kinds.iter().filter(|k| *k == "agents.paused").count(), 1);
    // The refused requests were recorded while paused.
    assert!(
        kinds[paused_at..resumed_at]
            .iter()
            .filter(|k| *k == "request.rejected")
            .count()
            >= 2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn rules_are_added_listed_decided_and_removed_with_audit() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "mailer").await;

    let deny = admin::rule_add(
        &env.store,
        spec("*", "mail:*", Effect::Deny, Lifetime::OneHour),
        "cli",
    )
    .await
    .unwrap();
    assert_eq!(deny.effect, "deny");
    assert_eq!(deny.lifetime, "1h");
    assert_eq!(deny.expires_at, Some(common::T0 + 3_600_000));
    assert_eq!(deny.created_by, "cli");
    let allow = admin::rule_add(
        &env.store,
        spec(&c.client_id, "mail:*", Effect::Allow, Lifetime::Always),
        "cli",
    )
    .await
    .unwrap();

    // Refusals.
    let err = admin::rule_add(
        &env.store,
        spec("*", "*", Effect::Allow, Lifetime::Session),
        "cli",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AdminError::InvalidRule(m) if m.contains("session")),
        "{err}"
    );
    let err = admin::rule_add(
        &env.store,
        spec("agt_nobody", "*", Effect::Allow, Lifetime::Always),
        "cli",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AdminError::UnknownAgent(_)), "{err}");
    let err = admin::rule_add(
        &env.store,
        spec("*", "", Effect::Allow, Lifetime::Always),
        "cli",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AdminError::InvalidRule(_)), "{err}");

    let listed = admin::rules_list(&env.store).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [deny.id, allow.id]
    );

    // Deny wins while it lives; once it expires, the allow applies.
    let decide = || a.policy_decide(&c.client_id, strings(&["mail:send"]), vec![]);
    assert_eq!(
        decide().await.unwrap(),
        PolicyDecision::Deny {
            reason: DenyReason::Rule { rule_id: deny.id }
        }
    );
    env.advance(Duration::from_secs(3600));
    assert_eq!(
        decide().await.unwrap(),
        PolicyDecision::Allow {
            rules: vec![allow.id]
        }
    );

    let removed = admin::rule_delete(&env.store, allow.id, "cli")
        .await
        .unwrap();
    assert_eq!(removed.id, allow.id);
    assert!(matches!(
        admin::rule_delete(&env.store, allow.id, "cli").await,
        Err(AdminError::UnknownRule(id)) if id == allow.id
    ));
    assert!(matches!(
        admin::rule_delete(&env.store, 9999, "cli").await,
        Err(AdminError::UnknownRule(9999))
    ));
    assert_eq!(
        decide().await.unwrap(),
        PolicyDecision::Ask { rules: vec![] }
    );

    let kinds = all_kinds(&env).await;
    assert_eq!(kinds.iter().filter(|k| *k == "rule.created").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "rule.deleted").count(), 1);
}

#[tokio::test]
async fn hits_are_counted_and_a_once_rule_is_used_up() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "deployer").await;
    let once = admin::rule_add(
        &env.store,
        RuleSpec {
            resource: "db/staging-*".into(),
            ..spec("*", "data_delete", Effect::Allow, Lifetime::Once)
        },
        "cli",
    )
    .await
    .unwrap();
    let ask = admin::rule_add(
        &env.store,
        RuleSpec {
            resource: "db/prod-*".into(),
            ..spec("*", "data_delete", Effect::Ask, Lifetime::Always)
        },
        "cli",
    )
    .await
    .unwrap();

    // Decide and record in one transaction, as the action broker does.
    let decide_and_record = |resource: &'static str| {
        let (store, session) = (env.store.clone(), a.session_id().to_owned());
        let client = c.client_id.clone();
        async move {
            store
                .write(move |tx| -> Result<PolicyDecision, StoreError> {
                    let req = PolicyRequest {
                        client_id: client,
                        actions: strings(&["data_delete"]),
                        resources: strings(&[resource]),
                    };
                    let d = policy::evaluate(tx.conn(), &req, tx.now(), &session)?;
                    policy::record_hits(tx, &req, &d)?;
                    Ok(d)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(
        decide_and_record("db/staging-1").await,
        PolicyDecision::Allow {
            rules: vec![once.id]
        }
    );
    // Used up by its first hit.
    assert_eq!(
        decide_and_record("db/staging-1").await,
        PolicyDecision::Ask { rules: vec![] }
    );
    assert_eq!(
        decide_and_record("db/prod-replica").await,
        PolicyDecision::Ask {
            rules: vec![ask.id]
        }
    );
    env.advance(Duration::from_secs(5));
    decide_and_record("db/prod-replica").await;

    let listed = admin::rules_list(&env.store).await.unwrap();
    assert_eq!(listed.len(), 1, "the once rule is gone");
    assert_eq!(listed[0].id, ask.id);
    assert_eq!(listed[0].hits, 2);
    assert_eq!(listed[0].last_hit_at, Some(common::T0 + 5000));
    // One rule.hit per decision that a rule made: not for the default Ask.
    let kinds = all_kinds(&env).await;
    assert_eq!(kinds.iter().filter(|k| *k == "rule.hit").count(), 3);
    assert_eq!(
        env.count(&format!("SELECT hits FROM rules WHERE id = {}", once.id)),
        1
    );
}
