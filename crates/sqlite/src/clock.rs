//! Times as SQLite stores them: whole microseconds since the Unix epoch in
//! an `INTEGER` column, so that comparisons and sorting in SQL are plain
//! integer comparisons (text timestamps sort wrongly when their fraction
//! has a varying number of digits).
//!
//! SQLite has no clock a transaction could share, so the store's clock is
//! the process's: one node owns the file, so every lease, visibility time
//! and `retry_at` is judged by the same clock.

use tasker_model::Timestamp;

/// Now, to the microsecond.
pub fn now() -> Timestamp {
    from_micros(micros(chrono::Utc::now()))
}

/// A time as stored.
pub fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

/// A stored time.
pub fn from_micros(micros: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// `at` plus `span`, at most the end of year 9999 (a time any column
/// holds as microseconds).
pub fn after(at: Timestamp, span: std::time::Duration) -> Timestamp {
    let end = chrono::DateTime::from_timestamp(253_402_300_799, 0).expect("year 9999");
    chrono::TimeDelta::from_std(span)
        .ok()
        .and_then(|span| at.checked_add_signed(span))
        .map_or(end, |t| t.min(end))
}

/// An optional time as stored.
pub fn micros_opt(at: Option<Timestamp>) -> Option<i64> {
    at.map(micros)
}

/// An optional stored time.
pub fn from_micros_opt(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_survives_storage_to_the_microsecond() {
        let at = now();
        assert_eq!(from_micros(micros(at)), at);
        assert_eq!(from_micros_opt(micros_opt(Some(at))), Some(at));
        assert_eq!(from_micros_opt(None), None);
    }
}
