//! The desktop app end to end: the real `gatehouse-desktop` in a headless session (Xvfb,
//! `dbus-run-session`, a throwaway gnome-keyring) with a test-owned notification daemon, its tray
//! driven through `com.canonical.dbusmenu`, and its windows through tauri-driver/WebKitWebDriver.
//! Agents talk to it over loopback HTTP as they would to `gatehouse serve`.
//!
//! The tests run one at a time (one notification daemon name and one tray per bus), each on its
//! own temp data dir. Run them through `scripts/test.sh`; without a display and a session bus they
//! fail, saying so.

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_e2e::desktop::notifications::{ACTION_DELAY, NotificationDaemon};
use gatehouse_e2e::desktop::tray::Tray;
use gatehouse_e2e::desktop::webdriver::{Session, TauriDriver};
use gatehouse_e2e::desktop::{self, App, eventually, x11};
use gatehouse_e2e::flow::{self, Client};
use gatehouse_e2e::reply::{Reply, send};
use gatehouse_e2e::{Server, pkce_pair, run_cli};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

const CIBA: &str = "urn:openid:params:grant-type:ciba";
const RECIPIENT: &str = "alex@contractor.example";
/// The main window's title (the consent window's is "Gatehouse — approval").
const MAIN_TITLE: &str = "Gatehouse";

// ---- agents -------------------------------------------------------------------------------------

/// A registered agent, confidential (it can introspect its own tokens).
#[derive(Debug, Clone)]
struct Agent {
    id: String,
    secret: String,
}

impl Agent {
    fn as_client(&self) -> Client {
        Client {
            client_id: self.id.clone(),
            client_secret: Some(self.secret.clone()),
            redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
        }
    }
}

/// Registers a confidential agent named `name` allowed `grants`.
async fn register(http: &reqwest::Client, issuer: &str, name: &str, grants: &[&str]) -> Agent {
    let req = http.post(format!("{issuer}/register")).json(&json!({
        "client_name": name,
        "redirect_uris": ["http://127.0.0.1:9/callback"],
        "grant_types": grants,
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "native",
    }));
    let body = send("POST /register", req)
        .await
        .expect_json(StatusCode::CREATED);
    Agent {
        id: body["client_id"].as_str().expect("client_id").to_owned(),
        secret: body["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    }
}

async fn agent_post(
    http: &reqwest::Client,
    issuer: &str,
    path: &str,
    agent: &Agent,
    form: &[(&str, &str)],
) -> Reply {
    let req = http
        .post(format!("{issuer}{path}"))
        .basic_auth(&agent.id, Some(&agent.secret))
        .form(form);
    send(&format!("POST {path}"), req).await
}

/// The email an agent asks to send in the CIBA tests.
fn email_details() -> String {
    json!([{
        "type": "message_send",
        "channel": "email",
        "recipients": [RECIPIENT],
        "subject": "Q3 budget deck",
    }])
    .to_string()
}

/// `/bc-authorize` for the email; returns the `auth_req_id`.
async fn ask_to_send_email(http: &reqwest::Client, issuer: &str, agent: &Agent) -> String {
    let details = email_details();
    let ack = agent_post(
        http,
        issuer,
        "/bc-authorize",
        agent,
        &[
            ("login_hint", "me"),
            ("scope", "mail.send"),
            ("binding_message", "Send Q3 budget deck"),
            ("authorization_details", &details),
        ],
    )
    .await
    .expect_json(StatusCode::OK);
    ack["auth_req_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no auth_req_id: {ack}"))
        .to_owned()
}

async fn ciba_poll(http: &reqwest::Client, issuer: &str, agent: &Agent, handle: &str) -> Reply {
    agent_post(
        http,
        issuer,
        "/token",
        agent,
        &[("grant_type", CIBA), ("auth_req_id", handle)],
    )
    .await
}

/// Polls (at the 1 s interval) until the answer is not `authorization_pending`.
async fn ciba_poll_until_done(
    http: &reqwest::Client,
    issuer: &str,
    agent: &Agent,
    handle: &str,
) -> Reply {
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let r = ciba_poll(http, issuer, agent, handle).await;
        if !(r.status == StatusCode::BAD_REQUEST && r.json()["error"] == "authorization_pending") {
            return r;
        }
    }
    panic!("the CIBA request is still pending after 30 polls");
}

/// GET /authorize for `agent` with `scope`; returns the waiting-page URL (asserting the 303 to
/// it), the approval id and the PKCE verifier.
async fn ask_consent(
    http: &reqwest::Client,
    issuer: &str,
    agent: &Agent,
    scope: &str,
) -> (String, String, String) {
    let (verifier, challenge) = pkce_pair();
    let res = flow::authorize_request(http, issuer, &agent.as_client(), &challenge, "st-desk")
        .query(&[("scope", scope)])
        .send()
        .await
        .expect("GET /authorize");
    let waiting = flow::location(&res);
    assert!(
        waiting.starts_with(&format!("{issuer}/consent/")),
        "/authorize should send the browser to the waiting page, not to {waiting}"
    );
    let id = flow::approval_id(&waiting);
    (waiting, id, verifier)
}

/// Follows the waiting page until it stops waiting; returns where it sends the browser.
async fn waiting_page_outcome(http: &reqwest::Client, waiting: &str) -> String {
    eventually(
        "the waiting page to send the browser back",
        Duration::from_secs(15),
        || async {
            let res = http.get(waiting).send().await.expect("GET waiting page");
            (res.status() == StatusCode::SEE_OTHER).then(|| flow::location(&res))
        },
    )
    .await
}

async fn introspect(http: &reqwest::Client, issuer: &str, agent: &Agent, token: &str) -> Value {
    agent_post(http, issuer, "/introspect", agent, &[("token", token)])
        .await
        .expect_json(StatusCode::OK)
}

/// The approvals as `gatehouse approvals --json` reports them (the CLI reads the same SQLite
/// file while the app runs).
fn approvals_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["approvals", "--json"];
    args.extend_from_slice(extra);
    let out = run_cli(dir, &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`gatehouse approvals --json` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("`approvals --json` is not JSON ({e}): {text}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn approval(dir: &Path, id: &str) -> Value {
    approvals_json(dir, &[])
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("approval {id} not listed by `gatehouse approvals`"))
}

/// The one approval `gatehouse approvals` lists for `client_id`.
fn approval_of(dir: &Path, client_id: &str) -> Value {
    let list: Vec<Value> = approvals_json(dir, &[])
        .into_iter()
        .filter(|a| a["client_id"] == client_id)
        .collect();
    assert_eq!(list.len(), 1, "one approval for {client_id}: {list:#?}");
    list[0].clone()
}

/// Waits until the server answers its metadata document.
async fn server_answers(http: &reqwest::Client, issuer: &str) {
    let url = format!("{issuer}/.well-known/oauth-authorization-server");
    eventually(
        "the app's server to answer",
        Duration::from_secs(30),
        || async {
            let res = http.get(&url).send().await.ok()?;
            (res.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
}

// ---- the app under WebDriver ---------------------------------------------------------------------

/// The app started by tauri-driver (main window shown), on a known port.
struct Ui {
    session: Session,
    issuer: String,
    http: reqwest::Client,
    _driver: TauriDriver,
}

impl Ui {
    async fn start(dir: &Path, extra: &[&str]) -> Ui {
        let driver = TauriDriver::start().await;
        let port = desktop::free_port();
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let session = Session::start(&driver, &desktop::desktop_bin(), &args).await;
        let issuer = format!("http://127.0.0.1:{port}");
        let http = flow::http();
        server_answers(&http, &issuer).await;
        Ui {
            session,
            issuer,
            http,
            _driver: driver,
        }
    }

    /// Switches to the main window: the one with the navigation (a consent window closing
    /// itself may still be listed, blank).
    async fn main_window(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for handle in self.session.window_handles().await {
                self.session.switch_to_window(&handle).await;
                if self
                    .session
                    .try_find("[data-testid=nav-approvals]")
                    .await
                    .is_some()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no main window with the navigation within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Switches to the consent window of approval `id` and waits for it to render.
    async fn consent_window(&self, id: &str) {
        self.session
            .switch_to_window_where(
                &format!("consent for {id}"),
                Duration::from_secs(20),
                |url, _| url.contains(&format!("#/consent/{id}")),
            )
            .await;
        self.session
            .wait_for(
                &format!("[data-testid=consent][data-approval-id='{id}']"),
                Duration::from_secs(20),
            )
            .await;
    }

    async fn nav(&self, view: &str) {
        let link = self
            .session
            .wait_for(
                &format!("[data-testid=nav-{view}]"),
                Duration::from_secs(10),
            )
            .await;
        self.session.click(&link).await;
    }

    async fn screenshot(&self, name: &str) {
        if let Some(dir) = desktop::screenshot_dir() {
            // Let fonts and transitions settle.
            tokio::time::sleep(Duration::from_millis(600)).await;
            self.session.save_screenshot(&dir.join(name)).await;
        }
    }

    async fn end(self) {
        self.session.end().await;
    }
}

/// Approves consent `id` in its consent window with `untick` unticked; asserts the window shows
/// it approved.
async fn approve_in_consent_window(ui: &Ui, id: &str, untick: &[&str], screenshot: Option<&str>) {
    ui.consent_window(id).await;
    let s = &ui.session;
    let root = format!("[data-testid=consent][data-approval-id='{id}']");
    let boxes = s.find_all(&format!("{root} input[type=checkbox]")).await;
    assert!(
        !boxes.is_empty(),
        "the consent window shows no scope checkboxes"
    );
    for b in &boxes {
        let scope = s.attribute(b, "data-scope").await.expect("data-scope");
        assert_eq!(
            s.attribute(b, "value").await.as_deref(),
            Some(scope.as_str()),
            "each scope checkbox carries the raw scope as its value"
        );
        assert!(s.is_selected(b).await, "{scope} starts ticked");
    }
    for scope in untick {
        let b = s
            .wait_for(
                &format!("{root} input[type=checkbox][data-scope='{scope}']"),
                Duration::from_secs(5),
            )
            .await;
        s.click(&b).await;
        assert!(
            !s.is_selected(&b).await,
            "{scope} is unticked after a click"
        );
    }
    if let Some(name) = screenshot {
        ui.screenshot(name).await;
    }
    let approve = s
        .wait_for(
            &format!("{root} [data-testid=approve]"),
            Duration::from_secs(5),
        )
        .await;
    s.click(&approve).await;
    // The window shows the outcome, then closes itself (1.5 s later in the UI).
    let status = s
        .wait_for(
            &format!("{root}[data-status=approved] [data-testid=consent-status]"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(s.text(&status).await.trim(), "Approved");
}

// ---- the tests ----------------------------------------------------------------------------------

/// `/authorize` → the consent window → one scope unticked → Approve: the agent's code carries only
/// the remaining scopes, and so do its token and introspection.
#[tokio::test(flavor = "multi_thread")]
async fn consent_window_grants_only_the_scopes_left_ticked() {
    let _serial = desktop::serial().await;
    let _notifications = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path(), &[]).await;
    let http = &ui.http;
    let agent = register(http, &ui.issuer, "Claude Code", &["authorization_code"]).await;
    let (waiting, id, verifier) =
        ask_consent(http, &ui.issuer, &agent, "notes:read notes:write mail:send").await;

    approve_in_consent_window(&ui, &id, &["mail:send"], Some("desktop-consent.png")).await;

    let to_client = waiting_page_outcome(http, &waiting).await;
    let code = flow::query_param(&to_client, "code")
        .unwrap_or_else(|| panic!("the approved consent should redirect with a code: {to_client}"));
    let t =
        flow::tokens(flow::exchange(http, &ui.issuer, &agent.as_client(), &code, &verifier).await)
            .await;
    assert_eq!(t["scope"], "notes:read notes:write", "{t}");
    let at = t["access_token"].as_str().expect("access_token");
    let seen = introspect(http, &ui.issuer, &agent, at).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "notes:read notes:write", "{seen}");

    let a = approval(dir.path(), &id);
    assert_eq!(a["status"], "approved", "{a}");
    assert_eq!(a["channel"], "window", "{a}");
    ui.end().await;
}

/// A CIBA request raises one notification naming the recipient with Approve/Deny actions; the
/// daemon answers "approve" and the agent's poll gets the token. The `NotificationClosed` that
/// follows is not a second decision.
#[tokio::test(flavor = "multi_thread")]
async fn ciba_request_approved_from_the_notification() {
    let _serial = desktop::serial().await;
    let daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let app = App::start_hidden(dir.path(), &[]);
    let http = flow::http();
    let agent = register(&http, &app.issuer, "Claude Code", &[CIBA]).await;
    let handle = ask_to_send_email(&http, &app.issuer, &agent).await;

    let n = daemon
        .wait_for(Duration::from_secs(10), |n| {
            n.summary.contains(RECIPIENT) || n.body.contains(RECIPIENT)
        })
        .await;
    assert_eq!(n.app_name, "Gatehouse", "{n:#?}");
    assert!(
        n.summary.contains("Claude Code"),
        "the summary names the agent: {n:#?}"
    );
    assert!(
        n.action_label("approve")
            .is_some_and(|l| l.starts_with("Approve")),
        "an Approve action: {n:#?}"
    );
    assert!(
        n.action_label("deny")
            .is_some_and(|l| l.starts_with("Deny")),
        "a Deny action: {n:#?}"
    );
    assert!(
        n.action_label("default").is_some(),
        "a Details (default) action: {n:#?}"
    );
    let raised = daemon
        .received()
        .into_iter()
        .filter(|m| m.summary.contains(RECIPIENT) || m.body.contains(RECIPIENT))
        .count();
    assert_eq!(
        raised,
        1,
        "one notification per approval: {:#?}",
        daemon.received()
    );

    ciba_poll(&http, &app.issuer, &agent, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
    daemon.invoke_action(n.id, "approve", ACTION_DELAY).await;

    let t = ciba_poll_until_done(&http, &app.issuer, &agent, &handle)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        t["authorization_details"][0]["recipients"][0], RECIPIENT,
        "{t}"
    );
    let seen = introspect(
        &http,
        &app.issuer,
        &agent,
        t["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(seen["active"], true, "{seen}");

    // Decided once, on the notification; the close that followed changed nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = approval_of(dir.path(), &agent.id);
    assert_eq!(a["status"], "approved", "{a}");
    assert_eq!(a["channel"], "notification", "{a}");
    drop(app);
}

/// The tray menu exists from start-up; a pending approval appears in it naming the agent and the
/// recipient, with Approve/Deny/Details; one click on Approve decides it (channel `tray`).
#[tokio::test(flavor = "multi_thread")]
async fn pending_approval_approved_from_the_tray_menu() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let app = App::start_hidden(dir.path(), &[]);
    let tray = Tray::find(app.pid(), Duration::from_secs(20)).await;

    let root = tray
        .wait_for_item("Quit", Duration::from_secs(10), |i| i.label == "Quit")
        .await;
    let _ = root;
    let menu = tray.layout().await;
    let labels = menu.labels();
    assert_eq!(
        labels.first().map(String::as_str),
        Some("Open Gatehouse"),
        "menu: {labels:?}"
    );
    let pause = menu
        .child("Pause all agents")
        .unwrap_or_else(|| panic!("menu: {labels:?}"));
    assert_eq!(pause.toggle_type, "checkmark", "{pause:?}");
    assert_eq!(
        pause.toggle_state, 0,
        "a fresh data dir starts unpaused: {pause:?}"
    );
    let none = menu
        .child("No pending approvals")
        .unwrap_or_else(|| panic!("menu: {labels:?}"));
    assert!(!none.enabled, "{none:?}");
    assert_eq!(
        labels.last().map(String::as_str),
        Some("Quit"),
        "menu: {labels:?}"
    );

    let http = flow::http();
    let agent = register(&http, &app.issuer, "Claude Code", &[CIBA]).await;
    let handle = ask_to_send_email(&http, &app.issuer, &agent).await;
    let entry = tray
        .wait_for_item(
            "an entry for the pending approval",
            Duration::from_secs(10),
            |i| i.label.starts_with("Claude Code: ") && i.label.contains(RECIPIENT),
        )
        .await;
    let children: Vec<&str> = entry.children.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(children, ["Approve", "Deny", "Details"], "{entry:#?}");
    assert!(
        tray.layout().await.child("No pending approvals").is_none(),
        "the placeholder goes while something is pending"
    );
    let approve = entry.child("Approve").expect("Approve").id;
    tray.click(approve).await;

    let t = ciba_poll_until_done(&http, &app.issuer, &agent, &handle)
        .await
        .expect_json(StatusCode::OK);
    assert!(t["access_token"].is_string(), "{t}");
    let a = approval_of(dir.path(), &agent.id);
    assert_eq!(a["status"], "approved", "{a}");
    assert_eq!(a["channel"], "tray", "{a}");
    tray.wait_for_item(
        "the placeholder back once nothing is pending",
        Duration::from_secs(10),
        |i| i.label == "No pending approvals",
    )
    .await;
    drop(app);
}

/// `gatehouse revoke` in another process writes an event that appears in the Activity view
/// within a second.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_written_by_the_cli_appears_in_activity_within_a_second() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path(), &[]).await;
    // Some history first: a consent approved in its window, a code and a token.
    let agent = register(&ui.http, &ui.issuer, "Claude Code", &["authorization_code"]).await;
    let (waiting, id, verifier) =
        ask_consent(&ui.http, &ui.issuer, &agent, "notes:read notes:write").await;
    approve_in_consent_window(&ui, &id, &[], None).await;
    let to_client = waiting_page_outcome(&ui.http, &waiting).await;
    let code = flow::query_param(&to_client, "code").expect("code");
    flow::tokens(flow::exchange(&ui.http, &ui.issuer, &agent.as_client(), &code, &verifier).await)
        .await;
    ui.main_window().await;
    ui.nav("activity").await;
    ui.session
        .wait_for(
            "[data-testid=event-row][data-kind='agent.registered']",
            Duration::from_secs(5),
        )
        .await;

    let out = run_cli(dir.path(), &["revoke", &agent.id]);
    let written = Instant::now();
    assert!(
        out.status.success(),
        "gatehouse revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = ui
        .session
        .wait_for(
            "[data-testid=event-row][data-kind='agent.revoked']",
            Duration::from_secs(5),
        )
        .await;
    let took = written.elapsed();
    assert!(
        took <= Duration::from_millis(1000),
        "the CLI's event took {took:?} to appear in Activity"
    );
    assert!(
        ui.session.attribute(&row, "data-event-id").await.is_some(),
        "event rows carry their id"
    );
    assert!(
        ui.session.is_displayed(&row).await,
        "the new event is shown, not only in the DOM"
    );
    ui.screenshot("desktop-activity.png").await;
    ui.end().await;
}

/// Revoking an agent in the Agents view (with confirmation) kills its token.
#[tokio::test(flavor = "multi_thread")]
async fn revoking_an_agent_in_the_agents_view_kills_its_token() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path(), &[]).await;
    let http = &ui.http;
    let agent = register(
        http,
        &ui.issuer,
        "Claude Code",
        &["authorization_code", "refresh_token"],
    )
    .await;
    let (waiting, id, verifier) = ask_consent(http, &ui.issuer, &agent, "notes:read").await;
    approve_in_consent_window(&ui, &id, &[], None).await;
    let to_client = waiting_page_outcome(http, &waiting).await;
    let code = flow::query_param(&to_client, "code").expect("code");
    let t =
        flow::tokens(flow::exchange(http, &ui.issuer, &agent.as_client(), &code, &verifier).await)
            .await;
    let at = t["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(
        introspect(http, &ui.issuer, &agent, &at).await["active"],
        true
    );

    ui.main_window().await;
    ui.nav("agents").await;
    let card = format!("[data-testid=agent-card][data-client-id='{}']", agent.id);
    ui.session.wait_for(&card, Duration::from_secs(10)).await;
    ui.screenshot("desktop-agents.png").await;
    let revoke = ui
        .session
        .wait_for(
            &format!("{card} [data-testid=agent-revoke]"),
            Duration::from_secs(5),
        )
        .await;
    ui.session.click(&revoke).await;
    let ok = ui
        .session
        .wait_for("[data-testid=confirm-ok]", Duration::from_secs(5))
        .await;
    ui.session.click(&ok).await;

    // Its token is dead: introspection no longer reports it active (the revoked agent cannot
    // even authenticate any more), and its refresh token is refused.
    let rt = t["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    eventually(
        "the token to introspect inactive",
        Duration::from_secs(5),
        || async {
            let r = agent_post(http, &ui.issuer, "/introspect", &agent, &[("token", &at)]).await;
            let body = r.json();
            ((r.status == StatusCode::OK && body == json!({ "active": false }))
                || (r.status == StatusCode::UNAUTHORIZED && body["error"] == "invalid_client"))
                .then_some(())
        },
    )
    .await;
    let r = agent_post(
        http,
        &ui.issuer,
        "/token",
        &agent,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert!(
        matches!(
            r.json()["error"].as_str(),
            Some("invalid_grant" | "invalid_client")
        ),
        "a revoked agent's refresh must fail: {} {}",
        r.status,
        r.body
    );
    ui.end().await;
}

/// Closing the main window hides it: the app stays up and the server keeps answering agents, and
/// a second launch shows it again.
#[tokio::test(flavor = "multi_thread")]
async fn closing_the_main_window_keeps_the_server_answering() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path(), &[]).await;
    ui.main_window().await;
    eventually(
        "the main window to show",
        Duration::from_secs(10),
        || async { x11::is_shown(MAIN_TITLE).then_some(()) },
    )
    .await;
    // The close button: the window manager's WM_DELETE_WINDOW (WebDriver's Close Window would
    // destroy the web view and end the session instead). Without a window manager GTK was seen
    // dropping an early request now and then, so the "click" is repeated, as a person would.
    let mut requests = 0;
    let hidden = loop {
        assert!(
            x11::request_close(MAIN_TITLE) >= 1,
            "no shown main window to close: {:#?}",
            x11::top_levels()
        );
        requests += 1;
        let deadline = Instant::now() + Duration::from_secs(2);
        while x11::is_shown(MAIN_TITLE) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !x11::is_shown(MAIN_TITLE) || requests == 5 {
            break !x11::is_shown(MAIN_TITLE);
        }
    };
    assert!(
        hidden,
        "the main window still shows after {requests} close requests"
    );
    if requests > 1 {
        eprintln!("the main window hid after {requests} close requests");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    server_answers(&ui.http, &ui.issuer).await;
    let agent = register(&ui.http, &ui.issuer, "After close", &[CIBA]).await;
    let handle = ask_to_send_email(&ui.http, &ui.issuer, &agent).await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    ciba_poll(&ui.http, &ui.issuer, &agent, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
    let again = desktop::desktop_command(dir.path(), &[])
        .output()
        .expect("second launch");
    assert!(
        again.status.success(),
        "the second launch exits 0: {again:?}"
    );
    eventually(
        "the main window to show again",
        Duration::from_secs(10),
        || async { x11::is_shown(MAIN_TITLE).then_some(()) },
    )
    .await;
    ui.end().await;
}

/// An approval nobody answers expires: the agent gets `access_denied` (consent) or
/// `expired_token` (CIBA), and the UI shows it expired.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_approval_denies_the_agent_and_shows_expired() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path(), &["--approval-timeout", "4"]).await;
    let http = &ui.http;
    let agent = register(
        http,
        &ui.issuer,
        "Claude Code",
        &["authorization_code", CIBA],
    )
    .await;
    let (waiting, id, _verifier) = ask_consent(http, &ui.issuer, &agent, "notes:read").await;
    let handle = ask_to_send_email(http, &ui.issuer, &agent).await;

    ui.consent_window(&id).await;
    let root = format!("[data-testid=consent][data-approval-id='{id}']");
    let status = ui
        .session
        .wait_for(
            &format!("{root}[data-status=expired] [data-testid=consent-status]"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ui.session.text(&status).await.trim(), "Expired");

    let to_client = waiting_page_outcome(http, &waiting).await;
    assert_eq!(
        flow::query_param(&to_client, "error").as_deref(),
        Some("access_denied"),
        "{to_client}"
    );
    let r = ciba_poll_until_done(http, &ui.issuer, &agent, &handle).await;
    r.expect_status(StatusCode::BAD_REQUEST);
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error == "expired_token" || error == "access_denied",
        "an expired CIBA request answers expired_token or access_denied: {}",
        r.body
    );

    // The main window's history says so too.
    ui.main_window().await;
    ui.nav("approvals").await;
    ui.session
        .wait_for(
            &format!("[data-testid=approval-row][data-approval-id='{id}'][data-status=expired]"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(approval(dir.path(), &id)["status"], "expired");
    ui.end().await;
}

/// A second launch on the same data dir hands over to the first and exits 0; the first keeps
/// running and serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_launch_on_the_same_data_dir_exits_0_and_the_first_keeps_running() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let mut first = App::start_hidden(dir.path(), &[]);
    let http = flow::http();

    let mut second = desktop::desktop_command(dir.path(), &["--hidden", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the second instance");
    let status = gatehouse_e2e::wait_for_exit(&mut second, Duration::from_secs(15))
        .expect("wait")
        .unwrap_or_else(|| {
            let _ = second.kill();
            panic!("the second instance did not exit within 15 s")
        });
    let out = second.wait_with_output().expect("output");
    assert!(
        status.success(),
        "the second instance exits 0, got {status}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("\"listening\""),
        "the second instance must not start a server: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        first.exited().is_none(),
        "the first instance must keep running"
    );
    server_answers(&http, &first.issuer).await;

    // A different data dir is a different instance.
    let other = TempDir::new().expect("temp dir");
    let _ = register(&http, &first.issuer, "still served", &[CIBA]).await;
    let second_app = App::start_hidden(other.path(), &[]);
    assert_ne!(second_app.issuer, first.issuer);
    drop(second_app);
    drop(first);
}

/// SIGTERM stops the app cleanly within a few seconds and releases the data dir: a
/// `gatehouse serve` can start on it right after, and sees what the app stored.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_cleanly_and_releases_the_data_dir() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    // Right after the listening line (the moment scripts and tests learn the app is up), while
    // the windows and the tray may still be starting.
    let early = App::start_hidden(dir.path(), &[]);
    let status = early.stop();
    assert!(
        status.success(),
        "exit 0 on a SIGTERM right after start-up, got {status}"
    );

    let app = App::start_hidden(dir.path(), &[]);
    let http = flow::http();
    let agent = register(&http, &app.issuer, "Before stop", &[CIBA]).await;
    assert!(
        dir.path().join("desktop.sock").exists(),
        "the single-instance socket is in the data dir"
    );
    let asked = Instant::now();
    let status = app.stop();
    assert!(status.success(), "exit 0 on SIGTERM, got {status}");
    assert!(asked.elapsed() <= desktop::STOP_WITHIN);
    assert!(
        !dir.path().join("desktop.sock").exists(),
        "the socket is removed on a clean stop"
    );

    let server = Server::try_start(dir.path(), &[])
        .unwrap_or_else(|e| panic!("gatehouse serve on the released data dir: {e}"));
    let out = run_cli(dir.path(), &["agents", "--json"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&agent.id),
        "the app's agent is in the store"
    );
    server.stop();
}

/// No HTTP route approves anything in the desktop app either: with a consent pending, every
/// plausible approve request over HTTP leaves it pending.
#[tokio::test(flavor = "multi_thread")]
async fn no_http_route_approves_anything() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let dir = TempDir::new().expect("temp dir");
    let app = App::start_hidden(dir.path(), &[]);
    let http = flow::http();
    let agent = register(&http, &app.issuer, "Sneaky agent", &["authorization_code"]).await;
    let (waiting, id, _verifier) = ask_consent(&http, &app.issuer, &agent, "notes:read").await;

    let issuer = app.issuer.clone();
    let form = [
        ("approve", "1"),
        ("decision", "approve"),
        ("id", id.as_str()),
    ];
    let body =
        json!({ "id": id, "approve": true, "decision": { "approve": true, "remember": "always" } });
    let attempts: Vec<reqwest::RequestBuilder> = vec![
        http.post(&waiting).form(&form),
        http.get(format!("{waiting}?approve=1&decision=approve")),
        http.post(format!("{issuer}/authorize")).form(&form),
        http.get(format!("{issuer}/approve/{id}")),
        http.post(format!("{issuer}/approve/{id}")).form(&form),
        http.post(format!("{issuer}/approvals/{id}/approve"))
            .json(&body),
        http.post(format!("{issuer}/api/approvals/{id}/decide"))
            .json(&body),
        http.post(format!("{issuer}/ipc/approval_decide"))
            .json(&body),
        http.post(format!("{issuer}/consent/{id}/approve"))
            .form(&form),
        http.put(&waiting).json(&body),
    ];
    for req in attempts {
        let req = req.header("origin", &issuer).build().expect("request");
        let what = format!("{} {}", req.method(), req.url());
        let res = http.execute(req).await.expect(&what);
        let status = res.status();
        if status == StatusCode::SEE_OTHER {
            let to = flow::location(&res);
            assert!(
                flow::query_param(&to, "code").is_none(),
                "{what} redirected with a code: {to}"
            );
        }
    }
    assert_eq!(approval(dir.path(), &id)["status"], "pending");
    let res = http.get(&waiting).send().await.expect("GET waiting page");
    assert_ne!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the waiting page must still wait"
    );
    drop(app);
}
