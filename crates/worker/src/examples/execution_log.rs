//! [`ExecutionLog`]: one JSON line per example handler execution, appended
//! to a file that several worker processes may share.
//!
//! Each line is written with a single `write` on a file opened for
//! appending, so lines of concurrent writers never interleave. It records
//! that a handler started, never what it returned: results are the
//! server's to record.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::step_context::StepContext;

/// One execution of a handler: which step, which attempt, in which process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub task_id: Uuid,
    pub step_id: Uuid,
    pub step: String,
    pub attempt: u32,
    pub pid: u32,
}

/// The file executions are appended to.
#[derive(Debug)]
pub struct ExecutionLog {
    file: File,
}

impl ExecutionLog {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: &Path) -> std::io::Result<ExecutionLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ExecutionLog { file })
    }

    /// Appends the execution `ctx` is about to run.
    pub fn record(&self, ctx: &StepContext) -> std::io::Result<()> {
        let execution = Execution {
            task_id: ctx.task_id(),
            step_id: ctx.step_id(),
            step: ctx.step_name().to_owned(),
            attempt: ctx.attempt(),
            pid: std::process::id(),
        };
        let mut line = serde_json::to_vec(&execution)?;
        line.push(b'\n');
        (&self.file).write_all(&line)
    }

    /// Reads every execution recorded in `path`.
    pub fn read(path: &Path) -> std::io::Result<Vec<Execution>> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(std::io::Error::other))
            .collect()
    }
}
