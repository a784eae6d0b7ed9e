//! The registry of a service's background workers (a saga loop, a follower, a feed, a writer).
//!
//! A worker runs until the service stops. One that returns or panics before that has stopped
//! doing the service's work while the HTTP side still answers, so the registry records it, and
//! `/health` answers 503 naming it (see [`crate::health`]): the orchestrator then restarts the
//! service instead of leaving it half alive.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A worker that stopped before the service was asked to stop, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    pub worker: &'static str,
    pub reason: String,
}

/// A service's named background workers; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Workers {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stop: CancellationToken,
    stopped: watch::Sender<Vec<Stopped>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `worker` as the task `name` (such as "accounts-saga"). It is handed a future that
    /// resolves once the service is stopping; it should then finish its work in hand and
    /// return `Ok`. Returning (`Ok` or `Err`) or panicking before that marks it stopped.
    ///
    /// Must be called within a tokio runtime.
    pub fn spawn<W, F, E>(&self, name: &'static str, worker: W)
    where
        W: FnOnce(WaitForCancellationFutureOwned) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let task = tokio::spawn(worker(self.inner.stop.clone().cancelled_owned()));
        let inner = self.inner.clone();
        let watcher = tokio::spawn(async move {
            let reason = match task.await {
                Ok(Ok(())) if inner.stop.is_cancelled() => return,
                Ok(Ok(())) => "it returned while the service was running".to_owned(),
                Ok(Err(error)) => format!("it failed: {error}"),
                Err(join) if join.is_panic() => {
                    format!("it panicked: {}", panic_message(join.into_panic()))
                }
                Err(join) => format!("it was cancelled: {join}"),
            };
            tracing::error!(worker = name, %reason, "a background worker stopped; /health answers 503");
            inner.stopped.send_modify(|stopped| {
                stopped.push(Stopped {
                    worker: name,
                    reason,
                })
            });
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(watcher);
    }

    /// The workers that have stopped, in the order they stopped.
    pub fn stopped(&self) -> Vec<Stopped> {
        self.inner.stopped.borrow().clone()
    }

    /// Resolves once `count` workers have stopped (at once if they already have).
    pub async fn until_stopped(&self, count: usize) {
        let mut rx = self.inner.stopped.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|stopped| stopped.len() >= count).await;
    }

    /// Tells every worker the service is stopping.
    pub(crate) fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// Waits up to `grace` for every worker to finish.
    pub(crate) async fn join(&self, grace: Duration) {
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "a background worker did not finish within {}s of the stop",
                grace.as_secs()
            );
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
