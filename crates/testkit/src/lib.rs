//! Throwaway PostgreSQL for Tasker's tests.
//!
//! Every test gets its own fresh database ([`TestDatabase`]), dropped when the
//! value is dropped, so tests never see each other's rows and can run in
//! parallel, in one process (`cargo test`) or one process per test
//! (`cargo nextest`). A database that needs a schema is cloned from a template
//! built once per key ([`TestDatabase::create_from`]): the server copies the
//! template's files, much cheaper than running migrations for every test.
//!
//! Which server ([`server_url`]):
//!
//! 1. `TASKER_TEST_DATABASE_URL`, else `DATABASE_URL`: a server and its admin
//!    database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`. The user
//!    must be allowed to create databases.
//! 2. Otherwise a throwaway server started from the installed PostgreSQL
//!    binaries (`initdb` and `pg_ctl` on `PATH`, else the newest
//!    `/usr/lib/postgresql/<version>/bin`), kept in
//!    `$TMPDIR/tasker-testkit-<uid>/`, shared by all test processes of the
//!    user and **left running** for later runs: the next run reuses it in
//!    milliseconds. Stop it with `scripts/stop-test-postgres`, or
//!    `kill -INT "$(head -1 $TMPDIR/tasker-testkit-<uid>/data/postmaster.pid)"`.
//!    As root it runs as the system user `tasker-test` (created on first use),
//!    because PostgreSQL refuses to run as root.
//! 3. Neither: an error saying to set `TASKER_TEST_DATABASE_URL` or install the
//!    server binaries (`scripts/test` installs them).
//!
//! Besides: [`LocalServer`], a PostgreSQL server of one's own in a given
//! directory that its owner stops and starts (a local cluster's database, a
//! test of a database restart), and [`process`], child processes for
//! process-level tests.
//!
//! The server must be PostgreSQL 13 or newer (`DROP DATABASE .. WITH (FORCE)`).
//!
//! [`TcpProxy`] sits between a node and the server, so that a test can cut
//! the database away (and restore it) without stopping a server that other
//! tests share.
//!
//! [`stored_time`] moves a step's or a task's stored times (and its queue
//! message's visibility) into the past, for tests of timeouts and deadlines.
//!
//! This crate is for tests only: it creates and drops databases on the
//! server it is given, and the throwaway server runs with `fsync=off`. It must
//! never be pointed at a server holding data anyone cares about.

mod admin_connection;
mod database_url;
mod local_server;
pub mod process;
mod server;
mod server_binaries;
mod server_user;
pub mod stored_time;
mod tcp_proxy;
mod template_database;
mod test_database;
mod throwaway_server;

pub use local_server::LocalServer;
pub use server::server_url;
pub use tcp_proxy::TcpProxy;
pub use test_database::TestDatabase;
