//! The election loop: takes or renews this node's lease of a duty set and
//! runs the leader-only duties while it holds it.
//!
//! ```text
//!            attempt (one conditional upsert) ─────────────┐
//!   follower ─▶ held by another: sleep min(expires_in, renew), or until a
//!      ▲        resignation is announced, then attempt again
//!      │     ─▶ ours: LEADER, duties started
//!      │                 │ renew every lease/3
//!      │                 ├─ renewed: stay leader (same term)
//!      └─────────────────┼─ another holder read: step down, duties cancelled
//!                        └─ no successful renewal for a whole lease, measured
//!                           from when the last successful one was *sent*:
//!                           step down by our own clock
//! ```
//!
//! Failure: the database clock decides who may take an expired lease. A
//! leader that cannot reach the database steps down as soon as its lease may
//! have expired: the renewal that succeeded was sent at local time `t`, the
//! database set `expires_at = now_db + lease` with `now_db` no earlier than
//! `t`, so at `t + lease` by our clock no other node can yet have taken it.
//! Two leaders at once would need clocks that drift apart by a measurable
//! fraction of the lease within one lease, which this loop does not guard
//! against. This loop must never run a duty while it is not the holder of
//! a lease it renewed within one lease time.

use std::sync::Arc;
use std::time::Duration;

use tasker_store::{LeaderElect, Leadership, Store};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::leader_duty::{DutyContext, DutyRunner};

/// This node's view of leadership, published on a watch channel
/// ([`crate::Engine::leadership`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderStatus {
    /// This node holds the lease and runs the leader-only duties.
    pub leading: bool,
    /// The holder of the live lease as last read; `None` when unknown (no
    /// leader yet, or this node lost the database).
    pub leader: Option<String>,
    /// The tenure of `leader`.
    pub term: u64,
    /// Changes of leader (new tenures) this node has seen.
    pub changes: u64,
}

/// Shortest pause between two attempts, so that a lease read as just
/// expiring does not make the loop spin.
const MIN_PAUSE: Duration = Duration::from_millis(50);
/// Pause after a failed attempt (capped by the renew interval).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

pub(crate) struct Election {
    pub store: Arc<dyn Store>,
    pub name: String,
    pub node_id: String,
    pub lease: Duration,
    pub status: watch::Sender<LeaderStatus>,
    pub wake: Arc<Notify>,
    pub duties: DutyRunner,
}

impl Election {
    fn renew_interval(&self) -> Duration {
        self.lease / 3
    }

    pub async fn run(mut self) {
        let elect = LeaderElect {
            name: self.name.clone(),
            node_id: self.node_id.clone(),
            lease_for: self.lease,
        };
        let renew = self.renew_interval();
        // While leading: the moment our lease may have expired.
        let mut valid_until: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            let attempt = tokio::time::timeout(self.lease, self.store.leader_attempt_elect(&elect));
            let outcome = match valid_until {
                Some(deadline) => tokio::select! {
                    outcome = attempt => Some(outcome),
                    () = tokio::time::sleep_until(deadline) => None,
                },
                None => Some(attempt.await),
            };
            let pause = match outcome {
                None => {
                    valid_until = None;
                    self.step_down("its lease may have expired while a renewal was unanswered");
                    MIN_PAUSE
                }
                Some(Ok(Ok(Some(lease)))) if lease.holder == self.node_id => {
                    valid_until = Some(sent + self.lease);
                    self.lead(&lease);
                    renew
                }
                Some(Ok(Ok(Some(lease)))) => {
                    valid_until = None;
                    self.follow(&lease);
                    lease.expires_in.min(renew).max(MIN_PAUSE)
                }
                // Another node is creating the lease right now.
                Some(Ok(Ok(None))) => MIN_PAUSE,
                Some(Ok(Err(error))) => {
                    tracing::warn!(%error, "leader election: cannot reach the lease; trying again");
                    self.after_failure(&mut valid_until)
                }
                Some(Err(_elapsed)) => {
                    tracing::warn!("leader election: the lease query did not answer; trying again");
                    self.after_failure(&mut valid_until)
                }
            };
            let pause = match valid_until {
                Some(deadline) => pause.min(deadline.saturating_duration_since(Instant::now())),
                None => pause,
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// After an attempt that failed: a leader past its deadline steps down;
    /// the next attempt comes soon.
    fn after_failure(&mut self, valid_until: &mut Option<Instant>) -> Duration {
        if let Some(deadline) = *valid_until
            && Instant::now() >= deadline
        {
            *valid_until = None;
            self.step_down("its lease may have expired and it could not renew it");
        } else if valid_until.is_none() && self.status.borrow().leader.is_some() {
            // A follower that cannot read the lease does not know the leader.
            self.status.send_modify(|s| s.leader = None);
        }
        RETRY_PAUSE.min(self.renew_interval()).max(MIN_PAUSE)
    }

    fn lead(&mut self, lease: &Leadership) {
        let previous = self.status.borrow().clone();
        if previous.leading && previous.term == lease.term {
            return;
        }
        self.observe(lease);
        tracing::info!(node_id = %self.node_id, term = lease.term, duty_set = %self.name, "this node is now the leader");
        self.duties.start(&DutyContext {
            store: self.store.clone(),
            node_id: self.node_id.clone(),
            term: lease.term,
        });
        self.status.send_modify(|s| s.leading = true);
    }

    fn follow(&mut self, lease: &Leadership) {
        if self.status.borrow().leading {
            self.duties.stop();
            tracing::info!(node_id = %self.node_id, leader = %lease.holder, "this node is no longer the leader");
            self.status.send_modify(|s| s.leading = false);
        }
        self.observe(lease);
    }

    fn step_down(&mut self, why: &str) {
        self.duties.stop();
        tracing::warn!(node_id = %self.node_id, "this node stepped down as leader: {why}");
        self.status.send_modify(|s| {
            s.leading = false;
            s.leader = None;
        });
    }

    /// Records the lease read; a new tenure is a change of leader.
    fn observe(&self, lease: &Leadership) {
        let status = self.status.borrow().clone();
        if status.leader.as_deref() == Some(&lease.holder) && status.term == lease.term {
            return;
        }
        // A lease re-read after a blip of not knowing is not a change.
        let new_tenure = status.term != lease.term;
        if new_tenure {
            tracing::info!(leader = %lease.holder, term = lease.term, duty_set = %self.name, "leader changed");
        }
        self.status.send_modify(|s| {
            s.leader = Some(lease.holder.clone());
            s.term = lease.term;
            if new_tenure {
                s.changes += 1;
            }
        });
    }
}
