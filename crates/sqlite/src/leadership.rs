//! Leadership leases: one row per duty set, taken and renewed by one
//! conditional upsert, as on PostgreSQL.
//!
//! A lease is taken when it is free (no row), expired, or already the
//! caller's; otherwise the statement changes nothing and the current lease
//! is read back. On SQLite one node serves the file, so that node always
//! leads; the leases are still real rows, so that the engine's election,
//! resignation and the cluster view work unchanged. Every time is the
//! store's clock, read once per statement, so the condition and the new
//! term agree.

use sqlx::sqlite::SqliteRow;
use tasker_model::Timestamp;
use tasker_store::{LeaderElect, Leadership, Result};

use crate::columns::{self, get};
use crate::{SqliteStore, clock, db};

const COLUMNS: &str = "name, holder, term, acquired_at, expires_at";

/// The lease as stored, with its remaining time as of `now`.
fn leadership(row: &SqliteRow, now: Timestamp) -> Result<Leadership> {
    let term: i64 = get(row, "term")?;
    let expires_at = columns::time(row, "expires_at")?;
    Ok(Leadership {
        name: get(row, "name")?,
        holder: get(row, "holder")?,
        term: u64::try_from(term).unwrap_or(0),
        acquired_at: columns::time(row, "acquired_at")?,
        expires_at,
        expires_in: (expires_at - now).to_std().unwrap_or_default(),
    })
}

/// Takes the lease of `elect.name` when it is free, expired or already
/// `elect.node_id`'s (renewing it), in one statement; returns the lease as
/// it stands after the attempt.
pub(crate) async fn leader_attempt_elect(
    store: &SqliteStore,
    elect: &LeaderElect,
) -> Result<Option<Leadership>> {
    let now = clock::now();
    let lease_for = chrono::TimeDelta::from_std(elect.lease_for).unwrap_or(chrono::TimeDelta::MAX);
    let expires_at = now.checked_add_signed(lease_for).unwrap_or(now);
    // A renewal by the holder keeps its term; taking a lease from another
    // node, or again after one's own ran out, starts a new tenure.
    let taken = sqlx::query(&format!(
        "INSERT INTO leadership (name, holder, term, acquired_at, expires_at) \
         VALUES (?1, ?2, 1, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET \
           holder = excluded.holder, \
           term = CASE WHEN leadership.holder = excluded.holder AND leadership.expires_at > ?3 \
                       THEN leadership.term ELSE leadership.term + 1 END, \
           acquired_at = CASE WHEN leadership.holder = excluded.holder AND leadership.expires_at > ?3 \
                              THEN leadership.acquired_at ELSE excluded.acquired_at END, \
           expires_at = excluded.expires_at \
         WHERE leadership.holder = excluded.holder OR leadership.expires_at <= ?3 \
         RETURNING {COLUMNS}"
    ))
    .bind(&elect.name)
    .bind(&elect.node_id)
    .bind(clock::micros(now))
    .bind(clock::micros(expires_at))
    .fetch_optional(&store.writer)
    .await
    .map_err(db)?;
    match taken {
        Some(row) => leadership(&row, now).map(Some),
        // Held by another node: read who.
        None => leader_get(store, &elect.name).await,
    }
}

/// Ends `node_id`'s lease of `name` now; false when `node_id` did not hold
/// it (or it had run out already).
pub(crate) async fn leader_resign(store: &SqliteStore, name: &str, node_id: &str) -> Result<bool> {
    let now = clock::micros(clock::now());
    let done = sqlx::query(
        "UPDATE leadership SET expires_at = max(?3, acquired_at) \
         WHERE name = ?1 AND holder = ?2 AND expires_at > ?3",
    )
    .bind(name)
    .bind(node_id)
    .bind(now)
    .execute(&store.writer)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

/// The lease of `name`, live or expired, if anyone ever held it.
pub(crate) async fn leader_get(store: &SqliteStore, name: &str) -> Result<Option<Leadership>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM leadership WHERE name = ?1"))
        .bind(name)
        .fetch_optional(&store.reader)
        .await
        .map_err(db)?;
    let now = clock::now();
    row.as_ref().map(|r| leadership(r, now)).transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{execute, test_store};

    fn elect(node: &str, secs: u64) -> LeaderElect {
        LeaderElect {
            name: "maintenance".into(),
            node_id: node.into(),
            lease_for: Duration::from_secs(secs),
        }
    }

    #[tokio::test]
    async fn a_free_lease_is_taken_renewed_by_its_holder_and_refused_to_others() {
        let store = test_store().await;
        assert_eq!(leader_get(&store, "maintenance").await.unwrap(), None);

        let taken = leader_attempt_elect(&store, &elect("a", 30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((taken.holder.as_str(), taken.term), ("a", 1));
        assert!(taken.is_live());
        assert!(taken.expires_in <= Duration::from_secs(30));
        assert!(taken.expires_in > Duration::from_secs(25));

        let renewed = leader_attempt_elect(&store, &elect("a", 60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((renewed.holder.as_str(), renewed.term), ("a", 1));
        assert_eq!(renewed.acquired_at, taken.acquired_at);
        assert!(renewed.expires_at > taken.expires_at);

        let refused = leader_attempt_elect(&store, &elect("b", 30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((refused.holder.as_str(), refused.term), ("a", 1));
        assert_eq!(refused.expires_at, renewed.expires_at);
    }

    #[tokio::test]
    async fn an_expired_lease_starts_a_new_term_for_whoever_takes_it() {
        let store = test_store().await;
        leader_attempt_elect(&store, &elect("a", 30)).await.unwrap();
        let expire = "UPDATE leadership SET acquired_at = acquired_at - 120000000, \
                      expires_at = expires_at - 120000000";
        execute(&store, expire).await;
        let lapsed = leader_get(&store, "maintenance").await.unwrap().unwrap();
        assert!(!lapsed.is_live());
        assert_eq!(lapsed.expires_in, Duration::ZERO);

        let b = leader_attempt_elect(&store, &elect("b", 30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.holder.as_str(), b.term), ("b", 2));
        assert!(b.acquired_at > lapsed.acquired_at);

        // The same holder again after its lease ran out: a new tenure too.
        execute(&store, expire).await;
        let b_again = leader_attempt_elect(&store, &elect("b", 30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b_again.holder.as_str(), b_again.term), ("b", 3));
    }

    #[tokio::test]
    async fn resigning_frees_the_lease_at_once_only_for_its_holder() {
        let store = test_store().await;
        leader_attempt_elect(&store, &elect("a", 30)).await.unwrap();
        assert!(!leader_resign(&store, "maintenance", "b").await.unwrap());
        assert!(!leader_resign(&store, "other", "a").await.unwrap());
        assert!(leader_resign(&store, "maintenance", "a").await.unwrap());
        // Resigning twice: nothing held any more.
        assert!(!leader_resign(&store, "maintenance", "a").await.unwrap());
        let ended = leader_get(&store, "maintenance").await.unwrap().unwrap();
        assert!(!ended.is_live());

        let b = leader_attempt_elect(&store, &elect("b", 30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.holder.as_str(), b.term), ("b", 2));
    }
}
