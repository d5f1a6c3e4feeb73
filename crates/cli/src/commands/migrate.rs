//! `tasker migrate`: applies the embedded migrations (and installs the
//! queues) without starting a server.

use tasker_store::Store;

use super::store_connection::connect_store;
use crate::cli::MigrateArgs;
use crate::config;
use crate::status::Status;

pub async fn run(args: &MigrateArgs) -> anyhow::Result<Status> {
    let config = args.layers().load()?;
    // Only the database settings matter here: a node's auth tokens are no
    // business of a migration.
    let issues: Vec<_> = config
        .validate()
        .into_iter()
        .filter(|i| i.key.starts_with("database."))
        .collect();
    if !issues.is_empty() {
        return Err(config::Error::Invalid { issues }.into());
    }
    if args.create_database
        && tasker_postgres::PgStore::create_database_if_missing(&config.database.url)
            .await
            .map_err(|e| {
                crate::status::Failure::unreachable(format!(
                    "cannot create the database at {}: {e}",
                    config.redacted().database.url
                ))
            })?
    {
        eprintln!("created the database {}", config.redacted().database.url);
    }
    let store = connect_store(&config).await?;
    let migrated = store.migrate().await;
    store.pool().close().await;
    migrated?;
    eprintln!("migrations applied to {}", config.redacted().database.url);
    Ok(Status::Ok)
}
