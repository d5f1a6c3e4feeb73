//! Workers on the wire: what a worker says about itself when it registers,
//! and how the server shows it.

use serde::{Deserialize, Serialize};

/// What a worker tells the server about itself when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRegistration {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub concurrency: u32,
    #[serde(default)]
    pub version: Option<String>,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Worker {
    pub worker_id: String,
    pub namespaces: Vec<String>,
    pub handlers: Vec<String>,
    pub concurrency: u32,
    pub version: Option<String>,
    /// The node that last heard from it.
    pub node_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub registered_at: crate::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub last_seen_at: crate::Timestamp,
}
