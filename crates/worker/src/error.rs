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
    #[error("the server refused to register this worker: {0}")]
    Register(#[source] tasker_client::Error),
}
