//! One ordered stream of "asked" and "decided" for approvers, whoever decided and in whichever
//! process.
//!
//! The broker tells this process about approvals it files and decisions made through it. It does
//! not hear about decisions written by another process (`gatehouse revoke` denies the agent's
//! pending approvals), and a broadcast receiver can lag. So the watch also follows the audit feed
//! (which sees every process's commits) and, whenever it may have missed something, re-reads
//! the pending approvals from the database. Each approval is reported requested once and
//! decided once.

use std::collections::{HashSet, VecDeque};

use gatehouse_core::Authority;
use gatehouse_core::Store;
use gatehouse_core::approvals::{ApprovalNotice, ApprovalView, Broker};
use gatehouse_core::audit::Event;
use gatehouse_core::store::StoreError;
use gatehouse_core::store::approvals::{self as approval_rows, ApprovalStatus};
use tokio::sync::broadcast::{self, error::RecvError};

/// What an approver hears.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Requested(Box<ApprovalView>),
    Decided { id: String, status: ApprovalStatus },
}

/// How many ended approvals the tracker remembers. Every decision is heard twice (broker and
/// audit feed), moments apart; this only has to outlast that gap, not the server's lifetime.
const REMEMBER_ENDED: usize = 4096;

/// The bookkeeping that makes each approval appear once and end once. Pure, so it is tested
/// without a database.
#[derive(Debug, Default)]
struct Tracker {
    /// Announced and not yet decided.
    open: HashSet<String>,
    /// Recently ended, oldest first: decided after being announced, or decided before its
    /// announcement arrived (the feed can outrun the broker). Hearing of these again is ignored.
    ended: VecDeque<String>,
    ended_set: HashSet<String>,
}

impl Tracker {
    fn requested(&mut self, view: ApprovalView) -> Option<Update> {
        if self.ended_set.contains(&view.id) || !self.open.insert(view.id.clone()) {
            return None;
        }
        Some(Update::Requested(Box::new(view)))
    }

    fn decided(&mut self, id: String, status: ApprovalStatus) -> Option<Update> {
        if status == ApprovalStatus::Pending || self.ended_set.contains(&id) {
            return None;
        }
        let was_open = self.open.remove(&id);
        self.remember_ended(id.clone());
        was_open.then_some(Update::Decided { id, status })
    }

    fn remember_ended(&mut self, id: String) {
        if self.ended.len() == REMEMBER_ENDED
            && let Some(old) = self.ended.pop_front()
        {
            self.ended_set.remove(&old);
        }
        self.ended_set.insert(id.clone());
        self.ended.push_back(id);
    }
}

/// What an audit event means for approvals.
#[derive(Debug, PartialEq)]
enum FeedMeaning {
    Decided(String, ApprovalStatus),
    /// Something decided approvals without naming them (an agent revocation): re-read.
    Reconcile,
    Nothing,
}

fn feed_meaning(event: &Event) -> FeedMeaning {
    let status = match event.kind.as_str() {
        "consent.approved" => ApprovalStatus::Approved,
        "consent.denied" => ApprovalStatus::Denied,
        "consent.expired" => ApprovalStatus::Expired,
        "agent.revoked" => return FeedMeaning::Reconcile,
        _ => return FeedMeaning::Nothing,
    };
    match event.detail.get("approval_id").and_then(|v| v.as_str()) {
        Some(id) => FeedMeaning::Decided(id.to_owned(), status),
        None => FeedMeaning::Reconcile,
    }
}

/// The stream. Create it before the server starts so nothing filed meanwhile is missed.
#[derive(Debug)]
pub struct ApprovalWatch {
    broker: Broker,
    store: Store,
    notices: broadcast::Receiver<ApprovalNotice>,
    feed: broadcast::Receiver<Event>,
    tracker: Tracker,
    backlog: VecDeque<Update>,
    started: bool,
    feed_open: bool,
}

impl ApprovalWatch {
    pub fn new(authority: &Authority) -> Self {
        Self {
            broker: authority.broker().clone(),
            store: authority.store().clone(),
            notices: authority.broker().subscribe(),
            feed: authority.store().subscribe(),
            tracker: Tracker::default(),
            backlog: VecDeque::new(),
            started: false,
            feed_open: true,
        }
    }

    /// The next update. The first call also yields the approvals still pending from before (a
    /// previous run's, or ones filed before the approver started). `None` once the broker is gone.
    pub async fn next(&mut self) -> Option<Update> {
        if !self.started {
            self.started = true;
            self.reconcile().await;
        }
        loop {
            if let Some(update) = self.backlog.pop_front() {
                return Some(update);
            }
            tokio::select! {
                notice = self.notices.recv() => match notice {
                    Ok(ApprovalNotice::Requested(view)) => self.push_requested(view),
                    Ok(ApprovalNotice::Decided { id, status, .. }) => self.push_decided(id, status),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "approval notices lagged; re-reading pending approvals");
                        self.reconcile().await;
                    }
                    Err(RecvError::Closed) => return None,
                },
                event = self.feed.recv(), if self.feed_open => match event {
                    Ok(event) => match feed_meaning(&event) {
                        FeedMeaning::Decided(id, status) => self.push_decided(id, status),
                        FeedMeaning::Reconcile => self.reconcile().await,
                        FeedMeaning::Nothing => {}
                    },
                    Err(RecvError::Lagged(_)) => self.reconcile().await,
                    // Cannot happen while `self.store` holds the sender; if it ever does, the
                    // broker's notices still carry this process's decisions.
                    Err(RecvError::Closed) => self.feed_open = false,
                },
            }
        }
    }

    fn push_requested(&mut self, view: ApprovalView) {
        if let Some(u) = self.tracker.requested(view) {
            self.backlog.push_back(u);
        }
    }

    fn push_decided(&mut self, id: String, status: ApprovalStatus) {
        if let Some(u) = self.tracker.decided(id, status) {
            self.backlog.push_back(u);
        }
    }

    /// Brings the tracker in line with the database: announces pending approvals it has not
    /// reported, and ends the open ones that are no longer pending.
    async fn reconcile(&mut self) {
        let pending = match self.broker.pending().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending approvals");
                return;
            }
        };
        let still: HashSet<String> = pending.iter().map(|v| v.id.clone()).collect();
        for view in pending {
            self.push_requested(view);
        }
        let gone: Vec<String> = self
            .tracker
            .open
            .iter()
            .filter(|id| !still.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            let lookup = id.clone();
            let row = self
                .store
                .read(move |c| approval_rows::get(c, &lookup).map_err(StoreError::from))
                .await;
            match row {
                Ok(Some(row)) => self.push_decided(id, row.status),
                // A row never disappears; if it somehow did, nobody can approve it any more.
                Ok(None) => self.push_decided(id, ApprovalStatus::Denied),
                Err(e) => tracing::warn!(error = %e, approval = %id, "cannot read approval"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(id: &str) -> ApprovalView {
        ApprovalView {
            id: id.into(),
            kind: "consent".into(),
            client_id: "agt_1".into(),
            client_name: Some("Agent".into()),
            verified: false,
            redirect_host: Some("localhost".into()),
            scopes: vec!["read".into()],
            resources: vec![],
            authorization_details: None,
            binding_message: None,
            via: None,
            user_code: None,
            summary: Vec::new(),
            warnings: Vec::new(),
            created_at: 0,
            expires_at: 120_000,
        }
    }

    fn event(kind: &str, detail: serde_json::Value) -> Event {
        Event {
            id: 1,
            ts: 0,
            kind: kind.into(),
            outcome: "ok".into(),
            client_id: Some("agt_1".into()),
            detail,
            hash: [0; 32],
        }
    }

    #[test]
    fn each_approval_is_requested_once_and_decided_once() {
        let mut t = Tracker::default();
        assert!(matches!(t.requested(view("a")), Some(Update::Requested(_))));
        assert_eq!(t.requested(view("a")), None);
        assert_eq!(
            t.decided("a".into(), ApprovalStatus::Approved),
            Some(Update::Decided {
                id: "a".into(),
                status: ApprovalStatus::Approved
            })
        );
        // The same decision heard again through the audit feed.
        assert_eq!(t.decided("a".into(), ApprovalStatus::Approved), None);
    }

    #[test]
    fn a_decision_that_outruns_its_announcement_silences_it() {
        let mut t = Tracker::default();
        assert_eq!(t.decided("b".into(), ApprovalStatus::Expired), None);
        assert_eq!(t.requested(view("b")), None);
        assert!(t.open.is_empty());
    }

    #[test]
    fn memory_of_ended_approvals_is_bounded() {
        let mut t = Tracker::default();
        for i in 0..REMEMBER_ENDED + 10 {
            t.requested(view(&i.to_string()));
            t.decided(i.to_string(), ApprovalStatus::Denied);
        }
        assert_eq!(t.ended.len(), REMEMBER_ENDED);
        assert_eq!(t.ended_set.len(), REMEMBER_ENDED);
        assert!(t.open.is_empty());
    }

    #[test]
    fn pending_is_not_a_decision() {
        let mut t = Tracker::default();
        t.requested(view("c"));
        assert_eq!(t.decided("c".into(), ApprovalStatus::Pending), None);
        assert!(t.open.contains("c"));
    }

    #[test]
    fn feed_events_map_to_decisions() {
        assert_eq!(
            feed_meaning(&event("consent.denied", json!({"approval_id": "x"}))),
            FeedMeaning::Decided("x".into(), ApprovalStatus::Denied)
        );
        assert_eq!(
            feed_meaning(&event("consent.expired", json!({"approval_id": "y"}))),
            FeedMeaning::Decided("y".into(), ApprovalStatus::Expired)
        );
        assert_eq!(
            feed_meaning(&event("agent.revoked", json!({}))),
            FeedMeaning::Reconcile
        );
        assert_eq!(
            feed_meaning(&event("token.issued", json!({}))),
            FeedMeaning::Nothing
        );
    }
}
