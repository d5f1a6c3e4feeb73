//! How every backend pages its list reads: the page size a client may ask
//! for, the cursor it hands back (checked, with an error naming the field),
//! and a page cut from one row more than asked (the extra row only tells
//! that there is a next page). A backend reads `limit + 1` rows after the
//! cursor and hands them here. Must never: do I/O.

use tasker_model::Task;
use uuid::Uuid;

use crate::{DeadLetter, DeadLetterPage, Error, Result, TaskFilter, TaskPage};

/// The largest page of a task list; a list asks for 50 by default.
pub const TASKS_MAX: u32 = 500;

/// The largest page of dead letters.
pub const DEAD_LETTERS_MAX: u32 = 500;

/// What a task list reads: at most `limit` tasks (newest first), below the
/// cursor's id, within the id prefix's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskListRead {
    pub limit: u32,
    /// The last task of the previous page.
    pub below: Option<Uuid>,
    /// The smallest and the largest id with the filter's id prefix.
    pub id_range: Option<(Uuid, Uuid)>,
}

impl TaskListRead {
    /// Checks `filter`'s paging: a cursor that no page returned or a bad id
    /// prefix is refused, naming the field.
    pub fn of(filter: &TaskFilter) -> Result<TaskListRead> {
        let below = filter
            .cursor
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c).map_err(|_| Error::Invalid {
                    field: "cursor".into(),
                    message: format!("\"{c}\" is not a cursor returned by a previous page"),
                })
            })
            .transpose()?;
        let id_range = filter.id_range().map_err(|message| Error::Invalid {
            field: "id_prefix".into(),
            message,
        })?;
        Ok(TaskListRead {
            limit: filter.limit.unwrap_or(50).clamp(1, TASKS_MAX),
            below,
            id_range,
        })
    }

    /// The page of `tasks` (up to `limit + 1` read): the first `limit`, and
    /// when there were more, the last one's id as the next cursor.
    pub fn page(&self, mut tasks: Vec<Task>) -> TaskPage {
        let limit = self.limit as usize;
        let next_cursor = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(|t| t.id.to_string())
        } else {
            None
        };
        TaskPage { tasks, next_cursor }
    }
}

/// What a dead letter list reads: at most `limit` failed steps after the
/// cursor's step id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterRead {
    pub limit: u32,
    pub after: Option<Uuid>,
}

impl DeadLetterRead {
    /// Checks the cursor (refused, naming the field, when no page returned
    /// it) and caps `limit`.
    pub fn of(cursor: Option<&str>, limit: u32) -> Result<DeadLetterRead> {
        let after = cursor
            .map(|c| {
                Uuid::parse_str(c).map_err(|_| Error::Invalid {
                    field: "cursor".into(),
                    message: "is not a cursor this server returned".into(),
                })
            })
            .transpose()?;
        Ok(DeadLetterRead {
            limit: limit.clamp(1, DEAD_LETTERS_MAX),
            after,
        })
    }

    /// The page of `dead_letters` (the first `limit` read); `more` when a
    /// row beyond them was read, which makes the last one's id the next
    /// cursor.
    pub fn page(&self, dead_letters: Vec<DeadLetter>, more: bool) -> DeadLetterPage {
        let next_cursor = more
            .then(|| dead_letters.last().map(|d| d.step_id.to_string()))
            .flatten();
        DeadLetterPage {
            dead_letters,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_list_asks_50_by_default_and_at_most_500() {
        let read = TaskListRead::of(&TaskFilter::default()).unwrap();
        assert_eq!(read.limit, 50);
        let filter = TaskFilter {
            limit: Some(10_000),
            ..TaskFilter::default()
        };
        assert_eq!(TaskListRead::of(&filter).unwrap().limit, TASKS_MAX);
        let filter = TaskFilter {
            limit: Some(0),
            ..TaskFilter::default()
        };
        assert_eq!(TaskListRead::of(&filter).unwrap().limit, 1);
    }

    #[test]
    fn a_bad_cursor_or_prefix_is_refused_naming_the_field() {
        let filter = TaskFilter {
            cursor: Some("nope".into()),
            ..TaskFilter::default()
        };
        let error = TaskListRead::of(&filter).unwrap_err();
        assert!(matches!(error, Error::Invalid { ref field, .. } if field == "cursor"));
        let filter = TaskFilter {
            id_prefix: Some("xyz".into()),
            ..TaskFilter::default()
        };
        let error = TaskListRead::of(&filter).unwrap_err();
        assert!(matches!(error, Error::Invalid { ref field, .. } if field == "id_prefix"));
        let error = DeadLetterRead::of(Some("nope"), 10).unwrap_err();
        assert!(matches!(error, Error::Invalid { ref field, .. } if field == "cursor"));
    }

    #[test]
    fn a_page_names_a_next_cursor_only_when_more_rows_were_read() {
        let read = DeadLetterRead::of(None, 0).unwrap();
        assert_eq!(read.limit, 1);
        assert_eq!(DeadLetterRead::of(None, 9_999).unwrap().limit, 500);
        let page = read.page(Vec::new(), false);
        assert!(page.next_cursor.is_none());

        let cursor = Uuid::now_v7();
        let read = DeadLetterRead::of(Some(&cursor.to_string()), 2).unwrap();
        assert_eq!(read.after, Some(cursor));

        let read = TaskListRead::of(&TaskFilter {
            limit: Some(1),
            ..TaskFilter::default()
        })
        .unwrap();
        assert!(read.page(Vec::new()).next_cursor.is_none());
        let (newer, older) = (task(), task());
        let page = read.page(vec![newer.clone(), older]);
        assert_eq!(page.tasks.len(), 1);
        assert_eq!(page.next_cursor, Some(newer.id.to_string()));
        assert!(read.page(vec![newer]).next_cursor.is_none());
    }

    fn task() -> Task {
        Task {
            id: Uuid::now_v7(),
            namespace: "default".into(),
            template_id: Uuid::nil(),
            template_name: "t".into(),
            template_version: "1".into(),
            state: tasker_model::TaskState::Running,
            context: serde_json::Value::Null,
            idempotency_key: None,
            tags: Vec::new(),
            created_at: Default::default(),
            updated_at: Default::default(),
            finished_at: None,
            deadline_at: None,
        }
    }
}
