//! A task's history, a page at a time: what one request may read of an
//! append-only table that grows with every attempt is bounded by the page
//! size. It must never read a whole history in one query.

use tasker_model::Transition;
use tasker_model::limits::{DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE};
use tasker_store::HistoryPage;
use uuid::Uuid;

use crate::{Engine, Error, Result};

impl Engine {
    /// The whole history of a task, oldest first, read page by page.
    pub async fn task_history(&self, id: Uuid) -> Result<Vec<Transition>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.task_history_page(id, cursor.as_deref(), None).await?;
            all.extend(page.transitions);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of a task's history, oldest first: up to `limit`
    /// transitions (default [`DEFAULT_HISTORY_PAGE`], at most
    /// [`MAX_HISTORY_PAGE`]) after `cursor`, the previous page's
    /// `next_cursor`.
    pub async fn task_history_page(
        &self,
        id: Uuid,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        let limit = limit.unwrap_or(DEFAULT_HISTORY_PAGE);
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(Error::Invalid {
                field: "limit".into(),
                message: format!("{limit} must be between 1 and {MAX_HISTORY_PAGE}"),
            });
        }
        let after = match cursor {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|&n| n >= 0)
                .ok_or_else(|| Error::Invalid {
                    field: "cursor".into(),
                    message: format!(
                        "{text:?} is not a cursor; pass the next_cursor of the previous page"
                    ),
                })?,
        };
        let mut transitions = self.store.task_history(id, after, limit + 1).await?;
        let next_cursor = if transitions.len() > limit as usize {
            transitions.truncate(limit as usize);
            transitions.last().map(|t| t.id.to_string())
        } else {
            None
        };
        Ok(HistoryPage {
            transitions,
            next_cursor,
        })
    }
}
