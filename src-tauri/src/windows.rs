//! The two windows: `main` (the SPA, hidden rather than closed, so the app lives on in the tray)
//! and `consent` (the same SPA at `#/consent/ID`: small, on top, focused), which shows one approval
//! at a time and queues the rest until the one shown is decided.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder, WindowEvent};

pub const MAIN: &str = "main";
pub const CONSENT: &str = "consent";

/// How long the consent window keeps showing a decided approval ("Approved", "Expired") before
/// it moves on to the next one in the queue.
const LINGER: Duration = Duration::from_millis(1500);

/// Creates the main window (hidden with `--hidden`); closing it hides it.
pub fn create_main(app: &AppHandle, visible: bool) -> tauri::Result<WebviewWindow> {
    let window = WebviewWindowBuilder::new(app, MAIN, WebviewUrl::App("index.html".into()))
        .title("Gatehouse")
        .inner_size(1100.0, 720.0)
        .min_inner_size(720.0, 480.0)
        .visible(visible)
        .build()?;
    paint_in_software_without_gpu(&window);
    let hide = window.clone();
    window.on_window_event(move |event| {
        if let WindowEvent::CloseRequested { api, .. } = event {
            // Close-to-tray: the server keeps answering agents; Quit in the tray stops it.
            api.prevent_close();
            if let Err(e) = hide.hide() {
                tracing::warn!(error = %e, "cannot hide the main window");
            }
        }
    });
    Ok(window)
}

/// Shows and focuses the main window (tray "Open Gatehouse", a second launch).
pub fn show_main(app: &AppHandle) {
    let window = match app.get_webview_window(MAIN) {
        Some(w) => w,
        None => match create_main(app, true) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the main window");
                return;
            }
        },
    };
    let _ = window.unminimize();
    if let Err(e) = window.show() {
        tracing::warn!(error = %e, "cannot show the main window");
    }
    let _ = window.set_focus();
}

/// Which approval the consent window shows and which wait their turn.
#[derive(Debug, Default)]
pub struct ConsentQueue {
    showing: Option<Showing>,
    waiting: VecDeque<String>,
}

#[derive(Debug)]
struct Showing {
    id: String,
    /// Decided (or expired) while shown: the window still shows its outcome.
    decided: bool,
}

/// What to do with the window after a queue change.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsentStep {
    Nothing,
    /// Open the window on this approval, or point the open window at it.
    Show(String),
}

impl ConsentQueue {
    /// A new approval to show: shown now if the window is free (or only shows a decided one),
    /// else queued. Asking again for one already shown or queued changes nothing.
    pub fn request(&mut self, id: &str) -> ConsentStep {
        match &self.showing {
            Some(s) if s.id == id => ConsentStep::Nothing,
            Some(s) if !s.decided => {
                if !self.waiting.iter().any(|w| w == id) {
                    self.waiting.push_back(id.to_owned());
                }
                ConsentStep::Nothing
            }
            _ => {
                self.waiting.retain(|w| w != id);
                self.showing = Some(Showing {
                    id: id.to_owned(),
                    decided: false,
                });
                ConsentStep::Show(id.to_owned())
            }
        }
    }

    /// `id` was decided or expired. Returns whether it is the one shown (so the window moves on
    /// after [`LINGER`]).
    pub fn decided(&mut self, id: &str) -> bool {
        self.waiting.retain(|w| w != id);
        match &mut self.showing {
            Some(s) if s.id == id => {
                s.decided = true;
                true
            }
            _ => false,
        }
    }

    /// After the shown approval was decided: the next one waiting, if any; with none, the window
    /// keeps showing the outcome.
    pub fn advance(&mut self, decided_id: &str) -> ConsentStep {
        match &self.showing {
            Some(s) if s.id == decided_id && s.decided => match self.waiting.pop_front() {
                Some(next) => {
                    self.showing = Some(Showing {
                        id: next.clone(),
                        decided: false,
                    });
                    ConsentStep::Show(next)
                }
                None => ConsentStep::Nothing,
            },
            _ => ConsentStep::Nothing,
        }
    }

    /// The window was closed: the next one waiting, if any, opens.
    pub fn closed(&mut self) -> ConsentStep {
        self.showing = None;
        match self.waiting.pop_front() {
            Some(next) => self.request(&next),
            None => ConsentStep::Nothing,
        }
    }
}

fn consent_url(id: &str) -> String {
    format!("index.html#/consent/{id}")
}

/// Shows the consent window for approval `id` now, or queues it behind the one shown.
pub fn request_consent(app: &AppHandle, id: &str) {
    let step = with_queue(app, |q| q.request(id));
    apply(app, step);
}

/// Tells the consent window that `id` was decided (anywhere); the next queued approval follows.
pub fn approval_decided(app: &AppHandle, id: &str) {
    if !with_queue(app, |q| q.decided(id)) {
        return;
    }
    let (app, id) = (app.clone(), id.to_owned());
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(LINGER).await;
        let step = with_queue(&app, |q| q.advance(&id));
        apply(&app, step);
    });
}

/// Brings the consent window to the front, if it is open.
pub fn show_consent_front(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(CONSENT) {
        let _ = window.show();
        let _ = window.set_focus();
    }
}

fn with_queue<T>(app: &AppHandle, f: impl FnOnce(&mut ConsentQueue) -> T) -> T {
    let queue = app.state::<Mutex<ConsentQueue>>();
    let mut guard = match queue.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    f(&mut guard)
}

fn apply(app: &AppHandle, step: ConsentStep) {
    let ConsentStep::Show(id) = step else { return };
    if let Err(e) = show_consent(app, &id) {
        tracing::error!(error = %e, approval = %id, "cannot open the consent window");
    }
}

fn show_consent(app: &AppHandle, id: &str) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(CONSENT) {
        let mut url = window.url()?;
        url.set_fragment(Some(&format!("/consent/{id}")));
        window.navigate(url)?;
        let _ = window.show();
        let _ = window.set_focus();
        return Ok(());
    }
    let window = WebviewWindowBuilder::new(app, CONSENT, WebviewUrl::App(consent_url(id).into()))
        .title("Gatehouse — approval")
        .inner_size(480.0, 640.0)
        .resizable(false)
        .always_on_top(true)
        .focused(true)
        .center()
        .build()?;
    paint_in_software_without_gpu(&window);
    let handle = app.clone();
    window.on_window_event(move |event| {
        if let WindowEvent::Destroyed = event {
            let step = with_queue(&handle, ConsentQueue::closed);
            apply(&handle, step);
        }
    });
    let _ = window.set_focus();
    Ok(())
}

/// Without a GPU render node, WebKitGTK's accelerated compositing runs on software GL, and the
/// Activity view over 1,000,000 events scrolled at ~13 fps; painting without compositing scrolls
/// at 60 fps on the same machine (docs/desktop-figures.md). With a GPU, WebKit keeps its default.
#[cfg(target_os = "linux")]
fn paint_in_software_without_gpu(window: &WebviewWindow) {
    let has_gpu = std::fs::read_dir("/dev/dri")
        .map(|dir| {
            dir.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false);
    if has_gpu {
        return;
    }
    let applied = window.with_webview(|webview| {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    });
    if let Err(e) = applied {
        tracing::warn!(error = %e, "cannot switch off accelerated compositing");
    }
}

#[cfg(not(target_os = "linux"))]
fn paint_in_software_without_gpu(_window: &WebviewWindow) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_then_the_next() {
        let mut q = ConsentQueue::default();
        assert_eq!(q.request("a"), ConsentStep::Show("a".into()));
        assert_eq!(q.request("b"), ConsentStep::Nothing);
        assert_eq!(q.request("b"), ConsentStep::Nothing, "not queued twice");
        assert_eq!(q.request("a"), ConsentStep::Nothing, "already shown");
        assert!(q.decided("a"));
        assert_eq!(q.advance("a"), ConsentStep::Show("b".into()));
        assert!(q.decided("b"));
        assert_eq!(
            q.advance("b"),
            ConsentStep::Nothing,
            "nothing left: the outcome stays"
        );
        // A new request while the window shows a decided one takes the window at once.
        assert_eq!(q.request("c"), ConsentStep::Show("c".into()));
    }

    #[test]
    fn a_queued_approval_decided_elsewhere_is_dropped() {
        let mut q = ConsentQueue::default();
        q.request("a");
        q.request("b");
        q.request("c");
        assert!(!q.decided("b"), "b was not shown");
        assert!(q.decided("a"));
        assert_eq!(q.advance("a"), ConsentStep::Show("c".into()));
    }

    #[test]
    fn closing_the_window_opens_the_next() {
        let mut q = ConsentQueue::default();
        q.request("a");
        q.request("b");
        assert_eq!(q.closed(), ConsentStep::Show("b".into()));
        assert_eq!(q.closed(), ConsentStep::Nothing);
        assert_eq!(q.request("c"), ConsentStep::Show("c".into()));
    }
}
