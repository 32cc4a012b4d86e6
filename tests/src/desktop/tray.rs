//! A client of the app's tray on the session bus: finds its StatusNotifierItem (bus name
//! `org.kde.StatusNotifierItem-PID-N`, or the app's own connection when no watcher runs), reads the item's `Menu` object path, and drives the menu
//! through `com.canonical.dbusmenu` (`GetLayout`, `AboutToShow`, `Event "clicked"`), as a tray
//! host would when the person clicks.

use std::collections::HashMap;
use std::time::Duration;

use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

const SNI: &str = "org.kde.StatusNotifierItem";
const DBUSMENU: &str = "com.canonical.dbusmenu";

/// One menu item and its children, as `GetLayout` reports them.
#[derive(Debug, Clone)]
pub struct MenuItem {
    pub id: i32,
    /// The label without GTK mnemonic underscores (`_Quit` → `Quit`).
    pub label: String,
    /// `standard` or `separator`.
    pub kind: String,
    pub enabled: bool,
    pub visible: bool,
    /// `checkmark`, `radio` or empty.
    pub toggle_type: String,
    /// 0 off, 1 on, -1 indeterminate or not a toggle.
    pub toggle_state: i32,
    /// True for an item whose children form a submenu.
    pub submenu: bool,
    pub children: Vec<MenuItem>,
}

impl MenuItem {
    /// The first item (depth first, self included) `pred` accepts.
    pub fn find(&self, pred: &dyn Fn(&MenuItem) -> bool) -> Option<&MenuItem> {
        if pred(self) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(pred))
    }

    /// The direct child labelled `label`.
    pub fn child(&self, label: &str) -> Option<&MenuItem> {
        self.children.iter().find(|c| c.label == label)
    }

    /// The labels of the direct children, separators as `---`.
    pub fn labels(&self) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.visible)
            .map(|c| {
                if c.kind == "separator" {
                    "---".to_owned()
                } else {
                    c.label.clone()
                }
            })
            .collect()
    }
}

/// Drops GTK mnemonic markers: `_` before a letter goes, `__` stands for one underscore.
fn plain_label(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                chars.next();
                out.push('_');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The app's tray as seen on the session bus.
#[derive(Debug)]
pub struct Tray {
    connection: zbus::Connection,
    /// The bus name of the StatusNotifierItem.
    pub service: String,
    /// The object path of the item.
    pub item_path: OwnedObjectPath,
    /// The object path of its dbusmenu.
    pub menu_path: OwnedObjectPath,
}

impl Tray {
    /// Waits up to `timeout` for the app with process id `pid` to export its tray item and menu.
    pub async fn find(pid: u32, timeout: Duration) -> Tray {
        let connection = zbus::Connection::session()
            .await
            .expect("connect to the session bus");
        let prefix = format!("{SNI}-{pid}-");
        let found = super::eventually(
            &format!("a StatusNotifierItem exporting a Menu on {prefix}N or a connection of {pid}"),
            timeout,
            || async {
                // libappindicator owns `org.kde.StatusNotifierItem-PID-N` only once a
                // StatusNotifierWatcher exists (headless there is none); its objects are on the
                // app's unique connection either way, so the app's own connections count too.
                let mut candidates = Vec::new();
                for name in list_names(&connection).await {
                    if name.starts_with(&prefix)
                        || (name.starts_with(':') && pid_of(&connection, &name).await == Some(pid))
                    {
                        candidates.push(name);
                    }
                }
                for service in &candidates {
                    let Some(item_path) = find_item(&connection, service, "/", 0).await else {
                        continue;
                    };
                    if let Some(menu_path) = menu_of(&connection, service, &item_path).await {
                        return Some((service.clone(), item_path, menu_path));
                    }
                }
                None
            },
        )
        .await;
        Tray {
            connection,
            service: found.0,
            item_path: found.1,
            menu_path: found.2,
        }
    }

    /// A string property of the item (e.g. `ToolTip` is a struct; `IconName`, `Status`...).
    pub async fn item_property(&self, name: &str) -> Option<OwnedValue> {
        let reply = call(
            &self.connection,
            self.service.as_str(),
            self.item_path.as_str(),
            "org.freedesktop.DBus.Properties",
            "Get",
            &(SNI, name),
        )
        .await
        .ok()?;
        reply.body().deserialize::<OwnedValue>().ok()
    }

    /// The whole menu tree (the root's children are the top-level items).
    pub async fn layout(&self) -> MenuItem {
        let reply = call(
            &self.connection,
            self.service.as_str(),
            self.menu_path.as_str(),
            DBUSMENU,
            "GetLayout",
            &(0i32, -1i32, Vec::<String>::new()),
        )
        .await
        .expect("com.canonical.dbusmenu.GetLayout");
        let body = reply.body();
        // The layout is recursive, so it is read as a dynamic structure `(u, (ia{sv}av))`.
        let reply: zbus::zvariant::Structure<'_> =
            body.deserialize().expect("GetLayout answers u(ia{sv}av)");
        reply
            .fields()
            .get(1)
            .and_then(parse_item)
            .expect("a dbusmenu layout")
    }

    /// Tells the menu a submenu is about to show (some menus fill submenus lazily).
    pub async fn about_to_show(&self, id: i32) {
        let _ = call(
            &self.connection,
            self.service.as_str(),
            self.menu_path.as_str(),
            DBUSMENU,
            "AboutToShow",
            &(id,),
        )
        .await;
    }

    /// Clicks item `id`: `Event(id, "clicked", <"">, 0)`.
    pub async fn click(&self, id: i32) {
        call(
            &self.connection,
            self.service.as_str(),
            self.menu_path.as_str(),
            DBUSMENU,
            "Event",
            &(id, "clicked", Value::from(""), 0u32),
        )
        .await
        .expect("com.canonical.dbusmenu.Event clicked");
    }

    /// Waits up to `timeout` for an item `pred` accepts (opening submenus on the way).
    pub async fn wait_for_item(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&MenuItem) -> bool,
    ) -> MenuItem {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let root = self.layout().await;
            for sub in root
                .children
                .iter()
                .filter(|c| c.submenu && c.children.is_empty())
            {
                self.about_to_show(sub.id).await;
            }
            let root = self.layout().await;
            if let Some(hit) = root.find(&pred) {
                return hit.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no tray item within {timeout:?}: {what}; menu: {root:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One method call that gives up after 3 s: some connections of a GTK app (accessibility, the
/// web process) never answer an introspection.
async fn call<B>(
    connection: &zbus::Connection,
    destination: &str,
    path: &str,
    interface: &str,
    method: &str,
    body: &B,
) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    let sent = connection.call_method(Some(destination), path, Some(interface), method, body);
    match tokio::time::timeout(Duration::from_secs(3), sent).await {
        Ok(answer) => answer,
        Err(_) => Err(zbus::Error::Failure(format!(
            "{interface}.{method} on {destination} {path}: no answer within 3 s"
        ))),
    }
}

async fn list_names(connection: &zbus::Connection) -> Vec<String> {
    let Ok(reply) = call(
        connection,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "ListNames",
        &(),
    )
    .await
    else {
        return Vec::new();
    };
    reply
        .body()
        .deserialize::<Vec<String>>()
        .unwrap_or_default()
}

/// The process id behind a bus name.
async fn pid_of(connection: &zbus::Connection, name: &str) -> Option<u32> {
    let reply = call(
        connection,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetConnectionUnixProcessID",
        &(name,),
    )
    .await
    .ok()?;
    reply.body().deserialize::<u32>().ok()
}

/// Walks the object tree of `service` from `path` (by introspection) to the first object with
/// the StatusNotifierItem interface. libappindicator puts it under
/// `/org/ayatana/NotificationItem/...`, KDE's implementations at `/StatusNotifierItem`.
fn find_item<'a>(
    connection: &'a zbus::Connection,
    service: &'a str,
    path: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<OwnedObjectPath>> + Send + 'a>> {
    Box::pin(async move {
        if depth > 8 {
            return None;
        }
        let reply = call(
            connection,
            service,
            path,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            &(),
        )
        .await
        .ok()?;
        let xml: String = reply.body().deserialize().ok()?;
        if xml.contains(&format!("interface name=\"{SNI}\"")) {
            return ObjectPath::try_from(path).ok().map(Into::into);
        }
        for child in node_names(&xml) {
            let child_path = if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            };
            if let Some(found) = find_item(connection, service, &child_path, depth + 1).await {
                return Some(found);
            }
        }
        None
    })
}

/// The child `<node name="..."/>` names of an introspection document.
fn node_names(xml: &str) -> Vec<String> {
    xml.split("<node name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The item's `Menu` property.
async fn menu_of(
    connection: &zbus::Connection,
    service: &str,
    item: &OwnedObjectPath,
) -> Option<OwnedObjectPath> {
    let reply = call(
        connection,
        service,
        item.as_str(),
        "org.freedesktop.DBus.Properties",
        "Get",
        &(SNI, "Menu"),
    )
    .await
    .ok()?;
    let value: OwnedValue = reply.body().deserialize().ok()?;
    let path = OwnedObjectPath::try_from(value).ok()?;
    (path.as_str() != "/").then_some(path)
}

/// One `(ia{sv}av)` layout node, recursively.
fn parse_item(value: &Value<'_>) -> Option<MenuItem> {
    let value = match value {
        Value::Value(inner) => inner.as_ref(),
        v => v,
    };
    let Value::Structure(s) = value else {
        return None;
    };
    let fields = s.fields();
    let Some(Value::I32(id)) = fields.first() else {
        return None;
    };
    let mut props: HashMap<String, Value<'_>> = HashMap::new();
    if let Some(Value::Dict(d)) = fields.get(1) {
        for (k, v) in d.iter() {
            if let Value::Str(k) = k {
                let v = match v {
                    Value::Value(inner) => inner.as_ref().try_clone().ok()?,
                    v => v.try_clone().ok()?,
                };
                props.insert(k.to_string(), v);
            }
        }
    }
    let text = |k: &str| match props.get(k) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    let flag = |k: &str, default: bool| match props.get(k) {
        Some(Value::Bool(b)) => *b,
        _ => default,
    };
    let children: Vec<MenuItem> = match fields.get(2) {
        Some(Value::Array(a)) => a.iter().filter_map(parse_item).collect(),
        _ => Vec::new(),
    };
    Some(MenuItem {
        id: *id,
        label: plain_label(&text("label").unwrap_or_default()),
        kind: text("type").unwrap_or_else(|| "standard".to_owned()),
        enabled: flag("enabled", true),
        visible: flag("visible", true),
        toggle_type: text("toggle-type").unwrap_or_default(),
        toggle_state: match props.get("toggle-state") {
            Some(Value::I32(n)) => *n,
            _ => -1,
        },
        submenu: text("children-display").as_deref() == Some("submenu") || !children.is_empty(),
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_dropped_and_double_underscores_kept() {
        assert_eq!(plain_label("_Quit"), "Quit");
        assert_eq!(plain_label("snake__case"), "snake_case");
        assert_eq!(plain_label("Open Gatehouse"), "Open Gatehouse");
    }

    #[test]
    fn child_nodes_of_an_introspection_document() {
        let xml = r#"<node><interface name="x"/><node name="org"/><node name="StatusNotifierItem"/></node>"#;
        assert_eq!(node_names(xml), ["org", "StatusNotifierItem"]);
    }
}
