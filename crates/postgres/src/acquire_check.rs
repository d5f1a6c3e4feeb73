//! Which pooled connections are tested before use. The pool's own test
//! pings every connection it hands out, a round trip per transaction (and
//! it pings again when the connection comes back). Instead a connection is
//! pinged only when it may have died unseen: when it sat idle for
//! [`IDLE_BEFORE_PING`] or longer (a database restarted while the node was
//! quiet), or while [`SUSPICION`] has not passed since an operation lost its
//! connection (backends killed together: the other idle connections are
//! likely gone too). A dead connection that slips through costs one failed
//! statement, which the operation's retry runs again on a fresh connection
//! (see `error::retrying`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Idle this long or longer: pinged before use.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);
/// After a lost connection, every connection is pinged for this long.
pub const SUSPICION: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct AcquireCheck {
    start: Instant,
    /// Milliseconds after `start` until which every connection is pinged.
    ping_all_until: AtomicU64,
}

impl Default for AcquireCheck {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            ping_all_until: AtomicU64::new(0),
        }
    }
}

impl AcquireCheck {
    /// Whether a connection idle for `idle_for` is pinged before use.
    pub fn should_ping(&self, idle_for: Duration) -> bool {
        idle_for >= IDLE_BEFORE_PING
            || self.elapsed_ms() < self.ping_all_until.load(Ordering::Relaxed)
    }

    /// An operation lost its connection: ping every connection for a while.
    pub fn connection_lost(&self) {
        let until = self.elapsed_ms() + SUSPICION.as_millis() as u64;
        self.ping_all_until.fetch_max(until, Ordering::Relaxed);
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_connections_are_trusted_until_one_is_lost() {
        let check = AcquireCheck::default();
        assert!(!check.should_ping(Duration::from_millis(5)));
        assert!(check.should_ping(IDLE_BEFORE_PING));
        check.connection_lost();
        assert!(check.should_ping(Duration::ZERO));
    }
}
