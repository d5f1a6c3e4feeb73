//! `tasker dead-letter list|retry|resolve`: steps that exhausted their
//! retries, listed with their last errors, and retried or resolved many at
//! once, by ids or by a filter.

use clap::{Args, Subcommand};
use tasker_client::{DeadLetterFilter, DeadLetterOutcome, DeadLetterSelection};
use uuid::Uuid;

use super::client;
use crate::cli::{ClientArgs, Output};
use crate::output::{Table, emit, emit_json};
use crate::status::{Failure, Status};

#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// List dead letters, oldest first, with their last errors.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// `next_cursor` of the previous page (JSON output shows it).
        #[arg(long, value_name = "CURSOR")]
        cursor: Option<String>,
        /// Page size, at most 500.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run dead letters again with a fresh attempt budget; their tasks resume.
    Retry {
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resolve dead letters, so their dependents run; their tasks resume.
    Resolve {
        #[command(flatten)]
        selection: SelectionArgs,
        /// The result their dependents see, as JSON.
        #[arg(long, value_name = "JSON")]
        result: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Narrows the dead letters; none selects all.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    #[arg(long, short)]
    pub namespace: Option<String>,
    /// Template name (every version).
    #[arg(long)]
    pub template: Option<String>,
    #[arg(long)]
    pub handler: Option<String>,
    /// The last error's type, e.g. `timeout`.
    #[arg(long)]
    pub error_type: Option<String>,
    /// Failed at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub failed_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub failed_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilterArgs {
    fn filter(&self) -> DeadLetterFilter {
        DeadLetterFilter {
            namespace: self.namespace.clone(),
            template: self.template.clone(),
            handler: self.handler.clone(),
            error_type: self.error_type.clone(),
            failed_since: self.failed_since,
            failed_until: self.failed_until,
        }
    }
}

/// Step ids, or `--all` with the filter.
#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Step ids of dead letters.
    #[arg(
        value_name = "STEP",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<Uuid>,
    /// Every dead letter the filter selects (up to --limit).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Most dead letters to act on, at most 1000.
    #[arg(long)]
    pub limit: Option<u32>,
}

impl SelectionArgs {
    fn selection(&self) -> DeadLetterSelection {
        if self.all {
            DeadLetterSelection {
                ids: None,
                filter: Some(self.filter.filter()),
                limit: self.limit,
            }
        } else {
            DeadLetterSelection {
                ids: Some(self.ids.clone()),
                filter: None,
                limit: self.limit,
            }
        }
    }
}

pub async fn run(action: DeadLetterAction) -> anyhow::Result<Status> {
    match action {
        DeadLetterAction::List {
            filter,
            cursor,
            limit,
            client: args,
        } => {
            let page = client(&args)?
                .dead_letter_list(&filter.filter(), cursor.as_deref(), Some(limit))
                .await?;
            match args.output {
                Output::Json => emit_json(&page)?,
                Output::Text => {
                    let mut table = Table::new(&[
                        "step",
                        "task",
                        "template",
                        "step name",
                        "attempts",
                        "error",
                        "failed at",
                    ]);
                    for dead in &page.dead_letters {
                        let error = dead
                            .error
                            .as_ref()
                            .map(|e| format!("{}: {}", e.error_type, e.message))
                            .unwrap_or_default();
                        table.row(vec![
                            dead.step_id.to_string(),
                            dead.task_id.to_string(),
                            format!(
                                "{}/{}@{}",
                                dead.namespace, dead.template_name, dead.template_version
                            ),
                            dead.step_name.clone(),
                            dead.attempt.to_string(),
                            error,
                            dead.failed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        ]);
                    }
                    emit(&table.to_string())?;
                    if let Some(cursor) = &page.next_cursor {
                        eprintln!("more: --cursor {cursor}");
                    }
                }
            }
            Ok(Status::Ok)
        }
        DeadLetterAction::Retry {
            selection,
            client: args,
        } => {
            let outcome = client(&args)?
                .dead_letter_retry(&selection.selection())
                .await?;
            report(&outcome, "retried", args.output)
        }
        DeadLetterAction::Resolve {
            selection,
            result,
            client: args,
        } => {
            let result = result
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| Failure::usage(format!("--result is not valid JSON: {e}")))
                })
                .transpose()?;
            let outcome = client(&args)?
                .dead_letter_resolve(&selection.selection(), result)
                .await?;
            report(&outcome, "resolved", args.output)
        }
    }
}

/// Prints what a bulk action did; exits 1 when some step was refused.
fn report(outcome: &DeadLetterOutcome, done: &str, output: Output) -> anyhow::Result<Status> {
    match output {
        Output::Json => emit_json(outcome)?,
        Output::Text => {
            emit(&format!(
                "{done} {} of {} dead letters\n",
                outcome.applied, outcome.matched
            ))?;
            for refusal in &outcome.refused {
                eprintln!(
                    "step {}: {} ({})",
                    refusal.step_id, refusal.message, refusal.code
                );
            }
            if outcome.more {
                eprintln!("more dead letters match: run again for the rest");
            }
        }
    }
    Ok(if outcome.refused.is_empty() {
        Status::Ok
    } else {
        Status::Failed
    })
}
