//! Leadership leases: one row per duty set, taken and renewed by one
//! conditional upsert, judged by the database clock alone.
//!
//! A lease is taken when it is free (no row), expired, or already the
//! caller's; otherwise the statement changes nothing and the current lease
//! is read back, with its remaining time by the database clock. Never a
//! session advisory lock: a lease row survives poolers and killed backends,
//! and runs out by itself when its holder stops renewing.

use std::time::Duration;

use sqlx::Row;
use tasker_store::{LeaderElect, Leadership, Result};

use crate::error::db;
use crate::{LEADERSHIP_CHANNEL, PgStore};

const RETURNED: &str = "name, holder, term, acquired_at, expires_at, \
    greatest(extract(epoch FROM expires_at - clock_timestamp()), 0)::float8 AS expires_in";

fn leadership(row: &sqlx::postgres::PgRow) -> Leadership {
    let term: i64 = row.get("term");
    let expires_in: f64 = row.get("expires_in");
    Leadership {
        name: row.get("name"),
        holder: row.get("holder"),
        term: u64::try_from(term).unwrap_or(0),
        acquired_at: row.get("acquired_at"),
        expires_at: row.get("expires_at"),
        expires_in: Duration::try_from_secs_f64(expires_in).unwrap_or_default(),
    }
}

pub async fn attempt_elect(store: &PgStore, elect: &LeaderElect) -> Result<Option<Leadership>> {
    // `now()` is one instant for the whole statement, so the condition and
    // the new term agree. A renewal by the holder keeps its term; taking a
    // lease from another node, or again after one's own ran out, starts a
    // new tenure.
    let taken = sqlx::query(&format!(
        "INSERT INTO tasker.leadership AS l (name, holder, term, acquired_at, expires_at) \
         VALUES ($1, $2, 1, now(), now() + make_interval(secs => $3)) \
         ON CONFLICT (name) DO UPDATE SET \
           holder = EXCLUDED.holder, \
           term = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() \
                       THEN l.term ELSE l.term + 1 END, \
           acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() \
                              THEN l.acquired_at ELSE EXCLUDED.acquired_at END, \
           expires_at = EXCLUDED.expires_at \
         WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now() \
         RETURNING {RETURNED}"
    ))
    .bind(&elect.name)
    .bind(&elect.node_id)
    .bind(elect.lease_for.as_secs_f64())
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    match taken {
        Some(row) => Ok(Some(leadership(&row))),
        // Held by another node: read who, in a new statement (so a lease
        // another node created during ours is visible).
        None => get(store, &elect.name).await,
    }
}

pub async fn resign(store: &PgStore, name: &str, node_id: &str) -> Result<bool> {
    // The notification wakes the other nodes' elections at once instead of
    // at their next attempt.
    let resigned: Option<String> = sqlx::query_scalar(
        "WITH ended AS ( \
           UPDATE tasker.leadership SET expires_at = greatest(now(), acquired_at) \
           WHERE name = $1 AND holder = $2 AND expires_at > now() RETURNING name) \
         SELECT name FROM ended, pg_notify($3, name) AS notified",
    )
    .bind(name)
    .bind(node_id)
    .bind(LEADERSHIP_CHANNEL)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    Ok(resigned.is_some())
}

pub async fn get(store: &PgStore, name: &str) -> Result<Option<Leadership>> {
    let row = sqlx::query(&format!(
        "SELECT {RETURNED} FROM tasker.leadership WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    Ok(row.as_ref().map(leadership))
}
