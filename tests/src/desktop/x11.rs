//! The X display as a window manager sees it: which top-level windows are shown, and closing one
//! with `WM_DELETE_WINDOW`, as a click on its close button does. (WebDriver's "Close Window"
//! destroys the web view instead, and ends the session with the last one.)

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, MapState, Window,
};

/// One top-level window of the display.
#[derive(Debug, Clone)]
pub struct TopLevel {
    pub window: Window,
    pub title: String,
    pub viewable: bool,
}

fn atom(conn: &impl Connection, name: &str) -> u32 {
    conn.intern_atom(false, name.as_bytes())
        .expect("intern_atom")
        .reply()
        .expect("intern_atom reply")
        .atom
}

/// The windows with a title (`_NET_WM_NAME`, else `WM_NAME`), looking one level below each root
/// child too (GTK may wrap its windows).
pub fn top_levels() -> Vec<TopLevel> {
    let (conn, screen) = x11rb::connect(None).expect("connect to the X display ($DISPLAY)");
    let root = conn.setup().roots[screen].root;
    let net_wm_name = atom(&conn, "_NET_WM_NAME");
    let utf8 = atom(&conn, "UTF8_STRING");
    let title_of = |w: Window| -> String {
        for (prop, ty) in [
            (net_wm_name, utf8),
            (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
        ] {
            if let Ok(Ok(reply)) = conn
                .get_property(false, w, prop, ty, 0, 1024)
                .map(|c| c.reply())
                && !reply.value.is_empty()
            {
                return String::from_utf8_lossy(&reply.value).into_owned();
            }
        }
        String::new()
    };
    let viewable = |w: Window| {
        conn.get_window_attributes(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE)
    };
    let children = |w: Window| {
        conn.query_tree(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|t| t.children)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for w in children(root) {
        let title = title_of(w);
        if !title.is_empty() {
            out.push(TopLevel {
                window: w,
                title,
                viewable: viewable(w),
            });
            continue;
        }
        for c in children(w) {
            let title = title_of(c);
            if !title.is_empty() {
                out.push(TopLevel {
                    window: c,
                    title,
                    viewable: viewable(w) && viewable(c),
                });
            }
        }
    }
    out
}

/// Whether a window titled exactly `title` is shown.
pub fn is_shown(title: &str) -> bool {
    top_levels().iter().any(|t| t.title == title && t.viewable)
}

/// Sends `WM_DELETE_WINDOW` to every shown window titled exactly `title`; returns how many.
pub fn request_close(title: &str) -> usize {
    let targets: Vec<Window> = top_levels()
        .into_iter()
        .filter(|t| t.title == title && t.viewable)
        .map(|t| t.window)
        .collect();
    let (conn, _) = x11rb::connect(None).expect("connect to the X display ($DISPLAY)");
    let protocols = atom(&conn, "WM_PROTOCOLS");
    let delete = atom(&conn, "WM_DELETE_WINDOW");
    for &w in &targets {
        let event = ClientMessageEvent::new(32, w, protocols, [delete, 0, 0, 0, 0]);
        // Delivered to the clients that select StructureNotify on the window (GDK does): with an
        // empty mask GTK was seen ignoring it.
        conn.send_event(false, w, EventMask::STRUCTURE_NOTIFY, event)
            .expect("send WM_DELETE_WINDOW");
    }
    conn.flush().expect("flush the X connection");
    targets.len()
}
