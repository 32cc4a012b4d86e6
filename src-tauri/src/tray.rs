//! The tray icon (StatusNotifierItem) and its menu: Open, the pause switch, one submenu per
//! pending approval with Approve / Deny / Details, and Quit. The menu is rebuilt whenever the
//! pending list changes; the icon shows idle, pending or paused.

use gatehouse_core::admin;
use gatehouse_core::approvals::{ApprovalView, Decision};
use std::sync::Mutex;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;

use tauri::{AppHandle, Manager, Wry};

use crate::state::{BY, Desktop};
use crate::{describe, ops, windows};

pub const TRAY_ID: &str = "gatehouse";
/// The channel the audit log records for decisions made in the tray menu.
pub const CHANNEL: &str = "tray";

const ICON_IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const ICON_PENDING: &[u8] = include_bytes!("../../icons/tray-pending.png");
const ICON_PAUSED: &[u8] = include_bytes!("../../icons/tray-paused.png");

const OPEN: &str = "open";
const PAUSE: &str = "pause";
const QUIT: &str = "quit";
const NONE_PENDING: &str = "none-pending";

/// What the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    Idle,
    Pending,
    Paused,
}

impl Look {
    pub fn of(paused: bool, pending: usize) -> Self {
        match (paused, pending) {
            (true, _) => Look::Paused,
            (false, 0) => Look::Idle,
            (false, _) => Look::Pending,
        }
    }

    fn icon(self) -> tauri::Result<Image<'static>> {
        Image::from_bytes(match self {
            Look::Idle => ICON_IDLE,
            Look::Pending => ICON_PENDING,
            Look::Paused => ICON_PAUSED,
        })
    }
}

/// What a menu item id asks for.
#[derive(Debug, PartialEq, Eq)]
enum Click<'a> {
    Open,
    TogglePause,
    Quit,
    Approve(&'a str),
    Deny(&'a str),
    Details(&'a str),
    Other,
}

fn parse_click(id: &str) -> Click<'_> {
    match id {
        OPEN => Click::Open,
        PAUSE => Click::TogglePause,
        QUIT => Click::Quit,
        _ => match id.split_once(':') {
            Some(("approve", approval)) => Click::Approve(approval),
            Some(("deny", approval)) => Click::Deny(approval),
            Some(("details", approval)) => Click::Details(approval),
            _ => Click::Other,
        },
    }
}

/// Creates the tray with the start-up menu (nothing pending, not paused).
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let menu = build_menu(app, &[], false)?;
    // No title: on Linux it becomes a text label beside the icon in the panel.
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Look::Idle.icon()?)
        .tooltip(tooltip(0))
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)?;
    Ok(())
}

fn tooltip(pending: usize) -> String {
    format!("Gatehouse — {pending} pending")
}

/// The icon the tray shows now: set again only when it changes (on Linux each change writes a
/// temporary PNG for the indicator).
#[derive(Debug)]
pub struct Shown(Mutex<Look>);

impl Default for Shown {
    fn default() -> Self {
        Self(Mutex::new(Look::Idle))
    }
}

/// Rebuilds the menu and switches the icon for the current pending list and pause state.
pub fn update(app: &AppHandle, pending: &[ApprovalView], paused: bool) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let look = Look::of(paused, pending.len());
    let result = (|| -> tauri::Result<()> {
        let menu = build_menu(app, pending, paused)?;
        tray.set_menu(Some(menu))?;
        let shown = app.state::<Shown>();
        let mut current = shown.0.lock().unwrap_or_else(|p| p.into_inner());
        if *current != look {
            tray.set_icon(Some(look.icon()?))?;
            *current = look;
        }
        drop(current);
        tray.set_tooltip(Some(tooltip(pending.len())))?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot update the tray");
    }
}

fn build_menu(app: &AppHandle, pending: &[ApprovalView], paused: bool) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        OPEN,
        "Open Gatehouse",
        true,
        None::<&str>,
    )?)?;
    menu.append(&CheckMenuItem::with_id(
        app,
        PAUSE,
        "Pause all agents",
        true,
        paused,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    if pending.is_empty() {
        menu.append(&MenuItem::with_id(
            app,
            NONE_PENDING,
            "No pending approvals",
            false,
            None::<&str>,
        )?)?;
    }
    for v in pending {
        let approve = MenuItem::with_id(
            app,
            format!("approve:{}", v.id),
            "Approve",
            true,
            None::<&str>,
        )?;
        let deny = MenuItem::with_id(app, format!("deny:{}", v.id), "Deny", true, None::<&str>)?;
        let details = MenuItem::with_id(
            app,
            format!("details:{}", v.id),
            "Details",
            true,
            None::<&str>,
        )?;
        let entry = Submenu::with_id_and_items(
            app,
            format!("approval:{}", v.id),
            describe::tray_label(v),
            true,
            &[&approve, &deny, &details],
        )?;
        menu.append(&entry)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, QUIT, "Quit", true, None::<&str>)?)?;
    Ok(menu)
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref().to_owned();
    let app = app.clone();
    match parse_click(&id) {
        Click::Open => windows::show_main(&app),
        Click::Details(approval) => windows::request_consent(&app, approval),
        Click::Quit => {
            tauri::async_runtime::spawn(crate::shutdown(app, "quit"));
        }
        Click::TogglePause => {
            tauri::async_runtime::spawn(async move {
                let desktop = app.state::<Desktop>();
                // The store says what the state is; the check mark GTK just flipped may be stale.
                let result = match admin::is_paused(&desktop.store).await {
                    Ok(paused) => admin::set_paused(&desktop.store, !paused, BY).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot change the pause switch");
                }
                // The feed's agents.paused / agents.resumed event refreshes the tray; a failure
                // must still put the check mark back.
                crate::live::poke(&app);
            });
        }
        Click::Approve(approval) | Click::Deny(approval) => {
            let approve = matches!(parse_click(&id), Click::Approve(_));
            let approval = approval.to_owned();
            tauri::async_runtime::spawn(async move {
                let desktop = app.state::<Desktop>();
                let decision = if approve {
                    Decision::approve()
                } else {
                    Decision::deny()
                };
                if let Err(e) = ops::decide(&desktop, &approval, decision, CHANNEL).await {
                    tracing::info!(approval = %approval, error = %e, "tray decision not taken");
                }
            });
        }
        Click::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_ids_parse() {
        assert_eq!(parse_click("open"), Click::Open);
        assert_eq!(parse_click("pause"), Click::TogglePause);
        assert_eq!(parse_click("quit"), Click::Quit);
        assert_eq!(parse_click("approve:ap_1"), Click::Approve("ap_1"));
        assert_eq!(parse_click("deny:ap_1"), Click::Deny("ap_1"));
        assert_eq!(parse_click("details:ap:1"), Click::Details("ap:1"));
        assert_eq!(parse_click("none-pending"), Click::Other);
        assert_eq!(parse_click("approval:ap_1"), Click::Other);
    }

    #[test]
    fn icon_follows_pause_then_pending() {
        assert_eq!(Look::of(false, 0), Look::Idle);
        assert_eq!(Look::of(false, 3), Look::Pending);
        assert_eq!(Look::of(true, 3), Look::Paused);
        for look in [Look::Idle, Look::Pending, Look::Paused] {
            let icon = look.icon().expect("the committed PNGs decode");
            assert_eq!((icon.width(), icon.height()), (64, 64));
        }
    }
}
