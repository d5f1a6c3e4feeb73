//! Dead letters: steps that exhausted their retries, listed with their last
//! errors, and retried or resolved many at once by ids or by a filter.

use reqwest::Method;
use serde::Serialize;
use tasker_model::wire::{DeadLetterFilter, DeadLetterOutcome, DeadLetterPage};
use uuid::Uuid;

use crate::{Client, Result};

/// Which dead letters a bulk retry or resolve acts on: `ids`, or every one
/// `filter` selects (up to `limit`, at most 1000).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLetterSelection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<Uuid>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<DeadLetterFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl Client {
    /// One page of dead letters (`GET /v1/dead-letters`), oldest first;
    /// pass the page's `next_cursor` back as `cursor` for the next.
    pub async fn dead_letter_list(
        &self,
        filter: &DeadLetterFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DeadLetterPage> {
        #[derive(Serialize)]
        struct Paging<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            cursor: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        let url = self.url(&["v1", "dead-letters"]);
        let builder = self
            .request(Method::GET, &url)
            .query(filter)
            .query(&Paging { cursor, limit });
        Ok(self.call(&url, builder).await?.1)
    }

    /// Retries the selected dead letters (`POST /v1/dead-letters/retry`).
    pub async fn dead_letter_retry(
        &self,
        selection: &DeadLetterSelection,
    ) -> Result<DeadLetterOutcome> {
        let url = self.url(&["v1", "dead-letters", "retry"]);
        let builder = self.request(Method::POST, &url).json(selection);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Resolves the selected dead letters (`POST /v1/dead-letters/resolve`),
    /// handing `result` to their dependents.
    pub async fn dead_letter_resolve(
        &self,
        selection: &DeadLetterSelection,
        result: Option<serde_json::Value>,
    ) -> Result<DeadLetterOutcome> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            selection: &'a DeadLetterSelection,
            #[serde(skip_serializing_if = "Option::is_none")]
            result: Option<serde_json::Value>,
        }
        let url = self.url(&["v1", "dead-letters", "resolve"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&Body { selection, result });
        Ok(self.call(&url, builder).await?.1)
    }
}
