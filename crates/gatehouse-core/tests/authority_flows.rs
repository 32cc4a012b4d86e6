//! OAuth flows through the core API on a real store, with an injected clock instead of sleeping:
//! approval and code expiry, first decision wins, an edited approval refused, scopes narrowed at
//! consent, remembered consent and its lifetime, code replay, refresh rotation with family-wide
//! reuse detection, access-token expiry, and revoking an agent.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Env, approval_id, approve_remembering, authorize, consent_and_exchange, exchange, is_active,
    query, redirect_of, refresh, register,
};
use gatehouse_core::admin::{self, AdminError, RevokeSummary};
use gatehouse_core::approvals::{DecideError, Decision, Remember};
use gatehouse_core::audit::EventFilter;
use gatehouse_core::authority::{AuthorizeOutcome, ConsentProgress};
use gatehouse_core::oauth::ErrorCode;
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::store::{StoreError, tokens};

/// The kinds of an agent's audit events, oldest first.
async fn event_kinds(env: &Env, client_id: &str) -> Vec<String> {
    let filter = EventFilter {
        client_id: Some(client_id.to_owned()),
        before_id: None,
    };
    let mut events = admin::events_page(&env.store, filter, 500).await.unwrap();
    events.reverse();
    events.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn an_approval_nobody_decides_expires_into_access_denied() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "slow person").await;
    let p = authorize(a, &c, "read").await;
    let id = approval_id(&p);

    assert!(matches!(
        a.consent_progress(&id).await,
        ConsentProgress::Pending { .. }
    ));
    env.advance(a.config().approval_ttl - Duration::from_millis(1));
    assert_eq!(a.broker().expire_due().await.unwrap(), 0, "expired early");

    env.advance(Duration::from_millis(1));
    assert_eq!(a.broker().expire_due().await.unwrap(), 1);
    let q = redirect_of(a.consent_progress(&id).await);
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].contains("expired"), "{q:?}");
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], "http://127.0.0.1:1");
    assert!(!q.contains_key("code"));

    // An expiry is a denial: a late approval is refused and nothing is remembered.
    match a.broker().decide(&id, Decision::approve(), "late").await {
        Err(DecideError::AlreadyDecided(ApprovalStatus::Expired)) => {}
        other => panic!("a late approval got {other:?}"),
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM consents"), 0);
    assert_eq!(env.count("SELECT COUNT(*) FROM grants"), 0);
    assert_eq!(
        event_kinds(&env, &c.client_id).await,
        ["agent.registered", "consent.requested", "consent.expired"]
    );
}

#[tokio::test]
async fn the_waiting_page_expires_a_due_approval_itself() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let id = approval_id(&authorize(a, &c, "read").await);
    env.advance(a.config().approval_ttl);
    // No maintenance tick ran; the waiting page must not hand out a pending approval past its time.
    let q = redirect_of(a.consent_progress(&id).await);
    assert_eq!(q["error"], "access_denied");
    assert!(
        event_kinds(&env, &c.client_id)
            .await
            .contains(&"consent.expired".to_owned())
    );
}

#[tokio::test]
async fn an_authorization_code_expires_after_code_ttl() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;

    let fresh = authorize(a, &c, "read").await;
    let late = authorize(a, &c, "read").await;
    let mut codes = Vec::new();
    for p in [&fresh, &late] {
        let id = approval_id(p);
        a.broker()
            .decide(&id, Decision::approve(), "test")
            .await
            .unwrap();
        codes.push(redirect_of(a.consent_progress(&id).await)["code"].clone());
    }

    env.advance(a.config().code_ttl - Duration::from_millis(1));
    exchange(a, &c, &codes[0], &fresh.verifier).await.unwrap();

    env.advance(Duration::from_millis(1));
    let err = exchange(a, &c, &codes[1], &late.verifier)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert!(err.description.contains("expired"), "{err:?}");
}

#[tokio::test]
async fn the_first_decision_wins() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let p = authorize(a, &c, "read").await;
    let id = approval_id(&p);

    let first = a
        .broker()
        .decide(&id, Decision::approve(), "tray")
        .await
        .unwrap();
    assert_eq!(first.status, ApprovalStatus::Approved);
    assert_eq!(first.channel.as_deref(), Some("tray"));
    match a.broker().decide(&id, Decision::deny(), "terminal").await {
        Err(DecideError::AlreadyDecided(ApprovalStatus::Approved)) => {}
        other => panic!("the second decision got {other:?}"),
    }
    let q = redirect_of(a.consent_progress(&id).await);
    exchange(a, &c, &q["code"], &p.verifier).await.unwrap();
}

#[tokio::test]
async fn racing_decisions_from_two_channels_have_exactly_one_winner() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    for _ in 0..10 {
        let id = approval_id(&authorize(a, &c, "read").await);
        let (approve, deny) = tokio::join!(
            a.broker().decide(&id, Decision::approve(), "notification"),
            a.broker().decide(&id, Decision::deny(), "window"),
        );
        let winners = [approve.is_ok(), deny.is_ok()];
        assert_eq!(
            winners.iter().filter(|w| **w).count(),
            1,
            "{approve:?} / {deny:?}"
        );
        let loser = if winners[0] { deny } else { approve };
        assert!(matches!(loser, Err(DecideError::AlreadyDecided(_))));
    }
}

#[tokio::test]
async fn an_approval_whose_stored_request_was_edited_cannot_be_decided() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let p = authorize(a, &c, "read").await;
    let id = approval_id(&p);
    // Someone with access to the file widens what the person is about to approve.
    let changed = env
        .raw()
        .execute(
            "UPDATE approvals SET request = replace(request, '\"read\"', '\"admin\"') WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(changed, 1);

    match a.broker().decide(&id, Decision::approve(), "test").await {
        Err(DecideError::Tampered) => {}
        other => panic!("an edited request was decided: {other:?}"),
    }
    assert!(matches!(
        a.consent_progress(&id).await,
        ConsentProgress::Pending { .. }
    ));
    assert_eq!(env.count("SELECT COUNT(*) FROM grants"), 0);
}

#[tokio::test]
async fn the_person_can_narrow_scopes_at_consent_but_not_widen_them() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let p = authorize(a, &c, "read write").await;
    let id = approval_id(&p);

    let widen = Decision {
        scopes: Some(vec!["read".into(), "admin".into()]),
        ..Decision::approve()
    };
    match a.broker().decide(&id, widen, "test").await {
        Err(DecideError::ScopesNotRequested(extra)) => assert_eq!(extra, ["admin"]),
        other => panic!("widening got {other:?}"),
    }
    assert!(matches!(
        a.consent_progress(&id).await,
        ConsentProgress::Pending { .. }
    ));

    let narrow = Decision {
        scopes: Some(vec!["read".into()]),
        ..Decision::approve()
    };
    a.broker().decide(&id, narrow, "test").await.unwrap();
    let q = redirect_of(a.consent_progress(&id).await);
    let t = exchange(a, &c, &q["code"], &p.verifier).await.unwrap();
    assert_eq!(t.scope, "read");
    let seen = a
        .introspect(Some(t.access_token.expose().into()), c.creds())
        .await
        .unwrap();
    assert_eq!(seen.scope.as_deref(), Some("read"));
    let r = refresh(a, &c, t.refresh_token.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(r.scope, "read", "a refresh stays within what was granted");
}

#[tokio::test]
async fn remembered_consent_covers_narrower_requests_for_its_lifetime_only() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    consent_and_exchange(a, &c, "read write", approve_remembering(Remember::OneHour)).await;

    // Covered: no prompt, a code straight back to the client, still audited.
    let covered = authorize(a, &c, "read").await;
    let AuthorizeOutcome::Redirect(url) = &covered.outcome else {
        panic!("a covered request prompted again: {:?}", covered.outcome)
    };
    let t = exchange(a, &c, &query(url)["code"], &covered.verifier)
        .await
        .unwrap();
    assert_eq!(t.scope, "read");
    assert!(
        event_kinds(&env, &c.client_id)
            .await
            .contains(&"consent.remembered".to_owned())
    );

    // Wider than what was remembered: ask the person.
    let wider = authorize(a, &c, "read write admin").await;
    approval_id(&wider);

    env.advance(Duration::from_secs(3600) - Duration::from_millis(1));
    let still = authorize(a, &c, "write").await;
    assert!(matches!(still.outcome, AuthorizeOutcome::Redirect(_)));

    env.advance(Duration::from_millis(1));
    let after = authorize(a, &c, "read").await;
    approval_id(&after);
}

#[tokio::test]
async fn a_once_decision_is_not_remembered() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    consent_and_exchange(a, &c, "read", Decision::approve()).await;
    approval_id(&authorize(a, &c, "read").await);
}

#[tokio::test]
async fn a_replayed_code_revokes_what_it_issued() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let p = authorize(a, &c, "read").await;
    let id = approval_id(&p);
    a.broker()
        .decide(&id, Decision::approve(), "test")
        .await
        .unwrap();
    let code = redirect_of(a.consent_progress(&id).await)["code"].clone();
    let t = exchange(a, &c, &code, &p.verifier).await.unwrap();
    assert!(is_active(a, &c, t.access_token.expose()).await);

    let err = exchange(a, &c, &code, &p.verifier).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert!(!is_active(a, &c, t.access_token.expose()).await);
    assert!(!is_active(a, &c, t.refresh_token.as_ref().unwrap().expose()).await);
    assert!(
        event_kinds(&env, &c.client_id)
            .await
            .contains(&"code.replayed".to_owned())
    );
}

#[tokio::test]
async fn a_refused_exchange_does_not_burn_the_code() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let p = authorize(a, &c, "read").await;
    let id = approval_id(&p);
    a.broker()
        .decide(&id, Decision::approve(), "test")
        .await
        .unwrap();
    let code = redirect_of(a.consent_progress(&id).await)["code"].clone();

    let (wrong_verifier, _) = common::pkce_pair();
    let err = exchange(a, &c, &code, &wrong_verifier).await.unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidGrant,
        "a wrong verifier is refused"
    );

    let t = exchange(a, &c, &code, &p.verifier)
        .await
        .expect("the corrected retry redeems the code: a refused attempt must not burn it");
    assert!(is_active(a, &c, t.access_token.expose()).await);
    let kinds = event_kinds(&env, &c.client_id).await;
    assert!(
        kinds.contains(&"request.rejected".to_owned()),
        "the refused attempt is audited: {kinds:?}"
    );
    assert!(
        !kinds.contains(&"code.replayed".to_owned()),
        "the retry is not a replay: {kinds:?}"
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let t1 = consent_and_exchange(a, &c, "read", Decision::approve()).await;
    let rt1 = t1.refresh_token.as_ref().unwrap().expose().to_owned();

    let t2 = refresh(a, &c, &rt1).await.unwrap();
    let rt2 = t2.refresh_token.as_ref().unwrap().expose().to_owned();
    assert_ne!(rt1, rt2, "the refresh token rotates");
    assert!(!is_active(a, &c, &rt1).await, "a rotated token is dead");
    assert!(is_active(a, &c, &rt2).await);
    assert!(is_active(a, &c, t2.access_token.expose()).await);

    // A second, unrelated family of the same agent must survive.
    let other = consent_and_exchange(a, &c, "read", Decision::approve()).await;

    let err = refresh(a, &c, &rt1).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    for t in [t1.access_token.expose(), t2.access_token.expose(), &rt2] {
        assert!(
            !is_active(a, &c, t).await,
            "a family token outlived the reuse"
        );
    }
    assert_eq!(
        refresh(a, &c, &rt2).await.unwrap_err().code,
        ErrorCode::InvalidGrant
    );
    assert!(is_active(a, &c, other.access_token.expose()).await);
    assert!(
        event_kinds(&env, &c.client_id)
            .await
            .contains(&"refresh.reuse_detected".to_owned())
    );
}

#[tokio::test]
async fn access_tokens_die_at_access_ttl() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let t = consent_and_exchange(a, &c, "read", Decision::approve()).await;
    env.advance(a.config().access_ttl - Duration::from_millis(1));
    assert!(is_active(a, &c, t.access_token.expose()).await);
    env.advance(Duration::from_millis(1));
    assert!(!is_active(a, &c, t.access_token.expose()).await);
    // The refresh token outlives it and mints a new one.
    let r = refresh(a, &c, t.refresh_token.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert!(is_active(a, &c, r.access_token.expose()).await);
}

#[tokio::test]
async fn revoking_an_agent_kills_every_grant_token_and_remembered_consent() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "doomed").await;
    let bystander = register(a, "bystander").await;
    let t1 = consent_and_exchange(a, &c, "read", approve_remembering(Remember::Always)).await;
    let t2 = consent_and_exchange(a, &c, "write", Decision::approve()).await;
    let pending = approval_id(&authorize(a, &c, "admin").await);
    let kept = consent_and_exchange(a, &bystander, "read", Decision::approve()).await;

    let summary = admin::revoke_agent(&env.store, &c.client_id, "test")
        .await
        .unwrap();
    assert_eq!(
        summary,
        RevokeSummary {
            grants: 2,
            tokens: 4,
            remembered_consents: 1,
            pending_approvals_denied: 1,
        }
    );

    let client_id = c.client_id.clone();
    let live = env
        .store
        .read(move |conn| {
            tokens::live_for_client(conn, &client_id, common::T0).map_err(StoreError::from)
        })
        .await
        .unwrap();
    assert!(live.is_empty(), "live tokens after revocation: {live:?}");
    // The agent itself can no longer authenticate, refresh or start a flow.
    let err = a
        .introspect(Some(t1.access_token.expose().into()), c.creds())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    let err = refresh(a, &c, t2.refresh_token.as_ref().unwrap().expose())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    assert!(matches!(
        authorize(a, &c, "read").await.outcome,
        AuthorizeOutcome::ErrorPage { status: 400, .. }
    ));
    match a
        .broker()
        .decide(&pending, Decision::approve(), "late")
        .await
    {
        Err(DecideError::AlreadyDecided(ApprovalStatus::Denied)) => {}
        other => panic!("a pending approval of a revoked agent got {other:?}"),
    }

    assert!(is_active(a, &bystander, kept.access_token.expose()).await);
    assert!(matches!(
        admin::revoke_agent(&env.store, &c.client_id, "test").await,
        Err(AdminError::AlreadyRevoked(_))
    ));
    // The revocation is audited, and so is each refused attempt by the revoked agent afterwards.
    let kinds = event_kinds(&env, &c.client_id).await;
    let revoked_at = kinds.iter().position(|k| k == "agent.revoked").unwrap();
    let refused = kinds[revoked_at + 1..]
        .iter()
        .filter(|k| *k == "request.rejected")
        .count();
    assert!(refused >= 2, "{kinds:?}");
}
