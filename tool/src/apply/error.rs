//! Why a step of an apply failed: typed while the executor decides what to do about it, and
//! rendered once, in the apply's error at the end.

use crate::engine::EngineError;
use crate::observe::ObserveError;
use crate::registry::RegistryError;

/// Getting an image, a network or a volume ready failed (before anything was rolled).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    MissingImage(#[from] ObserveError),
    #[error(transparent)]
    Credentials(#[from] RegistryError),
}

/// Rolling one replica, or retiring old containers, failed.
#[derive(Debug, thiserror::Error)]
pub enum RollError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Starting the new container failed because a host port it publishes is taken.
    #[error("host port {ports} is already in use by another process or container; free it or change `ports` of service {service} ({source})")]
    PortInUse {
        ports: String,
        service: String,
        source: EngineError,
    },
    /// The new container did not pass the health gate; it was removed.
    #[error("new container {name} is not healthy: {reason}; it was removed{logs}")]
    Unhealthy {
        name: String,
        reason: String,
        /// `. Its last 3 log lines:` and the lines (see `log_tail_text`).
        logs: String,
    },
    /// The new container passed the gate but could not be given the service's DNS alias.
    #[error("new container {name} is healthy, but {source}")]
    Alias { name: String, source: EngineError },
    /// A blue/green rebuild's new container did not catch up in time (or failed); it and its
    /// fresh volumes were removed, and the old container kept serving.
    #[error("new container {name} did not take over: {reason}; it was removed{logs}")]
    Rebuild {
        name: String,
        reason: String,
        logs: String,
    },
    /// An image or container label `io.fleet.projection.version` is not a whole number.
    #[error("the label io.fleet.projection.version of {whose} is {value:?}, not a whole number; label the image with the projection's version, such as 1")]
    ProjectionLabel { whose: String, value: String },
    /// A signal arrived between two groups of replicas.
    #[error("{why}; not every replica was rolled")]
    Interrupted { why: String },
}

/// Putting a service back failed.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("restarted old container {id} is not healthy: {reason}")]
    Unhealthy { id: String, reason: String },
}

/// Why an apply failed, as one message (each cause on its own line).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// An image, network or volume could not be made ready; nothing was changed.
    #[error("{0}; nothing was changed")]
    Prepare(PrepareError),
    /// Services failed to roll, or the run was interrupted between levels.
    #[error("{}", lines(.causes, *.paused))]
    Roll { causes: Vec<Cause>, paused: bool },
    /// Every service rolled, but old containers could not all be removed.
    #[error("the new containers run, but cleaning up old ones failed: {}", join(.0))]
    Cleanup(Vec<EngineError>),
}

/// One cause of a failed roll.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("service {service}: {error}")]
    Service { service: String, error: RollError },
    #[error("{why} before rolling {level}")]
    Interrupted { why: String, level: String },
}

fn lines(causes: &[Cause], paused: bool) -> String {
    let mut lines: Vec<String> = causes.iter().map(ToString::to_string).collect();
    if paused {
        lines.push(
            "failure_action is pause: services rolled before the failure keep their new version"
                .into(),
        );
    }
    lines.join("\n")
}

fn join(errors: &[EngineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
