//! `gatehouse domains list|add|rm`: the person's own email domains. A `message_send` approval
//! names every recipient outside them, so a message to the wrong, external Alex stands out.

use std::path::Path;

use anyhow::{Context, Result, bail};
use gatehouse_core::admin::{self, AdminError};
use serde::Serialize;

use super::{open_store, out_line};
use crate::cli::DomainsCommand;

/// Recorded in the audit event as who changed the setting.
const BY: &str = "cli";

#[derive(Debug, Serialize)]
struct Domains<'a> {
    domains: &'a [String],
    /// False when the command changed nothing (the domain already was, or was not, there).
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
}

pub async fn run(data_dir: &Path, command: &DomainsCommand) -> Result<()> {
    let store = open_store(data_dir)?;
    let current = admin::own_domains(&store)
        .await
        .context("cannot read your own domains")?;
    let (json, domains, changed, message) = match command {
        DomainsCommand::List(args) => (args.json, current, None, None),
        DomainsCommand::Add(args) | DomainsCommand::Rm(args) => {
            let add = matches!(command, DomainsCommand::Add(_));
            let Some(domain) = gatehouse_core::oauth::rar::normalize_domain(&args.domain) else {
                bail!("{}", AdminError::InvalidDomain(args.domain.clone()));
            };
            let present = current.contains(&domain);
            if add == present {
                let why = if add {
                    format!("{domain} already is one of your domains.")
                } else {
                    format!("{domain} is not one of your domains; nothing changed.")
                };
                (args.json, current, Some(false), Some(why))
            } else {
                let mut next = current;
                if add {
                    next.push(domain.clone());
                } else {
                    next.retain(|d| d != &domain);
                }
                let stored = admin::set_own_domains(&store, &next, BY)
                    .await
                    .context("your own domains were not changed")?;
                let what = if add { "Added" } else { "Removed" };
                (
                    args.json,
                    stored,
                    Some(true),
                    Some(format!("{what} {domain}.")),
                )
            }
        }
    };
    if json {
        out_line(&serde_json::to_string(&Domains {
            domains: &domains,
            changed,
        })?)?;
    } else {
        if let Some(m) = message {
            out_line(&m)?;
        }
        out_line(&describe(&domains))?;
    }
    Ok(())
}

/// `Your own domains: example.com, example.org.`
pub fn describe(domains: &[String]) -> String {
    if domains.is_empty() {
        "No own domains are set: approvals ask you to check message recipients. Add one with \
         `gatehouse domains add example.com`."
            .to_owned()
    } else {
        format!("Your own domains: {}.", domains.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_setting() {
        assert!(describe(&[]).starts_with("No own domains are set"));
        assert_eq!(
            describe(&["example.com".into(), "example.org".into()]),
            "Your own domains: example.com, example.org."
        );
    }
}
