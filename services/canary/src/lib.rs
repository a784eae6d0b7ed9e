//! A tiny HTTP service for deployer tests, whose /health can be switched to fail.
//!
//! `GET /health` answers 200 unless `CANARY_HEALTH=fail` or the file named by
//! `CANARY_HEALTH_FILE` exists (then 503). `GET /` answers with the configured message and
//! version, so a test can see which version of a service is serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

/// Default port when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8090;

/// Runtime configuration, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// Text answered on `GET /`.
    pub message: String,
    /// Version answered on `GET /`.
    pub version: String,
    /// When true, `/health` always answers 503.
    pub health_fails: bool,
    /// When this file exists, `/health` answers 503.
    pub health_file: Option<PathBuf>,
}

/// A configuration value that could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("reading PORT: {value:?} is not a port number; set PORT to a number from 0 to 65535")]
    BadPort { value: String },
    #[error("reading CANARY_HEALTH: {value:?} is not understood; use `ok` or `fail`")]
    BadHealth { value: String },
}

impl Config {
    /// Reads the configuration through `env` (a lookup such as `std::env::var`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let port = match env("PORT") {
            None => DEFAULT_PORT,
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| ConfigError::BadPort { value })?,
        };
        let health_fails = match env("CANARY_HEALTH").as_deref().map(str::trim) {
            None | Some("") | Some("ok") => false,
            Some("fail") => true,
            Some(other) => {
                return Err(ConfigError::BadHealth {
                    value: other.to_string(),
                })
            }
        };
        Ok(Config {
            port,
            message: env("CANARY_MESSAGE").unwrap_or_else(|| "hello from canary".to_string()),
            version: env("CANARY_VERSION").unwrap_or_else(|| "v1".to_string()),
            health_fails,
            health_file: env("CANARY_HEALTH_FILE")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// What `GET /` answers.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub message: String,
    pub version: String,
}

/// The service's routes, usable without a socket.
pub fn router(config: Arc<Config>) -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/health", get(health))
        .with_state(config)
}

/// A bound, not yet running, canary server.
pub struct Application {
    listener: TcpListener,
    config: Arc<Config>,
}

impl Application {
    /// Binds `0.0.0.0:<port>`.
    pub async fn build(config: Config) -> std::io::Result<Application> {
        let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], config.port))).await?;
        Ok(Application {
            listener,
            config: Arc::new(config),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.config))
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Probes `http://127.0.0.1:<port>/health` with a raw HTTP/1.0 request (no TLS, no client
/// library, so it works inside a `FROM scratch` image). Returns the status code.
pub async fn probe_health(port: u16) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("the health answer is not an HTTP response"))
}

async fn hello(State(config): State<Arc<Config>>) -> Json<Hello> {
    Json(Hello {
        message: config.message.clone(),
        version: config.version.clone(),
    })
}

async fn health(State(config): State<Arc<Config>>) -> impl IntoResponse {
    let switched_off = config.health_file.as_ref().is_some_and(|p| p.exists());
    if config.health_fails || switched_off {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(vars: &[(&str, &str)], expected: Result<(u16, bool), ConfigError>) {
        let env = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        let got = Config::from_env(env).map(|c| (c.port, c.health_fails));
        assert_eq!(got, expected);
    }

    #[test]
    fn config_from_env() {
        check(&[], Ok((DEFAULT_PORT, false)));
        check(&[("PORT", "9000")], Ok((9000, false)));
        check(&[("CANARY_HEALTH", "fail")], Ok((DEFAULT_PORT, true)));
        check(&[("CANARY_HEALTH", "ok")], Ok((DEFAULT_PORT, false)));
        check(
            &[("PORT", "http")],
            Err(ConfigError::BadPort {
                value: "http".into(),
            }),
        );
        check(
            &[("CANARY_HEALTH", "maybe")],
            Err(ConfigError::BadHealth {
                value: "maybe".into(),
            }),
        );
    }
}
