//! Template databases: built once per key by the caller's setup, then cloned
//! for every test that asks for that key.
//!
//! ```text
//!   exists tasker_tmpl_<h>? ──yes──────────────────────────────┐
//!        │ no                                                  │
//!   pg_advisory_lock(h)   (other processes building h wait)    │
//!   exists now? ──yes── unlock ────────────────────────────────┤
//!        │ no                                                  │
//!   drop leftover tasker_tmpl_<h>_build, create it, setup(url)  │
//!   close it to sessions, rename to tasker_tmpl_<h>, IS_TEMPLATE│
//!   unlock                                                      ▼
//!                                  CREATE DATABASE tasker_test_<r> TEMPLATE tasker_tmpl_<h>
//! ```
//!
//! Publishing by rename means a template that exists is complete: a build
//! that failed or crashed leaves only a `_build` database, dropped by the
//! next build. Templates outlive processes and test runs, which is the point;
//! callers put a fingerprint of their setup (e.g. of the migrations) in the
//! key, so a changed setup builds a new template. Old ones stay until
//! dropped with [`crate::TestDatabase::drop_template`] or with the server.

use std::future::Future;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::admin_connection::AdminConnection;
use crate::database_url::with_database;

/// The name of the template database for `key`.
pub(crate) fn template_name(key: &str) -> String {
    format!("tasker_tmpl_{:016x}", key_hash(key))
}

/// The template for `key`, built with `setup` unless it already exists.
pub(crate) async fn ensure_template<F, Fut>(
    admin: &mut AdminConnection,
    admin_url: &str,
    key: &str,
    setup: F,
) -> anyhow::Result<String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let template = template_name(key);
    if admin.database_exists(&template).await? {
        return Ok(template);
    }
    // The same 64 bits as the name: one lock per template.
    let lock = key_hash(key) as i64;
    admin.advisory_lock(lock).await?;
    let built = build_unless_exists(admin, admin_url, key, &template, setup).await;
    // On error the caller closes the connection, which releases the lock too.
    admin.advisory_unlock(lock).await?;
    built.map(|()| template)
}

/// Drops the template for `key` if it exists.
pub(crate) async fn drop_template(admin: &mut AdminConnection, key: &str) -> anyhow::Result<()> {
    let template = template_name(key);
    if admin.database_exists(&template).await? {
        admin.database_set_template(&template, false).await?;
        admin.database_drop(&template).await?;
    }
    Ok(())
}

async fn build_unless_exists<F, Fut>(
    admin: &mut AdminConnection,
    admin_url: &str,
    key: &str,
    template: &str,
    setup: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // Another process built it while we waited for the lock.
    if admin.database_exists(template).await? {
        return Ok(());
    }
    let building = format!("{template}_build");
    admin.database_drop(&building).await?;
    admin.database_create(&building, None).await?;
    if let Err(error) = setup(with_database(admin_url, &building)).await {
        let _ = admin.database_drop(&building).await;
        return Err(error.context(format!("the setup of test template {key:?} failed")));
    }
    // The setup should have closed its connections; any it left open would
    // block the rename and every clone.
    admin.database_close_to_sessions(&building).await?;
    admin
        .database_rename(&building, template)
        .await
        .with_context(|| format!("the setup of test template {key:?} left connections open"))?;
    admin.database_set_template(template, true).await
}

fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::template_name;

    #[test]
    fn names_are_stable_short_identifiers_that_differ_by_key() {
        let name = template_name("tasker-postgres:migrations=abc123");
        assert_eq!(name, template_name("tasker-postgres:migrations=abc123"));
        assert_ne!(name, template_name("tasker-postgres:migrations=abc124"));
        // PostgreSQL truncates identifiers past 63 bytes; the `_build` suffix must fit too.
        assert!(format!("{name}_build").len() <= 63);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
