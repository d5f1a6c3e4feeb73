//! `tasker schedule create|get|list|update|delete|pause|resume|trigger|backfill|fires`.

use clap::{Args, Subcommand};
use tasker_client::{CatchUp, OverlapPolicy, ScheduleSpec, ScheduleView};
use uuid::Uuid;

use super::client;
use crate::cli::{ClientArgs, Output};
use crate::output::{emit, emit_json};
use crate::status::Status;

#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Create a schedule that starts a task of a template on a cron
    /// expression or at an interval.
    Create {
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a schedule with its next fire times.
    Get {
        id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List schedules.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace a schedule's whole spec (the same options as create).
    Update {
        id: Uuid,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a schedule and its fire records (its tasks stay).
    Delete {
        id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop a schedule from firing until resumed.
    Pause {
        id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Let a paused schedule fire again, from its next time after now.
    Resume {
        id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fire a schedule now.
    Trigger {
        id: Uuid,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fire every time of [start, end) that has not fired yet.
    Backfill {
        id: Uuid,
        /// RFC 3339, e.g. 2026-01-01T00:00:00Z (included).
        #[arg(long)]
        start: chrono::DateTime<chrono::Utc>,
        /// RFC 3339 (excluded); not in the future.
        #[arg(long)]
        end: chrono::DateTime<chrono::Utc>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A schedule's fires, newest first.
    Fires {
        id: Uuid,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The options that make a schedule's spec.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Unique name.
    #[arg(long)]
    name: String,
    /// Template name.
    #[arg(long)]
    template: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Template version; default the newest at each fire.
    #[arg(long)]
    version: Option<String>,
    /// The tasks' context, a JSON object.
    #[arg(long, default_value = "{}")]
    context: String,
    /// Five-field cron expression, e.g. "0 2 * * *".
    #[arg(long, conflicts_with = "interval")]
    cron: Option<String>,
    /// IANA time zone of the cron expression; default UTC.
    #[arg(long)]
    time_zone: Option<String>,
    /// Fixed interval instead of a cron expression, e.g. 15m.
    #[arg(long)]
    interval: Option<String>,
    /// Start each fire up to this much later, e.g. 30s.
    #[arg(long)]
    jitter: Option<String>,
    /// skip, allow, buffer_one or cancel_previous.
    #[arg(long, default_value = "skip")]
    overlap: String,
    /// run_once or skip.
    #[arg(long, default_value = "run_once")]
    catch_up: String,
    /// Create it paused.
    #[arg(long)]
    paused: bool,
}

impl SpecArgs {
    fn spec(self) -> anyhow::Result<ScheduleSpec> {
        let context = serde_json::from_str(&self.context)
            .map_err(|e| anyhow::anyhow!("--context is not JSON: {e}"))?;
        let overlap: OverlapPolicy = self.overlap.parse().map_err(anyhow::Error::msg)?;
        let catch_up: CatchUp = self.catch_up.parse().map_err(anyhow::Error::msg)?;
        Ok(ScheduleSpec {
            name: self.name,
            namespace: self.namespace,
            template: self.template,
            version: self.version,
            context,
            cron: self.cron,
            time_zone: self.time_zone,
            interval: self.interval,
            jitter: self.jitter,
            overlap,
            catch_up,
            paused: self.paused,
        })
    }
}

fn describe(view: &ScheduleView) -> String {
    let s = &view.schedule;
    let when = match (&s.spec.cron, &s.spec.interval) {
        (Some(cron), _) => format!(
            "cron \"{cron}\" in {}",
            s.spec.time_zone.as_deref().unwrap_or("UTC")
        ),
        (None, Some(interval)) => format!("every {interval}"),
        (None, None) => String::new(),
    };
    let next = match (s.spec.paused, s.next_fire_at) {
        (true, _) => "paused".to_owned(),
        (false, Some(t)) => format!("next {}", t.to_rfc3339()),
        (false, None) => "no next fire".to_owned(),
    };
    format!(
        "{}  {}  {}/{}  {when}  overlap {}  {next}\n",
        s.id,
        s.spec.name,
        s.spec.namespace,
        s.spec.template,
        s.spec.overlap.as_str()
    )
}

fn show(output: Output, view: &ScheduleView) -> anyhow::Result<()> {
    match output {
        Output::Json => emit_json(view),
        Output::Text => Ok(emit(&describe(view))?),
    }
}

pub async fn run(action: ScheduleAction) -> anyhow::Result<Status> {
    match action {
        ScheduleAction::Create { spec, client: args } => {
            let view = client(&args)?.schedule_create(&spec.spec()?).await?;
            show(args.output, &view)?;
        }
        ScheduleAction::Get { id, client: args } => {
            let view = client(&args)?.schedule_get(id).await?;
            match args.output {
                Output::Json => emit_json(&view)?,
                Output::Text => {
                    let mut text = describe(&view);
                    for t in &view.upcoming {
                        text.push_str(&format!("  upcoming {}\n", t.to_rfc3339()));
                    }
                    emit(&text)?;
                }
            }
        }
        ScheduleAction::List { client: args } => {
            let views = client(&args)?.schedule_list().await?;
            match args.output {
                Output::Json => emit_json(&views)?,
                Output::Text => emit(&views.iter().map(describe).collect::<String>())?,
            }
        }
        ScheduleAction::Update {
            id,
            spec,
            client: args,
        } => {
            let view = client(&args)?.schedule_update(id, &spec.spec()?).await?;
            show(args.output, &view)?;
        }
        ScheduleAction::Delete { id, client: args } => {
            client(&args)?.schedule_delete(id).await?;
            match args.output {
                Output::Json => emit_json(&serde_json::json!({ "deleted": id }))?,
                Output::Text => emit(&format!("deleted schedule {id}\n"))?,
            }
        }
        ScheduleAction::Pause { id, client: args } => {
            let view = client(&args)?.schedule_set_paused(id, true).await?;
            show(args.output, &view)?;
        }
        ScheduleAction::Resume { id, client: args } => {
            let view = client(&args)?.schedule_set_paused(id, false).await?;
            show(args.output, &view)?;
        }
        ScheduleAction::Trigger { id, client: args } => {
            let fired = client(&args)?.schedule_trigger(id).await?;
            match args.output {
                Output::Json => emit_json(&fired)?,
                Output::Text => emit(&match &fired.task {
                    Some(task) => format!("fired; started task {}\n", task.id),
                    None => format!(
                        "fired; no task: {}\n",
                        fired.fire.message.as_deref().unwrap_or("unknown")
                    ),
                })?,
            }
        }
        ScheduleAction::Backfill {
            id,
            start,
            end,
            client: args,
        } => {
            let done = client(&args)?.schedule_backfill(id, start, end).await?;
            match args.output {
                Output::Json => emit_json(&done)?,
                Output::Text => emit(&format!(
                    "fired {} times; {} had fired already\n",
                    done.fires.len(),
                    done.already_fired.len()
                ))?,
            }
        }
        ScheduleAction::Fires {
            id,
            limit,
            client: args,
        } => {
            let fires = client(&args)?.schedule_fires(id, limit).await?;
            match args.output {
                Output::Json => emit_json(&fires)?,
                Output::Text => emit(
                    &fires
                        .iter()
                        .map(|f| {
                            format!(
                                "{}  {}  {}  {}\n",
                                f.fire_time.to_rfc3339(),
                                f.kind.as_str(),
                                f.outcome.as_str(),
                                f.task_id
                                    .map(|t| t.to_string())
                                    .or_else(|| f.message.clone())
                                    .unwrap_or_default()
                            )
                        })
                        .collect::<String>(),
                )?,
            }
        }
    }
    Ok(Status::Ok)
}
