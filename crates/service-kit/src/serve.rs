//! Binding a service's port, and serving its router beside its background workers (a saga, a
//! projection) until a stop signal; in-flight requests and the workers' current batch finish
//! first.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

use crate::health;
use crate::workers::{Stopped, Workers};

/// How long a worker may take to finish after the server has drained.
const WORKER_GRACE: Duration = Duration::from_secs(10);

/// How long a served process goes on answering 503 after a worker stopped before it exits with
/// the error, so that the engine's restart policy starts it again (plain Docker does not restart
/// a container for being unhealthy). Set once per process by the skeleton
/// ([`crate::service::serve`], from `WORKER_STOP_EXIT_AFTER`); unset, a service stays up and
/// answers 503 until it is stopped, as services built inside a test do.
static EXIT_AFTER_WORKER_STOP: OnceLock<Duration> = OnceLock::new();

/// Makes every [`Listener`] bound from now on in this process exit `after` a worker stopped.
/// The first call wins.
pub fn exit_after_worker_stop(after: Duration) {
    let _ = EXIT_AFTER_WORKER_STOP.set(after);
}

/// A service's port could not be bound.
#[derive(Debug, thiserror::Error)]
// The cause is in the message, not a `source`, so an error chain prints it once, before the fix.
#[error("could not bind {service} to port {port} ({cause}); choose another PORT")]
pub struct BindError {
    service: &'static str,
    port: u16,
    cause: std::io::Error,
}

/// A bound port, ready to serve, with the registry of the workers that run beside it.
#[derive(Debug)]
pub struct Listener {
    service: &'static str,
    inner: TcpListener,
    port: u16,
    workers: Workers,
    exit_after_worker_stop: Option<Duration>,
}

impl Listener {
    /// Binds `host:port` for `service` (a name for messages, such as "the accounts service");
    /// port 0 takes a free port.
    pub async fn bind(
        service: &'static str,
        host: impl Into<IpAddr>,
        port: u16,
    ) -> Result<Self, BindError> {
        let inner = TcpListener::bind(SocketAddr::from((host.into(), port)))
            .await
            .map_err(|cause| BindError {
                service,
                port,
                cause,
            })?;
        let port = inner.local_addr().map(|a| a.port()).unwrap_or(port);
        Ok(Listener {
            service,
            inner,
            port,
            workers: Workers::new(),
            exit_after_worker_stop: EXIT_AFTER_WORKER_STOP.get().copied(),
        })
    }

    /// Ends [`Listener::serve`] `after` a worker stopped (`None`: serve, answering 503, until
    /// the stop signal). The default comes from [`exit_after_worker_stop`].
    pub fn with_exit_after_worker_stop(mut self, after: Option<Duration>) -> Self {
        self.exit_after_worker_stop = after;
        self
    }

    /// The bound port (the free one chosen when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's background workers: [`Workers::spawn`] them before [`Listener::serve`].
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Serves `router`, with `/health` guarded by the workers (503 once one has stopped; see
    /// [`crate::health`]), until `stop` resolves. Then: no new connections, the workers are
    /// told to stop, the requests in flight finish, and the workers get [`WORKER_GRACE`] more
    /// to finish what they are doing. A worker that stops ends serving the same way, after the
    /// delay set by [`Listener::with_exit_after_worker_stop`], when there is one.
    ///
    /// Ends with [`ServeError::Workers`] when a worker had stopped before `stop`.
    pub async fn serve(
        self,
        router: Router,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let workers = self.workers;
        let service = self.service;
        tracing::info!(port = self.port, "{service} listening");
        let router = router.layer(axum::middleware::from_fn_with_state(
            workers.clone(),
            health::guard,
        ));
        // No Nagle delay: small answers and event streams leave at once.
        let listener = self.inner.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
            }
        });
        let served = axum::serve(listener, router)
            .with_graceful_shutdown({
                let workers = workers.clone();
                let exit_after = self.exit_after_worker_stop;
                async move {
                    let worker_stopped = async {
                        match exit_after {
                            Some(after) => {
                                workers.until_stopped(1).await;
                                tokio::time::sleep(after).await;
                                tracing::error!(
                                    "{service} exits {}s after a worker stopped, to be restarted",
                                    after.as_secs()
                                );
                            }
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = stop => {}
                        () = worker_stopped => {}
                    }
                    workers.stop();
                }
            })
            .await;
        workers.stop();
        workers.join(WORKER_GRACE).await;
        tracing::info!("{service} stopped");
        served.map_err(|cause| ServeError::Io { service, cause })?;
        let stopped = workers.stopped();
        if stopped.is_empty() {
            return Ok(());
        }
        Err(ServeError::Workers { service, stopped })
    }
}

/// Why serving ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the HTTP server of {service} failed: {cause}")]
    Io {
        service: &'static str,
        cause: std::io::Error,
    },
    #[error("{service} ran with a stopped worker: {}", list(stopped))]
    Workers {
        service: &'static str,
        stopped: Vec<Stopped>,
    },
}

fn list(stopped: &[Stopped]) -> String {
    stopped
        .iter()
        .map(|s| format!("{} ({})", s.worker, s.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_taken_port_names_the_service_and_the_port() {
        let first = Listener::bind("the first service", [127, 0, 0, 1], 0)
            .await
            .expect("binds");
        let err = Listener::bind("the second service", [127, 0, 0, 1], first.port())
            .await
            .expect_err("the port is taken");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "could not bind the second service to port {} (",
                first.port()
            )),
            "{message}"
        );
        assert!(message.ends_with("; choose another PORT"), "{message}");
        // An error chain would print the cause twice.
        assert!(std::error::Error::source(&err).is_none());
    }

    /// A plain HTTP/1.1 GET over a real socket: the status code and the body.
    async fn http_get(port: u16, path: &'static str) -> (u16, String) {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            .expect("writes");
            let mut text = String::new();
            stream.read_to_string(&mut text).expect("reads");
            let status = text[9..12].parse().expect("a status code");
            let body = text.split_once("\r\n\r\n").expect("a head").1.to_owned();
            (status, body)
        })
        .await
        .expect("the request task")
    }

    fn app() -> Router {
        Router::new()
            .route("/", get(|| async { "hello" }))
            .route("/health", get(crate::health::ok))
    }

    #[tokio::test]
    async fn serves_until_stopped_and_lets_the_worker_finish() {
        let listener = Listener::bind("a test service", [127, 0, 0, 1], 0)
            .await
            .expect("binds");
        let port = listener.port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let workers = listener.workers().clone();
        workers.spawn("a patient worker", {
            let finished = finished.clone();
            move |stopped| async move {
                stopped.await;
                finished.store(true, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        });
        let server = tokio::spawn(listener.serve(app(), async move {
            let _ = stop_rx.await;
        }));
        let (status, body) = http_get(port, "/").await;
        assert_eq!((status, body.as_str()), (200, "hello"));
        assert_eq!(
            http_get(port, "/health").await,
            (200, r#"{"status":"ok"}"#.to_owned())
        );
        assert!(
            !finished.load(Ordering::SeqCst),
            "the worker runs until the stop"
        );
        stop_tx.send(()).expect("the server waits for the stop");
        server
            .await
            .expect("the server task")
            .expect("a worker that ends on the stop is no failure");
        assert!(finished.load(Ordering::SeqCst), "the worker saw the stop");
    }

    /// Regression: a saga loop that stopped only logged, while `/health` kept answering 200,
    /// so the orchestrator never restarted the service.
    #[tokio::test]
    async fn a_worker_that_stops_makes_health_answer_503_naming_it() {
        let listener = Listener::bind("a test service", [127, 0, 0, 1], 0)
            .await
            .expect("binds");
        let port = listener.port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let workers = listener.workers().clone();
        workers.spawn("a patient worker", |stopped| async move {
            stopped.await;
            Ok::<(), String>(())
        });
        let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<()>();
        workers.spawn("test-saga", |_| async move {
            let _ = fail_rx.await;
            Err("the event store refused the group")
        });
        let server = tokio::spawn(listener.serve(app(), async move {
            let _ = stop_rx.await;
        }));
        assert_eq!(
            http_get(port, "/health").await.0,
            200,
            "healthy while it runs"
        );

        fail_tx.send(()).expect("the worker waits");
        workers.until_stopped(1).await;
        let (status, body) = http_get(port, "/health").await;
        assert_eq!(status, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "status": "unavailable",
                "stopped": [{
                    "worker": "test-saga",
                    "reason": "it failed: the event store refused the group",
                }],
            })
        );
        assert_eq!(http_get(port, "/").await.0, 200, "the rest still serves");

        stop_tx.send(()).expect("the server waits for the stop");
        let error = server
            .await
            .expect("the server task")
            .expect_err("the stopped worker is reported");
        assert_eq!(
            error.to_string(),
            "a test service ran with a stopped worker: test-saga (it failed: the event store \
             refused the group)"
        );
    }

    #[tokio::test]
    async fn a_worker_that_returns_or_panics_counts_as_stopped() {
        let listener = Listener::bind("a test service", [127, 0, 0, 1], 0)
            .await
            .expect("binds");
        let port = listener.port();
        let workers = listener.workers().clone();
        workers.spawn("a quitter", |_| async { Ok::<(), String>(()) });
        workers.until_stopped(1).await;
        workers.spawn("a panicker", move |_| async move {
            if port > 0 {
                panic!("the projection hit a bug");
            }
            Ok::<(), String>(())
        });
        let server = tokio::spawn(listener.serve(app(), std::future::pending()));
        workers.until_stopped(2).await;
        let (status, body) = http_get(port, "/health").await;
        assert_eq!(status, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            body["stopped"],
            serde_json::json!([
                {"worker": "a quitter", "reason": "it returned while the service was running"},
                {"worker": "a panicker", "reason": "it panicked: the projection hit a bug"},
            ])
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_worker_that_stops_ends_serving_after_the_set_delay() {
        let listener = Listener::bind("a test service", [127, 0, 0, 1], 0)
            .await
            .expect("binds")
            .with_exit_after_worker_stop(Some(Duration::from_millis(300)));
        let port = listener.port();
        let workers = listener.workers().clone();
        workers.spawn("test-follower", |_| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err("the log refused the read")
        });
        let server = tokio::spawn(listener.serve(app(), std::future::pending()));
        workers.until_stopped(1).await;
        assert_eq!(
            http_get(port, "/health").await.0,
            503,
            "answers 503 until it exits"
        );
        let error = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serving ends without a stop signal")
            .expect("the server task")
            .expect_err("the stopped worker is the error");
        assert!(error.to_string().contains("test-follower"), "{error}");
    }
}
