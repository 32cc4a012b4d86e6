//! A small W3C WebDriver client over reqwest, and a `tauri-driver` process guard: the tests open a
//! session whose "browser" is `gatehouse-desktop` itself (tauri-driver starts it under
//! WebKitWebDriver) and drive its windows by CSS selector.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `tauri-driver --port P --native-port N` (which starts WebKitWebDriver on N); killed
/// with its children when dropped.
#[derive(Debug)]
pub struct TauriDriver {
    pub port: u16,
    child: Child,
}

impl TauriDriver {
    /// Starts tauri-driver on free ports and waits until it answers `/status`.
    pub async fn start() -> TauriDriver {
        let bin = std::env::var_os("TAURI_DRIVER").unwrap_or_else(|| "tauri-driver".into());
        let port = super::free_port();
        let native_port = loop {
            let p = super::free_port();
            if p != port {
                break p;
            }
        };
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start tauri-driver ({bin:?}): {e}; install it with \
                     `cargo install tauri-driver --locked` (scripts/setup.sh does) and \
                     WebKitWebDriver (apt: webkit2gtk-driver)"
                )
            });
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[tauri-driver] {line}");
                }
            });
        }
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("tauri-driver exited at start: {status}");
            }
            let up = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
                .is_ok();
            if up {
                return TauriDriver { port, child };
            }
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not answer on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        // SIGTERM lets tauri-driver stop WebKitWebDriver (its child) before it goes.
        super::send_signal(self.child.id(), "TERM");
        if !matches!(
            crate::wait_for_exit(&mut self.child, Duration::from_secs(5)),
            Ok(Some(_))
        ) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An error answer of a WebDriver command (`value.error`, `value.message`).
#[derive(Debug, Clone)]
pub struct WebDriverError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

/// One element of the page.
#[derive(Debug, Clone)]
pub struct Element {
    pub id: String,
}

/// A WebDriver session on the app.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    pub id: String,
    /// What the driver answered at session creation.
    pub capabilities: Value,
}

impl Session {
    /// Opens a session that launches `application` with `args` (tauri-driver's
    /// `tauri:options`).
    pub async fn start(driver: &TauriDriver, application: &Path, args: &[String]) -> Session {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "wry",
                    "tauri:options": {
                        "application": application,
                        "args": args,
                    }
                }
            }
        });
        let base = driver.url();
        let res = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("POST /session");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "new WebDriver session: {status} {body}"
        );
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {body}"))
            .to_owned();
        Session {
            http,
            base,
            id,
            capabilities: body["value"]["capabilities"].clone(),
        }
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let url = format!("{}/session/{}{path}", self.base, self.id);
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| WebDriverError {
            status: 0,
            error: "transport".into(),
            message: e.to_string(),
        })?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body["value"].clone())
        } else {
            Err(WebDriverError {
                status,
                error: body["value"]["error"].as_str().unwrap_or("").to_owned(),
                message: body["value"]["message"].as_str().unwrap_or("").to_owned(),
            })
        }
    }

    async fn get(&self, path: &str) -> Result<Value, WebDriverError> {
        self.command(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WebDriverError> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Every element matching the CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await
            .unwrap_or_else(|e| panic!("find elements {css}: {e:?}"));
        found
            .as_array()
            .map(|a| a.iter().filter_map(element_of).collect())
            .unwrap_or_default()
    }

    /// The first element matching the CSS selector, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.post("/element", json!({ "using": "css selector", "value": css }))
            .await
            .ok()
            .as_ref()
            .and_then(element_of)
    }

    /// Waits up to `timeout` for an element matching the CSS selector.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if Instant::now() >= deadline {
                let html = self
                    .execute(
                        "return document.body ? document.body.outerHTML : ''",
                        json!([]),
                    )
                    .await
                    .unwrap_or_default();
                let html: String = html.as_str().unwrap_or("").chars().take(4000).collect();
                panic!("no element {css} within {timeout:?}; page: {html}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` for elements matching the CSS selector until `pred` accepts one of
    /// them; returns it.
    pub async fn wait_for_element_where<F, Fut>(
        &self,
        css: &str,
        timeout: Duration,
        pred: F,
    ) -> Element
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Option<Element>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            for e in self.find_all(css).await {
                if let Some(hit) = pred(e).await {
                    return hit;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {css} element matched within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Elements matching `css` inside `parent`.
    pub async fn find_in(&self, parent: &Element, css: &str) -> Vec<Element> {
        let found = self
            .post(
                &format!("/element/{}/elements", parent.id),
                json!({ "using": "css selector", "value": css }),
            )
            .await
            .unwrap_or_else(|e| panic!("find {css} in an element: {e:?}"));
        found
            .as_array()
            .map(|a| a.iter().filter_map(element_of).collect())
            .unwrap_or_default()
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.id), json!({}))
            .await
            .unwrap_or_else(|err| panic!("click: {err:?}"));
    }

    /// Types `text` into the element (WebDriver key codes, e.g. `"\u{E00C}"` is Escape).
    pub async fn send_keys(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.id), json!({ "text": text }))
            .await
            .unwrap_or_else(|err| panic!("send keys: {err:?}"));
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.id))
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// An attribute (`None` when absent).
    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.id))
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Whether the element is rendered visibly (WebDriver "Is Element Displayed").
    pub async fn is_displayed(&self, e: &Element) -> bool {
        self.get(&format!("/element/{}/displayed", e.id))
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Whether a checkbox or radio is checked.
    pub async fn is_selected(&self, e: &Element) -> bool {
        self.get(&format!("/element/{}/selected", e.id))
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the current window.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value, WebDriverError> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The handles of the app's open windows.
    pub async fn window_handles(&self) -> Vec<String> {
        self.get("/window/handles")
            .await
            .ok()
            .and_then(|v| {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    pub async fn current_window(&self) -> Option<String> {
        self.get("/window")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Switches to window `handle`; a window that closed meanwhile is not an error (the next
    /// command says so).
    pub async fn switch_to_window(&self, handle: &str) {
        let _ = self.post("/window", json!({ "handle": handle })).await;
    }

    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for a window whose URL or title `pred` accepts, and switches to it.
    pub async fn switch_to_window_where(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str, &str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            seen.clear();
            for handle in self.window_handles().await {
                if self
                    .post("/window", json!({ "handle": handle }))
                    .await
                    .is_err()
                {
                    continue;
                }
                let (url, title) = (self.url().await, self.title().await);
                if pred(&url, &title) {
                    return handle;
                }
                seen.push((handle, url, title));
            }
            assert!(
                Instant::now() < deadline,
                "no window {what} within {timeout:?}; windows: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Closes the current window (WebDriver "Close Window").
    pub async fn close_window(&self) -> Result<Value, WebDriverError> {
        self.command(reqwest::Method::DELETE, "/window", None).await
    }

    /// A PNG screenshot of the current window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self
            .get("/screenshot")
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e:?}"));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .expect("screenshot is base64")
    }

    /// Saves a PNG screenshot of the current window to `path`.
    pub async fn save_screenshot(&self, path: &Path) {
        let png = self.screenshot().await;
        assert!(
            png.starts_with(b"\x89PNG"),
            "the screenshot endpoint did not answer a PNG"
        );
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Ends the session (tauri-driver then stops the app).
    pub async fn end(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.id))
            .send()
            .await;
    }
}

fn element_of(v: &Value) -> Option<Element> {
    v.get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(|id| Element { id: id.to_owned() })
}
