//! Exit statuses, and which one an error ends the process with. Scripts
//! branch on these, so each means one thing (docs/cli.md lists them).

use std::fmt;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: done.
    Ok,
    /// 1: the operation failed, a watched task failed or was cancelled, a
    /// template file is invalid.
    Failed,
    /// 2: usage or invalid input (clap's own code for bad arguments).
    Usage,
    /// 3: the server could not be reached or is unavailable; for `server`
    /// and `migrate`, the database.
    Unreachable,
    /// 4: what was named does not exist.
    NotFound,
    /// 5: the request conflicts with the current state.
    Conflict,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::Unreachable => 3,
            Status::NotFound => 4,
            Status::Conflict => 5,
        }
    }
}

/// An error that knows its exit status, for failures that no library error
/// type describes (a malformed `--context`, a database that cannot be
/// reached).
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Failure {
            status: Status::Usage,
            message: message.into(),
        }
        .into()
    }

    pub fn unreachable(message: impl Into<String>) -> anyhow::Error {
        Failure {
            status: Status::Unreachable,
            message: message.into(),
        }
        .into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The status an error ends the process with: the first error in its chain
/// that says.
pub fn status_of(error: &anyhow::Error) -> Status {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.status;
        }
        if let Some(client) = cause.downcast_ref::<tasker_client::Error>() {
            return client_status(client);
        }
        if cause.downcast_ref::<crate::config::Error>().is_some() {
            return Status::Usage;
        }
    }
    Status::Failed
}

fn client_status(error: &tasker_client::Error) -> Status {
    use tasker_client::Error;
    match error {
        Error::InvalidUrl { .. } | Error::InvalidCertificate { .. } => Status::Usage,
        e if e.is_unavailable() => Status::Unreachable,
        Error::Api { status, .. } => match status {
            404 => Status::NotFound,
            409 => Status::Conflict,
            400 | 413 | 422 => Status::Usage,
            _ => Status::Failed,
        },
        _ => Status::Failed,
    }
}

/// The error as a person should read it: its chain on one line, then, for
/// an API error that lists problems (an invalid template or context), one
/// line per problem with its path.
pub fn describe(error: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in error.chain() {
        parts.push(cause.to_string());
        // The client's message already carries its causes.
        if cause.is::<tasker_client::Error>() {
            break;
        }
    }
    let client = error
        .chain()
        .find_map(|c| c.downcast_ref::<tasker_client::Error>());
    if let Some(tasker_client::Error::Transport { message, .. }) = client
        && message.to_lowercase().contains("certificate")
    {
        return format!(
            "{}\n  the server's certificate is not trusted: name the CA that signed it \
             with --ca-cert or TASKER_CA_CERT.",
            parts.join(": ")
        );
    }
    if let Some(tasker_client::Error::Transport { .. }) = client {
        return format!(
            "{}\n  is the server running? Name it with --server or TASKER_SERVER.",
            parts.join(": ")
        );
    }
    if let Some(tasker_client::Error::Api { status: 401, .. }) = client {
        return format!(
            "{}\n  the server wants a token: pass it with --token or TASKER_TOKEN.",
            parts.join(": ")
        );
    }
    let details = match client {
        Some(tasker_client::Error::Api { details, .. }) => details.as_array(),
        _ => None,
    };
    // The server's message lists the problems too, run together; they are
    // listed one per line below instead.
    if let (Some(last), Some(first_path)) = (
        parts.last_mut(),
        details
            .and_then(|d| d.first())
            .and_then(|d| d["path"].as_str()),
    ) && let Some(cut) = last.find(&format!(": {first_path}: "))
    {
        last.truncate(cut);
    }
    let mut text = parts.join(": ");
    for detail in details.into_iter().flatten() {
        match (detail["path"].as_str(), detail["message"].as_str()) {
            (Some(path), Some(message)) => text.push_str(&format!("\n  {path}: {message}")),
            _ => text.push_str(&format!("\n  {detail}")),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> anyhow::Error {
        tasker_client::Error::Api {
            status,
            code: "x".into(),
            message: String::new(),
            details: serde_json::Value::Null,
        }
        .into()
    }

    #[test]
    fn api_statuses_map_to_exit_statuses() {
        assert_eq!(status_of(&api(404)), Status::NotFound);
        assert_eq!(status_of(&api(409)), Status::Conflict);
        assert_eq!(status_of(&api(422)), Status::Usage);
        assert_eq!(status_of(&api(400)), Status::Usage);
        assert_eq!(status_of(&api(503)), Status::Unreachable);
        assert_eq!(status_of(&api(401)), Status::Failed);
        assert_eq!(status_of(&api(500)), Status::Failed);
    }

    #[test]
    fn the_status_survives_added_context() {
        let error = api(404).context("task 1");
        assert_eq!(status_of(&error), Status::NotFound);
        let error = Failure::usage("bad JSON").context("--context");
        assert_eq!(status_of(&error), Status::Usage);
        assert_eq!(status_of(&anyhow::anyhow!("other")), Status::Failed);
    }

    #[test]
    fn a_missing_token_is_named_once_with_the_flag_that_sends_it() {
        let error: anyhow::Error = tasker_client::Error::Api {
            status: 401,
            code: "unauthorized".into(),
            message: "send Authorization: Bearer <token>".into(),
            details: serde_json::Value::Null,
        }
        .into();
        assert_eq!(
            describe(&error.context("the server refused to register this worker")),
            "the server refused to register this worker: unauthorized (HTTP 401): \
             send Authorization: Bearer <token>\n  \
             the server wants a token: pass it with --token or TASKER_TOKEN."
        );
    }

    #[test]
    fn problems_listed_by_the_server_are_shown_one_per_line() {
        let error: anyhow::Error = tasker_client::Error::Api {
            status: 422,
            code: "template_invalid".into(),
            message: "template x/y@1 is invalid: steps[1].depends_on[0]: unknown step \"zz\"; steps[2].name: duplicate".into(),
            details: serde_json::json!([
                {"path": "steps[1].depends_on[0]", "message": "unknown step \"zz\""},
                {"path": "steps[2].name", "message": "duplicate"},
            ]),
        }
        .into();
        let text = describe(&error.context("broken.yaml"));
        assert_eq!(
            text,
            "broken.yaml: template_invalid (HTTP 422): template x/y@1 is invalid\n  \
             steps[1].depends_on[0]: unknown step \"zz\"\n  steps[2].name: duplicate"
        );
    }
}
