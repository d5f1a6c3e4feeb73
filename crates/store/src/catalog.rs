//! The catalog's policy, shared by every backend: the cache of namespaces'
//! queues and of templates (both immutable once written, so cached without
//! invalidation), and the decisions and answers of namespace creation and
//! template registration and lookup (which name is invalid, what a missing
//! namespace or template is called and what to do about it, when a
//! registration conflicts, which version is the newest). A backend keeps
//! only its SQL: it offers the reads and the insert of [`CatalogRows`] and
//! hands rows here.
//!
//! ```text
//!  template_register ─▶ queue_of (cache | queue_read), template_insert,
//!                       template_get, template_registered
//!  template_get      ─▶ template_version_read | template_versions_read,
//!                       template_newest, template_by_id (cache | template_read)
//! ```
//!
//! Must never: run SQL, or hand out a record other than the one read (the
//! cache holds rows as read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tasker_model::template::{VersionRank, compare_versions, validate_namespace};
use tasker_model::{Template, TemplateRecord, Timestamp};
use uuid::Uuid;

use crate::{Error, Result};

/// The namespaces' queues and the templates a store has read.
#[derive(Debug, Default)]
pub struct CatalogCache {
    /// Queue names by namespace (namespaces are never deleted).
    queues: RwLock<HashMap<String, String>>,
    /// Templates by id.
    templates: RwLock<HashMap<Uuid, Arc<TemplateRecord>>>,
}

impl CatalogCache {
    /// The queue of `namespace`, when read before.
    pub fn queue(&self, namespace: &str) -> Option<String> {
        self.queues
            .read()
            .expect("queue cache lock")
            .get(namespace)
            .cloned()
    }

    pub fn queue_remember(&self, namespace: &str, queue: &str) {
        self.queues
            .write()
            .expect("queue cache lock")
            .insert(namespace.to_owned(), queue.to_owned());
    }

    /// The template `id`, when read before.
    pub fn template(&self, id: Uuid) -> Option<Arc<TemplateRecord>> {
        self.templates
            .read()
            .expect("template cache lock")
            .get(&id)
            .cloned()
    }

    /// Keeps `record` (as read) and returns it shared.
    pub fn template_remember(&self, record: TemplateRecord) -> Arc<TemplateRecord> {
        let record = Arc::new(record);
        self.templates
            .write()
            .expect("template cache lock")
            .insert(record.id, record.clone());
        record
    }
}

/// The catalog's rows as a backend stores them: the reads and the insert
/// that [`template_register`] and [`template_get`] run, in the backend's SQL.
pub trait CatalogRows: Send + Sync {
    /// The backend's cache of what it read.
    fn catalog(&self) -> &CatalogCache;

    /// The stored queue of `namespace`; `None` when there is no such
    /// namespace.
    fn queue_read(&self, namespace: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Inserts `template` (content hash `hash`) with a new id unless a
    /// template of its namespace, name and version is stored; whether it
    /// did.
    fn template_insert(
        &self,
        template: &Template,
        hash: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The stored template `id`.
    fn template_read(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<TemplateRecord>>> + Send;

    /// The stored template of this namespace, name and version.
    fn template_version_read(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<Option<TemplateRecord>>> + Send;

    /// Every stored version of a template name, as (version, registration
    /// time, id).
    fn template_versions_read(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<(String, Timestamp, Uuid)>>> + Send;
}

/// Registers `template`: its namespace must exist (else `NotFound` with
/// how to create it); the same content again is answered with the stored
/// record (`false`), different content under the same version is a
/// conflict.
pub async fn template_register<C: CatalogRows>(
    rows: &C,
    template: &Template,
) -> Result<(TemplateRecord, bool)> {
    let namespace = &template.namespace;
    queue_of(rows.catalog(), namespace, rows.queue_read(namespace))
        .await
        .map_err(|error| template_namespace_error(error, namespace))?;
    let hash = template.content_hash();
    let inserted = rows.template_insert(template, &hash).await?;
    let record = template_get(rows, namespace, &template.name, Some(&template.version)).await?;
    template_registered(template, &hash, record, inserted)
}

/// One version of a template, or with `version` `None` the newest in
/// version order ([`VersionRank`]; ties go to the later registration).
pub async fn template_get<C: CatalogRows>(
    rows: &C,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> Result<TemplateRecord> {
    let not_found = || template_not_found(namespace, name, version);
    let Some(version) = version else {
        // Only the versions are read to choose; the chosen definition usually
        // comes from the cache.
        let versions = rows.template_versions_read(namespace, name).await?;
        let newest = template_newest(versions).ok_or_else(not_found)?;
        let record = template_by_id(rows.catalog(), newest, rows.template_read(newest)).await?;
        return Ok(record.as_ref().clone());
    };
    rows.template_version_read(namespace, name, version)
        .await?
        .ok_or_else(not_found)
}

/// The queue of `namespace` from the cache, else from `read` (the stored
/// queue, `None` for no such namespace), remembered; `NotFound` naming the
/// namespace when there is none. `read` is only awaited on a cache miss.
pub async fn queue_of(
    cache: &CatalogCache,
    namespace: &str,
    read: impl Future<Output = Result<Option<String>>>,
) -> Result<String> {
    if let Some(queue) = cache.queue(namespace) {
        return Ok(queue);
    }
    let queue = read.await?.ok_or_else(|| namespace_not_found(namespace))?;
    cache.queue_remember(namespace, &queue);
    Ok(queue)
}

/// The template `id` from the cache, else from `read` (the stored row,
/// `None` for no such template), remembered; `NotFound` naming the id when
/// there is none. `read` is only awaited on a cache miss.
pub async fn template_by_id(
    cache: &CatalogCache,
    id: Uuid,
    read: impl Future<Output = Result<Option<TemplateRecord>>>,
) -> Result<Arc<TemplateRecord>> {
    if let Some(record) = cache.template(id) {
        return Ok(record);
    }
    let record = read
        .await?
        .ok_or_else(|| Error::not_found(format!("template {id}")))?;
    Ok(cache.template_remember(record))
}

/// Refuses a namespace name that is not valid, naming the field.
pub fn namespace_validate(name: &str) -> Result<()> {
    validate_namespace(name).map_err(|message| Error::Invalid {
        field: "namespace".into(),
        message,
    })
}

/// A namespace that does not exist.
pub fn namespace_not_found(namespace: &str) -> Error {
    Error::not_found(format!("namespace \"{namespace}\""))
}

/// Why a template of `namespace` cannot be registered, given the error of
/// looking up the namespace's queue: a missing namespace is refused with how
/// to create it.
pub fn template_namespace_error(error: Error, namespace: &str) -> Error {
    match error {
        Error::NotFound { .. } => Error::not_found_hint(
            format!("namespace \"{namespace}\""),
            format!(
                "create it first with `tasker namespace create {namespace}` \
                 (POST /v1/namespaces), then register the template again"
            ),
        ),
        other => other,
    }
}

/// The answer to registering `template` (content hash `hash`): `record` is
/// the stored row of its namespace, name and version after the insert,
/// `inserted` whether this registration wrote it. The same content again is
/// answered with the stored record, different content is a conflict.
pub fn template_registered(
    template: &Template,
    hash: &str,
    record: TemplateRecord,
    inserted: bool,
) -> Result<(TemplateRecord, bool)> {
    if !inserted && record.content_hash != hash {
        return Err(Error::Conflict {
            code: "template_conflict",
            message: format!(
                "template {} is already registered with different content; register it under a new version",
                template.reference()
            ),
        });
    }
    Ok((record, inserted))
}

/// A stored definition that does not read as a template.
pub fn template_definition_invalid(error: serde_json::Error) -> Error {
    Error::Invalid {
        field: "template definition".into(),
        message: error.to_string(),
    }
}

/// A template version (or, with `version` `None`, any version of the name)
/// that does not exist.
pub fn template_not_found(namespace: &str, name: &str, version: Option<&str>) -> Error {
    let what = match version {
        Some(v) => format!("template {namespace}/{name}@{v}"),
        None => format!("template {namespace}/{name}"),
    };
    Error::not_found(what)
}

/// The id of the newest of a name's versions, given as (version,
/// registration time, id): the highest in version order
/// ([`VersionRank`]), ties going to the later registration. `None` when
/// there are none.
pub fn template_newest<T: Ord>(
    versions: impl IntoIterator<Item = (String, T, Uuid)>,
) -> Option<Uuid> {
    versions
        .into_iter()
        .map(|(version, registered, id)| (VersionRank::of(&version), registered, id))
        .max()
        .map(|(_, _, id)| id)
}

/// Orders templates by namespace and name, each name's versions oldest
/// first in version order (the newest last). Stable: equal ranks keep the
/// order given (registration order when read so).
pub fn templates_sort(records: &mut [TemplateRecord]) {
    records.sort_by(|a, b| {
        (&a.namespace, &a.name)
            .cmp(&(&b.namespace, &b.name))
            .then_with(|| compare_versions(&a.version, &b.version))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(version: &str, handler: &str) -> Template {
        serde_json::from_value(serde_json::json!({
            "namespace": "default",
            "name": "orders",
            "version": version,
            "steps": [{"name": "a", "handler": handler}],
        }))
        .expect("template")
    }

    fn record(version: &str) -> TemplateRecord {
        let template = template(version, "h");
        TemplateRecord {
            id: Uuid::now_v7(),
            namespace: template.namespace.clone(),
            name: template.name.clone(),
            version: version.into(),
            content_hash: template.content_hash(),
            definition: template,
            created_at: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_cached_queue_or_template_is_not_read_again() {
        let cache = CatalogCache::default();
        let read = queue_of(&cache, "orders", async { Ok(Some("q".to_owned())) });
        assert_eq!(read.await.unwrap(), "q");
        let again = queue_of(&cache, "orders", async { panic!("read again") });
        assert_eq!(again.await.unwrap(), "q");
        let missing = queue_of(&cache, "billing", async { Ok(None) }).await;
        assert_eq!(
            missing.unwrap_err().to_string(),
            "namespace \"billing\" not found"
        );

        let stored = record("1");
        let id = stored.id;
        let read = template_by_id(&cache, id, async { Ok(Some(stored)) });
        assert_eq!(read.await.unwrap().id, id);
        let again = template_by_id(&cache, id, async { panic!("read again") });
        assert_eq!(again.await.unwrap().id, id);
        let other = Uuid::now_v7();
        let missing = template_by_id(&cache, other, async { Ok(None) }).await;
        assert_eq!(
            missing.unwrap_err().to_string(),
            format!("template {other} not found")
        );
    }

    #[test]
    fn a_template_of_a_missing_namespace_is_refused_with_how_to_create_it() {
        let error = template_namespace_error(namespace_not_found("billing"), "billing");
        let Error::NotFound { what, hint, .. } = error else {
            panic!("not a NotFound")
        };
        assert_eq!(what, "namespace \"billing\"");
        assert!(hint.unwrap().contains("tasker namespace create billing"));
        let other = template_namespace_error(Error::Database("down".into()), "billing");
        assert!(matches!(other, Error::Database(_)));
    }

    #[test]
    fn the_same_content_again_is_answered_different_content_conflicts() {
        let same = template("1", "h");
        let hash = same.content_hash();
        let (_, created) = template_registered(&same, &hash, record("1"), false).unwrap();
        assert!(!created);
        let (_, created) = template_registered(&same, &hash, record("1"), true).unwrap();
        assert!(created);
        let other = template("1", "other");
        let conflict =
            template_registered(&other, &other.content_hash(), record("1"), false).unwrap_err();
        assert_eq!(conflict.code(), "template_conflict");
    }

    #[test]
    fn the_newest_version_is_the_highest_rank_then_the_latest_registered() {
        let [a, b, c] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let versions = vec![
            ("1.10.0".to_owned(), 1, a),
            ("1.9.0".to_owned(), 2, b),
            ("1.10.0".to_owned(), 3, c),
        ];
        assert_eq!(template_newest(versions), Some(c));
        assert_eq!(template_newest(Vec::<(String, i64, Uuid)>::new()), None);
        assert_eq!(
            template_not_found("default", "orders", Some("2")).to_string(),
            "template default/orders@2 not found"
        );
    }

    #[test]
    fn templates_sort_by_name_then_version_order() {
        let mut records = vec![record("1.10.0"), record("1.2.0"), record("1.9.0")];
        templates_sort(&mut records);
        let versions: Vec<&str> = records.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(versions, ["1.2.0", "1.9.0", "1.10.0"]);
        assert!(namespace_validate("Orders!").is_err());
        assert!(namespace_validate("orders").is_ok());
    }
}
