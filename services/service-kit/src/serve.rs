//! Binding a service's port, and serving its router, with an optional background worker (a
//! saga, a projection), until a stop signal; in-flight requests and the worker's current batch
//! finish first.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long a worker may take to finish after the server has drained.
const WORKER_GRACE: Duration = Duration::from_secs(10);

/// A service's port could not be bound.
#[derive(Debug, thiserror::Error)]
// The cause is in the message, not a `source`, so an error chain prints it once, before the fix.
#[error("could not bind {service} to port {port} ({cause}); choose another PORT")]
pub struct BindError {
    service: &'static str,
    port: u16,
    cause: std::io::Error,
}

/// A bound port, ready to serve.
#[derive(Debug)]
pub struct Listener {
    service: &'static str,
    inner: TcpListener,
    port: u16,
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
        })
    }

    /// The bound port (the free one chosen when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `router` until `stop` resolves, then finishes the requests in flight.
    pub async fn serve_until(
        self,
        router: Router,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(router, stop, None::<fn(_) -> std::future::Ready<()>>)
            .await
    }

    /// Serves `router` and runs `worker` beside it until `stop` resolves. The worker is handed
    /// a future that resolves once `stop` has; after the server has drained, it gets
    /// [`WORKER_GRACE`] to finish what it is doing.
    pub async fn serve_with<W, F>(
        self,
        router: Router,
        stop: impl Future<Output = ()> + Send + 'static,
        worker: Option<W>,
    ) -> std::io::Result<()>
    where
        W: FnOnce(WaitForCancellationFutureOwned) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let token = CancellationToken::new();
        let worker = worker.map(|w| tokio::spawn(w(token.clone().cancelled_owned())));
        tracing::info!(port = self.port, "{} listening", self.service);
        let server = axum::serve(self.inner, router).with_graceful_shutdown({
            let token = token.clone();
            async move {
                stop.await;
                token.cancel();
            }
        });
        let result = server.await;
        token.cancel();
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(WORKER_GRACE, worker).await;
        }
        result
    }
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

    #[tokio::test]
    async fn serves_until_stopped_and_lets_the_worker_finish() {
        let listener = Listener::bind("a test service", [127, 0, 0, 1], 0)
            .await
            .expect("binds");
        let port = listener.port();
        let router = Router::new().route("/", get(|| async { "hello" }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let worker = {
            let finished = finished.clone();
            move |stopped: WaitForCancellationFutureOwned| async move {
                stopped.await;
                finished.store(true, Ordering::SeqCst);
            }
        };
        let server = tokio::spawn(listener.serve_with(
            router,
            async move {
                let _ = stop_rx.await;
            },
            Some(worker),
        ));
        let body = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .expect("writes");
            let mut text = String::new();
            stream.read_to_string(&mut text).expect("reads");
            text
        })
        .await
        .expect("the request task");
        assert!(body.ends_with("hello"), "{body}");
        assert!(
            !finished.load(Ordering::SeqCst),
            "the worker runs until the stop"
        );
        stop_tx.send(()).expect("the server waits for the stop");
        server.await.expect("the server task").expect("served");
        assert!(finished.load(Ordering::SeqCst), "the worker saw the stop");
    }
}
