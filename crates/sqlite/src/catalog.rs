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
use tasker_model::template::{VersionRank, compare_versions, validate_namespace};
use tasker_model::{Namespace, Template, TemplateRecord};
use tasker_store::{Error, Readiness, Result};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::clock;
use crate::{MIGRATOR, SqliteStore, db};

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
    validate_namespace(name).map_err(|message| Error::Invalid {
        field: "namespace".into(),
        message,
    })?;
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
        .queues
        .write()
        .expect("queue cache lock")
        .insert(namespace.name.clone(), namespace.queue.clone());
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
    if let Some(queue) = store
        .queues
        .read()
        .expect("queue cache lock")
        .get(namespace)
    {
        return Ok(queue.clone());
    }
    let queue: Option<String> = sqlx::query_scalar("SELECT queue FROM namespaces WHERE name = ?")
        .bind(namespace)
        .fetch_optional(&store.reader)
        .await
        .map_err(db)?;
    let queue = queue.ok_or_else(|| Error::not_found(format!("namespace \"{namespace}\"")))?;
    store
        .queues
        .write()
        .expect("queue cache lock")
        .insert(namespace.to_owned(), queue.clone());
    Ok(queue)
}

pub async fn template_register(
    store: &SqliteStore,
    template: &Template,
) -> Result<(TemplateRecord, bool)> {
    let namespace = &template.namespace;
    queue_of(store, namespace)
        .await
        .map_err(|error| match error {
            Error::NotFound { .. } => Error::not_found_hint(
                format!("namespace \"{namespace}\""),
                format!(
                    "create it first with `tasker namespace create {namespace}` \
                     (POST /v1/namespaces), then register the template again"
                ),
            ),
            other => other,
        })?;
    let hash = template.content_hash();
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
    .bind(&hash)
    .bind(&definition)
    .bind(clock::micros(clock::now()))
    .fetch_optional(&store.writer)
    .await
    .map_err(db)?;
    let record = template_get(
        store,
        &template.namespace,
        &template.name,
        Some(&template.version),
    )
    .await?;
    if inserted.is_none() && record.content_hash != hash {
        return Err(Error::Conflict {
            code: "template_conflict",
            message: format!(
                "template {} is already registered with different content; register it under a new version",
                template.reference()
            ),
        });
    }
    Ok((record, inserted.is_some()))
}

const TEMPLATE_COLUMNS: &str = "id, namespace, name, version, content_hash, definition, created_at";

fn template_from_row(row: &SqliteRow) -> Result<TemplateRecord> {
    let definition: String = row.get("definition");
    let definition: Template = serde_json::from_str(&definition).map_err(|e| Error::Invalid {
        field: "template definition".into(),
        message: e.to_string(),
    })?;
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

/// One version of a template, or with `version` `None` the newest in
/// version order (`tasker_model::template::VersionRank`; ties go to the
/// later registration).
pub async fn template_get(
    store: &SqliteStore,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<TemplateRecord> {
    let not_found = || {
        let what = match version {
            Some(v) => format!("template {namespace}/{name}@{v}"),
            None => format!("template {namespace}/{name}"),
        };
        Error::not_found(what)
    };
    let Some(version) = version else {
        // Only the versions are read to choose; the chosen definition usually
        // comes from the cache.
        let rows = sqlx::query(
            "SELECT id, version, created_at FROM templates WHERE namespace = ? AND name = ?",
        )
        .bind(namespace)
        .bind(name)
        .fetch_all(&store.reader)
        .await
        .map_err(db)?;
        let newest = rows
            .iter()
            .map(|row| {
                let version: String = row.get("version");
                let registered: i64 = row.get("created_at");
                let id = row.get::<Hyphenated, _>("id").into_uuid();
                (VersionRank::of(&version), registered, id)
            })
            .max()
            .ok_or_else(not_found)?;
        return Ok(template_by_id(store, newest.2).await?.as_ref().clone());
    };
    let row = sqlx::query(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE namespace = ? AND name = ? AND version = ?"
    ))
    .bind(namespace)
    .bind(name)
    .bind(version)
    .fetch_optional(&store.reader)
    .await
    .map_err(db)?
    .ok_or_else(not_found)?;
    template_from_row(&row)
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
    // Stable: equal ranks keep their registration order.
    records.sort_by(|a, b| {
        (&a.namespace, &a.name)
            .cmp(&(&b.namespace, &b.name))
            .then_with(|| compare_versions(&a.version, &b.version))
    });
    Ok(records)
}

/// A template by id, from the cache when possible.
pub async fn template_by_id(store: &SqliteStore, id: Uuid) -> Result<Arc<TemplateRecord>> {
    let mut conn = match cached_template(store, id) {
        Some(record) => return Ok(record),
        None => store.reader.acquire().await.map_err(db)?,
    };
    template_by_id_on(store, &mut conn, id).await
}

fn cached_template(store: &SqliteStore, id: Uuid) -> Option<Arc<TemplateRecord>> {
    store
        .templates
        .read()
        .expect("template cache lock")
        .get(&id)
        .cloned()
}

/// [`template_by_id`] reading on `conn`: inside a writing transaction,
/// which must not wait for a reader connection.
pub async fn template_by_id_on(
    store: &SqliteStore,
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
) -> Result<Arc<TemplateRecord>> {
    if let Some(record) = cached_template(store, id) {
        return Ok(record);
    }
    let row = sqlx::query(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?"
    ))
    .bind(id.hyphenated())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::not_found(format!("template {id}")))?;
    let record = Arc::new(template_from_row(&row)?);
    store
        .templates
        .write()
        .expect("template cache lock")
        .insert(id, record.clone());
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteLocation;

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
        let (first, created) = template_register(&store, &template("1.2.0", "h"))
            .await
            .unwrap();
        assert!(created);
        let (same, created) = template_register(&store, &template("1.2.0", "h"))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(same, first);
        let conflict = template_register(&store, &template("1.2.0", "other"))
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), "template_conflict");

        template_register(&store, &template("1.10.0", "h"))
            .await
            .unwrap();
        template_register(&store, &template("1.9.0", "h"))
            .await
            .unwrap();
        let newest = template_get(&store, "default", "orders", None)
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
            template_get(&store, "default", "orders", Some("9")).await,
            Err(Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_template_of_an_unknown_namespace_is_refused_with_a_hint() {
        let store = store().await;
        let mut t = template("1", "h");
        t.namespace = "billing".into();
        let error = template_register(&store, &t).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("tasker namespace create billing")
        );
    }
}
