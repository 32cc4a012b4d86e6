//! Policy rules and the pause switch: the pure `decide(request, rules, now) -> Allow | Deny | Ask`,
//! rule creation and hit recording (audited), and the global "pause all agents" flag.
//!
//! Precedence, first match wins:
//! 1. paused: every decision is `Deny(Paused)`;
//! 2. a live deny rule matching any requested (action, resource) pair: `Deny(Rule)`;
//! 3. a live ask rule matching any pair: `Ask` (an ask rule carves an exception out of a broader
//!    allow; without this it could never change anything, since Ask is the default);
//! 4. every (action, resource) pair covered by a live allow rule: `Allow`;
//! 5. otherwise `Ask` (the default for actions).
//!
//! A rule is live unless it expired (`expires_at <= now`), belongs to another server session
//! (`session` lifetime), or was deleted (a `once` rule is deleted by its first hit).

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::Millis;
use crate::store::rules::{self, NewRule, RuleRow};
use crate::store::{StoreError, WriteTx};

/// The `settings` key holding the pause switch (`"true"` while paused).
pub const PAUSED_KEY: &str = "paused";

/// The longest pattern a rule accepts.
const MAX_PATTERN: usize = 500;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
    Ask,
}

impl Effect {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Effect::Allow),
            "deny" => Some(Effect::Deny),
            "ask" => Some(Effect::Ask),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Ask => "ask",
        }
    }
}

/// How long a rule, or a remembered consent, lives. The strings are the jsonl/terminal contract
/// and the stored `lifetime` / `remember` values. [`crate::approvals::Remember`] is this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifetime {
    /// A rule is used up by its first hit; a consent is not remembered at all.
    #[serde(rename = "once")]
    Once,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "8h")]
    EightHours,
    /// Until the server that created it stops (Gatehouse restarts).
    #[serde(rename = "session")]
    Session,
    #[serde(rename = "always")]
    Always,
}

impl Lifetime {
    pub const ALL: [Lifetime; 5] = [
        Lifetime::Once,
        Lifetime::OneHour,
        Lifetime::EightHours,
        Lifetime::Session,
        Lifetime::Always,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Lifetime::Once => "once",
            Lifetime::OneHour => "1h",
            Lifetime::EightHours => "8h",
            Lifetime::Session => "session",
            Lifetime::Always => "always",
        }
    }
    /// When a rule or consent created at `now` expires, for the timed lifetimes.
    pub fn expires_at(self, now: Millis) -> Option<Millis> {
        match self {
            Lifetime::OneHour => Some(now + 3_600_000),
            Lifetime::EightHours => Some(now + 8 * 3_600_000),
            _ => None,
        }
    }
}

/// A rule as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: i64,
    /// A client id, or a glob (`*` for every agent).
    pub agent: String,
    /// An action type or scope glob (`message_send`, `mail:*`, `*`).
    pub action: String,
    /// A resource, URL or recipient glob (`https://api.github.com/*`, `*`).
    pub resource: String,
    pub effect: Effect,
    pub lifetime: Lifetime,
    pub session_id: Option<String>,
    pub expires_at: Option<Millis>,
}

impl Rule {
    /// Parses a stored row; `None` for a row with an unknown effect or lifetime (the schema's
    /// CHECK constraints keep those out, so this never drops a real rule).
    pub fn from_row(r: &RuleRow) -> Option<Self> {
        Some(Rule {
            id: r.id,
            agent: r.agent.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            effect: Effect::parse(&r.effect)?,
            lifetime: Lifetime::parse(&r.lifetime)?,
            session_id: r.session_id.clone(),
            expires_at: r.expires_at,
        })
    }

    /// Whether the rule applies at `now` in the server session `session_id`.
    pub fn is_live(&self, now: Millis, session_id: &str) -> bool {
        if self.expires_at.is_some_and(|e| e <= now) {
            return false;
        }
        match self.lifetime {
            Lifetime::Session => self.session_id.as_deref() == Some(session_id),
            _ => true,
        }
    }

    fn matches(&self, client_id: &str, action: &str, resource: &str) -> bool {
        glob(&self.agent, client_id) && glob(&self.action, action) && glob(&self.resource, resource)
    }
}

/// What an agent asks to do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PolicyRequest {
    pub client_id: String,
    /// Action types (`message_send`), or the scopes when the request has no details.
    pub actions: Vec<String>,
    /// Resources, URLs or recipients the actions target. Empty means "no particular resource",
    /// which only a resource pattern that matches the empty string (such as `*`) covers.
    pub resources: Vec<String>,
}

/// Why a request is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DenyReason {
    /// Gatehouse is paused: every agent is stopped.
    Paused,
    /// A deny rule matched.
    Rule { rule_id: i64 },
}

/// The policy's answer, with the rules that produced it (record them with [`record_hits`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum PolicyDecision {
    Allow {
        rules: Vec<i64>,
    },
    Deny {
        reason: DenyReason,
    },
    /// Ask the person. `rules` holds the ask rules that matched (empty for the default).
    Ask {
        rules: Vec<i64>,
    },
}

impl PolicyDecision {
    /// The rule ids that decided, to count as hits.
    pub fn hits(&self) -> Vec<i64> {
        match self {
            PolicyDecision::Allow { rules } | PolicyDecision::Ask { rules } => rules.clone(),
            PolicyDecision::Deny {
                reason: DenyReason::Rule { rule_id },
            } => vec![*rule_id],
            PolicyDecision::Deny {
                reason: DenyReason::Paused,
            } => Vec::new(),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyDecision::Allow { .. } => "allow",
            PolicyDecision::Deny { .. } => "deny",
            PolicyDecision::Ask { .. } => "ask",
        }
    }
}

/// The message an agent gets while Gatehouse is paused.
pub const PAUSED_MESSAGE: &str = "Gatehouse is paused: every agent is stopped until you resume";

/// Decides a request against the rules. Pure: no I/O, no clock.
pub fn decide(
    request: &PolicyRequest,
    rules: &[Rule],
    now: Millis,
    session_id: &str,
    paused: bool,
) -> PolicyDecision {
    if paused {
        return PolicyDecision::Deny {
            reason: DenyReason::Paused,
        };
    }
    let live: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.is_live(now, session_id) && glob(&r.agent, &request.client_id))
        .collect();
    let no_resource = [String::new()];
    let resources: &[String] = if request.resources.is_empty() {
        &no_resource
    } else {
        &request.resources
    };
    let pairs = || {
        request
            .actions
            .iter()
            .flat_map(|a| resources.iter().map(move |r| (a.as_str(), r.as_str())))
    };
    let client = request.client_id.as_str();
    let matching = |effect: Effect, action: &'_ str, resource: &'_ str| {
        live.iter()
            .copied()
            .filter(|r| r.effect == effect && r.matches(client, action, resource))
            .collect::<Vec<&Rule>>()
    };
    for (a, r) in pairs() {
        if let Some(rule) = matching(Effect::Deny, a, r).first() {
            return PolicyDecision::Deny {
                reason: DenyReason::Rule { rule_id: rule.id },
            };
        }
    }
    let mut asks: Vec<i64> = pairs()
        .flat_map(|(a, r)| matching(Effect::Ask, a, r).into_iter().map(|rule| rule.id))
        .collect();
    if !asks.is_empty() {
        asks.sort_unstable();
        asks.dedup();
        return PolicyDecision::Ask { rules: asks };
    }
    if request.actions.is_empty() {
        return PolicyDecision::Ask { rules: Vec::new() };
    }
    let mut allows = Vec::new();
    for (a, r) in pairs() {
        // Prefer a lasting rule, so a `once` rule is not used up while another one covers.
        let candidates = matching(Effect::Allow, a, r);
        let chosen = candidates
            .iter()
            .find(|c| c.lifetime != Lifetime::Once)
            .or(candidates.first());
        match chosen {
            Some(rule) => allows.push(rule.id),
            None => return PolicyDecision::Ask { rules: Vec::new() },
        }
    }
    allows.sort_unstable();
    allows.dedup();
    PolicyDecision::Allow { rules: allows }
}

/// Glob match where `*` matches any run of characters (including none); everything else is
/// literal and case-sensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

// ---- reading and writing rules and the pause switch --------------------------------------------

/// Whether Gatehouse is paused, read on `conn` (one indexed lookup).
pub fn is_paused(conn: &Connection) -> rusqlite::Result<bool> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([PAUSED_KEY], |r| r.get(0))
        .optional()?;
    Ok(v.as_deref() == Some("true"))
}

/// Sets the pause switch and audits the change (`agents.paused` / `agents.resumed`). Returns
/// false, writing nothing, when the switch already was in that position.
pub fn set_paused(tx: &mut WriteTx<'_>, paused: bool, by: &str) -> Result<bool, StoreError> {
    if is_paused(tx.conn())? == paused {
        return Ok(false);
    }
    tx.conn()
        .prepare_cached(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([PAUSED_KEY, if paused { "true" } else { "false" }])?;
    let kind = if paused {
        EventKind::AgentsPaused
    } else {
        EventKind::AgentsResumed
    };
    tx.append(NewEvent::new(
        kind,
        Outcome::Ok,
        None,
        serde_json::json!({ "by": by }),
    ))?;
    Ok(true)
}

/// The rules not deleted, parsed.
pub fn load_rules(conn: &Connection) -> rusqlite::Result<Vec<Rule>> {
    Ok(rules::list(conn)?
        .iter()
        .filter_map(Rule::from_row)
        .collect())
}

/// Reads the rules and the pause switch on `conn` and decides. Call it inside the write
/// transaction that acts on the decision (with [`record_hits`]) so a `once` rule is used exactly
/// once.
pub fn evaluate(
    conn: &Connection,
    request: &PolicyRequest,
    now: Millis,
    session_id: &str,
) -> rusqlite::Result<PolicyDecision> {
    let paused = is_paused(conn)?;
    if paused {
        return Ok(decide(request, &[], now, session_id, true));
    }
    let rules = load_rules(conn)?;
    Ok(decide(request, &rules, now, session_id, false))
}

/// Records a decision's rule hits: bumps each rule's hit count and last hit (a `once` rule is
/// used up) and appends one `rule.hit` event. Does nothing when no rule decided.
pub fn record_hits(
    tx: &mut WriteTx<'_>,
    request: &PolicyRequest,
    decision: &PolicyDecision,
) -> Result<(), StoreError> {
    let hits = decision.hits();
    if hits.is_empty() {
        return Ok(());
    }
    let now = tx.now();
    for id in &hits {
        rules::record_hit(tx.conn(), *id, now)?;
    }
    tx.append(NewEvent::new(
        EventKind::RuleHit,
        Outcome::Ok,
        Some(&request.client_id),
        serde_json::json!({
            "rule_ids": hits,
            "decision": decision.as_str(),
            "actions": request.actions,
            "resources": request.resources,
        }),
    ))?;
    Ok(())
}

/// A rule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub agent: String,
    pub action: String,
    pub resource: String,
    pub effect: Effect,
    pub lifetime: Lifetime,
}

/// Why a rule cannot be created or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the {field} pattern is empty; use * to match everything")]
    EmptyPattern { field: &'static str },
    #[error("the {field} pattern is longer than {MAX_PATTERN} characters")]
    PatternTooLong { field: &'static str },
    #[error("the {field} pattern contains whitespace or control characters")]
    BadPattern { field: &'static str },
    #[error("a session rule needs the running server's session id")]
    NoSession,
}

impl RuleSpec {
    /// Checks the patterns.
    pub fn validate(&self) -> Result<(), RuleError> {
        for (field, p) in [
            ("agent", &self.agent),
            ("action", &self.action),
            ("resource", &self.resource),
        ] {
            if p.is_empty() {
                return Err(RuleError::EmptyPattern { field });
            }
            if p.chars().count() > MAX_PATTERN {
                return Err(RuleError::PatternTooLong { field });
            }
            if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(RuleError::BadPattern { field });
            }
        }
        Ok(())
    }
}

/// Creates a rule and audits it (`rule.created`) in `tx`. `session_id` is required for a
/// `session` rule (the server's [`crate::Authority::session_id`]) and ignored otherwise.
/// `created_by` is `cli`, or the approval id whose "remember" made the rule.
pub fn create_rule(
    tx: &mut WriteTx<'_>,
    spec: &RuleSpec,
    session_id: Option<&str>,
    created_by: &str,
) -> Result<Result<RuleRow, RuleError>, StoreError> {
    if let Err(e) = spec.validate() {
        return Ok(Err(e));
    }
    let session_id = match spec.lifetime {
        Lifetime::Session => match session_id {
            Some(s) => Some(s),
            None => return Ok(Err(RuleError::NoSession)),
        },
        _ => None,
    };
    let now = tx.now();
    let new = NewRule {
        agent: &spec.agent,
        action: &spec.action,
        resource: &spec.resource,
        effect: spec.effect.as_str(),
        lifetime: spec.lifetime.as_str(),
        session_id,
        expires_at: spec.lifetime.expires_at(now),
        created_by,
    };
    let id = rules::insert(tx.conn(), &new, now)?;
    let row = rules::get(tx.conn(), id)?
        .ok_or_else(|| StoreError::Corrupt(format!("rule {id} vanished after insert")))?;
    tx.append(NewEvent::new(
        EventKind::RuleCreated,
        Outcome::Ok,
        (row.agent != "*").then_some(row.agent.as_str()),
        serde_json::json!({ "rule": row }),
    ))?;
    Ok(Ok(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000_000;
    const SES: &str = "ses_current";

    fn rule(id: i64, agent: &str, action: &str, resource: &str, effect: Effect) -> Rule {
        Rule {
            id,
            agent: agent.into(),
            action: action.into(),
            resource: resource.into(),
            effect,
            lifetime: Lifetime::Always,
            session_id: None,
            expires_at: None,
        }
    }

    fn req(client: &str, actions: &[&str], resources: &[&str]) -> PolicyRequest {
        PolicyRequest {
            client_id: client.into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn allow(ids: &[i64]) -> PolicyDecision {
        PolicyDecision::Allow {
            rules: ids.to_vec(),
        }
    }
    fn ask(ids: &[i64]) -> PolicyDecision {
        PolicyDecision::Ask {
            rules: ids.to_vec(),
        }
    }
    fn deny(id: i64) -> PolicyDecision {
        PolicyDecision::Deny {
            reason: DenyReason::Rule { rule_id: id },
        }
    }
    const PAUSED: PolicyDecision = PolicyDecision::Deny {
        reason: DenyReason::Paused,
    };

    use Effect::{Allow as A, Ask as K, Deny as D};

    #[test]
    fn precedence() {
        let r = req("agt_1", &["message_send"], &["alex@example.com"]);
        let cases: Vec<(&str, Vec<Rule>, PolicyDecision)> = vec![
            ("no rule asks", vec![], ask(&[])),
            ("allow", vec![rule(1, "*", "*", "*", A)], allow(&[1])),
            (
                "deny wins over allow",
                vec![
                    rule(1, "*", "*", "*", A),
                    rule(2, "*", "message_send", "*", D),
                ],
                deny(2),
            ),
            (
                "deny wins whatever the order",
                vec![
                    rule(2, "*", "*", "*", D),
                    rule(1, "agt_1", "message_send", "alex@example.com", A),
                ],
                deny(2),
            ),
            (
                "ask carves an exception out of an allow",
                vec![
                    rule(1, "*", "*", "*", A),
                    rule(3, "*", "message_send", "*", K),
                ],
                ask(&[3]),
            ),
            (
                "deny wins over ask",
                vec![rule(3, "*", "*", "*", K), rule(2, "*", "*", "*", D)],
                deny(2),
            ),
            (
                "rules of other agents do not apply",
                vec![rule(2, "agt_2", "*", "*", D), rule(1, "agt_1", "*", "*", A)],
                allow(&[1]),
            ),
        ];
        for (name, rules, want) in cases {
            assert_eq!(decide(&r, &rules, NOW, SES, false), want, "{name}");
        }
    }

    #[test]
    fn pause_denies_everything() {
        let r = req("agt_1", &["message_send"], &[]);
        let rules = [rule(1, "*", "*", "*", A)];
        assert_eq!(decide(&r, &rules, NOW, SES, true), PAUSED);
        assert_eq!(decide(&r, &[], NOW, SES, true), PAUSED);
        assert_eq!(decide(&req("agt_1", &[], &[]), &[], NOW, SES, true), PAUSED);
        assert!(PAUSED.hits().is_empty());
    }

    #[test]
    fn lifetimes() {
        let r = req("agt_1", &["data_delete"], &["db/replica"]);
        let with = |lifetime: Lifetime, created: Millis, session: Option<&str>| Rule {
            lifetime,
            expires_at: lifetime.expires_at(created),
            session_id: session.map(str::to_owned),
            ..rule(7, "*", "*", "*", A)
        };
        const H: Millis = 3_600_000;
        let cases: Vec<(&str, Rule, Millis, PolicyDecision)> = vec![
            (
                "1h just before expiry",
                with(Lifetime::OneHour, NOW, None),
                NOW + H - 1,
                allow(&[7]),
            ),
            (
                "1h at the boundary",
                with(Lifetime::OneHour, NOW, None),
                NOW + H,
                ask(&[]),
            ),
            (
                "8h after 1h",
                with(Lifetime::EightHours, NOW, None),
                NOW + H,
                allow(&[7]),
            ),
            (
                "8h just before",
                with(Lifetime::EightHours, NOW, None),
                NOW + 8 * H - 1,
                allow(&[7]),
            ),
            (
                "8h at the boundary",
                with(Lifetime::EightHours, NOW, None),
                NOW + 8 * H,
                ask(&[]),
            ),
            (
                "session, same",
                with(Lifetime::Session, NOW, Some(SES)),
                NOW,
                allow(&[7]),
            ),
            (
                "session, another",
                with(Lifetime::Session, NOW, Some("ses_old")),
                NOW,
                ask(&[]),
            ),
            (
                "session without id",
                with(Lifetime::Session, NOW, None),
                NOW,
                ask(&[]),
            ),
            (
                "once, unused",
                with(Lifetime::Once, NOW, None),
                NOW + 100 * H,
                allow(&[7]),
            ),
            (
                "always",
                with(Lifetime::Always, NOW, None),
                NOW + 10_000 * H,
                allow(&[7]),
            ),
        ];
        for (name, rule, at, want) in cases {
            assert_eq!(decide(&r, &[rule], at, SES, false), want, "{name}");
        }
        // An expired deny no longer denies.
        let old_deny = Rule {
            effect: D,
            ..with(Lifetime::OneHour, NOW, None)
        };
        assert_eq!(
            decide(&r, std::slice::from_ref(&old_deny), NOW + H - 1, SES, false),
            deny(7)
        );
        assert_eq!(decide(&r, &[old_deny], NOW + H, SES, false), ask(&[]));
    }

    #[test]
    fn a_lasting_allow_is_preferred_over_a_once_rule() {
        let r = req("agt_1", &["payment"], &[]);
        let once = Rule {
            lifetime: Lifetime::Once,
            ..rule(1, "*", "*", "*", A)
        };
        let always = rule(2, "*", "payment", "*", A);
        assert_eq!(
            decide(&r, &[once.clone(), always], NOW, SES, false),
            allow(&[2])
        );
        assert_eq!(decide(&r, &[once], NOW, SES, false), allow(&[1]));
    }

    #[test]
    fn patterns() {
        let gh = "https://api.github.com/repos/x/y";
        let cases: Vec<(&str, Rule, PolicyRequest, PolicyDecision)> = vec![
            (
                "agent glob",
                rule(1, "agt_*", "*", "*", A),
                req("agt_1", &["x"], &[]),
                allow(&[1]),
            ),
            (
                "agent exact, other",
                rule(1, "agt_2", "*", "*", A),
                req("agt_1", &["x"], &[]),
                ask(&[]),
            ),
            (
                "agent exact is not a prefix",
                rule(1, "agt_1", "*", "*", A),
                req("agt_12", &["x"], &[]),
                ask(&[]),
            ),
            (
                "scope glob",
                rule(1, "*", "mail:*", "*", A),
                req("a", &["mail:send"], &[]),
                allow(&[1]),
            ),
            (
                "scope glob, other",
                rule(1, "*", "mail:*", "*", A),
                req("a", &["calendar:read"], &[]),
                ask(&[]),
            ),
            (
                "action exact",
                rule(1, "*", "message_send", "*", D),
                req("a", &["message_send"], &["x"]),
                deny(1),
            ),
            (
                "url glob",
                rule(1, "*", "*", "https://api.github.com/*", A),
                req("a", &["api_request"], &[gh]),
                allow(&[1]),
            ),
            (
                "url glob, other host",
                rule(1, "*", "*", "https://api.github.com/*", A),
                req(
                    "a",
                    &["api_request"],
                    &["https://evil.example/api.github.com/"],
                ),
                ask(&[]),
            ),
            (
                "no resource needs a pattern matching empty",
                rule(1, "*", "*", "https://*", A),
                req("a", &["x"], &[]),
                ask(&[]),
            ),
            (
                "star in the middle",
                rule(1, "*", "*", "*@example.com", D),
                req("a", &["message_send"], &["alex@example.com"]),
                deny(1),
            ),
            (
                "star in the middle, other domain",
                rule(1, "*", "*", "*@example.com", D),
                req("a", &["message_send"], &["alex@example.com.evil"]),
                ask(&[]),
            ),
        ];
        for (name, rule, r, want) in cases {
            assert_eq!(decide(&r, &[rule], NOW, SES, false), want, "{name}");
        }
    }

    #[test]
    fn every_action_and_resource_must_be_allowed() {
        let rules = [
            rule(1, "*", "mail:read", "*", A),
            rule(2, "*", "api_request", "https://api.github.com/*", A),
        ];
        let cases: Vec<(&str, PolicyRequest, PolicyDecision)> = vec![
            ("one allowed", req("a", &["mail:read"], &[]), allow(&[1])),
            (
                "only some actions allowed",
                req("a", &["mail:read", "mail:send"], &[]),
                ask(&[]),
            ),
            (
                "only some resources allowed",
                req(
                    "a",
                    &["api_request"],
                    &["https://api.github.com/a", "https://example.com/"],
                ),
                ask(&[]),
            ),
            (
                "all covered by two rules",
                req(
                    "a",
                    &["api_request"],
                    &["https://api.github.com/a", "https://api.github.com/b"],
                ),
                allow(&[2]),
            ),
            ("no actions asks", req("a", &[], &[]), ask(&[])),
            (
                "an action no rule covers asks",
                req("a", &["mail:read", "message_send"], &[]),
                ask(&[]),
            ),
        ];
        for (name, r, want) in cases {
            assert_eq!(decide(&r, &rules, NOW, SES, false), want, "{name}");
        }
        let mut with_deny = rules.to_vec();
        with_deny.push(rule(3, "*", "message_send", "*", D));
        assert_eq!(
            decide(
                &req("a", &["mail:read", "message_send"], &[]),
                &with_deny,
                NOW,
                SES,
                false
            ),
            deny(3)
        );
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("*a*b*", "xaxxbx", true),
            ("**", "x", true),
            ("abc", "abc", true),
            ("abc", "ABC", false),
            ("a?c", "abc", false),
        ] {
            assert_eq!(glob(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn specs_are_validated() {
        let ok = RuleSpec {
            agent: "*".into(),
            action: "mail:*".into(),
            resource: "*".into(),
            effect: A,
            lifetime: Lifetime::Always,
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = RuleSpec {
            action: String::new(),
            ..ok.clone()
        };
        assert_eq!(
            bad.validate(),
            Err(RuleError::EmptyPattern { field: "action" })
        );
        let bad = RuleSpec {
            resource: "a b".into(),
            ..ok.clone()
        };
        assert_eq!(
            bad.validate(),
            Err(RuleError::BadPattern { field: "resource" })
        );
        let bad = RuleSpec {
            agent: "x".repeat(501),
            ..ok
        };
        assert_eq!(
            bad.validate(),
            Err(RuleError::PatternTooLong { field: "agent" })
        );
    }

    #[test]
    fn names_round_trip() {
        for e in [A, D, K] {
            assert_eq!(Effect::parse(e.as_str()), Some(e));
        }
        for l in [
            Lifetime::Once,
            Lifetime::OneHour,
            Lifetime::EightHours,
            Lifetime::Session,
            Lifetime::Always,
        ] {
            assert_eq!(Lifetime::parse(l.as_str()), Some(l));
        }
        assert_eq!(Effect::parse("maybe"), None);
        assert_eq!(Lifetime::parse("2h"), None);
    }
}
