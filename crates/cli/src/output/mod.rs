//! How results reach stdout: tables and short sentences for people, the
//! API's JSON for scripts. Diagnostics never come through here; they go to
//! stderr.

mod explanation;
mod records;
mod step_status;
mod table;
mod worker_coverage;

use std::io::Write as _;

use serde::Serialize;

pub use explanation::explanation_text;
pub use records::{
    cut_short, handlers_summarized, history_table, namespace_table, step_table, task_detail,
    task_table, template_table, worker_table,
};
pub use step_status::{StepStatus, clock, in_words};
pub use table::Table;
pub use worker_coverage::Coverage;

/// Writes `text` to stdout as it is.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `value` to stdout as pretty JSON and a newline.
pub fn emit_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(emit(&text)?)
}
