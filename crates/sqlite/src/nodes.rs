//! The node registry: each node's row, refreshed by its heartbeat. On
//! SQLite one node serves the file, but it registers as on PostgreSQL so
//! that the cluster view reads the same records; liveness is judged only by
//! the `within` the caller gives, against the store's clock.

use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use tasker_store::{Node, NodeRegistration, Result};

use crate::columns::{self, before, get};
use crate::{SqliteStore, clock, db};

const COLUMNS: &str = "id, version, address, pid, started_at, last_heartbeat_at";

fn node(row: &SqliteRow) -> Result<Node> {
    let pid: i64 = get(row, "pid")?;
    Ok(Node {
        node_id: get(row, "id")?,
        version: get(row, "version")?,
        address: get(row, "address")?,
        pid: u32::try_from(pid).unwrap_or(0),
        started_at: columns::time(row, "started_at")?,
        last_heartbeat_at: columns::time(row, "last_heartbeat_at")?,
    })
}

/// Records the node (or refreshes its record) with a heartbeat now.
pub(crate) async fn node_heartbeat(store: &SqliteStore, n: &NodeRegistration) -> Result<Node> {
    let row = sqlx::query(&format!(
        "INSERT INTO nodes (id, version, address, pid, started_at, last_heartbeat_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, address = excluded.address, \
           pid = excluded.pid, started_at = excluded.started_at, \
           last_heartbeat_at = excluded.last_heartbeat_at \
         RETURNING {COLUMNS}"
    ))
    .bind(&n.node_id)
    .bind(&n.version)
    .bind(&n.address)
    .bind(i64::from(n.pid.min(i32::MAX as u32)))
    .bind(clock::micros(n.started_at))
    .bind(clock::micros(clock::now()))
    .fetch_one(&store.writer)
    .await
    .map_err(db)?;
    node(&row)
}

/// Nodes whose last heartbeat is within `within`, by id.
pub(crate) async fn node_list(store: &SqliteStore, within: Duration) -> Result<Vec<Node>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM nodes WHERE last_heartbeat_at > ?1 ORDER BY id"
    ))
    .bind(before(clock::now(), within))
    .fetch_all(&store.reader)
    .await
    .map_err(db)?;
    rows.iter().map(node).collect()
}

/// Removes a node's record (a node stopping gracefully).
pub(crate) async fn node_delete(store: &SqliteStore, node_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM nodes WHERE id = ?1")
        .bind(node_id)
        .execute(&store.writer)
        .await
        .map_err(db)?;
    Ok(())
}

/// Removes the records of nodes not heard from for `older_than`; returns
/// how many.
pub(crate) async fn node_delete_stale(store: &SqliteStore, older_than: Duration) -> Result<u64> {
    let done = sqlx::query("DELETE FROM nodes WHERE last_heartbeat_at < ?1")
        .bind(before(clock::now(), older_than))
        .execute(&store.writer)
        .await
        .map_err(db)?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{execute, test_store};

    fn registration(id: &str, version: &str) -> NodeRegistration {
        NodeRegistration {
            node_id: id.into(),
            version: version.into(),
            address: format!("http://{id}:8080"),
            pid: 4242,
            started_at: clock::now(),
        }
    }

    #[tokio::test]
    async fn a_heartbeat_records_the_node_and_refreshes_it() {
        let store = test_store().await;
        let first = node_heartbeat(&store, &registration("b", "1.0.0"))
            .await
            .unwrap();
        assert_eq!(first.node_id, "b");
        assert_eq!(first.address, "http://b:8080");
        assert_eq!(first.pid, 4242);
        let again = node_heartbeat(&store, &registration("b", "1.1.0"))
            .await
            .unwrap();
        assert_eq!(again.version, "1.1.0");
        assert!(again.last_heartbeat_at >= first.last_heartbeat_at);
        node_heartbeat(&store, &registration("a", "1.1.0"))
            .await
            .unwrap();
        let ids: Vec<String> = node_list(&store, Duration::from_secs(30))
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.node_id)
            .collect();
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(
            node_list(&store, Duration::from_secs(30)).await.unwrap()[1],
            again
        );
    }

    #[tokio::test]
    async fn silent_nodes_are_not_listed_and_stale_ones_are_deleted() {
        let store = test_store().await;
        for id in ["live", "silent", "gone"] {
            node_heartbeat(&store, &registration(id, "1.0.0"))
                .await
                .unwrap();
        }
        execute(
            &store,
            "UPDATE nodes SET last_heartbeat_at = last_heartbeat_at - 60000000 WHERE id = 'silent'",
        )
        .await;
        execute(
            &store,
            "UPDATE nodes SET last_heartbeat_at = last_heartbeat_at - 3600000000 WHERE id = 'gone'",
        )
        .await;
        let listed = |nodes: Vec<Node>| nodes.into_iter().map(|n| n.node_id).collect::<Vec<_>>();
        assert_eq!(
            listed(node_list(&store, Duration::from_secs(30)).await.unwrap()),
            vec!["live"]
        );
        assert_eq!(
            node_delete_stale(&store, Duration::from_secs(600))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            listed(node_list(&store, Duration::from_secs(7200)).await.unwrap()),
            vec!["live", "silent"]
        );
        node_delete(&store, "live").await.unwrap();
        node_delete(&store, "never-there").await.unwrap();
        assert_eq!(
            listed(node_list(&store, Duration::from_secs(7200)).await.unwrap()),
            vec!["silent"]
        );
    }
}
