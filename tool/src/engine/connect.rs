//! Where the Docker Engine is and how to talk to it, read from the environment the way the
//! docker CLI reads it (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`).

use std::path::PathBuf;

use super::EngineError;

/// The daemon socket used when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Normalized address: `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// Client certificates for TLS (`DOCKER_TLS_VERIFY` set), or `None` for plain HTTP/socket.
    pub tls: Option<TlsFiles>,
}

/// The three PEM files the docker CLI expects in `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ConnectOptions {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` (and `HOME` for the default
    /// certificate directory `~/.docker`) through `env`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ConnectOptions, EngineError> {
        let raw = env("DOCKER_HOST")
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let tls_verify = env("DOCKER_TLS_VERIFY").is_some_and(|v| !v.trim().is_empty());
        let host = normalize_host(&raw, tls_verify)?;
        let tls = if tls_verify && host.starts_with("tcp://") {
            let dir = match env("DOCKER_CERT_PATH").filter(|p| !p.trim().is_empty()) {
                Some(p) => PathBuf::from(p),
                None => {
                    let home = env("HOME").ok_or_else(|| {
                        EngineError::Config(
                            "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME is; \
                             set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem"
                                .to_string(),
                        )
                    })?;
                    PathBuf::from(home).join(".docker")
                }
            };
            Some(TlsFiles {
                ca: dir.join("ca.pem"),
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            })
        } else {
            None
        };
        Ok(ConnectOptions { host, tls })
    }

    /// True when the engine runs on this machine, so container IPs are reachable from here.
    pub fn is_local(&self) -> bool {
        if self.host.starts_with("unix://") {
            return true;
        }
        let rest = self.host.trim_start_matches("tcp://");
        let hostname = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        matches!(hostname, "127.0.0.1" | "localhost" | "[::1]" | "::1")
    }

    /// The host name to use for ports the engine publishes (`127.0.0.1` for a local socket).
    pub fn published_host(&self) -> String {
        if self.host.starts_with("unix://") {
            return "127.0.0.1".to_string();
        }
        let rest = self.host.trim_start_matches("tcp://");
        rest.rsplit_once(':').map_or(rest, |(h, _)| h).to_string()
    }
}

/// `tcp://h` gets the docker CLI's default port (2375, or 2376 with TLS); `http(s)://` is
/// accepted as `tcp://`; other schemes are refused with a hint.
fn normalize_host(raw: &str, tls: bool) -> Result<String, EngineError> {
    if let Some(path) = raw.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(EngineError::Config(format!(
                "DOCKER_HOST={raw} names no socket; use e.g. {DEFAULT_HOST}"
            )));
        }
        return Ok(raw.to_string());
    }
    let rest = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|p| raw.strip_prefix(p))
        .ok_or_else(|| {
            EngineError::Config(format!(
                "DOCKER_HOST={raw} uses an unsupported scheme; use unix:///path/to/docker.sock or tcp://host:port"
            ))
        })?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(EngineError::Config(format!(
            "DOCKER_HOST={raw} names no host; use e.g. tcp://127.0.0.1:2375"
        )));
    }
    let has_port = rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if has_port {
        Ok(format!("tcp://{rest}"))
    } else {
        Ok(format!("tcp://{rest}:{}", if tls { 2376 } else { 2375 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(vars: &[(&str, &str)], expected: &str) {
        let env = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        let got = match ConnectOptions::from_env(&env) {
            Ok(o) => match o.tls {
                Some(t) => format!("{} tls ca={}", o.host, t.ca.display()),
                None => o.host,
            },
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn reads_the_environment_like_the_docker_cli() {
        check(&[], "unix:///var/run/docker.sock");
        check(&[("DOCKER_HOST", "")], "unix:///var/run/docker.sock");
        check(
            &[("DOCKER_HOST", "unix:///tmp/d.sock")],
            "unix:///tmp/d.sock",
        );
        check(&[("DOCKER_HOST", "tcp://10.0.0.5")], "tcp://10.0.0.5:2375");
        check(
            &[("DOCKER_HOST", "tcp://10.0.0.5:1234/")],
            "tcp://10.0.0.5:1234",
        );
        check(
            &[
                ("DOCKER_HOST", "tcp://h"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("HOME", "/home/u"),
            ],
            "tcp://h:2376 tls ca=/home/u/.docker/ca.pem",
        );
        check(
            &[
                ("DOCKER_HOST", "tcp://h:9"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/certs"),
            ],
            "tcp://h:9 tls ca=/certs/ca.pem",
        );
        check(
            &[("DOCKER_HOST", "tcp://h:9"), ("DOCKER_TLS_VERIFY", "")],
            "tcp://h:9",
        );
        check(
            &[("DOCKER_HOST", "ssh://me@h")],
            "error: bad Docker connection settings: DOCKER_HOST=ssh://me@h uses an unsupported scheme; \
             use unix:///path/to/docker.sock or tcp://host:port",
        );
        check(
            &[("DOCKER_HOST", "tcp://")],
            "error: bad Docker connection settings: DOCKER_HOST=tcp:// names no host; use e.g. tcp://127.0.0.1:2375",
        );
    }

    #[test]
    fn locality() {
        let o = |h: &str| ConnectOptions {
            host: h.into(),
            tls: None,
        };
        assert!(o("unix:///var/run/docker.sock").is_local());
        assert!(o("tcp://127.0.0.1:2375").is_local());
        assert!(!o("tcp://build-box:2375").is_local());
        assert_eq!(o("tcp://build-box:2375").published_host(), "build-box");
    }
}
