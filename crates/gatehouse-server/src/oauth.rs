//! The OAuth endpoints: parse the HTTP request, call the core, and answer in the protocol's own
//! format (RFC 6749 JSON errors with `Cache-Control: no-store`, redirects carrying `iss`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::authority::{AuthorizeOutcome, AuthorizeParams, ConsentProgress, TokenParams};
use gatehouse_core::oauth::registration::{CIBA_GRANT, DEVICE_GRANT, RegistrationRequest};
use gatehouse_core::oauth::{ClientCredentials, ErrorCode, OAuthError};

use crate::{AppState, pages};

/// An OAuth error response (RFC 6749 §5.2).
pub(crate) struct ErrorResponse(pub OAuthError);

impl From<OAuthError> for ErrorResponse {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body =
            serde_json::json!({ "error": self.0.code, "error_description": self.0.description });
        let mut res = no_store((status, Json(body)).into_response());
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="gatehouse""#),
            );
        }
        res
    }
}

pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

pub(crate) fn json_ok(status: StatusCode, body: serde_json::Value) -> Response {
    no_store((status, Json(body)).into_response())
}

fn invalid_request(msg: &str) -> ErrorResponse {
    ErrorResponse(OAuthError::new(ErrorCode::InvalidRequest, msg))
}

/// Form parameters in order, as sent. Kept as pairs so a repeated parameter can be refused.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: &str) -> Result<Self, ErrorResponse> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Params)
            .map_err(|_| {
                invalid_request("the parameters are not valid application/x-www-form-urlencoded")
            })
    }

    pub(crate) fn form(headers: &HeaderMap, body: &Bytes) -> Result<Self, ErrorResponse> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        let raw =
            std::str::from_utf8(body).map_err(|_| invalid_request("the body is not UTF-8"))?;
        Self::parse(raw)
    }

    /// A form in which no parameter may repeat (RFC 6749 §3.1, RFC 7009 §2.1, RFC 7662 §2.1).
    fn form_once(headers: &HeaderMap, body: &Bytes) -> Result<Self, ErrorResponse> {
        let p = Self::form(headers, body)?;
        match p.repeated(&[]) {
            Some(name) => Err(invalid_request(&format!(
                "the parameter {name} appears more than once"
            ))),
            None => Ok(p),
        }
    }

    pub(crate) fn one(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first parameter, other than the repeatable ones, that appears more than once.
    pub(crate) fn repeated(&self, repeatable: &[&str]) -> Option<String> {
        let mut seen: Vec<&str> = Vec::with_capacity(self.0.len());
        for (k, _) in &self.0 {
            if repeatable.contains(&k.as_str()) {
                continue;
            }
            if seen.contains(&k.as_str()) {
                return Some(k.clone());
            }
            seen.push(k);
        }
        None
    }
}

/// A client's form request (`/token`, `/bc-authorize`, `/device_authorization`): the parameters,
/// then the client's credentials from them and the Authorization header.
pub(crate) fn client_form(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, ClientCredentials), ErrorResponse> {
    let p = Params::form(headers, body)?;
    let creds = credentials(headers, &p)?;
    Ok((p, creds))
}

/// [`client_form`] where no parameter may repeat (`/revoke`, `/introspect`).
fn client_form_once(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, ClientCredentials), ErrorResponse> {
    let p = Params::form_once(headers, body)?;
    let creds = credentials(headers, &p)?;
    Ok((p, creds))
}

/// Client credentials from the Authorization header and the form (RFC 6749 §2.3.1).
fn credentials(headers: &HeaderMap, params: &Params) -> Result<ClientCredentials, ErrorResponse> {
    let form_id = params.one("client_id");
    let form_secret = params.one("client_secret");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, b64)| b64.trim().to_owned());
    if let Some(b64) = basic {
        let bad = || {
            ErrorResponse(OAuthError::new(
                ErrorCode::InvalidClient,
                "the Basic credentials are malformed",
            ))
        };
        let decoded = STANDARD.decode(b64).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        // The id and secret are form-urlencoded before Basic encoding (RFC 6749 §2.3.1).
        let decode = |s: &str| -> Result<String, ErrorResponse> {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&format!("v={s}")).map_err(|_| bad())?;
            Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
        };
        let (client_id, secret) = (decode(id)?, decode(secret)?);
        if form_secret.is_some() {
            return Err(invalid_request(
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        if form_id.as_deref().is_some_and(|f| f != client_id) {
            return Err(invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(ClientCredentials::Basic { client_id, secret });
    }
    Ok(match (form_id, form_secret) {
        (Some(client_id), Some(secret)) => ClientCredentials::Post { client_id, secret },
        (Some(client_id), None) => ClientCredentials::None { client_id },
        (None, Some(_)) => return Err(invalid_request("client_secret was sent without client_id")),
        (None, None) => ClientCredentials::Missing,
    })
}

// ---- metadata ------------------------------------------------------------------------------

/// RFC 8414 authorization server metadata (served at both well-known paths).
pub(crate) async fn metadata(State(state): State<AppState>) -> Response {
    let iss = state.authority.issuer();
    let body = serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "registration_endpoint": format!("{iss}/register"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "scopes_supported": [],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", CIBA_GRANT, DEVICE_GRANT],
        "backchannel_authentication_endpoint": format!("{iss}/bc-authorize"),
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": false,
        "device_authorization_endpoint": format!("{iss}/device_authorization"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "consent"],
        "authorization_details_types_supported": gatehouse_core::oauth::rar::TYPES,
        "service_documentation": "https://github.com/gatehouse-app/gatehouse#readme",
    });
    (StatusCode::OK, Json(body)).into_response()
}

// ---- RFC 7591 registration -----------------------------------------------------------------

pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return ErrorResponse(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "send the client metadata as application/json",
        ))
        .into_response();
    }
    let req: RegistrationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ErrorResponse(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("the client metadata is not valid: {e}"),
            ))
            .into_response();
        }
    };
    match state.authority.register(req).await {
        Ok(reg) => {
            let mut body = serde_json::to_value(&reg.metadata).unwrap_or_default();
            if let Some(obj) = body.as_object_mut() {
                obj.insert("client_id".into(), reg.client_id.into());
                obj.insert("client_id_issued_at".into(), reg.issued_at_secs.into());
                if let Some(secret) = &reg.client_secret {
                    obj.insert("client_secret".into(), secret.expose().into());
                    obj.insert("client_secret_expires_at".into(), 0.into());
                }
            }
            json_ok(StatusCode::CREATED, body)
        }
        Err(e) => ErrorResponse(e).into_response(),
    }
}

// ---- /authorize ----------------------------------------------------------------------------

pub(crate) async fn authorize_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.as_deref().unwrap_or("")) {
        Ok(p) => authorize(state, p).await,
        Err(_) => pages::error(
            400,
            "Invalid request",
            "The authorization request could not be parsed.",
        ),
    }
}

pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match Params::form(&headers, &body) {
        Ok(p) => authorize(state, p).await,
        Err(_) => pages::error(
            400,
            "Invalid request",
            "The authorization request could not be parsed.",
        ),
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => no_store((StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response()),
        Err(_) => pages::error(500, "Internal error", "The redirect could not be built."),
    }
}

async fn authorize(state: AppState, p: Params) -> Response {
    let params = AuthorizeParams {
        client_id: p.one("client_id"),
        redirect_uri: p.one("redirect_uri"),
        response_type: p.one("response_type"),
        scope: p.one("scope"),
        state: p.one("state"),
        code_challenge: p.one("code_challenge"),
        code_challenge_method: p.one("code_challenge_method"),
        resource: p.all("resource"),
        prompt: p.one("prompt"),
        authorization_details: p.one("authorization_details"),
        repeated: p.repeated(&["resource"]),
    };
    match state.authority.authorize(params).await {
        AuthorizeOutcome::ErrorPage {
            status,
            title,
            message,
        } => pages::error(status, &title, &message),
        AuthorizeOutcome::Redirect(url) => see_other(&url),
        AuthorizeOutcome::AwaitConsent { approval_id } => see_other(&format!(
            "{}/consent/{approval_id}",
            state.authority.issuer()
        )),
    }
}

pub(crate) async fn consent_progress(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    match state.authority.consent_progress(&id).await {
        ConsentProgress::Pending {
            client_name,
            expires_at,
        } => {
            let left = (expires_at - state.authority.clock().now()) / 1000;
            no_store(pages::waiting(&client_name, left))
        }
        ConsentProgress::Redirect(url) => see_other(&url),
        ConsentProgress::ErrorPage {
            status,
            title,
            message,
        } => pages::error(status, &title, &message),
    }
}

// ---- /token, /revoke, /introspect ----------------------------------------------------------

pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (p, creds) = client_form(&headers, &body)?;
    let params = TokenParams {
        grant_type: p.one("grant_type"),
        code: p.one("code"),
        redirect_uri: p.one("redirect_uri"),
        code_verifier: p.one("code_verifier"),
        refresh_token: p.one("refresh_token"),
        scope: p.one("scope"),
        resource: p.all("resource"),
        auth_req_id: p.one("auth_req_id"),
        device_code: p.one("device_code"),
        repeated: p.repeated(&["resource"]),
    };
    let t = state.authority.token(params, creds).await?;
    let mut body = serde_json::json!({
        "access_token": t.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": t.scope,
    });
    if let Some(r) = &t.refresh_token {
        body["refresh_token"] = r.expose().into();
    }
    if let Some(d) = &t.authorization_details {
        body["authorization_details"] = d.clone();
    }
    Ok(json_ok(StatusCode::OK, body))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (p, creds) = client_form_once(&headers, &body)?;
    state.authority.revoke(p.one("token"), creds).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub(crate) async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    let (p, creds) = client_form_once(&headers, &body)?;
    let answer = state.authority.introspect(p.one("token"), creds).await?;
    Ok(json_ok(
        StatusCode::OK,
        serde_json::to_value(answer).unwrap_or_default(),
    ))
}

pub(crate) async fn not_found() -> Response {
    json_ok(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "error": "not_found", "error_description": "no such endpoint" }),
    )
}

pub(crate) async fn method_not_allowed() -> Response {
    json_ok(
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({ "error": "invalid_request", "error_description": "this method is not allowed here; state changes use POST" }),
    )
}
