//! Bearer authentication of gateway calls: live access tokens only, use-limited tokens spent,
//! pause honoured, last use recorded in the batched usage map.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Env, REDIRECT, approval_id, exchange, pkce_pair, redirect_of, register};
use gatehouse_core::approvals::Decision;
use gatehouse_core::authority::{AuthorizeParams, TokenResponse};
use gatehouse_core::gateway::{self, Presented, Refusal};
use gatehouse_core::policy;
use std::time::Duration;

const RESOURCE: &str = "http://127.0.0.1:1/gateway/gh";

async fn token_for(env: &Env, c: &Client, scope: &str, resource: &str) -> TokenResponse {
    let a = &env.authority;
    let (verifier, challenge) = pkce_pair();
    let outcome = a
        .authorize(AuthorizeParams {
            client_id: Some(c.client_id.clone()),
            redirect_uri: Some(REDIRECT.into()),
            response_type: Some("code".into()),
            scope: Some(scope.into()),
            state: Some("s".into()),
            code_challenge: Some(challenge),
            code_challenge_method: Some("S256".into()),
            resource: vec![resource.into()],
            ..Default::default()
        })
        .await;
    let p = common::Pending { verifier, outcome };
    let id = approval_id(&p);
    a.broker()
        .decide(&id, Decision::approve(), "test")
        .await
        .unwrap();
    let q = redirect_of(a.consent_progress(&id).await);
    exchange(a, c, &q["code"], &p.verifier).await.unwrap()
}

#[tokio::test]
async fn resource_calls_authenticate_live_access_tokens() {
    let env = Env::new();
    let a = &env.authority;
    let c = register(a, "agent").await;
    let t = token_for(&env, &c, "gh:read gh:write", RESOURCE).await;
    let access = t.access_token.expose().to_owned();

    let info = a.authenticate_resource_call(&access).await.unwrap();
    assert_eq!(info.client_id, c.client_id);
    assert_eq!(info.audience, vec![RESOURCE.to_owned()]);
    let presented = Presented {
        audience: &info.audience,
        scopes: &info.scopes,
    };
    assert_eq!(
        gateway::check_token(Some(presented), a.issuer(), "gh", "DELETE"),
        Ok(())
    );
    assert!(matches!(
        gateway::check_token(Some(presented), a.issuer(), "mail", "GET"),
        Err(Refusal::InvalidToken(_))
    ));

    // The use is batched, then flushed as "last used".
    assert_eq!(a.flush_usage().await.unwrap(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM tokens WHERE last_used_at IS NOT NULL AND kind = 'access'"),
        1
    );

    // Unknown, empty and refresh tokens are invalid.
    for bad in ["", "nope", t.refresh_token.as_ref().unwrap().expose()] {
        assert!(matches!(
            a.authenticate_resource_call(bad).await,
            Err(Refusal::InvalidToken(_))
        ));
    }

    // Paused: denied with the pause message; resumed: accepted again.
    env.store
        .write(|tx| policy::set_paused(tx, true, "test"))
        .await
        .unwrap();
    assert_eq!(
        a.authenticate_resource_call(&access).await.unwrap_err(),
        Refusal::Denied(policy::PAUSED_MESSAGE.into())
    );
    env.store
        .write(|tx| policy::set_paused(tx, false, "test"))
        .await
        .unwrap();
    assert!(a.authenticate_resource_call(&access).await.is_ok());

    // Expired.
    env.advance(Duration::from_secs(24 * 3600));
    assert!(matches!(
        a.authenticate_resource_call(&access).await,
        Err(Refusal::InvalidToken(_))
    ));
}
