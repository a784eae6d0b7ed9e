//! A tiny HTTP service for deployer tests, whose /health can be switched to fail.
//!
//! `GET /health` answers 200 unless `CANARY_HEALTH=fail` or the file named by
//! `CANARY_HEALTH_FILE` exists (then 503). `GET /` answers with the configured message and
//! version, so a test can see which version of a service is serving.
//!
//! `canary poll` ([`poll`]) is the client side: it polls a URL at a fixed pace and counts the
//! answers, so a test can run it inside a project network while the deployer rolls a service.

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
    get_status("127.0.0.1", port, "/health").await
}

/// `GET http://<host>:<port><path>` with a raw HTTP/1.0 request on a new connection; returns
/// the status code. The host is resolved again each time and only its first address is tried
/// (no fall-over to the next one), so a client sees every address a name hands out.
pub async fn get_status(host: &str, port: u16, path: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("the answer is not an HTTP response"))
}

/// What `canary poll` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollArgs {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// Time between the starts of two requests.
    pub every: std::time::Duration,
    /// Time limit of one request.
    pub timeout: std::time::Duration,
    /// Stop after this long; `None`: until SIGTERM or SIGINT.
    pub duration: Option<std::time::Duration>,
}

impl PollArgs {
    /// Parses `URL [--every MS] [--timeout MS] [--for SECONDS]`; URL is `http://HOST[:PORT][/PATH]`.
    pub fn parse(args: &[String]) -> Result<PollArgs, String> {
        let usage = "usage: canary poll http://HOST[:PORT][/PATH] [--every MS] [--timeout MS] [--for SECONDS]";
        let mut it = args.iter();
        let url = it.next().ok_or(usage)?;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL; {usage}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("{p:?} in {url:?} is not a port"))?,
            ),
            None => (authority, 80),
        };
        let mut out = PollArgs {
            host: host.to_string(),
            port,
            path: path.to_string(),
            every: std::time::Duration::from_millis(20),
            timeout: std::time::Duration::from_millis(3000),
            duration: None,
        };
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value; {usage}"))?;
            let number: u64 = value
                .parse()
                .map_err(|_| format!("{flag} {value:?} is not a whole number; {usage}"))?;
            match flag.as_str() {
                "--every" => out.every = std::time::Duration::from_millis(number.max(1)),
                "--timeout" => out.timeout = std::time::Duration::from_millis(number.max(1)),
                "--for" => out.duration = Some(std::time::Duration::from_secs(number)),
                _ => return Err(format!("unknown flag {flag}; {usage}")),
            }
        }
        Ok(out)
    }
}

/// What `canary poll` counted; printed as one JSON line.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PollReport {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered otherwise, refused, or not answered within the timeout.
    pub failed: u64,
    /// Of the `ok` ones, those that took longer than a second (a lost SYN is sent again after
    /// one second).
    pub slow: u64,
    /// The first failures (at most 20): milliseconds since the start, and why.
    pub failures: Vec<String>,
}

/// Polls until `args.duration` passes or `stop` completes, one request every `args.every`
/// (a request still running when the next is due delays it).
pub async fn poll(args: &PollArgs, stop: impl std::future::Future<Output = ()>) -> PollReport {
    let started = tokio::time::Instant::now();
    let mut report = PollReport::default();
    let mut tick = tokio::time::interval(args.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let sent = tokio::time::Instant::now();
        let answer =
            tokio::time::timeout(args.timeout, get_status(&args.host, args.port, &args.path)).await;
        let why = match answer {
            Ok(Ok(200)) => {
                report.ok += 1;
                if sent.elapsed() > std::time::Duration::from_secs(1) {
                    report.slow += 1;
                }
                continue;
            }
            Ok(Ok(code)) => format!("answered {code}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", args.timeout),
        };
        report.failed += 1;
        if report.failures.len() < 20 {
            report
                .failures
                .push(format!("{} ms: {why}", started.elapsed().as_millis()));
        }
    }
    report
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
    fn poll_arguments() {
        let args =
            |v: &[&str]| PollArgs::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let a = args(&["http://web:8090/health", "--every", "10", "--for", "3"]).expect("parses");
        assert_eq!(
            (a.host.as_str(), a.port, a.path.as_str()),
            ("web", 8090, "/health")
        );
        assert_eq!(a.every, std::time::Duration::from_millis(10));
        assert_eq!(a.duration, Some(std::time::Duration::from_secs(3)));
        let b = args(&["http://web"]).expect("parses");
        assert_eq!((b.port, b.path.as_str(), b.duration), (80, "/", None));
        assert!(args(&[]).is_err());
        assert!(args(&["web:80"]).is_err());
        assert!(args(&["http://web", "--every"]).is_err());
        assert!(args(&["http://web", "--often", "3"]).is_err());
    }

    #[tokio::test]
    async fn poll_counts_answers_and_refusals() {
        let app =
            Application::build(Config::from_env(|k| (k == "PORT").then(|| "0".into())).unwrap())
                .await
                .expect("bind");
        let port = app.port();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let mut args = PollArgs::parse(&[format!("http://127.0.0.1:{port}/health")]).unwrap();
        args.every = std::time::Duration::from_millis(5);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let polling = tokio::spawn(async move {
            poll(&args, async {
                let _ = rx.await;
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let _ = tx.send(());
        let report = polling.await.expect("poller");
        assert!(report.ok > 0, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut args = PollArgs::parse(&[format!("http://127.0.0.1:{dead_port}/")]).unwrap();
        args.every = std::time::Duration::from_millis(5);
        args.duration = Some(std::time::Duration::from_millis(50));
        let report = poll(&args, std::future::pending()).await;
        assert_eq!(report.ok, 0, "{report:?}");
        assert!(
            report.failed > 0 && !report.failures.is_empty(),
            "{report:?}"
        );
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
