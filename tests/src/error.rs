//! The one error type of the test support code: each variant says what was being done.

/// What went wrong while driving the fleet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} exited with {status}; output:\n{output}")]
    Command {
        what: String,
        status: String,
        output: String,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: es_client::ClientError,
    },
    #[error("{what}: {detail}")]
    Unexpected { what: String, detail: String },
    #[error("invariant broken: {0}")]
    Invariant(String),
}

impl Error {
    /// An `Unexpected` error.
    pub fn unexpected(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Unexpected {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// An `Io` error for `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// An `Http` error for `what`.
    pub fn http(what: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let what = what.into();
        move |source| Error::Http { what, source }
    }
}
