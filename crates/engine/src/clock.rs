//! [`Clock`]: where the engine's logic reads the time, so that tests move
//! time instead of sleeping. The database clock still rules leases and
//! visibility; this clock rules what the engine computes itself (when a
//! schedule fires next). Logic must never call `Utc::now()` itself where a
//! test needs to move time.

use std::sync::Mutex;

use tasker_model::Timestamp;

/// The time source of the engine.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that stands still until moved: for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(now: Timestamp) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: Timestamp) {
        *self.0.lock().expect("clock lock") = now;
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}
