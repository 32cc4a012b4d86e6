//! The Connections view's actions: sign in to an OAuth account (new or expired) in the person's
//! browser through the app's own loopback server, add an API-key or bearer connection, and
//! disconnect. Bodies over [`Desktop`] (tested without a webview) plus their `#[tauri::command]`
//! wrappers; the vault in `gatehouse-core` does the work, this module parses and maps errors.
//!
//! A secret crosses IPC once, as [`SecretInput`], and goes straight to the vault (the keyring);
//! it is never logged, echoed back or kept.

use std::time::Duration;

use gatehouse_core::secret::Secret;
use gatehouse_core::vault::Removed;
use gatehouse_core::vault::oauth::{
    CUSTOM_PROVIDER, ConnectFlows, ConnectRequest, FLOW_TTL, FlowCompletion, OAuthApp, StartedFlow,
};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager, State};
use ts_rs::TS;

use crate::error::IpcError;
use crate::ops::{self, ConnectionView};
use crate::state::{BY, Desktop};

/// `ConnectionView[]`, the whole list, after a sign-in started from the app completes or fails,
/// and after a connection is added or removed from the app.
pub const CONNECTIONS_EVENT: &str = "gatehouse://connections";

/// A secret typed by the person. Its `Debug` shows nothing, and it has no `Serialize`.
#[derive(Deserialize, TS)]
#[serde(from = "String")]
#[ts(type = "string")]
pub struct SecretInput(Secret);

impl From<String> for SecretInput {
    fn from(s: String) -> Self {
        Self(Secret::from_presented(s))
    }
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretInput(<redacted>)")
    }
}

/// A new OAuth connection: a preset provider (`github`, `google`, `slack`, `microsoft`: their
/// endpoints, default scopes and API URL unless given) or `custom` with its URLs.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConnectInput {
    pub name: String,
    pub provider: String,
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    #[serde(default)]
    #[ts(optional)]
    pub client_secret: Option<SecretInput>,
    /// Absent: the preset's default scopes (a custom provider then asks for none).
    #[serde(default)]
    #[ts(optional)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    #[ts(optional)]
    pub label: Option<String>,
    /// The API gateway paths are appended to; required for `custom`.
    #[serde(default)]
    #[ts(optional)]
    pub api_url: Option<String>,
    /// `custom` only.
    #[serde(default)]
    #[ts(optional)]
    pub authorization_url: Option<String>,
    /// `custom` only.
    #[serde(default)]
    #[ts(optional)]
    pub token_url: Option<String>,
    /// `custom` only; RFC 7009.
    #[serde(default)]
    #[ts(optional)]
    pub revocation_url: Option<String>,
}

/// How a key connection presents its secret upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// In the header `header` (default `X-API-Key`).
    ApiKey,
    /// As `Authorization: Bearer ...`.
    Bearer,
}

/// A new API-key or bearer-token connection.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AddKeyInput {
    pub name: String,
    pub kind: KeyKind,
    pub base_url: String,
    /// `api_key` only; default `X-API-Key`.
    #[serde(default)]
    #[ts(optional)]
    pub header: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub label: Option<String>,
    pub secret: SecretInput,
}

/// The header an API key goes in when the person names none.
pub const DEFAULT_KEY_HEADER: &str = "X-API-Key";

/// A sign-in started: the browser was sent to `authorizationUrl` (the view shows it too, for when
/// no browser opened); the list follows on `gatehouse://connections` when it completes or fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConnectStarted {
    pub connection: String,
    pub authorization_url: String,
    /// False when no browser could be started (the person opens the URL themselves).
    pub browser_opened: bool,
}

/// What disconnecting did upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// The provider revoked the tokens (RFC 7009).
    Ok,
    /// The provider could not be reached or refused; the tokens may still be live there.
    Failed,
    /// The provider has no revocation endpoint (or the connection is a key, which only its
    /// issuer can revoke).
    NotSupported,
}

/// `connection_remove`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemoveResult {
    pub connection: String,
    pub upstream_revocation: Revocation,
    /// Why the revocation failed (no secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub revocation_error: Option<String>,
    /// False when the keyring had no entry for it any more.
    pub keyring_entry_deleted: bool,
}

impl From<Removed> for RemoveResult {
    fn from(r: Removed) -> Self {
        let (upstream_revocation, revocation_error) = match r.upstream_revocation.as_deref() {
            Some("ok") => (Revocation::Ok, None),
            Some(failed) if failed.starts_with("failed") => (
                Revocation::Failed,
                Some(
                    failed
                        .trim_start_matches("failed")
                        .trim_start_matches(':')
                        .trim()
                        .to_owned(),
                ),
            ),
            _ => (Revocation::NotSupported, None),
        };
        Self {
            connection: r.connection.name,
            upstream_revocation,
            revocation_error,
            keyring_entry_deleted: r.keyring_entry_deleted,
        }
    }
}

/// The port of the app's own server, from its issuer (`http://127.0.0.1:PORT`): the provider
/// redirects the browser to its `/connect/callback`.
fn server_port(issuer: &str) -> Result<u16, IpcError> {
    issuer
        .trim_end_matches('/')
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| IpcError::internal(&format!("the issuer {issuer:?} names no port")))
}

fn redirect_uri(d: &Desktop) -> Result<String, IpcError> {
    Ok(ConnectFlows::redirect_uri(server_port(&d.issuer)?))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Starts signing in to an existing OAuth connection again (expired, or another account) with
/// its stored settings.
pub async fn reconnect(d: &Desktop, name: &str) -> Result<StartedFlow, IpcError> {
    let redirect = redirect_uri(d)?;
    Ok(ConnectFlows::shared()
        .start_reconnect(&d.vault, name, None, &redirect)
        .await?)
}

/// Starts connecting a new OAuth account. Nothing is stored until the provider redirects back.
pub async fn connect(d: &Desktop, input: ConnectInput) -> Result<StartedFlow, IpcError> {
    let redirect = redirect_uri(d)?;
    let api_url = non_empty(input.api_url);
    let scopes = input.scopes.map(|s| {
        s.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    });
    let app = if input.provider == CUSTOM_PROVIDER {
        let need = |what: &str, v: Option<String>| {
            non_empty(v)
                .ok_or_else(|| IpcError::invalid(format!("a custom provider needs its {what}")))
        };
        OAuthApp {
            provider: CUSTOM_PROVIDER.to_owned(),
            authorization_url: need("authorization URL", input.authorization_url)?,
            token_url: need("token URL", input.token_url)?,
            revocation_url: non_empty(input.revocation_url),
            client_id: input.client_id.trim().to_owned(),
            scopes: scopes.unwrap_or_default(),
            api_base_url: need("API URL", api_url)?,
        }
    } else {
        OAuthApp::preset(
            &input.provider,
            input.client_id.trim(),
            scopes,
            api_url.as_deref(),
        )?
    };
    let request = ConnectRequest {
        name: input.name.trim().to_owned(),
        label: non_empty(input.label).unwrap_or_default(),
        app,
        client_secret: input
            .client_secret
            .map(|s| s.0)
            .filter(|s| !s.expose().is_empty()),
    };
    Ok(ConnectFlows::shared()
        .start(&d.vault, request, &redirect)
        .await?)
}

/// Adds an API-key or bearer connection; the secret goes to the keyring only.
pub async fn add_key(d: &Desktop, input: AddKeyInput) -> Result<ConnectionView, IpcError> {
    let name = input.name.trim();
    let label = non_empty(input.label).unwrap_or_default();
    let SecretInput(secret) = input.secret;
    let row = match input.kind {
        KeyKind::ApiKey => {
            let header = non_empty(input.header).unwrap_or_else(|| DEFAULT_KEY_HEADER.into());
            d.vault
                .add_api_key(name, input.base_url.trim(), &header, &label, secret)
                .await?
        }
        KeyKind::Bearer => {
            d.vault
                .add_bearer(name, input.base_url.trim(), &label, secret)
                .await?
        }
    };
    d.forget_vault_status();
    Ok(row.into())
}

/// Disconnects: revokes at the provider where it can, deletes the keyring entry and the row.
pub async fn remove(d: &Desktop, name: &str) -> Result<RemoveResult, IpcError> {
    let removed = d.vault.remove(name, BY).await?;
    d.forget_vault_status();
    Ok(removed.into())
}

/// Opens `url` in the person's default browser without waiting for it.
fn open_in_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reaped off the async runtime: xdg-open may wait for the browser.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(e) => {
            // The URL is not logged: it carries the flow's `state`.
            tracing::warn!(opener, error = %e, "cannot open the browser for a sign-in");
            false
        }
    }
}

async fn emit_list(app: &AppHandle) {
    let d = app.state::<Desktop>();
    match ops::connections_list(&d).await {
        Ok(list) => {
            if let Err(e) = app.emit(CONNECTIONS_EVENT, list) {
                tracing::warn!(event = CONNECTIONS_EVENT, error = %e, "cannot emit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the connections"),
    }
}

/// Sends the browser to the provider and, in the background, announces the list once the flow
/// completes or fails (the provider's redirect arrives at the app's own server).
fn follow(app: AppHandle, flow: StartedFlow) -> ConnectStarted {
    let StartedFlow {
        authorization_url,
        connection,
        completion,
        ..
    } = flow;
    let browser_opened = open_in_browser(&authorization_url);
    let name = connection.clone();
    tauri::async_runtime::spawn(async move {
        watch(&name, completion).await;
        app.state::<Desktop>().forget_vault_status();
        emit_list(&app).await;
    });
    ConnectStarted {
        connection,
        authorization_url,
        browser_opened,
    }
}

/// Waits for a flow's outcome and logs it (the messages carry no secrets). An abandoned flow is
/// only reaped when another flow starts or a callback arrives, so the wait gives up a little after
/// flows expire rather than holding a task until then.
async fn watch(name: &str, completion: FlowCompletion) {
    let give_up = FLOW_TTL + Duration::from_secs(30);
    match tokio::time::timeout(give_up, completion.wait()).await {
        Ok(Ok(row)) => tracing::info!(connection = name, status = %row.status, "sign-in completed"),
        Ok(Err(e)) => tracing::info!(connection = name, error = %e, "sign-in did not complete"),
        Err(_) => tracing::info!(connection = name, "sign-in abandoned (expired)"),
    }
}

#[tauri::command]
pub async fn connection_reconnect(
    app: AppHandle,
    d: State<'_, Desktop>,
    name: String,
) -> Result<ConnectStarted, IpcError> {
    let flow = reconnect(&d, &name).await?;
    Ok(follow(app, flow))
}

#[tauri::command]
pub async fn connection_connect(
    app: AppHandle,
    d: State<'_, Desktop>,
    input: ConnectInput,
) -> Result<ConnectStarted, IpcError> {
    let flow = connect(&d, input).await?;
    Ok(follow(app, flow))
}

#[tauri::command]
pub async fn connection_add_key(
    app: AppHandle,
    d: State<'_, Desktop>,
    input: AddKeyInput,
) -> Result<ConnectionView, IpcError> {
    let added = add_key(&d, input).await?;
    emit_list(&app).await;
    Ok(added)
}

#[tauri::command]
pub async fn connection_remove(
    app: AppHandle,
    d: State<'_, Desktop>,
    name: String,
) -> Result<RemoveResult, IpcError> {
    let removed = remove(&d, &name).await?;
    emit_list(&app).await;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use gatehouse_core::store::connections as connection_rows;
    use gatehouse_core::vault::{
        CredentialStore, KeyringStore, MemoryStore, Vault, VaultError, keyring_user,
    };
    use gatehouse_server::instance::{Instance, InstanceOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::error::IpcErrorCode;

    /// A real instance (lock, store, server on 127.0.0.1:0) on a temp dir, its vault over `keys`
    /// (the OS keyring when `None`).
    async fn desktop(keys: Option<Arc<MemoryStore>>) -> (tempfile::TempDir, Desktop) {
        let dir = tempfile::tempdir().expect("tempdir");
        let instance = Instance::start(InstanceOptions {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("addr"),
            approval_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .expect("instance starts");
        let mut d = Desktop::new(instance);
        if let Some(keys) = keys {
            d.vault = Vault::new(d.store.clone(), keys);
        }
        (dir, d)
    }

    async fn stop(d: Desktop) {
        d.take_instance().expect("running").shutdown().await;
    }

    fn real_keyring() -> bool {
        if std::env::var_os("GATEHOUSE_TEST_KEYRING").is_some() {
            return true;
        }
        eprintln!("skipped: needs the headless keyring session of scripts/test.sh");
        false
    }

    fn in_os_keyring(user: &str) -> bool {
        KeyringStore::new().get(user).is_ok_and(|s| s.is_some())
    }

    fn unique(prefix: &str) -> String {
        gatehouse_core::secret::random_id(prefix)
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    }

    fn key_input(name: &str, kind: KeyKind, secret: &str) -> AddKeyInput {
        AddKeyInput {
            name: name.into(),
            kind,
            base_url: "https://api.example.com/v1".into(),
            header: None,
            label: Some("work".into()),
            secret: SecretInput::from(secret.to_owned()),
        }
    }

    fn code(e: IpcError) -> IpcErrorCode {
        e.code
    }

    /// A GET to the instance's own server; (status, body).
    async fn get(port: u16, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("writes");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("reads");
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    /// A loopback OAuth provider with a token endpoint (`/token`, always issues tokens) and an
    /// RFC 7009 revocation endpoint (`/revoke`); it records each request's line and body.
    struct Provider {
        port: u16,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Provider {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            let port = listener.local_addr().expect("addr").port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = seen.clone();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    let log = log.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        let (head_end, length) = loop {
                            let n = s.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                break (i + 4, length);
                            }
                        };
                        while buf.len() < head_end + length {
                            let n = s.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let line = String::from_utf8_lossy(&buf[..head_end])
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
                        let reply = if line.contains("/token") {
                            r#"{"access_token":"upstream-access","token_type":"Bearer","expires_in":3600,"refresh_token":"upstream-refresh","scope":"read"}"#
                        } else {
                            ""
                        };
                        if let Ok(mut l) = log.lock() {
                            l.push(format!("{line} {body}"));
                        }
                        let _ = s
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                     Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                                    reply.len()
                                )
                                .as_bytes(),
                            )
                            .await;
                    });
                }
            });
            Self { port, seen }
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        fn requests(&self, needle: &str) -> usize {
            self.seen
                .lock()
                .map(|l| l.iter().filter(|r| r.contains(needle)).count())
                .unwrap_or(0)
        }
    }

    fn custom(name: &str, p: &Provider) -> ConnectInput {
        ConnectInput {
            name: name.into(),
            provider: CUSTOM_PROVIDER.into(),
            client_id: "desktop-test-client".into(),
            client_secret: None,
            scopes: Some(vec!["read".into()]),
            label: Some("personal".into()),
            api_url: Some(p.url("/api")),
            authorization_url: Some(p.url("/authorize")),
            token_url: Some(p.url("/token")),
            revocation_url: Some(p.url("/revoke")),
        }
    }

    /// The `state` of an authorization URL, after checking it sends the browser back to the
    /// app's own server.
    fn state_of(flow: &StartedFlow, d: &Desktop) -> String {
        let url = url::Url::parse(&flow.authorization_url).expect("authorization url");
        let param = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        let port = server_port(&d.issuer).expect("port");
        assert_eq!(
            param("redirect_uri").as_deref(),
            Some(format!("http://127.0.0.1:{port}/connect/callback").as_str())
        );
        assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
        param("state").expect("state")
    }

    /// The provider's redirect back to the app's server, as the browser would follow it.
    async fn callback(d: &Desktop, query: &str) -> u16 {
        let port = server_port(&d.issuer).expect("port");
        get(port, &format!("/connect/callback?{query}")).await.0
    }

    /// Connect → expired → reconnect (one click: stored settings) → disconnect revoked upstream,
    /// all through the app's own server's callback.
    async fn oauth_round_trip(d: &Desktop, has_entry: impl Fn(&str) -> bool) {
        let p = Provider::start().await;
        let name = unique("oauth");

        let flow = connect(d, custom(&name, &p)).await.expect("starts");
        assert_eq!(flow.connection, name);
        let state = state_of(&flow, d);
        assert!(flow.authorization_url.starts_with(&p.url("/authorize?")));
        assert_eq!(callback(d, &format!("state={state}&code=c1")).await, 200);
        let row = flow.completion.wait().await.expect("connected");
        assert_eq!(
            (row.kind.as_str(), row.status.as_str()),
            ("oauth", "active")
        );
        assert_eq!(p.requests("POST /token"), 1);
        assert!(has_entry(&keyring_user(&name)));
        assert_eq!(
            code(connect(d, custom(&name, &p)).await.unwrap_err()),
            IpcErrorCode::Conflict,
            "the name is taken"
        );

        // A failed refresh would do this; the view then offers Reconnect.
        let expired = {
            let name = name.clone();
            d.store
                .write(move |tx| -> Result<bool, VaultError> {
                    Ok(connection_rows::mark_expired(
                        tx.conn(),
                        &name,
                        "invalid_grant",
                    )?)
                })
                .await
                .expect("marks expired")
        };
        assert!(expired);

        let flow = reconnect(d, &name).await.expect("reconnect starts");
        let state = state_of(&flow, d);
        // The same provider, client and scopes as stored: nothing to fill in again.
        assert!(
            flow.authorization_url
                .contains("client_id=desktop-test-client")
        );
        assert!(flow.authorization_url.contains("scope=read"));
        assert_eq!(callback(d, &format!("state={state}&code=c2")).await, 200);
        let row = flow.completion.wait().await.expect("reconnected");
        assert_eq!(row.status, "active");
        assert_eq!(p.requests("POST /token"), 2);
        // A used state is refused and changes nothing.
        assert_ne!(callback(d, &format!("state={state}&code=c3")).await, 200);

        let removed = remove(d, &name).await.expect("removes");
        assert_eq!(removed.upstream_revocation, Revocation::Ok);
        assert!(removed.keyring_entry_deleted);
        assert_eq!(p.requests("POST /revoke"), 2, "refresh and access token");
        assert!(!has_entry(&keyring_user(&name)));
        assert!(
            !ops::connections_list(d)
                .await
                .expect("lists")
                .iter()
                .any(|c| c.name == name)
        );
        assert_eq!(
            code(remove(d, &name).await.unwrap_err()),
            IpcErrorCode::NotFound
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn oauth_connect_reconnect_and_disconnect() {
        let keys = Arc::new(MemoryStore::new());
        let (_dir, d) = desktop(Some(keys.clone())).await;
        oauth_round_trip(&d, |user| keys.contains(user)).await;
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn oauth_round_trip_against_the_os_keyring() {
        if !real_keyring() {
            return;
        }
        let (_dir, d) = desktop(None).await;
        oauth_round_trip(&d, in_os_keyring).await;
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refused_sign_in_stores_nothing() {
        let keys = Arc::new(MemoryStore::new());
        let (_dir, d) = desktop(Some(keys.clone())).await;
        let p = Provider::start().await;
        let name = unique("denied");
        let flow = connect(&d, custom(&name, &p)).await.expect("starts");
        let state = state_of(&flow, &d);
        callback(&d, &format!("state={state}&error=access_denied")).await;
        let outcome = flow.completion.wait().await;
        assert!(outcome.is_err(), "{outcome:?}");
        assert_eq!(ops::connections_list(&d).await.expect("lists"), Vec::new());
        assert!(!keys.contains(&keyring_user(&name)));
        assert_eq!(p.requests("/token"), 0);
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn connect_input_is_checked() {
        let (_dir, d) = desktop(Some(Arc::new(MemoryStore::new()))).await;
        let p = Provider::start().await;
        let mut no_token_url = custom("c", &p);
        no_token_url.token_url = Some("  ".into());
        let e = connect(&d, no_token_url).await.unwrap_err();
        assert_eq!(e.code, IpcErrorCode::InvalidInput);
        assert!(e.message.contains("token URL"), "{}", e.message);

        let mut unknown = custom("c", &p);
        unknown.provider = "myspace".into();
        assert_eq!(
            code(connect(&d, unknown).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );

        let mut plain_http = custom("c", &p);
        plain_http.token_url = Some("http://provider.example/token".into());
        assert_eq!(
            code(connect(&d, plain_http).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );

        let mut bad_name = custom("c", &p);
        bad_name.name = "no spaces/or slashes".into();
        assert_eq!(
            code(connect(&d, bad_name).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );

        // A preset needs only the client id; its endpoints and default scopes come with it.
        let preset = ConnectInput {
            name: "gh".into(),
            provider: "github".into(),
            client_id: "Iv1.abc".into(),
            client_secret: Some(SecretInput::from(String::new())),
            scopes: None,
            label: None,
            api_url: None,
            authorization_url: None,
            token_url: None,
            revocation_url: None,
        };
        let flow = connect(&d, preset).await.expect("starts");
        assert!(
            flow.authorization_url
                .starts_with("https://github.com/login/oauth/authorize?"),
            "{}",
            flow.authorization_url
        );
        assert!(flow.authorization_url.contains("scope=read%3Auser"));
        stop(d).await;
    }

    /// Add, refuse a taken name, list, disconnect (nothing to revoke upstream for a key).
    async fn key_round_trip(d: &Desktop, has_entry: impl Fn(&str) -> bool) {
        let name = unique("key");
        let added = add_key(d, key_input(&name, KeyKind::ApiKey, "sk-desktop-test"))
            .await
            .expect("adds");
        assert_eq!(added.kind, "api_key");
        assert_eq!(added.header_name.as_deref(), Some(DEFAULT_KEY_HEADER));
        assert_eq!(added.label, "work");
        assert!(has_entry(&keyring_user(&name)));
        let json = serde_json::to_string(&added).expect("serializes");
        assert!(!json.contains("sk-desktop-test"), "{json}");

        let taken = add_key(d, key_input(&name, KeyKind::Bearer, "other"))
            .await
            .unwrap_err();
        assert_eq!(taken.code, IpcErrorCode::Conflict);

        let bearer = unique("bearer");
        let b = add_key(d, key_input(&bearer, KeyKind::Bearer, "tok-desktop-test"))
            .await
            .expect("adds");
        assert_eq!((b.kind.as_str(), b.header_name), ("bearer", None));
        let names: Vec<String> = ops::connections_list(d)
            .await
            .expect("lists")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(
            names.contains(&name) && names.contains(&bearer),
            "{names:?}"
        );

        for n in [&name, &bearer] {
            let removed = remove(d, n).await.expect("removes");
            assert_eq!(removed.upstream_revocation, Revocation::NotSupported);
            assert_eq!(removed.revocation_error, None);
            assert!(removed.keyring_entry_deleted);
            assert!(!has_entry(&keyring_user(n)));
        }
        assert_eq!(
            code(remove(d, &name).await.unwrap_err()),
            IpcErrorCode::NotFound
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn key_connections_add_and_remove() {
        let keys = Arc::new(MemoryStore::new());
        let (_dir, d) = desktop(Some(keys.clone())).await;
        key_round_trip(&d, |user| keys.contains(user)).await;
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn key_connections_against_the_os_keyring() {
        if !real_keyring() {
            return;
        }
        let (_dir, d) = desktop(None).await;
        key_round_trip(&d, in_os_keyring).await;
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn key_input_is_checked() {
        let (_dir, d) = desktop(Some(Arc::new(MemoryStore::new()))).await;
        let mut bad_url = key_input("k", KeyKind::ApiKey, "s");
        bad_url.base_url = "not a url".into();
        assert_eq!(
            code(add_key(&d, bad_url).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );
        let empty = key_input("k", KeyKind::ApiKey, "");
        assert_eq!(
            code(add_key(&d, empty).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );
        let mut bad_header = key_input("k", KeyKind::ApiKey, "s");
        bad_header.header = Some("X Bad: header".into());
        assert_eq!(
            code(add_key(&d, bad_header).await.unwrap_err()),
            IpcErrorCode::InvalidInput
        );
        assert_eq!(ops::connections_list(&d).await.expect("lists"), Vec::new());
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_sealed_vault_is_vault_sealed_and_changes_nothing() {
        let keys = Arc::new(MemoryStore::new());
        let (_dir, d) = desktop(Some(keys.clone())).await;
        add_key(&d, key_input("kept", KeyKind::Bearer, "s"))
            .await
            .expect("adds while unsealed");
        keys.set_sealed(true);

        let e = add_key(&d, key_input("new", KeyKind::ApiKey, "s"))
            .await
            .unwrap_err();
        assert_eq!(e.code, IpcErrorCode::VaultSealed);
        assert!(e.message.contains("unlock your keyring"), "{}", e.message);
        let p = Provider::start().await;
        assert_eq!(
            code(connect(&d, custom("new", &p)).await.unwrap_err()),
            IpcErrorCode::VaultSealed
        );
        // Removing would orphan the secret in the keyring: refused, the row stays.
        assert_eq!(
            code(remove(&d, "kept").await.unwrap_err()),
            IpcErrorCode::VaultSealed
        );
        let names: Vec<String> = ops::connections_list(&d)
            .await
            .expect("lists while sealed")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["kept".to_owned()]);
        // Unknown names are not found before the keyring is asked.
        assert_eq!(
            code(reconnect(&d, "nope").await.unwrap_err()),
            IpcErrorCode::NotFound
        );
        assert_eq!(
            code(remove(&d, "nope").await.unwrap_err()),
            IpcErrorCode::NotFound
        );
        stop(d).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_oauth_connections_reconnect() {
        let (_dir, d) = desktop(Some(Arc::new(MemoryStore::new()))).await;
        add_key(&d, key_input("k", KeyKind::Bearer, "s"))
            .await
            .expect("adds");
        let e = reconnect(&d, "k").await.unwrap_err();
        assert_eq!(e.code, IpcErrorCode::InvalidInput);
        assert_eq!(
            code(reconnect(&d, "nope").await.unwrap_err()),
            IpcErrorCode::NotFound
        );
        stop(d).await;
    }

    #[test]
    fn inputs_cross_in_camel_case_and_the_secret_stays_hidden() {
        let input: AddKeyInput = serde_json::from_value(serde_json::json!({
            "name": "k", "kind": "api_key", "baseUrl": "https://x.example", "secret": "hunter2-secret"
        }))
        .expect("parses");
        assert_eq!(input.kind, KeyKind::ApiKey);
        assert_eq!(input.base_url, "https://x.example");
        assert!(!format!("{input:?}").contains("hunter2"), "{input:?}");
        assert!(
            serde_json::from_value::<AddKeyInput>(serde_json::json!({
                "name": "k", "kind": "password", "baseUrl": "https://x.example", "secret": "s"
            }))
            .is_err()
        );
        let c: ConnectInput = serde_json::from_value(serde_json::json!({
            "name": "g", "provider": "google", "clientId": "id", "clientSecret": "shh-secret",
            "apiUrl": "https://www.googleapis.com"
        }))
        .expect("parses");
        assert_eq!(c.client_id, "id");
        assert!(!format!("{c:?}").contains("shh-secret"));
    }

    #[test]
    fn revocation_outcomes_and_ports() {
        let removed = |r: Option<&str>| Removed {
            connection: gatehouse_core::store::connections::ConnectionRow {
                id: 1,
                name: "c".into(),
                kind: "oauth".into(),
                provider: "custom".into(),
                label: String::new(),
                base_url: "https://x.example".into(),
                header_name: None,
                scopes: vec![],
                status: "active".into(),
                keyring_ref: "connection:c".into(),
                created_at: 0,
                expires_at: None,
                last_used_at: None,
            },
            keyring_entry_deleted: true,
            upstream_revocation: r.map(str::to_owned),
        };
        let r = RemoveResult::from(removed(Some("failed: access token: 500")));
        assert_eq!(r.upstream_revocation, Revocation::Failed);
        assert_eq!(r.revocation_error.as_deref(), Some("access token: 500"));
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["upstreamRevocation"], "failed");
        assert_eq!(v["keyringEntryDeleted"], true);
        assert_eq!(
            RemoveResult::from(removed(Some("ok"))).upstream_revocation,
            Revocation::Ok
        );
        assert_eq!(
            RemoveResult::from(removed(Some("not_supported"))).upstream_revocation,
            Revocation::NotSupported
        );
        assert_eq!(
            RemoveResult::from(removed(None)).upstream_revocation,
            Revocation::NotSupported
        );
        assert_eq!(server_port("http://127.0.0.1:8737").expect("port"), 8737);
        assert_eq!(server_port("http://127.0.0.1:41000/").expect("port"), 41000);
        assert!(server_port("http://127.0.0.1").is_err());
    }
}
