//! The terminal approver: asks the person at the keyboard, one request at a time, queueing the
//! rest. Works with a terminal or a pipe on stdin (it only ever reads whole lines).
//!
//! An empty line never approves (as in the consent window, Enter does not approve): approving
//! takes a typed choice. Everything an agent chose about itself is sanitised before it is shown.

use std::collections::VecDeque;

use gatehouse_core::Millis;
use gatehouse_core::approvals::{ApprovalView, Broker, DecideError, Decision, Remember};
use gatehouse_core::store::approvals::{ApprovalRow, ApprovalStatus};
use tokio::sync::mpsc;

use super::watch::{ApprovalWatch, Update};
use crate::display::{duration, sanitize};
use crate::output::Output;

/// The channel name recorded in the audit log for decisions made here.
pub const CHANNEL: &str = "terminal";

const RULE: &str = "────────────────────────────────────────────────────────────";

/// What the prompt wants done with a line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Print this and wait for the next line.
    Say(String),
    /// Print the whole request again.
    Show,
    /// The person decided.
    Decide(Decision),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Choose,
    PickScopes,
    Remember {
        scopes: Option<Vec<String>>,
    },
    /// An MCP tool call remembered beyond this once: these exact arguments, or any arguments.
    Cover {
        remember: Remember,
    },
}

/// One request being asked about, and how far the person got.
#[derive(Debug)]
pub struct Prompt {
    view: ApprovalView,
    stage: Stage,
}

impl Prompt {
    pub fn new(view: ApprovalView) -> Self {
        Self {
            view,
            stage: Stage::Choose,
        }
    }

    pub fn id(&self) -> &str {
        &self.view.id
    }

    pub fn view(&self) -> &ApprovalView {
        &self.view
    }

    /// Starts over at the first question (after a decision could not be recorded).
    pub fn restart(&mut self) {
        self.stage = Stage::Choose;
    }

    /// The whole request and the current question.
    pub fn render(&self, now: Millis, waiting: usize) -> String {
        let v = &self.view;
        let action = v.kind == "action";
        let mut s = if action {
            format!(
                "\n{RULE}\nAction request {}: an agent wants to do something now\n",
                v.id
            )
        } else {
            format!("\n{RULE}\nConsent request {}\n", v.id)
        };
        let name = match &v.client_name {
            Some(n) if v.verified => format!("{} (verified)", sanitize(n)),
            Some(n) => format!("{} (self-asserted name)", sanitize(n)),
            None => "(no name given)".to_owned(),
        };
        field(&mut s, "Agent", &name);
        field(&mut s, "Client id", &sanitize(&v.client_id));
        if let Some(host) = &v.redirect_host {
            field(&mut s, "Redirects to", &sanitize(host));
        }
        if action {
            field(&mut s, "Asked via", via_text(v.via.as_deref()));
        }
        if let Some(code) = &v.user_code {
            field(
                &mut s,
                "Code",
                &format!(
                    "{}  (the agent shows this code: check they match)",
                    sanitize(code)
                ),
            );
        }
        if let Some(msg) = &v.binding_message {
            field(&mut s, "Message", &format!("\"{}\"", sanitize(msg)));
            if action {
                field(
                    &mut s,
                    "",
                    "(the agent shows this message too: check they match)",
                );
            }
        }
        for (i, line) in v.summary.iter().enumerate() {
            let label = if i == 0 { "What" } else { "" };
            field(&mut s, label, &format!("- {}", sanitize(line)));
        }
        if action && v.summary.is_empty() && v.scopes.is_empty() {
            field(&mut s, "What", "(the agent gave no details)");
        }
        for warning in &v.warnings {
            s.push_str(&format!("  \u{26a0} {}\n", sanitize(warning)));
        }
        // An action asks for what its details say; scopes only when it names some.
        if v.scopes.is_empty() && !action {
            field(&mut s, "Scopes", "(none requested)");
        }
        for (i, scope) in v.scopes.iter().enumerate() {
            let label = if i == 0 { "Scopes" } else { "" };
            field(&mut s, label, &format!("{}. {}", i + 1, sanitize(scope)));
        }
        if v.resources.is_empty() && !action {
            field(&mut s, "Resources", "(none named)");
        }
        for (i, res) in v.resources.iter().enumerate() {
            let label = if i == 0 { "Resources" } else { "" };
            field(&mut s, label, &sanitize(res));
        }
        let left = v.expires_at - now;
        let left = if left > 0 {
            duration(left)
        } else {
            "now".to_owned()
        };
        field(&mut s, "Expires in", &left);
        if waiting > 0 {
            let plural = if waiting == 1 { "" } else { "s" };
            s.push_str(&format!("  ({waiting} more request{plural} waiting)\n"));
        }
        s.push_str(&self.question());
        s
    }

    fn question(&self) -> String {
        match &self.stage {
            Stage::Choose if self.view.scopes.is_empty() => "Approve [a] or deny [d]?\n> ".into(),
            Stage::Choose => "Approve all [a], approve fewer scopes [f], or deny [d]?\n> ".into(),
            Stage::PickScopes => "Which scopes to grant? Type their numbers (e.g. 1 3), \
                 \"none\" for no scopes, or b to go back.\n> "
                .into(),
            Stage::Remember { .. } => "Remember this decision? [1] just this once (default)  \
                 [2] for 1 hour  [3] for 8 hours  [4] until Gatehouse restarts  [5] always  \
                 (b to go back)\n> "
                .into(),
            Stage::Cover { .. } => "Remember it for [e] exactly these arguments (default) or \
                 [t] this tool with any arguments? (b to go back)\n> "
                .into(),
        }
    }

    /// Whether the request is an MCP tool call, whose remembered decision may cover the tool
    /// with any arguments instead of exactly these.
    fn is_tool_call(&self) -> bool {
        self.view
            .authorization_details
            .as_ref()
            .and_then(|d| d.as_array())
            .is_some_and(|d| d.iter().any(|x| x["type"] == "mcp_tool_call"))
    }

    /// Takes one line the person typed.
    pub fn input(&mut self, line: &str) -> Step {
        let answer = line.trim().to_ascii_lowercase();
        match self.stage.clone() {
            Stage::Choose => self.choose(&answer),
            Stage::PickScopes => self.pick_scopes(&answer),
            Stage::Remember { scopes } => self.remember(&answer, scopes),
            Stage::Cover { remember } => self.cover(&answer, remember),
        }
    }

    fn cover(&mut self, answer: &str, remember: Remember) -> Step {
        let broader = match answer {
            "b" | "back" => return self.go(Stage::Remember { scopes: None }),
            "" | "e" | "exact" => false,
            "t" | "tool" | "any" => true,
            _ => return Step::Say("Type e or t, or b to go back.\n> ".into()),
        };
        Step::Decide(Decision {
            remember,
            broader,
            ..Decision::approve()
        })
    }

    fn choose(&mut self, answer: &str) -> Step {
        let can_narrow = !self.view.scopes.is_empty();
        match answer {
            "a" | "approve" | "y" | "yes" => self.go(Stage::Remember { scopes: None }),
            "f" | "fewer" if can_narrow => self.go(Stage::PickScopes),
            "d" | "deny" | "n" | "no" => Step::Decide(Decision::deny()),
            "s" | "show" | "?" => Step::Show,
            "" => Step::Say(format!(
                "An empty line does not approve anything. {}",
                self.hint()
            )),
            _ => Step::Say(self.hint()),
        }
    }

    fn hint(&self) -> String {
        if self.view.scopes.is_empty() {
            "Type a to approve or d to deny (s shows the request again).\n> ".into()
        } else {
            "Type a to approve all, f to approve fewer scopes, or d to deny \
             (s shows the request again).\n> "
                .into()
        }
    }

    fn pick_scopes(&mut self, answer: &str) -> Step {
        match answer {
            "b" | "back" => self.go(Stage::Choose),
            "" => Step::Say(self.question()),
            "none" | "0" => self.go(Stage::Remember {
                scopes: Some(Vec::new()),
            }),
            _ => match parse_picks(answer, self.view.scopes.len()) {
                Ok(picked) => {
                    let scopes: Vec<String> = picked
                        .into_iter()
                        .map(|i| self.view.scopes[i].clone())
                        .collect();
                    let granting = scopes
                        .iter()
                        .map(|s| sanitize(s).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ");
                    self.stage = Stage::Remember {
                        scopes: Some(scopes),
                    };
                    Step::Say(format!("Granting: {granting}\n{}", self.question()))
                }
                Err(msg) => Step::Say(format!("{msg}\n> ")),
            },
        }
    }

    fn remember(&mut self, answer: &str, scopes: Option<Vec<String>>) -> Step {
        let remember = match answer {
            "b" | "back" => return self.go(Stage::Choose),
            "" | "1" | "once" => Remember::Once,
            "2" | "1h" => Remember::OneHour,
            "3" | "8h" => Remember::EightHours,
            "4" | "session" => Remember::Session,
            "5" | "always" => Remember::Always,
            _ => return Step::Say("Type a number from 1 to 5, or b to go back.\n> ".into()),
        };
        if remember != Remember::Once && scopes.is_none() && self.is_tool_call() {
            return self.go(Stage::Cover { remember });
        }
        Step::Decide(Decision {
            scopes,
            remember,
            ..Decision::approve()
        })
    }

    fn go(&mut self, stage: Stage) -> Step {
        self.stage = stage;
        Step::Say(self.question())
    }
}

/// How an action request reached Gatehouse, for people.
fn via_text(via: Option<&str>) -> &'static str {
    match via {
        Some("ciba") => "CIBA (the agent asked Gatehouse directly, in the background)",
        Some("device") => "device code (the agent shows a code for you to match)",
        Some("mcp") => "MCP tool call (through Gatehouse's MCP gateway)",
        Some("gateway") => "API call (through Gatehouse's gateway)",
        _ => "(unknown channel)",
    }
}

fn field(s: &mut String, label: &str, value: &str) {
    s.push_str(&format!("  {label:<14}{value}\n"));
}

/// Reads scope numbers (1-based, separated by spaces or commas) into indexes in request order,
/// without duplicates.
pub fn parse_picks(input: &str, count: usize) -> Result<Vec<usize>, String> {
    let mut picked = vec![false; count];
    let mut any = false;
    for part in input.split([' ', ',']).filter(|p| !p.is_empty()) {
        let n: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a scope number; type numbers like 1 3"))?;
        if n == 0 || n > count {
            return Err(format!(
                "There is no scope number {n}; choose from 1 to {count}"
            ));
        }
        picked[n - 1] = true;
        any = true;
    }
    if !any {
        return Err("Type the numbers of the scopes to grant, like 1 3".into());
    }
    Ok((0..count).filter(|&i| picked[i]).collect())
}

/// A one-line account of a decision just recorded here.
pub fn outcome_line(row: &ApprovalRow, view: &ApprovalView) -> String {
    match row.status {
        ApprovalStatus::Approved => {
            let scopes = row.granted_scopes.as_deref().unwrap_or(&[]);
            let scopes = if view.kind == "action" && scopes.is_empty() {
                view.summary
                    .iter()
                    .map(|l| sanitize(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("; ")
            } else if scopes.is_empty() {
                "no scopes".to_owned()
            } else {
                scopes
                    .iter()
                    .map(|s| sanitize(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let remembered = match row.remember.as_deref().and_then(Remember::parse) {
                None | Some(Remember::Once) => "just this once",
                Some(Remember::OneHour) => "remembered for 1 hour",
                Some(Remember::EightHours) => "remembered for 8 hours",
                Some(Remember::Session) => "remembered until Gatehouse restarts",
                Some(Remember::Always) => "remembered always",
            };
            format!(
                "Approved {} for {}: {scopes} ({remembered}).\n",
                row.id,
                agent_name(view)
            )
        }
        other => format!("{} {}.\n", capitalized(other), row.id),
    }
}

fn agent_name(view: &ApprovalView) -> String {
    sanitize(view.client_name.as_deref().unwrap_or(&view.client_id)).into_owned()
}

fn capitalized(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Pending => "Pending",
        ApprovalStatus::Approved => "Approved",
        ApprovalStatus::Denied => "Denied",
        ApprovalStatus::Expired => "Expired",
    }
}

/// What to say when the request on screen ended without this terminal.
fn ended_elsewhere(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Expired => "\nThis request expired before it was answered; moving on.\n",
        ApprovalStatus::Approved => "\nThis request was approved elsewhere; moving on.\n",
        _ => "\nThis request was denied elsewhere; moving on.\n",
    }
}

fn now() -> Millis {
    use gatehouse_core::Clock;
    gatehouse_core::SystemClock.now()
}

/// Runs until the broker goes away.
pub async fn run(
    mut watch: ApprovalWatch,
    broker: Broker,
    out: Output,
    mut lines: mpsc::Receiver<String>,
) {
    let mut queue: VecDeque<ApprovalView> = VecDeque::new();
    let mut current: Option<Prompt> = None;
    let mut stdin_open = true;
    loop {
        if current.is_none()
            && let Some(view) = queue.pop_front()
        {
            let prompt = Prompt::new(view);
            out.text(prompt.render(now(), queue.len()));
            if !stdin_open {
                out.text("\n(Input is closed: this request waits until it expires or is decided elsewhere.)\n");
            }
            current = Some(prompt);
        }
        tokio::select! {
            update = watch.next() => match update {
                Some(Update::Requested(view)) => {
                    let view = *view;
                    if current.is_some() {
                        out.text(format!(
                            "\n(New request from {} is waiting; it comes next.)\n> ",
                            agent_name(&view)
                        ));
                    }
                    queue.push_back(view);
                }
                Some(Update::Decided { id, status }) => {
                    if current.as_ref().is_some_and(|p| p.id() == id) {
                        out.text(ended_elsewhere(status));
                        current = None;
                    } else {
                        queue.retain(|v| v.id != id);
                    }
                }
                None => return,
            },
            line = lines.recv(), if stdin_open => match line {
                None => {
                    stdin_open = false;
                    out.text("\nInput closed: Gatehouse keeps running, but cannot take answers here. \
                              Requests expire unless decided elsewhere. Stop with Ctrl-C.\n");
                }
                Some(line) => {
                    let Some(prompt) = current.as_mut() else {
                        if !line.trim().is_empty() {
                            out.text("Nothing to decide right now; requests appear here as agents make them.\n");
                        }
                        continue;
                    };
                    match prompt.input(&line) {
                        Step::Say(text) => out.text(text),
                        Step::Show => out.text(prompt.render(now(), queue.len())),
                        Step::Decide(decision) => {
                            match broker.decide(prompt.id(), decision, CHANNEL).await {
                                Ok(row) => {
                                    out.text(outcome_line(&row, prompt.view()));
                                    current = None;
                                }
                                Err(DecideError::Store(e)) => {
                                    out.text(format!("Could not record the decision ({e}); please answer again.\n"));
                                    prompt.restart();
                                    out.text(prompt.render(now(), queue.len()));
                                }
                                Err(e) => {
                                    out.text(format!("Not recorded: {e}. Moving on.\n"));
                                    current = None;
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(scopes: &[&str]) -> ApprovalView {
        ApprovalView {
            id: "apr_1".into(),
            kind: "consent".into(),
            client_id: "agt_1".into(),
            client_name: Some("Mail helper\x1b[2J".into()),
            verified: false,
            redirect_host: Some("localhost".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            resources: vec!["https://mail.example/".into()],
            authorization_details: None,
            binding_message: None,
            via: None,
            user_code: None,
            summary: Vec::new(),
            warnings: Vec::new(),
            created_at: 0,
            expires_at: 114_000,
        }
    }

    #[test]
    fn the_card_shows_what_the_person_needs() {
        let p = Prompt::new(view(&["mail.read", "mail.send"]));
        let text = p.render(0, 2);
        assert!(
            text.contains("Agent         Mail helper\\u{1b}[2J (self-asserted name)"),
            "{text}"
        );
        assert!(text.contains("Client id     agt_1"));
        assert!(text.contains("Redirects to  localhost"));
        assert!(text.contains("Scopes        1. mail.read\n                2. mail.send\n"));
        assert!(text.contains("Resources     https://mail.example/"));
        assert!(text.contains("Expires in    1m 54s"));
        assert!(text.contains("(2 more requests waiting)"));
        assert!(text.ends_with("or deny [d]?\n> "));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn a_verified_name_says_so() {
        let mut v = view(&[]);
        v.verified = true;
        v.client_name = Some("Claude Code".into());
        let text = Prompt::new(v).render(200_000, 0);
        assert!(text.contains("Claude Code (verified)"));
        assert!(text.contains("(none requested)"));
        assert!(text.contains("Expires in    now"));
        assert!(text.ends_with("Approve [a] or deny [d]?\n> "));
    }

    #[test]
    fn enter_never_approves() {
        let mut p = Prompt::new(view(&["a"]));
        assert!(matches!(p.input(""), Step::Say(s) if s.contains("does not approve")));
        assert!(matches!(p.input("maybe"), Step::Say(_)));
        assert_eq!(p.input("d"), Step::Decide(Decision::deny()));
    }

    #[test]
    fn approve_all_then_remember() {
        let mut p = Prompt::new(view(&["a", "b"]));
        assert!(matches!(p.input("a"), Step::Say(s) if s.contains("Remember")));
        assert_eq!(p.input(""), Step::Decide(Decision::approve()));

        let mut p = Prompt::new(view(&["a", "b"]));
        p.input("A");
        assert_eq!(
            p.input("5"),
            Step::Decide(Decision {
                approve: true,
                scopes: None,
                remember: Remember::Always,
                uses: None,
                broader: false,
            })
        );
    }

    #[test]
    fn a_remembered_tool_call_covers_these_arguments_or_any() {
        let mut v = view(&[]);
        v.kind = "action".into();
        v.authorization_details = Some(serde_json::json!([
            {"type": "mcp_tool_call", "server": "demo", "tool": "delete_note"}
        ]));
        let mut p = Prompt::new(v.clone());
        p.input("a");
        assert_eq!(p.input("1"), Step::Decide(Decision::approve()));
        let mut p = Prompt::new(v.clone());
        p.input("a");
        assert!(matches!(p.input("2"), Step::Say(s) if s.contains("any arguments")));
        assert!(matches!(p.input("x"), Step::Say(_)));
        assert_eq!(
            p.input("t"),
            Step::Decide(Decision {
                remember: Remember::OneHour,
                broader: true,
                ..Decision::approve()
            })
        );
        let mut p = Prompt::new(v);
        p.input("a");
        p.input("5");
        assert_eq!(
            p.input(""),
            Step::Decide(Decision {
                remember: Remember::Always,
                ..Decision::approve()
            })
        );
    }

    #[test]
    fn approve_fewer_scopes() {
        let mut p = Prompt::new(view(&["a", "b", "c"]));
        assert!(matches!(p.input("f"), Step::Say(s) if s.contains("Which scopes")));
        assert!(matches!(p.input("4"), Step::Say(s) if s.contains("no scope number 4")));
        assert!(matches!(p.input("3, 1"), Step::Say(s) if s.starts_with("Granting: a c\n")));
        assert_eq!(
            p.input("1h"),
            Step::Decide(Decision {
                approve: true,
                scopes: Some(vec!["a".into(), "c".into()]),
                remember: Remember::OneHour,
                uses: None,
                broader: false,
            })
        );
    }

    #[test]
    fn going_back_and_granting_none() {
        let mut p = Prompt::new(view(&["a"]));
        p.input("f");
        assert!(matches!(p.input("b"), Step::Say(s) if s.contains("Approve all")));
        p.input("f");
        p.input("none");
        assert_eq!(
            p.input("once"),
            Step::Decide(Decision {
                approve: true,
                scopes: Some(vec![]),
                remember: Remember::Once,
                uses: None,
                broader: false,
            })
        );
    }

    #[test]
    fn no_narrowing_without_scopes() {
        let mut p = Prompt::new(view(&[]));
        assert!(matches!(p.input("f"), Step::Say(s) if s.contains("Type a to approve or d")));
        assert_eq!(p.input("s"), Step::Show);
    }

    fn action(via: &str) -> ApprovalView {
        ApprovalView {
            id: "apr_9".into(),
            kind: "action".into(),
            client_id: "agt_1".into(),
            client_name: Some("Demo agent".into()),
            verified: false,
            redirect_host: None,
            scopes: vec![],
            resources: vec![],
            authorization_details: Some(serde_json::json!([{"type":"message_send"}])),
            binding_message: Some("Send Q3 budget deck to Alex\u{202e}".into()),
            via: Some(via.into()),
            user_code: (via == "device").then(|| "WDJB-MJHT".into()),
            summary: vec![
                "Send an email to alex@contractor.example".into(),
                "Subject: Q3 budget deck; attachments: q3-budget.pdf".into(),
            ],
            warnings: vec!["alex@contractor.example is outside your domains".into()],
            created_at: 0,
            expires_at: 65_000,
        }
    }

    #[test]
    fn an_action_card_says_who_how_and_what() {
        let text = Prompt::new(action("ciba")).render(0, 0);
        assert!(
            text.contains("Action request apr_9: an agent wants to do something now"),
            "{text}"
        );
        assert!(
            text.contains("Agent         Demo agent (self-asserted name)"),
            "{text}"
        );
        assert!(text.contains("Asked via     CIBA"), "{text}");
        assert!(
            text.contains("Message       \"Send Q3 budget deck to Alex\\u{202e}\""),
            "{text}"
        );
        assert!(text.contains("check they match"), "{text}");
        assert!(
            text.contains(
                "What          - Send an email to alex@contractor.example\n                \
                 - Subject: Q3 budget deck; attachments: q3-budget.pdf\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  \u{26a0} alex@contractor.example is outside your domains\n"),
            "{text}"
        );
        assert!(!text.contains("Scopes"), "{text}");
        assert!(!text.contains("Resources"), "{text}");
        assert!(!text.contains("Code "), "{text}");
        assert!(text.contains("Expires in    1m 05s"), "{text}");
        assert!(text.ends_with("Approve [a] or deny [d]?\n> "), "{text}");
        assert!(!text.contains('\u{202e}'));
    }

    #[test]
    fn a_device_action_shows_the_code_to_match() {
        let mut v = action("device");
        v.binding_message = None;
        v.scopes = vec!["mail:send".into()];
        v.resources = vec!["https://mail.example/".into()];
        let text = Prompt::new(v).render(0, 1);
        assert!(text.contains("Asked via     device code"), "{text}");
        assert!(
            text.contains("Code          WDJB-MJHT  (the agent shows this code"),
            "{text}"
        );
        assert!(!text.contains("Message"), "{text}");
        assert!(text.contains("Scopes        1. mail:send"), "{text}");
        assert!(
            text.contains("Resources     https://mail.example/"),
            "{text}"
        );
        assert!(
            text.ends_with("approve fewer scopes [f], or deny [d]?\n> "),
            "{text}"
        );
    }

    #[test]
    fn an_action_is_approved_with_a_remembered_choice_or_denied() {
        let mut p = Prompt::new(action("ciba"));
        assert!(matches!(p.input("f"), Step::Say(s) if s.contains("Type a to approve or d")));
        assert!(matches!(p.input("a"), Step::Say(s) if s.contains("[3] for 8 hours")));
        assert_eq!(
            p.input("4"),
            Step::Decide(Decision {
                remember: Remember::Session,
                ..Decision::approve()
            })
        );
        let mut p = Prompt::new(action("ciba"));
        assert_eq!(p.input("deny"), Step::Decide(Decision::deny()));
    }

    #[test]
    fn a_consent_card_shows_details_when_asked_with_them() {
        let mut v = view(&["mail.send"]);
        v.summary = vec!["Send an email to alex@contractor.example".into()];
        v.warnings = vec!["alex@contractor.example is outside your domains".into()];
        let text = Prompt::new(v).render(0, 0);
        assert!(
            text.starts_with("\n") && text.contains("Consent request apr_1"),
            "{text}"
        );
        assert!(
            text.contains("What          - Send an email to alex@contractor.example"),
            "{text}"
        );
        assert!(
            text.contains("\u{26a0} alex@contractor.example is outside"),
            "{text}"
        );
        assert!(!text.contains("Asked via"), "{text}");
    }

    #[test]
    fn picks_parse() {
        assert_eq!(parse_picks("2 1 2", 3), Ok(vec![0, 1]));
        assert_eq!(parse_picks("1,3", 3), Ok(vec![0, 2]));
        assert!(parse_picks("x", 3).is_err());
        assert!(parse_picks("0", 3).is_err());
        assert!(parse_picks(" , ", 3).is_err());
    }
}
