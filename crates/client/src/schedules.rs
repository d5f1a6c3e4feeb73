//! Schedules: `/v1/schedules` and its operations (pause, resume, trigger,
//! backfill, fires).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tasker_model::{Schedule, ScheduleFire, ScheduleSpec, Task, Timestamp};
use uuid::Uuid;

use crate::{Client, Result};

/// A schedule as the API shows it: the record and its next fire times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Up to five next fire times (before jitter); empty while paused.
    pub upcoming: Vec<Timestamp>,
}

/// What `trigger` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triggered {
    pub fire: ScheduleFire,
    pub task: Option<Task>,
}

/// What `backfill` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backfilled {
    pub fires: Vec<ScheduleFire>,
    pub already_fired: Vec<Timestamp>,
}

impl Client {
    pub async fn schedule_create(&self, spec: &ScheduleSpec) -> Result<ScheduleView> {
        let url = self.url(&["v1", "schedules"]);
        let builder = self.request(Method::POST, &url).json(spec);
        Ok(self.call(&url, builder).await?.1)
    }

    pub async fn schedule_list(&self) -> Result<Vec<ScheduleView>> {
        #[derive(Deserialize)]
        struct Reply {
            schedules: Vec<ScheduleView>,
        }
        let url = self.url(&["v1", "schedules"]);
        let builder = self.request(Method::GET, &url);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.schedules)
    }

    pub async fn schedule_get(&self, id: Uuid) -> Result<ScheduleView> {
        let url = self.url(&["v1", "schedules", &id.to_string()]);
        let builder = self.request(Method::GET, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Replaces a schedule's whole spec.
    pub async fn schedule_update(&self, id: Uuid, spec: &ScheduleSpec) -> Result<ScheduleView> {
        let url = self.url(&["v1", "schedules", &id.to_string()]);
        let builder = self.request(Method::PUT, &url).json(spec);
        Ok(self.call(&url, builder).await?.1)
    }

    pub async fn schedule_delete(&self, id: Uuid) -> Result<()> {
        let url = self.url(&["v1", "schedules", &id.to_string()]);
        let builder = self.request(Method::DELETE, &url);
        self.call::<()>(&url, builder).await?;
        Ok(())
    }

    /// Pauses (`true`) or resumes a schedule.
    pub async fn schedule_set_paused(&self, id: Uuid, paused: bool) -> Result<ScheduleView> {
        let action = if paused { "pause" } else { "resume" };
        let url = self.url(&["v1", "schedules", &id.to_string(), action]);
        let builder = self.request(Method::POST, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Fires a schedule now.
    pub async fn schedule_trigger(&self, id: Uuid) -> Result<Triggered> {
        let url = self.url(&["v1", "schedules", &id.to_string(), "trigger"]);
        let builder = self.request(Method::POST, &url);
        Ok(self.call(&url, builder).await?.1)
    }

    /// Fires every time of `[start, end)` that has no fire yet.
    pub async fn schedule_backfill(
        &self,
        id: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Backfilled> {
        let url = self.url(&["v1", "schedules", &id.to_string(), "backfill"]);
        let builder = self
            .request(Method::POST, &url)
            .json(&serde_json::json!({ "start": start, "end": end }));
        Ok(self.call(&url, builder).await?.1)
    }

    /// A schedule's fires, newest first.
    pub async fn schedule_fires(&self, id: Uuid, limit: u32) -> Result<Vec<ScheduleFire>> {
        #[derive(Deserialize)]
        struct Reply {
            fires: Vec<ScheduleFire>,
        }
        let mut url = self.url(&["v1", "schedules", &id.to_string(), "fires"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let builder = self.request(Method::GET, &url);
        let (_, reply): (_, Reply) = self.call(&url, builder).await?;
        Ok(reply.fires)
    }
}
