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

pub mod clock;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tasker_store::{Error, Result};

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
        })
    }

    pub fn location(&self) -> &SqliteLocation {
        &self.location
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
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

/// A database error; its text is only logged.
pub(crate) fn db(error: sqlx::Error) -> Error {
    Error::Database(Box::new(error))
}
