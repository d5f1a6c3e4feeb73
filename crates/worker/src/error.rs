//! Why a worker could not be built or could not start.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A builder setting is unusable; `field` names it.
    #[error("invalid worker setting {field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    /// The server refused the registration for a reason retrying will not
    /// fix (bad token, invalid namespace). Unavailability is retried instead.
    /// The server's answer is the error's `source()`, not repeated in its
    /// message, so that a report of the whole chain says it once.
    #[error("the server refused to register this worker")]
    Register(#[source] tasker_client::Error),
}
