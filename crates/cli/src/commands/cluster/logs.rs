//! `tasker cluster logs [instance]`: the end of one instance's log, or of
//! every log (each line prefixed with its instance); `-f` follows them
//! until ctrl-c. Logs outlive `down`, so this works on a stopped cluster.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use super::state::{self, StateDir};
use crate::cli::ClusterLogsArgs;
use crate::output::emit;
use crate::shutdown_signal::shutdown_signal;
use crate::status::{Failure, Status};

pub async fn run(args: &ClusterLogsArgs) -> anyhow::Result<Status> {
    let state = StateDir::new(&std::path::absolute(&args.state.state_dir)?);
    let all = log_files(&state);
    let chosen: Vec<(String, PathBuf)> = match &args.instance {
        None => all,
        Some(name) => {
            let Some(found) = all.iter().find(|(n, _)| n == name).cloned() else {
                let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Failure {
                    status: Status::NotFound,
                    message: format!(
                        "no log for instance {name:?} in {}; there are: {}",
                        state.logs_dir().display(),
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                }
                .into());
            };
            vec![found]
        }
    };
    let prefix = chosen.len() > 1;
    let mut offsets = Vec::new();
    for (name, path) in &chosen {
        let tail = state::tail(path, args.lines);
        let mut text = String::new();
        for line in tail.lines() {
            text.push_str(&line_of(prefix, name, line));
        }
        emit(&text)?;
        offsets.push(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    }
    if !args.follow {
        return Ok(Status::Ok);
    }
    let follow = async {
        loop {
            for ((name, path), offset) in chosen.iter().zip(offsets.iter_mut()) {
                let text = read_from(path, offset);
                let mut out = String::new();
                for line in text.lines() {
                    out.push_str(&line_of(prefix, name, line));
                }
                emit(&out)?;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        result = follow => result,
        () = shutdown_signal() => Ok(Status::Ok),
    }
}

fn line_of(prefix: bool, name: &str, line: &str) -> String {
    if prefix {
        format!("[{name}] {line}\n")
    } else {
        format!("{line}\n")
    }
}

/// `(instance, path)` for every `<name>.log` in the logs directory, sorted.
fn log_files(state: &StateDir) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(state.logs_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".log")?.to_owned();
            Some((name, path))
        })
        .collect();
    found.sort();
    found
}

/// What was appended to `path` since `offset` (whole lines only), moving
/// `offset` on; a file that shrank (recreated by a new `up`) is read anew.
fn read_from(path: &PathBuf, offset: &mut u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        *offset = 0;
    }
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    String::from_utf8_lossy(&bytes[..complete]).into_owned()
}
