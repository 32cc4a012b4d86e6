//! `gatehouse rules list|add|rm`: the policy rules that answer agents' action requests without
//! asking (allow), refuse them (deny) or insist on asking (ask).

use std::path::Path;

use anyhow::{Context, Result, bail};
use gatehouse_core::admin::{self, AdminError};
use gatehouse_core::policy::{Effect, Lifetime, RuleSpec};
use gatehouse_core::store::rules::RuleRow;
use gatehouse_core::{Clock, Millis, SystemClock};
use serde::Serialize;

use super::agents::render;
use super::{open_store, out_line};
use crate::cli::{EffectArg, LifetimeArg, RulesAddArgs, RulesListArgs, RulesRmArgs};
use crate::display::{sanitize, short_time, truncate};

/// Recorded as who created or removed a rule.
const BY: &str = "cli";

/// Patterns longer than this are cut in the table (the JSON has them whole).
const PATTERN_WIDTH: usize = 40;

/// A rule as listed: the stored row plus whether it has expired.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    rule: &'a RuleRow,
    expired: bool,
}

pub async fn list(data_dir: &Path, args: &RulesListArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let rules = admin::rules_list(&store)
        .await
        .context("cannot read the rules")?;
    let now = SystemClock.now();
    if args.json {
        let listed: Vec<Listed<'_>> = rules
            .iter()
            .map(|rule| Listed {
                rule,
                expired: is_expired(rule, now),
            })
            .collect();
        out_line(&serde_json::to_string_pretty(&listed)?)?;
    } else if rules.is_empty() {
        out_line(
            "No rules: every action an agent asks for is put to you. \
             Add one with `gatehouse rules add --effect allow|deny|ask ...`.",
        )?;
    } else {
        out_line(table(&rules, now).trim_end())?;
    }
    Ok(())
}

pub async fn add(data_dir: &Path, args: &RulesAddArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let spec = RuleSpec {
        agent: args.agent.clone(),
        action: args.action.clone(),
        resource: args.resource.clone(),
        effect: effect(args.effect),
        lifetime: lifetime(args.lifetime),
    };
    let rule = match admin::rule_add(&store, spec, BY).await {
        Ok(r) => r,
        Err(e @ (AdminError::InvalidRule(_) | AdminError::UnknownAgent(_))) => bail!("{e}"),
        Err(e) => return Err(anyhow::Error::new(e).context("the rule was not added")),
    };
    if args.json {
        out_line(&serde_json::to_string(&rule)?)?;
    } else {
        out_line(&format!("Added rule {}: {}.", rule.id, describe(&rule)))?;
    }
    Ok(())
}

pub async fn rm(data_dir: &Path, args: &RulesRmArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let rule = match admin::rule_delete(&store, args.id, BY).await {
        Ok(r) => r,
        Err(e @ AdminError::UnknownRule(_)) => bail!("{e}"),
        Err(e) => return Err(anyhow::Error::new(e).context("the rule was not removed")),
    };
    if args.json {
        out_line(&serde_json::to_string(&rule)?)?;
    } else {
        out_line(&format!("Removed rule {}: {}.", rule.id, describe(&rule)))?;
    }
    Ok(())
}

fn effect(e: EffectArg) -> Effect {
    match e {
        EffectArg::Allow => Effect::Allow,
        EffectArg::Deny => Effect::Deny,
        EffectArg::Ask => Effect::Ask,
    }
}

fn lifetime(l: LifetimeArg) -> Lifetime {
    match l {
        LifetimeArg::Once => Lifetime::Once,
        LifetimeArg::OneHour => Lifetime::OneHour,
        LifetimeArg::EightHours => Lifetime::EightHours,
        LifetimeArg::Session => Lifetime::Session,
        LifetimeArg::Always => Lifetime::Always,
    }
}

fn is_expired(rule: &RuleRow, now: Millis) -> bool {
    rule.expires_at.is_some_and(|e| e <= now)
}

/// `deny mail:* on * for every agent, 1h (until 2026-01-01 01:00:00 UTC)`.
pub fn describe(rule: &RuleRow) -> String {
    let who = if rule.agent == "*" {
        "every agent".to_owned()
    } else {
        format!("agent {}", sanitize(&rule.agent))
    };
    let how_long = match (rule.lifetime.as_str(), rule.expires_at) {
        (_, Some(at)) => format!("{} (until {} UTC)", rule.lifetime, short_time(at)),
        ("once", None) => "once (used up by its first match)".to_owned(),
        ("session", None) => "until the server restarts".to_owned(),
        (l, None) => l.to_owned(),
    };
    format!(
        "{} {} on {} for {who}, {how_long}",
        rule.effect,
        sanitize(&rule.action),
        sanitize(&rule.resource)
    )
}

/// The table, one rule per row, oldest first.
pub fn table(rules: &[RuleRow], now: Millis) -> String {
    let header = [
        "ID",
        "AGENT",
        "ACTION",
        "RESOURCE",
        "EFFECT",
        "LIFETIME",
        "EXPIRES (UTC)",
        "HITS",
        "LAST HIT (UTC)",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut rows = vec![header];
    let cell = |s: &str| truncate(&sanitize(s), PATTERN_WIDTH).into_owned();
    for r in rules {
        let expires = match r.expires_at {
            Some(at) if at <= now => format!("expired {}", short_time(at)),
            Some(at) => short_time(at),
            None => "-".into(),
        };
        rows.push(vec![
            r.id.to_string(),
            cell(&r.agent),
            cell(&r.action),
            cell(&r.resource),
            r.effect.clone(),
            r.lifetime.clone(),
            expires,
            r.hits.to_string(),
            r.last_hit_at.map(short_time).unwrap_or_else(|| "-".into()),
        ]);
    }
    render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(lifetime: &str, expires_at: Option<Millis>) -> RuleRow {
        RuleRow {
            id: 3,
            agent: "*".into(),
            action: "mail:*".into(),
            resource: "*".into(),
            effect: "deny".into(),
            lifetime: lifetime.into(),
            session_id: None,
            created_at: 0,
            expires_at,
            created_by: "cli".into(),
            hits: 2,
            last_hit_at: Some(1_000),
        }
    }

    #[test]
    fn describes_a_rule() {
        assert_eq!(
            describe(&row("always", None)),
            "deny mail:* on * for every agent, always"
        );
        assert_eq!(
            describe(&row("1h", Some(3_600_000))),
            "deny mail:* on * for every agent, 1h (until 1970-01-01 01:00:00 UTC)"
        );
        let mut r = row("once", None);
        r.agent = "agt_1\n".into();
        assert_eq!(
            describe(&r),
            "deny mail:* on * for agent agt_1\\n, once (used up by its first match)"
        );
    }

    #[test]
    fn the_table_marks_expired_rules() {
        let t = table(
            &[row("1h", Some(3_600_000)), row("always", None)],
            3_600_000,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  AGENT  ACTION"), "{t}");
        assert!(lines[1].contains("expired 1970-01-01 01:00:00"), "{t}");
        assert!(lines[2].contains("always"), "{t}");
        assert!(lines[2].contains(" 2 "), "{t}");
    }
}
