//! Namespaces, templates, migrations and readiness: the slowly changing part
//! of the store. Namespaces and templates are immutable once written, so the
//! store caches them without invalidation.
//!
//! Every namespace's messages live in the one `queue_messages` table, so a
//! namespace's "queue" is only a name (the namespace's own): creating a
//! namespace creates no table. Must never: hand out a template record that
//! differs from the stored row (the cache holds rows as read).

use std::sync::Arc;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tasker_model::{Namespace, Template, TemplateRecord, Timestamp};
use tasker_store::catalog::{self, CatalogCache, CatalogRows};
use tasker_store::{Readiness, Result};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::{MIGRATOR, SqliteStore, clock, db};

pub const DEFAULT_NAMESPACE: &str = "default";

/// The queue name of a namespace's messages (`queue_messages.queue`).
pub fn queue_name(namespace: &str) -> String {
    namespace.to_owned()
}

/// Applies the migrations and creates the default namespace. Idempotent.
pub async fn migrate(store: &SqliteStore) -> Result<()> {
    MIGRATOR.run(&store.writer).await.map_err(db)?;
    namespace_create(store, DEFAULT_NAMESPACE).await?;
    Ok(())
}

/// Readiness, read at once: the database is a local file (or memory), so
/// the check never waits on a network.
pub async fn readiness(store: &SqliteStore) -> Result<Readiness> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    // A missing table (before the migrations ran) only means "not ready".
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&store.reader)
            .await
            .ok()
            .flatten();
    let migrations_applied = applied.is_some_and(|v| v >= latest);
    let queues_installed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue_messages')",
    )
    .fetch_one(&store.reader)
    .await
    .map_err(db)?;
    let default_namespace = migrations_applied
        && sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?)")
            .bind(DEFAULT_NAMESPACE)
            .fetch_one(&store.reader)
            .await
            .map_err(db)?;
    Ok(Readiness {
        database: true,
        migrations_applied,
        queues_installed,
        default_namespace,
    })
}

pub async fn namespace_create(store: &SqliteStore, name: &str) -> Result<(Namespace, bool)> {
    catalog::namespace_validate(name)?;
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO namespaces (name, queue, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (name) DO NOTHING RETURNING name",
    )
    .bind(name)
    .bind(queue_name(name))
    .bind(clock::micros(clock::now()))
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let row = sqlx::query("SELECT name, queue, created_at FROM namespaces WHERE name = ?")
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let namespace = namespace_from_row(&row);
    store
        .catalog
        .queue_remember(&namespace.name, &namespace.queue);
    Ok((namespace, inserted.is_some()))
}

pub async fn namespace_list(store: &SqliteStore) -> Result<Vec<Namespace>> {
    let rows = sqlx::query("SELECT name, queue, created_at FROM namespaces ORDER BY name")
        .fetch_all(&store.reader)
        .await
        .map_err(db)?;
    Ok(rows.iter().map(namespace_from_row).collect())
}

fn namespace_from_row(row: &SqliteRow) -> Namespace {
    Namespace {
        name: row.get("name"),
        queue: row.get("queue"),
        created_at: clock::from_micros(row.get("created_at")),
    }
}

/// The queue of a namespace, or `NotFound` naming the namespace.
pub async fn queue_of(store: &SqliteStore, namespace: &str) -> Result<String> {
    catalog::queue_of(&store.catalog, namespace, store.queue_read(namespace)).await
}

const TEMPLATE_COLUMNS: &str = "id, namespace, name, version, content_hash, definition, created_at";

fn template_from_row(row: &SqliteRow) -> Result<TemplateRecord> {
    let definition: String = row.get("definition");
    let definition: Template =
        serde_json::from_str(&definition).map_err(catalog::template_definition_invalid)?;
    Ok(TemplateRecord {
        id: row.get::<Hyphenated, _>("id").into_uuid(),
        namespace: row.get("namespace"),
        name: row.get("name"),
        version: row.get("version"),
        content_hash: row.get("content_hash"),
        definition,
        created_at: clock::from_micros(row.get("created_at")),
    })
}

impl CatalogRows for SqliteStore {
    fn catalog(&self) -> &CatalogCache {
        &self.catalog
    }

    async fn queue_read(&self, namespace: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT queue FROM namespaces WHERE name = ?")
            .bind(namespace)
            .fetch_optional(&self.reader)
            .await
            .map_err(db)
    }

    async fn template_insert(&self, template: &Template, hash: &str) -> Result<bool> {
        let definition = serde_json::to_string(template).expect("template serializes");
        let inserted = sqlx::query(
            "INSERT INTO templates (id, namespace, name, version, content_hash, definition, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (namespace, name, version) DO NOTHING RETURNING id",
        )
        .bind(Uuid::now_v7().hyphenated())
        .bind(&template.namespace)
        .bind(&template.name)
        .bind(&template.version)
        .bind(hash)
        .bind(&definition)
        .bind(clock::micros(clock::now()))
        .fetch_optional(&self.writer)
        .await
        .map_err(db)?;
        Ok(inserted.is_some())
    }

    async fn template_read(&self, id: Uuid) -> Result<Option<TemplateRecord>> {
        let mut conn = self.reader.acquire().await.map_err(db)?;
        template_read_on(&mut conn, id).await
    }

    async fn template_version_read(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<TemplateRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE namespace = ? AND name = ? AND version = ?"
        ))
        .bind(namespace)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn template_versions_read(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<(String, Timestamp, Uuid)>> {
        let rows = sqlx::query(
            "SELECT id, version, created_at FROM templates WHERE namespace = ? AND name = ?",
        )
        .bind(namespace)
        .bind(name)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|row| {
                let id = row.get::<Hyphenated, _>("id").into_uuid();
                (
                    row.get("version"),
                    clock::from_micros(row.get("created_at")),
                    id,
                )
            })
            .collect())
    }
}

/// The stored template `id`, read on `conn`.
async fn template_read_on(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<Option<TemplateRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?"
    ))
    .bind(id.hyphenated())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.as_ref().map(template_from_row).transpose()
}

/// Templates by namespace and name, each name's versions oldest first in
/// version order (the newest last).
pub async fn template_list(
    store: &SqliteStore,
    namespace: Option<&str>,
) -> Result<Vec<TemplateRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates \
         WHERE (?1 IS NULL OR namespace = ?1) ORDER BY namespace, name, created_at, id"
    ))
    .bind(namespace)
    .fetch_all(&store.reader)
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
pub async fn template_by_id(store: &SqliteStore, id: Uuid) -> Result<Arc<TemplateRecord>> {
    catalog::template_by_id(&store.catalog, id, store.template_read(id)).await
}

/// [`template_by_id`] reading on `conn`: inside a writing transaction,
/// which must not wait for a reader connection.
pub async fn template_by_id_on(
    store: &SqliteStore,
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<Arc<TemplateRecord>> {
    catalog::template_by_id(&store.catalog, id, template_read_on(conn, id)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteLocation;
    use tasker_store::Error;

    async fn store() -> SqliteStore {
        let store = SqliteStore::open(SqliteLocation::Memory, "node-1")
            .await
            .expect("open");
        migrate(&store).await.expect("migrate");
        store
    }

    fn template(version: &str, handler: &str) -> Template {
        serde_json::from_value(serde_json::json!({
            "namespace": "default",
            "name": "orders",
            "version": version,
            "steps": [{"name": "a", "handler": handler}],
        }))
        .expect("template")
    }

    #[tokio::test]
    async fn migrate_twice_leaves_one_default_namespace_and_is_ready() {
        let store = store().await;
        migrate(&store).await.expect("second migrate");
        let namespaces = namespace_list(&store).await.unwrap();
        assert_eq!(namespaces.len(), 1);
        assert_eq!(namespaces[0].name, DEFAULT_NAMESPACE);
        assert!(readiness(&store).await.unwrap().is_ready());
    }

    #[tokio::test]
    async fn an_unmigrated_database_is_not_ready() {
        let store = SqliteStore::open(SqliteLocation::Memory, "node-1")
            .await
            .unwrap();
        let readiness = readiness(&store).await.unwrap();
        assert!(readiness.database);
        assert!(!readiness.migrations_applied);
        assert!(!readiness.is_ready());
    }

    #[tokio::test]
    async fn namespaces_are_created_once_and_bad_names_are_refused() {
        let store = store().await;
        let (created, first) = namespace_create(&store, "orders").await.unwrap();
        assert!(first);
        let (again, second) = namespace_create(&store, "orders").await.unwrap();
        assert!(!second);
        assert_eq!(created, again);
        let bad = namespace_create(&store, "Orders!").await.unwrap_err();
        assert!(matches!(bad, Error::Invalid { ref field, .. } if field == "namespace"));
        assert_eq!(queue_of(&store, "orders").await.unwrap(), created.queue);
        assert!(matches!(
            queue_of(&store, "nowhere").await,
            Err(Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn templates_register_once_conflict_on_new_content_and_pick_the_newest() {
        let store = store().await;
        let (first, created) = catalog::template_register(&store, &template("1.2.0", "h"))
            .await
            .unwrap();
        assert!(created);
        let (same, created) = catalog::template_register(&store, &template("1.2.0", "h"))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(same, first);
        let conflict = catalog::template_register(&store, &template("1.2.0", "other"))
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), "template_conflict");

        catalog::template_register(&store, &template("1.10.0", "h"))
            .await
            .unwrap();
        catalog::template_register(&store, &template("1.9.0", "h"))
            .await
            .unwrap();
        let newest = catalog::template_get(&store, "default", "orders", None)
            .await
            .unwrap();
        assert_eq!(newest.version, "1.10.0");
        let versions: Vec<String> = template_list(&store, Some("default"))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.version)
            .collect();
        assert_eq!(versions, ["1.2.0", "1.9.0", "1.10.0"]);
        assert!(
            template_list(&store, Some("other"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            template_by_id(&store, first.id).await.unwrap().as_ref(),
            &first
        );
        assert!(matches!(
            catalog::template_get(&store, "default", "orders", Some("9")).await,
            Err(Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_template_of_an_unknown_namespace_is_refused_with_a_hint() {
        let store = store().await;
        let mut t = template("1", "h");
        t.namespace = "billing".into();
        let error = catalog::template_register(&store, &t).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("tasker namespace create billing")
        );
    }
}
