//! `tasker namespace create|list`.

use super::client;
use crate::cli::{NamespaceAction, Output};
use crate::output::{emit, emit_json, namespace_table};
use crate::status::Status;

pub async fn run(action: NamespaceAction) -> anyhow::Result<Status> {
    match action {
        NamespaceAction::Create { name, client: args } => {
            let (namespace, created) = client(&args)?.namespace_create(&name).await?;
            match args.output {
                Output::Json => emit_json(&namespace)?,
                Output::Text if created => emit(&format!("created namespace {name}\n"))?,
                Output::Text => emit(&format!("namespace {name} already exists\n"))?,
            }
        }
        NamespaceAction::List { client: args } => {
            let namespaces = client(&args)?.namespace_list().await?;
            match args.output {
                Output::Json => emit_json(&namespaces)?,
                Output::Text => emit(&namespace_table(&namespaces).to_string())?,
            }
        }
    }
    Ok(Status::Ok)
}
