//! [`DatabaseMonitor`]: this node's view of whether the database is there,
//! kept by a background check, so that probes and requests never have to
//! wait on the pool to find out.
//!
//! ```text
//!  every check_interval, or at once when a request lost its connection:
//!    on a connection of its own (not the pool's: a busy pool is not an outage)
//!      reuse it, or connect ─▶ readiness queries      bounded by check_timeout
//!    ok   ─▶ up, readiness cached       ("database reachable again after Xs")
//!    fail ─▶ down, connection dropped   ("database unreachable: ...")
//!
//!  /ready, /health ─▶ the cached readiness (never waits)
//!  every store operation ─▶ refused at once (503 unavailable) while down
//! ```
//!
//! A check whose reused connection fails tries once more on a fresh one, so
//! a killed monitor backend alone never marks the database down. Each
//! change of state is logged once.
//!
//! The monitor must never hold up a request for longer than two checks
//! (what [`DatabaseMonitor::check_now`] waits at most), and never uses a
//! pool connection. It stops when the last clone of its store is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tasker_store::Readiness;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::catalog;

/// How often the database is checked, and how long one check may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    pub check_interval: Duration,
    pub check_timeout: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(1),
            check_timeout: Duration::from_secs(1),
        }
    }
}

/// What the last check found.
#[derive(Debug, Clone)]
struct Observed {
    up: bool,
    readiness: Readiness,
    /// When the last completed check started; `None` before the first.
    started: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    config: MonitorConfig,
    observed: watch::Sender<Observed>,
    wake: Notify,
}

/// Shared by every clone of a store; cheap to clone.
#[derive(Debug, Clone)]
pub struct DatabaseMonitor {
    shared: Arc<Shared>,
}

impl DatabaseMonitor {
    /// Starts checking at once, then every `check_interval`. Must be called
    /// inside a tokio runtime. The database counts as up until a check says
    /// otherwise (the store was just connected).
    pub fn start(options: PgConnectOptions, config: MonitorConfig) -> Self {
        let (observed, _) = watch::channel(Observed {
            up: true,
            readiness: Readiness {
                database: true,
                migrations_applied: false,
                queues_installed: false,
                default_namespace: false,
            },
            started: None,
        });
        let shared = Arc::new(Shared {
            config,
            observed,
            wake: Notify::new(),
        });
        tokio::spawn(run(Arc::downgrade(&shared), options));
        Self { shared }
    }

    /// Whether the last check found the database unreachable.
    pub fn is_down(&self) -> bool {
        !self.shared.observed.borrow().up
    }

    /// The last check's readiness; waits for the first check of a new store
    /// (at most two check timeouts), never for a later one.
    pub async fn readiness(&self) -> Readiness {
        let mut observed = self.shared.observed.subscribe();
        let first = observed.wait_for(|o| o.started.is_some());
        let _ = tokio::time::timeout(self.patience(), first).await;
        self.shared.observed.borrow().readiness.clone()
    }

    /// Checks now (coalesced with other callers and with a check already
    /// running) and returns whether the database is up. Waits at most two
    /// check timeouts; no answer by then counts as down.
    pub async fn check_now(&self) -> bool {
        let requested = Instant::now();
        let mut observed = self.shared.observed.subscribe();
        // A check in flight may have started before the caller's failure;
        // the stored permit makes the loop start another one right after it.
        self.shared.wake.notify_one();
        let fresh = observed.wait_for(|o| o.started.is_some_and(|s| s >= requested));
        match tokio::time::timeout(self.patience(), fresh).await {
            Ok(Ok(o)) => o.up,
            _ => false,
        }
    }

    /// Asks for a check soon, without waiting for it.
    pub fn request_check(&self) {
        self.shared.wake.notify_one();
    }

    fn patience(&self) -> Duration {
        self.shared.config.check_timeout * 2 + Duration::from_millis(100)
    }
}

/// The check loop; ends once every store clone is gone.
async fn run(shared: Weak<Shared>, options: PgConnectOptions) {
    let mut connection: Option<PgConnection> = None;
    let mut down_since: Option<Instant> = None;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let started = Instant::now();
        let checked = tokio::time::timeout(
            shared.config.check_timeout,
            check(&mut connection, &options),
        )
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within the check timeout ({:?})",
                shared.config.check_timeout
            ))
        });
        let observed = match checked {
            Ok(readiness) => {
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        "database reachable again after {:.1}s",
                        since.elapsed().as_secs_f64()
                    );
                }
                Observed {
                    up: true,
                    readiness,
                    started: Some(started),
                }
            }
            Err(error) => {
                // A connection that timed out may be stuck mid-query.
                connection = None;
                if down_since.is_none() {
                    tracing::warn!("database unreachable: {error}");
                    down_since = Some(started);
                }
                Observed {
                    up: false,
                    readiness: Readiness {
                        database: false,
                        migrations_applied: false,
                        queues_installed: false,
                        default_namespace: false,
                    },
                    started: Some(started),
                }
            }
        };
        shared.observed.send_replace(observed);
        let interval = shared.config.check_interval;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.wake.notified() => {}
        }
    }
}

/// One check: the kept connection if it still works, else a fresh one
/// (twice: a fresh connection killed as it starts, by an administrator
/// ending every backend of the node, does not make an outage).
async fn check(
    connection: &mut Option<PgConnection>,
    options: &PgConnectOptions,
) -> Result<Readiness, String> {
    if let Some(conn) = connection.as_mut() {
        match catalog::readiness_on(conn).await {
            Ok(readiness) => return Ok(readiness),
            Err(_) => *connection = None,
        }
    }
    let mut failed = String::new();
    for _ in 0..2 {
        match fresh_check(options).await {
            Ok((conn, readiness)) => {
                *connection = Some(conn);
                return Ok(readiness);
            }
            Err(error) => failed = error,
        }
    }
    Err(failed)
}

async fn fresh_check(options: &PgConnectOptions) -> Result<(PgConnection, Readiness), String> {
    let mut conn = options.connect().await.map_err(|e| e.to_string())?;
    match catalog::readiness_on(&mut conn).await {
        Ok(readiness) => Ok((conn, readiness)),
        Err(error) => {
            let _ = conn.close().await;
            Err(error.to_string())
        }
    }
}
