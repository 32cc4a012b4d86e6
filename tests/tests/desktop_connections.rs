//! The desktop app's Connections view end to end: the real `gatehouse-desktop` in the headless
//! session (Xvfb, session bus, throwaway gnome-keyring), driven through tauri-driver, connecting
//! to the fake OAuth provider through the app's own loopback callback, then reconnecting an
//! expired connection with one click and disconnecting it (revoked at the provider).
//!
//! The browser the app opens for a sign-in is whatever `xdg-open` finds (usually nothing in the
//! headless session); the test follows the URL the view shows, as a person would paste it. Either
//! way the first visit completes the flow.

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_e2e::desktop::notifications::NotificationDaemon;
use gatehouse_e2e::desktop::webdriver::{Session, TauriDriver};
use gatehouse_e2e::desktop::{self, eventually};
use gatehouse_e2e::fake_provider::{Config, FakeProvider};
use gatehouse_e2e::vault::random_hex;
use tempfile::TempDir;

const CLIENT_ID: &str = "desktop-e2e-client";

/// The app started by tauri-driver (main window shown), on a known port.
struct Ui {
    session: Session,
    _driver: TauriDriver,
}

impl Ui {
    async fn start(dir: &Path) -> Ui {
        let driver = TauriDriver::start().await;
        let port = desktop::free_port();
        let args: Vec<String> = vec![
            "--data-dir".into(),
            dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        let session = Session::start(&driver, &desktop::desktop_bin(), &args).await;
        Ui {
            session,
            _driver: driver,
        }
    }

    /// Switches to the main window (the one with the navigation).
    async fn main_window(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for handle in self.session.window_handles().await {
                self.session.switch_to_window(&handle).await;
                if self
                    .session
                    .try_find("[data-testid=nav-connections]")
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

    async fn click(&self, css: &str) {
        let e = self.session.wait_for(css, Duration::from_secs(10)).await;
        self.session.click(&e).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.session.wait_for(css, Duration::from_secs(10)).await;
        self.session.send_keys(&e, text).await;
    }

    async fn nav(&self, view: &str) {
        self.click(&format!("[data-testid=nav-{view}]")).await;
    }

    /// The row of connection `name` once it shows `status`.
    async fn row_with_status(&self, name: &str, status: &str) {
        self.session
            .wait_for(
                &format!(
                    "[data-testid=connection-row][data-connection='{name}'][data-status='{status}']"
                ),
                Duration::from_secs(20),
            )
            .await;
    }

    /// Follows the sign-in URL the view shows for `name`, as the browser would: the fake
    /// provider redirects back to the app's `/connect/callback` with a code.
    async fn sign_in(&self, name: &str) {
        let shown = self
            .session
            .wait_for(
                &format!(
                    "[data-testid=connection-signin][data-connection='{name}'] \
                     [data-testid=connection-signin-url]"
                ),
                Duration::from_secs(20),
            )
            .await;
        let url = self.session.text(&shown).await;
        assert!(url.contains("code_challenge="), "{url}");
        let browser = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        // A browser xdg-open found may have been first (then this page says the sign-in was
        // already used); the row's status below is what counts.
        let _ = browser.get(&url).send().await.expect("GET the sign-in URL");
    }
}

/// The connection's row in the app's database, set to `expired` as a refused refresh would
/// leave it (the refresh loop would take a minute to get there).
fn expire(dir: &Path, name: &str) {
    let db = rusqlite::Connection::open(dir.join("gatehouse.db")).expect("open the database");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let n = db
        .execute(
            "UPDATE connections SET status = 'expired' WHERE name = ?1",
            [name],
        )
        .expect("update");
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_reconnect_with_one_click_and_disconnect_in_the_connections_view() {
    let _serial = desktop::serial().await;
    let _daemon = NotificationDaemon::start().await;
    let provider = FakeProvider::start(Config {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        code_expires_in: 3600,
        refresh_expires_in: 3600,
        fail_refresh: false,
        fail_revoke: false,
    })
    .await;
    let dir = TempDir::new().expect("temp dir");
    let ui = Ui::start(dir.path()).await;
    let name = format!("e2e-{}", random_hex());

    ui.main_window().await;
    ui.nav("connections").await;
    ui.click("[data-testid=connection-add]").await;
    ui.type_into("[data-testid=connection-name]", &name).await;
    ui.click("[data-testid=connection-provider] option[value=custom]")
        .await;
    let form = "[data-testid=connection-form]";
    for (field, value) in [
        ("clientId", CLIENT_ID.to_owned()),
        ("label", "personal".to_owned()),
        ("scopes", "read write".to_owned()),
        ("apiUrl", provider.url("/api")),
        ("authorizationUrl", provider.url("/authorize")),
        ("tokenUrl", provider.url("/token")),
        ("revocationUrl", provider.url("/revoke")),
    ] {
        ui.type_into(&format!("{form} input[name={field}]"), &value)
            .await;
    }
    ui.click("[data-testid=connection-add-submit]").await;
    ui.sign_in(&name).await;
    ui.row_with_status(&name, "active").await;
    assert_eq!(provider.record(|r| r.code_grants), 1);

    // Expired: the row offers Reconnect; one click signs in again with the stored settings.
    expire(dir.path(), &name);
    ui.nav("approvals").await;
    ui.nav("connections").await;
    ui.row_with_status(&name, "expired").await;
    let row = format!("[data-testid=connection-row][data-connection='{name}']");
    ui.click(&format!("{row} [data-testid=connection-reconnect]"))
        .await;
    ui.sign_in(&name).await;
    ui.row_with_status(&name, "active").await;
    assert_eq!(provider.record(|r| r.code_grants), 2);
    assert!(
        ui.session
            .try_find(&format!("{row} [data-testid=connection-reconnect]"))
            .await
            .is_none(),
        "an active connection offers no Reconnect"
    );

    // Disconnect, confirmed: revoked at the provider, gone from the list, the outcome shown.
    ui.click(&format!("{row} [data-testid=connection-remove]"))
        .await;
    ui.click("[data-testid=confirm-ok]").await;
    // The notice said "Signed in" before; it now tells what the disconnect did upstream.
    let text = eventually(
        "the disconnect's outcome",
        Duration::from_secs(20),
        || async {
            let notice = ui
                .session
                .try_find("[data-testid=connection-notice]")
                .await?;
            let text = ui.session.text(&notice).await;
            text.contains("disconnected").then_some(text)
        },
    )
    .await;
    assert!(text.contains("provider revoked its tokens"), "{text}");
    eventually("the row to disappear", Duration::from_secs(10), || async {
        ui.session.try_find(&row).await.is_none().then_some(())
    })
    .await;
    let revoked = provider.record(|r| r.revoked.len());
    assert_eq!(revoked, 2, "the refresh and the access token");
    ui.session.end().await;
}
