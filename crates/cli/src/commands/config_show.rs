//! `tasker config show`: the configuration a server started with the same
//! file, environment and flags would run with.

use crate::cli::{ConfigOutput, ServerArgs};
use crate::output::{emit, emit_json};
use crate::status::Status;

pub fn run(args: &ServerArgs, output: ConfigOutput) -> anyhow::Result<Status> {
    let config = args.layers().load()?;
    let shown = config.redacted();
    match output {
        ConfigOutput::Toml => emit(&toml::to_string_pretty(&shown)?)?,
        ConfigOutput::Json => emit_json(&shown)?,
    }
    // Shown even when invalid, so that the problems can be read in context.
    let issues = config.validate();
    for issue in &issues {
        eprintln!("invalid: {issue}");
    }
    Ok(if issues.is_empty() {
        Status::Ok
    } else {
        Status::Usage
    })
}
