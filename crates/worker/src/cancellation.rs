//! A one-shot cancellation signal for a running step, built on
//! `tokio::sync::watch` so it can be cloned into whatever the handler spawns.
//!
//! The runtime fires it just before it aborts the handler's future, so work
//! the handler started elsewhere (spawned tasks, child processes) can stop
//! too. A handler that only awaits needs nothing: dropping its future ends it.

use tokio::sync::watch;

/// Why a step's handler is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The task was cancelled; a heartbeat said so.
    TaskCancelled,
    /// The step ran past its `timeout`, on this worker's clock or the
    /// server's.
    TimedOut,
    /// The server no longer honours this attempt's lease (expired, or taken
    /// over by a newer attempt); its result would be refused.
    LeaseLost,
    /// The worker is shutting down and the grace period ran out.
    Shutdown,
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CancelReason::TaskCancelled => "task cancelled",
            CancelReason::TimedOut => "step timed out",
            CancelReason::LeaseLost => "lease lost",
            CancelReason::Shutdown => "worker shutting down",
        })
    }
}

/// The handler's side: ask whether, or wait until, the step was cancelled.
#[derive(Debug, Clone)]
pub struct Cancellation {
    receiver: watch::Receiver<Option<CancelReason>>,
}

/// The runtime's side: fires the signal (once; later calls are ignored).
#[derive(Debug)]
pub struct CancelHandle {
    sender: watch::Sender<Option<CancelReason>>,
}

impl Cancellation {
    /// A connected pair. Public so that handlers can be tested outside the
    /// runtime.
    pub fn new() -> (CancelHandle, Cancellation) {
        let (sender, receiver) = watch::channel(None);
        (CancelHandle { sender }, Cancellation { receiver })
    }

    pub fn is_cancelled(&self) -> bool {
        self.receiver.borrow().is_some()
    }

    pub fn reason(&self) -> Option<CancelReason> {
        *self.receiver.borrow()
    }

    /// Resolves when the signal fires; never, if its handle is dropped
    /// without firing.
    pub async fn cancelled(&self) -> CancelReason {
        let mut receiver = self.receiver.clone();
        // Copy the reason out: the borrow guard must not live across an await.
        let fired = receiver
            .wait_for(Option::is_some)
            .await
            .map(|reason| *reason);
        match fired {
            Ok(Some(reason)) => reason,
            _ => std::future::pending().await,
        }
    }
}

impl CancelHandle {
    /// Fires the signal with `reason` unless it already fired.
    pub fn cancel(&self, reason: CancelReason) {
        self.sender.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn fires_once_with_the_first_reason() {
        let (handle, cancellation) = Cancellation::new();
        let clone = cancellation.clone();
        assert!(!cancellation.is_cancelled());
        let waiter = tokio::spawn(async move { clone.cancelled().await });
        handle.cancel(CancelReason::TimedOut);
        handle.cancel(CancelReason::Shutdown);
        assert_eq!(waiter.await.unwrap(), CancelReason::TimedOut);
        assert_eq!(cancellation.reason(), Some(CancelReason::TimedOut));
        // Already fired: resolves at once.
        assert_eq!(cancellation.cancelled().await, CancelReason::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_handle_never_fires() {
        let (handle, cancellation) = Cancellation::new();
        drop(handle);
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), cancellation.cancelled()).await;
        assert!(waited.is_err());
        assert!(!cancellation.is_cancelled());
    }
}
