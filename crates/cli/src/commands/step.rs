//! `tasker step retry|resolve`: an operator's hand on one step.

use super::client;
use crate::cli::{Output, StepAction};
use crate::output::{emit, emit_json};
use crate::status::{Failure, Status};

pub async fn run(action: StepAction) -> anyhow::Result<Status> {
    let (step, args) = match action {
        StepAction::Retry {
            step_id,
            client: args,
        } => (client(&args)?.step_retry(step_id).await?, args),
        StepAction::Resolve {
            step_id,
            result,
            client: args,
        } => {
            let result = result
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| Failure::usage(format!("--result is not valid JSON: {e}")))
                })
                .transpose()?;
            (client(&args)?.step_resolve(step_id, result).await?, args)
        }
    };
    match args.output {
        Output::Json => emit_json(&step)?,
        Output::Text => emit(&format!(
            "step {} ({}) is now {}\n",
            step.name, step.id, step.state
        ))?,
    }
    Ok(Status::Ok)
}
