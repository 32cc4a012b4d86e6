//! How an approval is named in the tray and in notifications: the agent, then what it wants in
//! words, with the key detail (recipient, method and URL, scopes) verbatim from the core's summary.

use gatehouse_core::approvals::ApprovalView;

/// Longest tray entry; menus wider than this are hard to read.
const MAX_LABEL: usize = 90;

/// The agent's name as registered, else its client id.
pub fn agent(v: &ApprovalView) -> &str {
    v.client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&v.client_id)
}

/// What the agent wants, as a verb phrase that follows "AGENT wants to".
pub fn wants(v: &ApprovalView) -> String {
    if let Some(first) = v.summary.first() {
        return lower_first(first);
    }
    if v.kind == "consent" {
        return match v.scopes.is_empty() {
            true => "sign in".to_owned(),
            false => format!("access {}", v.scopes.join(" ")),
        };
    }
    if let Some(message) = &v.binding_message {
        return format!("act: {message}");
    }
    format!("use {}", v.scopes.join(" "))
}

/// The tray entry: `AGENT: what it wants`, cut to a readable width.
pub fn tray_label(v: &ApprovalView) -> String {
    truncate(&format!("{}: {}", agent(v), wants(v)), MAX_LABEL)
}

/// The notification's summary line.
pub fn notification_summary(v: &ApprovalView) -> String {
    format!("{} wants to {}", agent(v), wants(v))
}

/// The notification's body: the other summary lines, the warnings, and what the person should
/// check (a self-asserted name, the code or message the agent shows).
pub fn notification_body(v: &ApprovalView) -> String {
    let mut lines: Vec<String> = v.summary.iter().skip(1).cloned().collect();
    if !v.summary.is_empty() && !v.scopes.is_empty() {
        lines.push(format!("Scopes: {}", v.scopes.join(" ")));
    }
    for w in &v.warnings {
        lines.push(format!("⚠ {w}"));
    }
    if let Some(m) = &v.binding_message {
        lines.push(format!("The agent shows: {m}"));
    }
    if let Some(code) = &v.user_code {
        lines.push(format!("Code: {code}"));
    }
    if !v.verified {
        lines.push("The agent's name is self-asserted.".to_owned());
    }
    lines.join("\n")
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Keep acronyms and names ("GitHub", "API") as they are; only lower a capitalized word.
        Some(c) if c.is_uppercase() && !chars.clone().next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_owned(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// An approval as the core presents one, for tests.
#[cfg(test)]
pub fn sample_view(kind: &str, summary: &[&str]) -> ApprovalView {
    ApprovalView {
        id: "ap1".into(),
        kind: kind.into(),
        client_id: "client-1".into(),
        client_name: Some("Claude Code".into()),
        verified: false,
        redirect_host: None,
        scopes: vec!["mail:send".into()],
        resources: vec![],
        authorization_details: None,
        binding_message: None,
        via: Some("ciba".into()),
        user_code: None,
        summary: summary.iter().map(|s| (*s).to_owned()).collect(),
        warnings: vec!["alex@contractor.example is outside your domains".into()],
        created_at: 0,
        expires_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(kind: &str, summary: &[&str]) -> ApprovalView {
        sample_view(kind, summary)
    }

    #[test]
    fn action_names_the_key_detail_verbatim() {
        let v = view("action", &["Send an email to alex@contractor.example"]);
        assert_eq!(
            notification_summary(&v),
            "Claude Code wants to send an email to alex@contractor.example"
        );
        assert_eq!(
            tray_label(&v),
            "Claude Code: send an email to alex@contractor.example"
        );
        let body = notification_body(&v);
        assert!(body.contains("outside your domains"), "{body}");
        assert!(body.contains("self-asserted"), "{body}");
    }

    #[test]
    fn consent_lists_the_scopes() {
        let mut v = view("consent", &[]);
        v.scopes = vec!["mail:read".into(), "calendar:read".into()];
        assert_eq!(
            notification_summary(&v),
            "Claude Code wants to access mail:read calendar:read"
        );
    }

    #[test]
    fn falls_back_to_the_client_id_and_keeps_acronyms() {
        let mut v = view("action", &["GET https://api.example.com/v1/items"]);
        v.client_name = Some("  ".into());
        assert_eq!(
            tray_label(&v),
            "client-1: GET https://api.example.com/v1/items"
        );
    }

    #[test]
    fn long_labels_are_cut() {
        let long = format!("Send an email to {}@example.com", "a".repeat(200));
        let label = tray_label(&view("action", &[long.as_str()]));
        assert_eq!(label.chars().count(), MAX_LABEL);
        assert!(label.ends_with('…'));
    }
}
