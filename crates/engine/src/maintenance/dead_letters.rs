//! Dead letters: steps that exhausted their retries (or failed with a
//! non-retryable error) in tasks that can still be reopened. An operator
//! lists them with their last errors and retries or resolves one or many
//! at once, by ids or by a filter. Each step goes through the single-step
//! retry or resolve, so its task reopens and resumes exactly as after
//! `POST /v1/steps/{id}/retry`; one refused step never stops the others.

use tasker_store::{DeadLetterFilter, DeadLetterOutcome, DeadLetterPage, DeadLetterRefusal};
use uuid::Uuid;

use crate::{Engine, Error, Result, nul_check};

/// Most dead letters one bulk request may act on.
pub const MAX_BULK: u32 = 1000;

/// Which dead letters a bulk retry or resolve acts on: `ids`, or every one
/// `filter` selects (up to `limit`), never both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterSelection {
    pub ids: Option<Vec<Uuid>>,
    pub filter: Option<DeadLetterFilter>,
    /// Most dead letters to act on; at most [`MAX_BULK`] (the default).
    pub limit: Option<u32>,
}

impl Engine {
    /// Dead letters, oldest step first; `limit` capped at 500 (default 50).
    pub async fn dead_letter_list(
        &self,
        filter: &DeadLetterFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DeadLetterPage> {
        check_filter(filter)?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > 500 {
            return Err(Error::Invalid {
                field: "limit".into(),
                message: "must be 1-500".into(),
            });
        }
        Ok(self.store.dead_letter_list(filter, cursor, limit).await?)
    }

    /// Retries the selected dead letters: each runs again with a fresh
    /// attempt budget and its failed task runs again.
    pub async fn dead_letter_retry(
        &self,
        selection: &DeadLetterSelection,
    ) -> Result<DeadLetterOutcome> {
        let (ids, more) = self.dead_letters_selected(selection).await?;
        let mut outcome = outcome(ids.len(), more);
        for id in ids {
            match self.step_retry(id).await {
                Ok(_) => outcome.applied += 1,
                Err(error) => outcome.refused.push(refusal(id, error)?),
            }
        }
        Ok(outcome)
    }

    /// Resolves the selected dead letters: each counts as complete for its
    /// dependents (with `result`, if given), and its failed task runs again.
    pub async fn dead_letter_resolve(
        &self,
        selection: &DeadLetterSelection,
        result: Option<serde_json::Value>,
    ) -> Result<DeadLetterOutcome> {
        let (ids, more) = self.dead_letters_selected(selection).await?;
        let mut outcome = outcome(ids.len(), more);
        for id in ids {
            match self.step_resolve(id, result.clone()).await {
                Ok(_) => outcome.applied += 1,
                Err(error) => outcome.refused.push(refusal(id, error)?),
            }
        }
        Ok(outcome)
    }

    /// The step ids a selection names, and whether a filter left some out.
    async fn dead_letters_selected(
        &self,
        selection: &DeadLetterSelection,
    ) -> Result<(Vec<Uuid>, bool)> {
        let limit = selection.limit.unwrap_or(MAX_BULK);
        if limit == 0 || limit > MAX_BULK {
            return Err(Error::Invalid {
                field: "limit".into(),
                message: format!("must be 1-{MAX_BULK}"),
            });
        }
        match (&selection.ids, &selection.filter) {
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > limit as usize {
                    return Err(Error::Invalid {
                        field: "ids".into(),
                        message: format!("must name 1-{limit} steps"),
                    });
                }
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                Ok((ids, false))
            }
            (None, Some(filter)) => {
                check_filter(filter)?;
                let mut ids = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let room = limit - ids.len() as u32;
                    let page = self
                        .store
                        .dead_letter_list(filter, cursor.as_deref(), room.min(500) + 1)
                        .await?;
                    let more_pages = page.next_cursor.is_some();
                    for dead in page.dead_letters {
                        if ids.len() as u32 == limit {
                            return Ok((ids, true));
                        }
                        ids.push(dead.step_id);
                    }
                    if !more_pages {
                        return Ok((ids, false));
                    }
                    cursor = page.next_cursor;
                }
            }
            _ => Err(Error::Invalid {
                field: "ids".into(),
                message: "give either `ids` or `filter`, not both and not neither".into(),
            }),
        }
    }
}

fn outcome(matched: usize, more: bool) -> DeadLetterOutcome {
    DeadLetterOutcome {
        matched: matched as u64,
        applied: 0,
        refused: Vec::new(),
        more,
    }
}

/// A step's refusal for the answer; a database error fails the request.
fn refusal(step_id: Uuid, error: Error) -> Result<DeadLetterRefusal> {
    match &error {
        Error::Store(
            tasker_store::Error::Database(_) | tasker_store::Error::Unavailable { .. },
        ) => Err(error),
        _ => Ok(DeadLetterRefusal {
            step_id,
            code: error.code().to_owned(),
            message: error.to_string(),
        }),
    }
}

fn check_filter(filter: &DeadLetterFilter) -> Result<()> {
    for (field, value) in [
        ("namespace", &filter.namespace),
        ("template", &filter.template),
        ("handler", &filter.handler),
        ("error_type", &filter.error_type),
    ] {
        if let Some(value) = value {
            nul_check::check_text(field, value)?;
        }
    }
    if let (Some(since), Some(until)) = (filter.failed_since, filter.failed_until)
        && since >= until
    {
        return Err(Error::Invalid {
            field: "failed_until".into(),
            message: "must be later than failed_since".into(),
        });
    }
    Ok(())
}
