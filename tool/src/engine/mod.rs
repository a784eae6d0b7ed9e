//! The engine adapter: the only module that talks to the Docker Engine (through bollard).
//!
//! It offers the handful of operations the deployer needs, in the deployer's own plain types,
//! so nothing outside `engine` depends on bollard. Every call names what it was doing when it
//! fails, and connection failures become one clear [`EngineError::Unreachable`].

mod archive;
mod connect;
mod containers;
mod convert;
mod ops;
mod resources;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

pub use connect::{ConnectOptions, HostSource, TlsFiles, DEFAULT_HOST};
pub use convert::create_body;
pub use ops::ContainerEngine;
pub use resources::{first_file_of_tar, tar_one_file};
pub use types::*;

/// Seconds bollard waits for one engine request before giving up.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long the first contact (version negotiation) may take before the engine counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker Engine at {host}: {detail}; start the daemon or point DOCKER_HOST at it")]
    Unreachable { host: String, detail: String },
    #[error("bad Docker connection settings: {0}")]
    Config(String),
    #[error("{action}: {what} already exists")]
    Conflict { action: String, what: String },
    #[error("{action}: not found ({detail})")]
    NotFound { action: String, detail: String },
    #[error("{action}: {detail}")]
    Api { action: String, detail: String },
}

impl EngineError {
    /// True for a 404 from the engine.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }
    /// True for a 409 (a name already taken, for instance).
    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Conflict { .. })
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    options: ConnectOptions,
}

impl Engine {
    /// Connects as the docker CLI would, negotiating the API version (the daemon may be older
    /// than bollard). Fails with [`EngineError::Unreachable`] when nothing answers.
    pub async fn connect(options: ConnectOptions) -> Result<Engine, EngineError> {
        install_crypto_provider();
        let unreachable = |detail: String| EngineError::Unreachable {
            host: options.host.clone(),
            detail,
        };
        let docker = match (&options.tls, options.host.strip_prefix("unix://")) {
            (_, Some(_)) => Docker::connect_with_unix(
                &options.host,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
            (Some(tls), None) => {
                for file in [&tls.ca, &tls.cert, &tls.key] {
                    if !file.exists() {
                        return Err(EngineError::Config(format!(
                            "DOCKER_TLS_VERIFY is set but {} does not exist; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem",
                            file.display()
                        )));
                    }
                }
                Docker::connect_with_ssl(
                    &options.host,
                    &tls.key,
                    &tls.cert,
                    &tls.ca,
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            (None, None) => Docker::connect_with_http(
                &options.host,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| EngineError::Config(format!("connecting to {}: {e}", options.host)))?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(short_error(&e)))?;
        Ok(Engine { docker, options })
    }

    /// Connects using the process environment (`DOCKER_HOST`, ...).
    pub async fn from_env() -> Result<Engine, EngineError> {
        let env = |k: &str| std::env::var(k).ok();
        Engine::connect(ConnectOptions::from_env(&env)?).await
    }

    /// How this engine was reached.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    fn error(&self, action: &str, e: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound {
                action: action.to_string(),
                detail: message,
            },
            B::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict {
                action: action.to_string(),
                what: message,
            },
            B::DockerResponseServerError { message, .. } => EngineError::Api {
                action: action.to_string(),
                detail: message,
            },
            B::DockerStreamError { error } => EngineError::Api {
                action: action.to_string(),
                detail: error,
            },
            B::HyperResponseError { .. } | B::IOError { .. } | B::RequestTimeoutError => {
                EngineError::Unreachable {
                    host: self.options.host.clone(),
                    detail: format!("{action}: {}", short_error(&e)),
                }
            }
            other => EngineError::Api {
                action: action.to_string(),
                detail: short_error(&other),
            },
        }
    }
}

/// Installs rustls' ring provider as the process default (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn label_filters(labels: &[(&str, Option<&str>)]) -> HashMap<String, Vec<String>> {
    let values = labels
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => (*k).to_string(),
        })
        .collect();
    HashMap::from([("label".to_string(), values)])
}

/// The innermost, most telling part of a bollard error, on one line.
fn short_error(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg.replace('\n', " ")
}
