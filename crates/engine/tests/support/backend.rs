//! Which backend the tests run against, and the store each test gets.
//!
//! `TASKER_TEST_BACKEND` picks it: `postgres` (the default) or `sqlite`.
//! The engine tests that state the store contract run on both; the ones
//! about PostgreSQL itself (several nodes with their own connections, lock
//! order, outages, vacuum) say so with [`skip_on_sqlite`], which prints the
//! skip where a test run shows it.
//!
//! On SQLite there is one node: the file is locked by the store that opened
//! it, so "another node" is a second engine over the same store.

use std::io::Write as _;
use std::ops::Deref;
use std::sync::Arc;

use tasker_postgres::PgStore;
use tasker_sqlite::SqliteStore;
use tasker_store::{Observer, Store};

/// The variable that picks the backend.
pub const BACKEND_VARIABLE: &str = "TASKER_TEST_BACKEND";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The backend named by `TASKER_TEST_BACKEND`; panics on anything else
/// than `postgres`, `sqlite` or nothing.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_VARIABLE) {
        Err(std::env::VarError::NotPresent) => Backend::Postgres,
        Ok(name) => match name.as_str() {
            "" | "postgres" => Backend::Postgres,
            "sqlite" => Backend::Sqlite,
            other => panic!(
                "{BACKEND_VARIABLE}={other:?} names no backend: use `postgres` (the default) or `sqlite`"
            ),
        },
        Err(std::env::VarError::NotUnicode(raw)) => panic!(
            "{BACKEND_VARIABLE}={raw:?} names no backend: use `postgres` (the default) or `sqlite`"
        ),
    }
}

/// True, after printing `skipped on sqlite: <test>: <reason>`, when the
/// tests run on SQLite: the caller returns at once. The line goes straight
/// to the process's stderr, past the test harness's capture, so that a run
/// shows every skip.
pub fn skip_on_sqlite(reason: &str) -> bool {
    if backend() != Backend::Sqlite {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped on sqlite: {test}: {reason}");
    true
}

/// What a store calls after a commit that made steps of a namespace ready
/// (`None`: of any namespace).
pub type LocalWake = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// The store of one node, whichever the backend: the [`Store`] methods
/// through `Deref`, and the backend's own set-up calls.
#[derive(Clone)]
pub enum TestStore {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl TestStore {
    /// The store as the engine takes it.
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            TestStore::Postgres(store) => Arc::new(store.clone()),
            TestStore::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// Tells `observer` of every committed change (the first observer set
    /// stays; on SQLite every "node" shares the one store).
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        match self {
            TestStore::Postgres(store) => store.set_observer(observer),
            TestStore::Sqlite(store) => store.set_observer(observer),
        }
    }

    /// Wakes this node's waiting polls after each commit, as a server does.
    pub fn set_local_wake(&self, wake: LocalWake) {
        match self {
            TestStore::Postgres(store) => store.set_local_wake(wake),
            TestStore::Sqlite(store) => store.set_local_wake(wake),
        }
    }

    /// The PostgreSQL store; for tests that only run there.
    pub fn postgres(&self) -> &PgStore {
        match self {
            TestStore::Postgres(store) => store,
            TestStore::Sqlite(_) => {
                panic!("a PostgreSQL-only test ran on SQLite: guard it with skip_on_sqlite")
            }
        }
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        match self {
            TestStore::Postgres(store) => store,
            TestStore::Sqlite(store) => store,
        }
    }
}
