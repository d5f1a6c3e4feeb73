//! Embedded SQLite backend of [`tasker_store::Store`]: the whole of Tasker in
//! one file, for one node (`tasker dev`, laptops, demos). PostgreSQL stays the
//! backend for real deployments and clusters.
//!
//! ```text
//!  ./.tasker/tasker.db    tasks, steps, transitions, templates, one queue
//!                         table for every namespace, workers, schedules …
//!  ./.tasker/tasker.lock  held (flock) while a server uses the file: a
//!                         second server on the same file is refused
//! ```
//!
//! SQLite lets one connection write at a time, so every writing transaction
//! goes through the single writer connection (`BEGIN IMMEDIATE`: the write
//! lock is taken at the start, so two writers never deadlock upgrading a read
//! lock); reads use a small pool of their own (WAL mode lets them run beside
//! the writer). The orchestration — load, `TaskRun`, write the plan — is the
//! store crate's; this crate offers its primitives.
//!
//! Must never: be opened by two server processes at once (the lock file
//! refuses the second), or read time from anywhere but [`clock`].

mod backend;
mod catalog;
pub mod clock;
mod columns;
mod dead_letters;
mod leadership;
mod load;
mod maintenance;
mod nodes;
mod plan_writer;
mod queue;
mod queue_depths;
mod retention;
mod schedule_fire;
mod schedules;
mod store;
mod sweep_candidates;
mod task_activity;
mod task_create;
mod task_explain;
mod task_rows;
mod tasks_read;
#[cfg(test)]
mod testing;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tasker_store::{Error, Event, Observer, Result};

/// Migrations embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Called after a commit that made steps ready, with their namespace, so
/// that this process's waiting polls look again (SQLite has no NOTIFY: the
/// only pollers are this process's).
pub type OnReady = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A directory holding `tasker.db` (created when missing).
    Directory(PathBuf),
    /// A throwaway database in memory, gone when the store is dropped.
    Memory,
}

impl SqliteLocation {
    /// The database file (`None` in memory).
    pub fn database_file(&self) -> Option<PathBuf> {
        match self {
            SqliteLocation::Directory(dir) => Some(dir.join("tasker.db")),
            SqliteLocation::Memory => None,
        }
    }
}

/// The SQLite store of one node.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes.
    pub(crate) writer: SqlitePool,
    /// Connections that only read.
    pub(crate) reader: SqlitePool,
    pub(crate) node_id: Arc<str>,
    location: SqliteLocation,
    /// Held while this store is open: the guard against a second server.
    _lock: Option<Arc<std::fs::File>>,
    /// Namespaces' queues and templates: immutable once written, so cached
    /// without invalidation.
    pub(crate) catalog: Arc<tasker_store::catalog::CatalogCache>,
    local_wake: Arc<OnceLock<OnReady>>,
    observer: Arc<OnceLock<Arc<dyn Observer>>>,
    /// `engine.max_fan_out_instances`, handed to every task run.
    max_fan_out: Arc<AtomicU32>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("node_id", &self.node_id)
            .field("location", &self.location)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `location`. Refuses a
    /// directory another server holds.
    pub async fn open(location: SqliteLocation, node_id: &str) -> Result<Self> {
        let (options, lock) = match &location {
            SqliteLocation::Directory(dir) => {
                let lock = lock_directory(dir)?;
                let options = SqliteConnectOptions::new()
                    .filename(dir.join("tasker.db"))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal);
                (options, Some(Arc::new(lock)))
            }
            SqliteLocation::Memory => {
                // Shared cache, so that the writer and the readers see one
                // database; it lives while any connection is open (the
                // writer's never closes).
                let name = format!(
                    "file:tasker-{}?mode=memory&cache=shared",
                    uuid::Uuid::new_v4()
                );
                let options = SqliteConnectOptions::new()
                    .filename(&name)
                    .shared_cache(true);
                (options, None)
            }
        };
        let options = options
            .foreign_keys(true)
            // Accepted work must survive a crash of the machine, as on
            // PostgreSQL: every commit is synced.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .connect_with(options.read_only(location != SqliteLocation::Memory))
            .await
            .map_err(db)?;
        Ok(Self {
            writer,
            reader,
            node_id: node_id.into(),
            location,
            _lock: lock,
            catalog: Arc::default(),
            local_wake: Arc::default(),
            observer: Arc::default(),
            max_fan_out: Arc::new(AtomicU32::new(tasker_model::task_run::DEFAULT_MAX_FAN_OUT)),
        })
    }

    pub fn location(&self) -> &SqliteLocation {
        &self.location
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Also wake this process's waiting polls when steps become ready.
    /// Shared by every clone of this store; the first call wins.
    pub fn set_local_wake(&self, wake: OnReady) {
        let _ = self.local_wake.set(wake);
    }

    /// Reports facts of a committed transaction (for metrics). Shared by
    /// every clone of this store; the first call wins.
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    /// The current cap on instances per fan-out step.
    pub(crate) fn max_fan_out(&self) -> u32 {
        self.max_fan_out.load(Ordering::Relaxed)
    }

    pub(crate) fn fan_out_cap_store(&self, cap: u32) {
        self.max_fan_out.store(cap, Ordering::Relaxed);
    }

    /// After a commit: wakes local polls of the namespaces that got ready
    /// steps and tells the observer what happened.
    pub(crate) fn after_commit(&self, ready: &[(String, usize)], events: &[Event]) {
        if let Some(wake) = self.local_wake.get() {
            for (namespace, _) in ready {
                wake(Some(namespace));
            }
        }
        if !events.is_empty()
            && let Some(observer) = self.observer.get()
        {
            observer.observe(events);
        }
    }

    /// Starts a writing transaction: `BEGIN IMMEDIATE` takes the database's
    /// write lock at once, so the transaction never fails later upgrading a
    /// read lock while another writer holds it.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    /// Closes every connection (the lock is released when the last clone
    /// of the store is dropped).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Takes the directory's lock file, creating the directory when missing.
fn lock_directory(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Invalid {
        field: "database directory".into(),
        message: format!("cannot create {}: {e}", dir.display()),
    })?;
    let path = dir.join("tasker.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Invalid {
            field: "database directory".into(),
            message: format!("cannot open {}: {e}", path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict {
            code: "database_in_use",
            message: format!(
                "another Tasker server is using the SQLite database in {}; SQLite serves one \
                 node only, so a cluster of several nodes needs PostgreSQL (set database.url \
                 and run `tasker server`)",
                dir.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Invalid {
            field: "database directory".into(),
            message: format!("cannot lock {}: {e}", path.display()),
        }),
    }
}

/// A database error; its text is only logged. A database still locked by
/// another writer after the busy timeout (`SQLITE_BUSY`), or no free
/// connection in time, is [`Error::Unavailable`] (503, retry later), as an
/// overloaded PostgreSQL would answer; anything else is
/// [`Error::Database`] (500).
pub(crate) fn db(error: impl Into<sqlx::Error>) -> Error {
    let error = error.into();
    let busy = match &error {
        sqlx::Error::PoolTimedOut => true,
        // SQLITE_BUSY and its extended codes (5, 261, 517, …).
        sqlx::Error::Database(e) => e
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    };
    if busy {
        return Error::Unavailable {
            why: tasker_store::Unavailability::AcquireTimeout,
            cause: Box::new(error),
        };
    }
    Error::Database(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_free_connection_is_unavailable_and_other_errors_are_database_errors() {
        assert!(matches!(
            db(sqlx::Error::PoolTimedOut),
            Error::Unavailable {
                why: tasker_store::Unavailability::AcquireTimeout,
                ..
            }
        ));
        assert!(matches!(db(sqlx::Error::RowNotFound), Error::Database(_)));
    }

    #[tokio::test]
    async fn a_database_locked_past_the_busy_timeout_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteLocation::Directory(dir.path().to_owned()), "n")
            .await
            .unwrap();
        // Another process's writer, as far as SQLite can tell: a connection
        // of its own holding the write lock, and a writer that waits only
        // briefly.
        let file = dir.path().join("tasker.db");
        let mut other = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
            "sqlite://{}",
            file.display()
        ))
        .await
        .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        let mut conn = store.writer.acquire().await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 50")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let error = store.begin_write().await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Unavailable {
                    why: tasker_store::Unavailability::AcquireTimeout,
                    ..
                }
            ),
            "{error:?}"
        );
        drop(other);
        store.close().await;
    }
}
