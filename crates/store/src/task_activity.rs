//! The window of the dashboard's activity chart (tasks started, completed
//! and failed per minute), the same for every backend. Task ids are UUID
//! v7, ordered by creation time, so a backend reads a range of the primary
//! key: tasks created from [`LOOKBACK`] before the window on. A task that
//! runs longer than that is not counted when it finishes; the chart is a
//! picture of recent activity, not an audit. Must never: do I/O.

use tasker_model::Timestamp;
use uuid::Uuid;

/// How far before the window a finishing task may have been created.
pub const LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The smallest id of a task counted in the window from `since`.
pub fn lowest_task_id(since: Timestamp) -> Uuid {
    first_id_at(since - LOOKBACK)
}

/// The smallest UUID v7 of a task created at `at`: its first 48 bits are
/// the creation time in milliseconds, the rest zero.
pub fn first_id_at(at: Timestamp) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_id_sorts_before_every_id_made_at_that_time_also_as_text() {
        let at: Timestamp = "2026-11-30T12:00:00.123Z".parse().unwrap();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        );
        let id = Uuid::new_v7(ts);
        assert!(first_id_at(at) <= id);
        assert!(first_id_at(at).to_string() <= id.to_string());
        let later = first_id_at(at + chrono::TimeDelta::milliseconds(1));
        assert!(later > id);
        assert!(later.to_string() > id.to_string());
        assert!(lowest_task_id(at + LOOKBACK) <= id);
        assert!(lowest_task_id(at + LOOKBACK + chrono::TimeDelta::milliseconds(1)) > id);
    }
}
