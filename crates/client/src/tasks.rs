//! Tasks and their steps: create (one or many), get, list, cancel, steps,
//! history, why it waits, and the operator's step actions (manual retry, manual resolve).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tasker_model::wire::{HistoryPage, NewTask, TaskFilter, TaskPage};
use tasker_model::{Step, Task, TaskExplanation, Transition};
use uuid::Uuid;

use crate::{Client, Result};

impl Client {
    /// Creates a task. `created` is false when the idempotency key named an
    /// existing task (HTTP 200 instead of 201); that task is returned as is.
    pub async fn task_create(&self, new: &NewTask) -> Result<(Task, bool)> {
        let url = self.url(&["v1", "tasks"]);
        let builder = self.request(Method::POST, &url).json(new);
        let (status, task) = self.call(&url, builder).await?;
        Ok((task, status == 201))
    }

    /// Creates up to 1000 tasks in one request (`POST /v1/tasks/batch`) and
    /// one server transaction. Each item is answered in order, on its own:
    /// its task and whether it was created (false when its idempotency key
    /// named an existing task), or why it was refused. The call itself fails
    /// only when the request does (a database error on the server, which
    /// then created nothing; too many items; no answer).
    pub async fn task_create_batch(
        &self,
        tasks: &[NewTask],
    ) -> Result<Vec<std::result::Result<(Task, bool), TaskRefusal>>> {
        #[derive(Serialize)]
        struct Body<'a> {
            tasks: &'a [NewTask],
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Answer {
            Task { task: Box<Task>, created: bool },
            Error { error: TaskRefusal },
        }
        #[derive(Deserialize)]
        struct Reply {
            results: Vec<Answer>,
        }
        let url = self.url(&["v1", "tasks", "batch"]);
        let builder = self.request(Method::POST, &url).json(&Body { tasks });
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        if reply.results.len() != tasks.len() {
            return Err(crate::Error::decode(
                &url,
                format!("{} answers to {} tasks", reply.results.len(), tasks.len()),
            ));
        }
        Ok(reply
            .results
            .into_iter()
            .map(|answer| match answer {
                Answer::Task { task, created } => Ok((*task, created)),
                Answer::Error { error } => Err(error),
            })
            .collect())
    }

    pub async fn task_get(&self, id: Uuid) -> Result<Task> {
        let url = self.url(&["v1", "tasks", &id.to_string()]);
        let builder = self.request(Method::GET, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// One page of tasks; pass the page's `next_cursor` back as
    /// `filter.cursor` for the next. `filter.id_prefix` finds tasks by the
    /// first digits of their id (see [`Client::task_find`]).
    pub async fn task_list(&self, filter: &TaskFilter) -> Result<TaskPage> {
        let url = self.url(&["v1", "tasks"]);
        let builder = self.request(Method::GET, &url).query(filter);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Up to `max` tasks whose id starts with the hex digits of `prefix`
    /// (dashes ignored), newest first: one lookup by a range of ids.
    pub async fn task_find(&self, prefix: &str, max: u32) -> Result<Vec<Task>> {
        let filter = TaskFilter {
            id_prefix: Some(prefix.to_owned()),
            limit: Some(max),
            ..TaskFilter::default()
        };
        Ok(self.task_list(&filter).await?.tasks)
    }

    /// Cancels a running task; `reason` is recorded in its history.
    pub async fn task_cancel(&self, id: Uuid, reason: Option<&str>) -> Result<Task> {
        let url = self.url(&["v1", "tasks", &id.to_string(), "cancel"]);
        let body = match reason {
            Some(reason) => serde_json::json!({ "reason": reason }),
            None => serde_json::json!({}),
        };
        let builder = self.request(Method::POST, &url).json(&body);
        Ok(self.call(&url, builder).await?.1)
    }

    /// The steps of a task, with their results.
    pub async fn task_steps(&self, id: Uuid) -> Result<Vec<Step>> {
        #[derive(Deserialize)]
        struct Reply {
            steps: Vec<Step>,
        }
        let url = self.url(&["v1", "tasks", &id.to_string(), "steps"]);
        // With results: the CLI shows them.
        let builder = self
            .request(Method::GET, &url)
            .query(&[("include", "result")]);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.steps)
    }

    /// Why the task is waiting: per unfinished step, what it waits for.
    pub async fn task_explain(&self, id: Uuid) -> Result<TaskExplanation> {
        let url = self.url(&["v1", "tasks", &id.to_string(), "explain"]);
        let builder = self.request(Method::GET, &url);
        let (_, explanation) = self.call(&url, builder).await?;
        Ok(explanation)
    }

    /// The task's whole audit history, oldest first, read a page at a time.
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

    /// One page of the task's history: up to `limit` transitions (the
    /// server's default when `None`) after `cursor`, the previous page's
    /// `next_cursor`.
    pub async fn task_history_page(
        &self,
        id: Uuid,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        let url = self.url(&["v1", "tasks", &id.to_string(), "history"]);
        let mut builder = self.request(Method::GET, &url);
        if let Some(cursor) = cursor {
            builder = builder.query(&[("cursor", cursor)]);
        }
        if let Some(limit) = limit {
            builder = builder.query(&[("limit", limit)]);
        }
        Ok(self.call(&url, builder).await?.1)
    }

    /// A step's result (`null` while it has none), through the worker
    /// plane: how a worker fetches a parent result its claim named in
    /// `parent_result_refs`.
    pub async fn step_result(&self, step_id: Uuid) -> Result<serde_json::Value> {
        #[derive(Deserialize)]
        struct Reply {
            result: Option<serde_json::Value>,
        }
        let url = self.url(&["v1", "steps", &step_id.to_string(), "result"]);
        let builder = self.request(Method::GET, &url);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.result.unwrap_or_default())
    }

    /// One step by id (404 `not_found` when there is none).
    pub async fn step_get(&self, step_id: Uuid) -> Result<Step> {
        let url = self.url(&["v1", "steps", &step_id.to_string()]);
        let builder = self.request(Method::GET, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Runs a failed step again with a fresh attempt budget.
    pub async fn step_retry(&self, step_id: Uuid) -> Result<Step> {
        let url = self.url(&["v1", "steps", &step_id.to_string(), "retry"]);
        let builder = self.request(Method::POST, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Marks a failed or pending step resolved (complete for its dependents),
    /// optionally with the result its children should see.
    pub async fn step_resolve(
        &self,
        step_id: Uuid,
        result: Option<serde_json::Value>,
    ) -> Result<Step> {
        let url = self.url(&["v1", "steps", &step_id.to_string(), "resolve"]);
        let body = match result {
            Some(result) => serde_json::json!({ "result": result }),
            None => serde_json::json!({}),
        };
        let builder = self.request(Method::POST, &url).json(&body);
        Ok(self.call(&url, builder).await?.1)
    }
}

/// Why one item of [`Client::task_create_batch`] was not created: the error
/// a single create of it would have answered.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TaskRefusal {
    /// The stable machine code, e.g. `not_found`, `context_invalid`,
    /// `idempotency_conflict`.
    pub code: String,
    pub message: String,
    /// Code-specific, as in the single create's error body.
    #[serde(default)]
    pub details: serde_json::Value,
}
