//! [`shutdown_signal`]: resolves on SIGTERM (what process supervisors send)
//! or ctrl-c (SIGINT), whichever comes first.

/// Waits for SIGTERM or ctrl-c and logs which one arrived.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let which = tokio::select! {
        () = ctrl_c => "ctrl-c",
        () = terminate => "SIGTERM",
    };
    tracing::info!(signal = which, "shutdown requested");
}
