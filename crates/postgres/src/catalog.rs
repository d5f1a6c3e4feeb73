//! Namespaces, templates, migrations and readiness: the slowly changing part
//! of the store. Namespaces and templates are immutable once written, so
//! each node caches them without invalidation.

use std::sync::Arc;

use sqlx::Row;
use tasker_model::{Namespace, Template, TemplateRecord, Timestamp};
use tasker_store::catalog::{self, CatalogCache, CatalogRows};
use tasker_store::{Error, Readiness, Result};
use uuid::Uuid;

use crate::error::{commit_error, db, is_connection_error};
use crate::{MIGRATOR, PgStore};

pub const DEFAULT_NAMESPACE: &str = "default";

pub fn queue_name(namespace: &str) -> String {
    format!("tasker_{namespace}")
}

pub async fn migrate(store: &PgStore) -> Result<()> {
    // Concurrent nodes may start together: serialize the whole install.
    let mut conn = store.pool.acquire().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_lock(7262277372)")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let outcome = async {
        let pgmq_installed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgmq')")
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        let extension: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')")
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        // A PGMQ installed as an extension is used as it is; otherwise install
        // (or upgrade) it from the SQL embedded in the pgmq crate.
        if !extension {
            pgmq::install::install_sql_from_embedded(&store.pool)
                .await
                .map_err(|e| Error::Database(Box::new(e)))?;
        }
        tracing::debug!(pgmq_installed, "pgmq ready");
        MIGRATOR.run(&store.pool).await.map_err(db)?;
        Ok::<(), Error>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(7262277372)")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    outcome?;
    namespace_create(store, DEFAULT_NAMESPACE).await?;
    // Ready from now on: the cached readiness must say so at once.
    store.monitor.check_now().await;
    Ok(())
}

/// Readiness as the database monitor checks it, on its own connection. A
/// lost connection is an error (the database is not there); any other
/// failed query only means that part is not ready (a missing table before
/// the migrations ran, say).
pub async fn readiness_on(conn: &mut sqlx::PgConnection) -> Result<Readiness, sqlx::Error> {
    /// `Ok(None)` for a query that failed for a reason other than the
    /// connection.
    fn answered<T>(outcome: Result<T, sqlx::Error>) -> Result<Option<T>, sqlx::Error> {
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(error) if is_connection_error(&error) => Err(error),
            Err(_) => Ok(None),
        }
    }
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> = answered(
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await,
    )?
    .flatten();
    let migrations_applied = applied.is_some_and(|v| v >= latest);
    let queues_installed = answered(
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'pgmq' AND p.proname = 'read')",
        )
        .fetch_one(&mut *conn)
        .await,
    )?
    .unwrap_or(false);
    let default_namespace = migrations_applied
        && answered(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.namespaces WHERE name = $1)")
                .bind(DEFAULT_NAMESPACE)
                .fetch_one(&mut *conn)
                .await,
        )?
        .unwrap_or(false);
    Ok(Readiness {
        database: true,
        migrations_applied,
        queues_installed,
        default_namespace,
    })
}

pub async fn namespace_create(store: &PgStore, name: &str) -> Result<(Namespace, bool)> {
    catalog::namespace_validate(name)?;
    let queue = queue_name(name);
    let mut tx = store.pool.begin().await.map_err(db)?;
    let inserted = sqlx::query(
        "INSERT INTO tasker.namespaces (name, queue) VALUES ($1, $2) \
         ON CONFLICT (name) DO NOTHING RETURNING name",
    )
    .bind(name)
    .bind(&queue)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let created = inserted.is_some();
    if created {
        // The queue is created in the same transaction as its namespace row.
        sqlx::query("SELECT pgmq.create($1)")
            .bind(&queue)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Autovacuum settings that suit a queue (see the retention migration).
        sqlx::query("SELECT tasker.queue_table_tune($1)")
            .bind(&queue)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let row = sqlx::query("SELECT name, queue, created_at FROM tasker.namespaces WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(commit_error)?;
    let namespace = Namespace {
        name: row.get("name"),
        queue: row.get("queue"),
        created_at: row.get("created_at"),
    };
    store
        .catalog
        .queue_remember(&namespace.name, &namespace.queue);
    Ok((namespace, created))
}

pub async fn namespace_list(store: &PgStore) -> Result<Vec<Namespace>> {
    let rows = sqlx::query("SELECT name, queue, created_at FROM tasker.namespaces ORDER BY name")
        .fetch_all(&store.pool)
        .await
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|row| Namespace {
            name: row.get("name"),
            queue: row.get("queue"),
            created_at: row.get("created_at"),
        })
        .collect())
}

/// The queue of a namespace, or `NotFound` naming the namespace.
pub async fn queue_of(store: &PgStore, namespace: &str) -> Result<String> {
    catalog::queue_of(&store.catalog, namespace, store.queue_read(namespace)).await
}

const TEMPLATE_COLUMNS: &str = "id, namespace, name, version, content_hash, definition, created_at";

fn template_from_row(row: &sqlx::postgres::PgRow) -> Result<TemplateRecord> {
    let definition: serde_json::Value = row.get("definition");
    let definition: Template =
        serde_json::from_value(definition).map_err(catalog::template_definition_invalid)?;
    Ok(TemplateRecord {
        id: row.get("id"),
        namespace: row.get("namespace"),
        name: row.get("name"),
        version: row.get("version"),
        content_hash: row.get("content_hash"),
        definition,
        created_at: row.get("created_at"),
    })
}

impl CatalogRows for PgStore {
    fn catalog(&self) -> &CatalogCache {
        &self.catalog
    }

    async fn queue_read(&self, namespace: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT queue FROM tasker.namespaces WHERE name = $1")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn template_insert(&self, template: &Template, hash: &str) -> Result<bool> {
        let definition = serde_json::to_value(template).expect("template serializes");
        let inserted = sqlx::query(
            "INSERT INTO tasker.templates (id, namespace, name, version, content_hash, definition) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (namespace, name, version) DO NOTHING RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(&template.namespace)
        .bind(&template.name)
        .bind(&template.version)
        .bind(hash)
        .bind(&definition)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(inserted.is_some())
    }

    async fn template_read(&self, id: Uuid) -> Result<Option<TemplateRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM tasker.templates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn template_version_read(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<TemplateRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM tasker.templates \
             WHERE namespace = $1 AND name = $2 AND version = $3"
        ))
        .bind(namespace)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn template_versions_read(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<(String, Timestamp, Uuid)>> {
        sqlx::query_as(
            "SELECT version, created_at, id FROM tasker.templates \
             WHERE namespace = $1 AND name = $2",
        )
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}

/// Templates by namespace and name, each name's versions oldest first in
/// version order (the newest last).
pub async fn template_list(
    store: &PgStore,
    namespace: Option<&str>,
) -> Result<Vec<TemplateRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM tasker.templates \
         WHERE ($1::text IS NULL OR namespace = $1) ORDER BY namespace, name, created_at"
    ))
    .bind(namespace)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut records = rows
        .iter()
        .map(template_from_row)
        .collect::<Result<Vec<_>>>()?;
    catalog::templates_sort(&mut records);
    Ok(records)
}

/// A template by id, from the cache when possible.
pub async fn template_by_id(store: &PgStore, id: Uuid) -> Result<Arc<TemplateRecord>> {
    catalog::template_by_id(&store.catalog, id, store.template_read(id)).await
}
