//! Choosing the PostgreSQL server that tests use: the one named in the
//! environment, else the throwaway one.

use anyhow::Context as _;
use tokio::sync::OnceCell;

use crate::throwaway_server;

/// Environment variables naming a server and its admin database, in order of preference.
const URL_VARIABLES: [&str; 2] = ["TASKER_TEST_DATABASE_URL", "DATABASE_URL"];

/// Resolved once per process: checking (or starting) the throwaway server
/// takes a lock and spawns `pg_ctl`, which every test need not repeat.
static SERVER_URL: OnceCell<String> = OnceCell::const_new();

/// The admin URL of the server tests use: `TASKER_TEST_DATABASE_URL`, else
/// `DATABASE_URL`, else a throwaway server started (or found running) from
/// the installed PostgreSQL binaries. See the crate documentation.
pub async fn server_url() -> anyhow::Result<String> {
    SERVER_URL.get_or_try_init(resolve).await.cloned()
}

async fn resolve() -> anyhow::Result<String> {
    for variable in URL_VARIABLES {
        if let Ok(url) = std::env::var(variable)
            && !url.trim().is_empty()
        {
            return Ok(url.trim().to_owned());
        }
    }
    tokio::task::spawn_blocking(throwaway_server::ensure_running)
        .await
        .context("the task starting the throwaway PostgreSQL server panicked")?
}
