//! Wire types: what clients, workers and the server exchange over HTTP, and
//! what the engine and the store take and give back for them. Declared once
//! here, so that the client and the worker SDK depend on the model alone,
//! never on the store.

mod cluster;
mod dead_letters;
mod tasks;
mod workers;

pub use cluster::{ClusterLeader, ClusterNode, ClusterWorker, Node, SweepCounts, SweepRecord};
pub use dead_letters::{
    DeadLetter, DeadLetterFilter, DeadLetterOutcome, DeadLetterPage, DeadLetterRefusal,
};
pub use tasks::{HistoryPage, NewTask, TaskFilter, TaskPage};
pub use workers::{Worker, WorkerRegistration};
