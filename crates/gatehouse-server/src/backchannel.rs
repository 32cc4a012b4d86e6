//! CIBA poll mode (`POST /bc-authorize`) and the RFC 8628 device grant (`POST /device_authorization`,
//! `GET /device`). The token grants themselves go through `/token`.
//!
//! `/device` only tells the person where to decide: like every page here, it cannot approve anything.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::backchannel::{BackchannelAck, BackchannelParams};

use crate::oauth::{ErrorResponse, Params, client_form, json_ok, no_store};
use crate::{AppState, pages};

fn params(p: &Params) -> BackchannelParams {
    BackchannelParams {
        login_hint: p.one("login_hint"),
        binding_message: p.one("binding_message"),
        requested_expiry: p.one("requested_expiry"),
        scope: p.one("scope"),
        resource: p.all("resource"),
        authorization_details: p.one("authorization_details"),
        repeated: p.repeated(&["resource"]),
    }
}

/// `POST /bc-authorize`: `{"auth_req_id","expires_in","interval"}`.
pub(crate) async fn bc_authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (p, creds) = client_form(&headers, &body)?;
    let ack: BackchannelAck = state.authority.bc_authorize(params(&p), creds).await?;
    Ok(json_ok(
        StatusCode::OK,
        serde_json::json!({
            "auth_req_id": ack.handle.expose(),
            "expires_in": ack.expires_in,
            "interval": ack.interval,
        }),
    ))
}

/// `POST /device_authorization` (RFC 8628 §3.2).
pub(crate) async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (p, creds) = client_form(&headers, &body)?;
    let ack = state
        .authority
        .device_authorization(params(&p), creds)
        .await?;
    let iss = state.authority.issuer();
    let code = ack.user_code.unwrap_or_default();
    let complete = format!(
        "{iss}/device?{}",
        serde_urlencoded::to_string([("user_code", code.as_str())]).unwrap_or_default()
    );
    Ok(json_ok(
        StatusCode::OK,
        serde_json::json!({
            "device_code": ack.handle.expose(),
            "user_code": code,
            "verification_uri": format!("{iss}/device"),
            "verification_uri_complete": complete,
            "expires_in": ack.expires_in,
            "interval": ack.interval,
        }),
    ))
}

/// `GET /device`: where to decide, and the code to compare. Approves nothing.
pub(crate) async fn device_page(RawQuery(query): RawQuery) -> Response {
    let code = Params::parse(query.as_deref().unwrap_or(""))
        .ok()
        .and_then(|p| p.one("user_code"))
        .filter(|c| c.len() <= 16 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'));
    no_store(pages::device(code.as_deref()))
}
