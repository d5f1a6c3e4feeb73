//! Records of the leader's housekeeping: what each sweep last did and its
//! totals, and the queue vacuum, which on SQLite has nothing to do.
//!
//! Why the vacuum is a no-op: PostgreSQL keeps dead row versions of every
//! updated or deleted queue message until a vacuum, and a busy queue's
//! index walks past them; SQLite has no row versions. A deleted message's
//! row is gone at once and its page space is reused by the next inserts,
//! so there are never dead rows to count or reclaim. (`PRAGMA
//! incremental_vacuum` would only hand free pages back to the file system,
//! which a queue that refills at once would take back; it also needs the
//! database created with `auto_vacuum = INCREMENTAL`.) The sweep's record
//! then shows zero queues vacuumed.

use sqlx::sqlite::SqliteRow;
use tasker_store::{Result, SweepCounts, SweepRecord};

use crate::columns::{self, get, to_json_text};
use crate::{SqliteStore, clock, db};

/// Records a sweep's run: its counts become the last ones and are added to
/// its totals, in one transaction.
pub(crate) async fn maintenance_sweep_record(
    store: &SqliteStore,
    name: &str,
    node_id: &str,
    counts: &SweepCounts,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    let totals: Option<String> =
        sqlx::query_scalar("SELECT totals FROM maintenance_sweeps WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    let mut totals: SweepCounts = match totals {
        Some(text) => serde_json::from_str(&text).map_err(columns::unexpected)?,
        None => SweepCounts::new(),
    };
    for (what, n) in counts {
        let total = totals.entry(what.clone()).or_default();
        *total = total.saturating_add(*n);
    }
    sqlx::query(
        "INSERT INTO maintenance_sweeps (name, last_run_at, node_id, last_counts, totals) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, \
           node_id = excluded.node_id, last_counts = excluded.last_counts, \
           totals = excluded.totals",
    )
    .bind(name)
    .bind(clock::micros(clock::now()))
    .bind(node_id)
    .bind(to_json_text(counts))
    .bind(to_json_text(&totals))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

fn sweep(row: &SqliteRow) -> Result<SweepRecord> {
    Ok(SweepRecord {
        name: get(row, "name")?,
        last_run_at: columns::time(row, "last_run_at")?,
        node_id: get(row, "node_id")?,
        last_counts: columns::json(row, "last_counts")?,
        totals: columns::json(row, "totals")?,
    })
}

/// Every sweep's record, by name.
pub(crate) async fn maintenance_sweep_list(store: &SqliteStore) -> Result<Vec<SweepRecord>> {
    let rows = sqlx::query(
        "SELECT name, last_run_at, node_id, last_counts, totals \
         FROM maintenance_sweeps ORDER BY name",
    )
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(sweep).collect()
}

/// Vacuums nothing and answers so: SQLite keeps no dead row versions (see
/// the module doc), so no queue ever has `min_dead` of them.
pub(crate) async fn maintenance_queues_vacuum(
    _store: &SqliteStore,
    _min_dead: u64,
) -> Result<Vec<(String, u64)>> {
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_store;

    fn counts(pairs: &[(&str, u64)]) -> SweepCounts {
        pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    #[tokio::test]
    async fn a_sweep_record_keeps_the_last_counts_and_adds_up_the_totals() {
        let store = test_store().await;
        maintenance_sweep_record(
            &store,
            "timeouts",
            "n1",
            &counts(&[("timed_out", 2), ("lease_expired", 1)]),
        )
        .await
        .unwrap();
        maintenance_sweep_record(&store, "deadlines", "n1", &counts(&[("exceeded", 0)]))
            .await
            .unwrap();
        maintenance_sweep_record(
            &store,
            "timeouts",
            "n2",
            &counts(&[("timed_out", 3), ("orphaned", 4)]),
        )
        .await
        .unwrap();

        let records = maintenance_sweep_list(&store).await.unwrap();
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["deadlines", "timeouts"]);
        let timeouts = &records[1];
        assert_eq!(timeouts.node_id, "n2");
        assert_eq!(
            timeouts.last_counts,
            counts(&[("timed_out", 3), ("orphaned", 4)])
        );
        assert_eq!(
            timeouts.totals,
            counts(&[("timed_out", 5), ("lease_expired", 1), ("orphaned", 4)])
        );
        assert!(timeouts.last_run_at >= records[0].last_run_at);
    }
}
