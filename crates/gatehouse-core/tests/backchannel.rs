//! CIBA and device-grant flows on a manual clock: polling pace, expiry without sleeping, the
//! broker's waiter, remembered decisions as rules, and use-limited tokens.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Env};
use gatehouse_core::approvals::{Decision, Remember};
use gatehouse_core::authority::TokenParams;
use gatehouse_core::backchannel::BackchannelParams;
use gatehouse_core::oauth::ErrorCode;
use gatehouse_core::oauth::registration::{CIBA_GRANT, RegistrationRequest};
use gatehouse_core::store::approvals::ApprovalStatus;

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

fn ask(details: Option<&str>) -> BackchannelParams {
    BackchannelParams {
        login_hint: Some("me".into()),
        scope: Some("deploy".into()),
        authorization_details: details.map(str::to_owned),
        ..Default::default()
    }
}

async fn poll(env: &Env, c: &Client, handle: &str) -> Result<serde_json::Value, ErrorCode> {
    let p = TokenParams {
        grant_type: Some(CIBA_GRANT.into()),
        auth_req_id: Some(handle.to_owned()),
        ..Default::default()
    };
    env.authority
        .token(p, c.creds())
        .await
        .map(|t| {
            serde_json::json!({
                "token": t.access_token.expose(),
                "expires_in": t.expires_in,
                "details": t.authorization_details,
            })
        })
        .map_err(|e| e.code)
}

const DELETE: &str = r#"[{"type":"data_delete","what":"replica db-2","where":"production"}]"#;

#[tokio::test]
async fn pace_expiry_and_waiter_on_a_manual_clock() {
    let env = Env::new();
    let c = ciba_client(&env).await;
    let ack = env
        .authority
        .bc_authorize(ask(None), c.creds())
        .await
        .unwrap();
    let handle = ack.handle.expose().to_owned();
    assert_eq!(
        poll(&env, &c, &handle).await,
        Err(ErrorCode::AuthorizationPending)
    );
    env.advance(Duration::from_millis(700));
    assert_eq!(poll(&env, &c, &handle).await, Err(ErrorCode::SlowDown));
    // The slow poll counted: 850 ms after it is fine (within the 200 ms jitter).
    env.advance(Duration::from_millis(850));
    assert_eq!(
        poll(&env, &c, &handle).await,
        Err(ErrorCode::AuthorizationPending)
    );

    // The waiter times out while pending, then learns the expiry.
    let broker = env.authority.broker().clone();
    let status = broker
        .wait(&ack.approval_id, Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!(status, ApprovalStatus::Pending);
    env.advance(env.authority.config().approval_ttl);
    assert_eq!(poll(&env, &c, &handle).await, Err(ErrorCode::ExpiredToken));
    let status = broker
        .wait(&ack.approval_id, Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!(status, ApprovalStatus::Expired);
    // A timeout never creates a rule.
    assert_eq!(env.count("SELECT COUNT(*) FROM rules"), 0);
}

#[tokio::test]
async fn a_decision_wakes_the_waiter_and_remember_makes_rules() {
    let env = Env::new();
    let c = ciba_client(&env).await;
    let ack = env
        .authority
        .bc_authorize(ask(Some(DELETE)), c.creds())
        .await
        .unwrap();
    let broker = env.authority.broker().clone();
    let id = ack.approval_id.clone();
    let waiter = tokio::spawn({
        let broker = broker.clone();
        let id = id.clone();
        async move { broker.wait(&id, Duration::from_secs(5)).await.unwrap() }
    });
    tokio::task::yield_now().await;
    let decision = Decision {
        remember: Remember::EightHours,
        ..Decision::approve()
    };
    broker.decide(&id, decision, "test").await.unwrap();
    assert_eq!(waiter.await.unwrap(), ApprovalStatus::Approved);
    assert!(broker.decide(&id, Decision::deny(), "test").await.is_err());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM rules WHERE effect = 'allow' AND action = 'data_delete' AND lifetime = '8h'"),
        1
    );

    let t = poll(&env, &c, ack.handle.expose()).await.unwrap();
    assert_eq!(t["details"][0]["type"], "data_delete");
    assert!(t["expires_in"].as_i64().unwrap() <= 300);
    // One use by default for a token with details.
    let token = t["token"].as_str().unwrap();
    assert!(common::is_active(&env.authority, &c, token).await);
    assert!(!common::is_active(&env.authority, &c, token).await);

    // The same request again is allowed by the rule: approved at once, no prompt.
    let again = env
        .authority
        .bc_authorize(ask(Some(DELETE)), c.creds())
        .await
        .unwrap();
    assert!(poll(&env, &c, again.handle.expose()).await.is_ok());
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM approvals WHERE channel = 'policy' AND status = 'approved'"
        ),
        1
    );
}
