//! Connecting to PostgreSQL with the configured pool, for `server` and
//! `migrate`.

use tasker_postgres::PgStore;

use crate::config::Config;
use crate::status::Failure;

/// Connects the pool; a database that cannot be reached is
/// [`crate::status::Status::Unreachable`], named by its URL without the
/// password.
pub async fn connect_store(config: &Config) -> anyhow::Result<PgStore> {
    PgStore::connect(
        &config.database.url,
        &config.pool_config(),
        &config.server.node_id,
    )
    .await
    .map_err(|e| {
        Failure::unreachable(format!(
            "cannot connect to the database at {}: {e}",
            config.redacted().database.url
        ))
    })
}
