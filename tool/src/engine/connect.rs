//! Where the Docker Engine is and how to talk to it, found the way the docker CLI finds it:
//! `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`), else the context named by
//! `DOCKER_CONTEXT`, else the `currentContext` of the CLI's `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker`), else the default socket. A context that does not exist or cannot be used is an
//! error, never a quiet fall-back to another engine.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::EngineError;

/// The daemon socket used when neither `DOCKER_HOST` nor a context names another engine.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Normalized address: `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// Client certificates for TLS (`DOCKER_TLS_VERIFY` set, or a context with TLS material),
    /// or `None` for plain HTTP/socket.
    pub tls: Option<TlsFiles>,
    /// What chose the engine.
    pub source: HostSource,
}

/// What chose the engine: the environment or a docker CLI context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSource {
    /// `DOCKER_HOST`.
    Env,
    /// A context (`default` when nothing names one).
    Context(String),
}

/// The three PEM files the docker CLI expects in `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl std::fmt::Display for ConnectOptions {
    /// `unix:///var/run/docker.sock (context: default)`, `tcp://vm:2376 (DOCKER_HOST)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            HostSource::Env => write!(f, "{} (DOCKER_HOST)", self.host),
            HostSource::Context(name) => write!(f, "{} (context: {name})", self.host),
        }
    }
}

impl ConnectOptions {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `DOCKER_CONTEXT`,
    /// `DOCKER_CONFIG` and `HOME` through `env`, and the CLI's config and context files.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ConnectOptions, EngineError> {
        let var = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(raw) = var("DOCKER_HOST") {
            return ConnectOptions::from_host_env(&raw, HostSource::Env, env);
        }
        let context = match var("DOCKER_CONTEXT") {
            Some(name) => Some((name, "DOCKER_CONTEXT".to_string())),
            None => current_context(env)?,
        };
        match context {
            None => ConnectOptions::from_host_env(
                DEFAULT_HOST,
                HostSource::Context("default".into()),
                env,
            ),
            Some((name, _)) if name == "default" => ConnectOptions::from_host_env(
                DEFAULT_HOST,
                HostSource::Context("default".into()),
                env,
            ),
            Some((name, origin)) => from_context(&name, &origin, env),
        }
    }

    /// The address `raw` with the TLS settings of the environment (`DOCKER_TLS_VERIFY`).
    fn from_host_env(
        raw: &str,
        source: HostSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnectOptions, EngineError> {
        let tls_verify = env("DOCKER_TLS_VERIFY").is_some_and(|v| !v.trim().is_empty());
        let host = normalize_host(raw, tls_verify, "DOCKER_HOST")?;
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
        Ok(ConnectOptions { host, tls, source })
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
/// accepted as `tcp://`; `ssh://` is refused with the way round it, other schemes with a hint.
/// `what` names the setting in messages (`DOCKER_HOST`, `context vm`).
fn normalize_host(raw: &str, tls: bool, what: &str) -> Result<String, EngineError> {
    if let Some(path) = raw.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(EngineError::Config(format!(
                "{what}={raw} names no socket; use e.g. {DEFAULT_HOST}"
            )));
        }
        return Ok(raw.to_string());
    }
    if let Some(rest) = raw.strip_prefix("ssh://") {
        let target = rest.trim_end_matches('/');
        return Err(EngineError::Config(format!(
            "{what}={raw}: ssh:// engines are not supported; forward the engine's socket instead \
             (`ssh -nNT -L /tmp/{name}.sock:/var/run/docker.sock {target}`) and use \
             DOCKER_HOST=unix:///tmp/{name}.sock, or expose the engine on tcp:// with TLS",
            name = "docker-remote"
        )));
    }
    let rest = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|p| raw.strip_prefix(p))
        .ok_or_else(|| {
            EngineError::Config(format!(
                "{what}={raw} uses an unsupported scheme; use unix:///path/to/docker.sock or tcp://host:port"
            ))
        })?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(EngineError::Config(format!(
            "{what}={raw} names no host; use e.g. tcp://127.0.0.1:2375"
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

/// The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// The `currentContext` of the CLI's `config.json` and where it was read, or `None` when the
/// file does not exist or names none. A file that cannot be read is an error: the context it
/// may name is unknown.
fn current_context(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, EngineError> {
    let Some(dir) = config_dir(env) else {
        return Ok(None);
    };
    let file = dir.join("config.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Config(format!(
                "reading {} (for its currentContext): {e}",
                file.display()
            )))
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        EngineError::Config(format!(
            "{} is not valid JSON ({e}), so its currentContext is unknown; fix the file",
            file.display()
        ))
    })?;
    Ok(json
        .get("currentContext")
        .and_then(|c| c.as_str())
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            (
                c.to_string(),
                format!("the currentContext of {}", file.display()),
            )
        }))
}

/// The engine of the context `name` (chosen by `origin`), from the CLI's context store:
/// `contexts/meta/<sha256 of name>/meta.json` and `contexts/tls/<same>/docker/*.pem`.
fn from_context(
    name: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConnectOptions, EngineError> {
    let unusable = |why: String| {
        EngineError::Config(format!(
            "Docker context `{name}` (from {origin}) {why}; the deployer does not fall back to \
             another engine. List contexts with `docker context ls`, or set DOCKER_CONTEXT or DOCKER_HOST"
        ))
    };
    let Some(dir) = config_dir(env) else {
        return Err(unusable(
            "cannot be looked up: neither DOCKER_CONFIG nor HOME is set".into(),
        ));
    };
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_file = dir.join("contexts/meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unusable(format!(
                "does not exist (no {})",
                meta_file.display()
            )))
        }
        Err(e) => {
            return Err(unusable(format!(
                "cannot be read: {}: {e}",
                meta_file.display()
            )))
        }
    };
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| unusable(format!("has a malformed {} ({e})", meta_file.display())))?;
    let endpoint = meta.get("Endpoints").and_then(|e| e.get("docker"));
    let raw = endpoint
        .and_then(|e| e.get("Host"))
        .and_then(|h| h.as_str())
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| unusable("has no Docker endpoint host".into()))?;
    if endpoint
        .and_then(|e| e.get("SkipTLSVerify"))
        .and_then(|s| s.as_bool())
        == Some(true)
    {
        return Err(unusable(
            "skips TLS verification, which the deployer does not do; give the context the engine's CA \
             (`docker context update --docker \"ca=...,cert=...,key=...\"`)"
                .into(),
        ));
    }
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let files = TlsFiles {
        ca: tls_dir.join("ca.pem"),
        cert: tls_dir.join("cert.pem"),
        key: tls_dir.join("key.pem"),
    };
    let present: Vec<bool> = [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|f| Path::new(f).exists())
        .collect();
    let tls = if present.iter().all(|p| *p) {
        true
    } else if present.iter().any(|p| *p) {
        return Err(unusable(format!(
            "has only part of its TLS material in {}; the deployer needs ca.pem, cert.pem and key.pem",
            tls_dir.display()
        )));
    } else {
        false
    };
    let host =
        normalize_host(raw, tls, &format!("context `{name}`: Host")).map_err(|e| match e {
            EngineError::Config(m) => EngineError::Config(format!("{m} (context from {origin})")),
            other => other,
        })?;
    Ok(ConnectOptions {
        tls: (tls && host.starts_with("tcp://")).then_some(files),
        host,
        source: HostSource::Context(name.to_string()),
    })
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
            Ok(o) => match &o.tls {
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
            "error: bad Docker connection settings: DOCKER_HOST=ssh://me@h: ssh:// engines are not supported; \
             forward the engine's socket instead (`ssh -nNT -L /tmp/docker-remote.sock:/var/run/docker.sock me@h`) \
             and use DOCKER_HOST=unix:///tmp/docker-remote.sock, or expose the engine on tcp:// with TLS",
        );
        check(
            &[("DOCKER_HOST", "npipe:////./pipe/docker_engine")],
            "error: bad Docker connection settings: DOCKER_HOST=npipe:////./pipe/docker_engine uses an \
             unsupported scheme; use unix:///path/to/docker.sock or tcp://host:port",
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
            source: HostSource::Env,
        };
        assert!(o("unix:///var/run/docker.sock").is_local());
        assert!(o("tcp://127.0.0.1:2375").is_local());
        assert!(!o("tcp://build-box:2375").is_local());
        assert_eq!(o("tcp://build-box:2375").published_host(), "build-box");
    }

    /// A docker CLI config dir with `config.json` (naming `current`, when given) and the
    /// contexts `(name, host, tls files, skip verify)`.
    fn store(current: Option<&str>, contexts: &[(&str, &str, &[&str], bool)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = match current {
            Some(c) => format!(r#"{{"auths": {{}}, "currentContext": "{c}"}}"#),
            None => r#"{"auths": {}}"#.to_string(),
        };
        std::fs::write(dir.path().join("config.json"), config).expect("write config");
        for (name, host, tls, skip) in contexts {
            let id = hex::encode(Sha256::digest(name.as_bytes()));
            let meta = dir.path().join("contexts/meta").join(&id);
            std::fs::create_dir_all(&meta).expect("mkdir");
            let json = serde_json::json!({
                "Name": name,
                "Metadata": {"Description": "test"},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}}
            });
            std::fs::write(meta.join("meta.json"), json.to_string()).expect("write meta");
            let tls_dir = dir.path().join("contexts/tls").join(&id).join("docker");
            for f in *tls {
                std::fs::create_dir_all(&tls_dir).expect("mkdir");
                std::fs::write(tls_dir.join(f), "pem").expect("write pem");
            }
        }
        dir
    }

    fn resolve(dir: &tempfile::TempDir, vars: &[(&str, &str)]) -> String {
        let config = dir.path().display().to_string();
        let env = |k: &str| {
            if k == "DOCKER_CONFIG" {
                return Some(config.clone());
            }
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        match ConnectOptions::from_env(&env) {
            Ok(o) => {
                let tls = o
                    .tls
                    .as_ref()
                    .map(|t| {
                        format!(
                            " tls={}",
                            t.ca.strip_prefix(dir.path()).unwrap_or(&t.ca).display()
                        )
                    })
                    .unwrap_or_default();
                format!("{o}{tls}")
            }
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn contexts_are_honoured_like_the_docker_cli() {
        let all: &[&str] = &["ca.pem", "cert.pem", "key.pem"];
        let dir = store(
            Some("vm"),
            &[
                ("vm", "tcp://vm.example:2376", all, false),
                ("plain", "tcp://10.1.2.3", &[], false),
                ("sock", "unix:///run/other.sock", &[], false),
                ("half", "tcp://h:2376", &["ca.pem"], false),
                ("insecure", "tcp://h:2376", all, true),
                ("over-ssh", "ssh://me@vm", &[], false),
            ],
        );
        let vm_ca = format!(
            "contexts/tls/{}/docker/ca.pem",
            hex::encode(Sha256::digest(b"vm"))
        );
        // currentContext of config.json, with the context's TLS material.
        assert_eq!(
            resolve(&dir, &[]),
            format!("tcp://vm.example:2376 (context: vm) tls={vm_ca}")
        );
        // DOCKER_CONTEXT over currentContext.
        assert_eq!(
            resolve(&dir, &[("DOCKER_CONTEXT", "sock")]),
            "unix:///run/other.sock (context: sock)"
        );
        assert_eq!(
            resolve(&dir, &[("DOCKER_CONTEXT", "plain")]),
            "tcp://10.1.2.3:2375 (context: plain)"
        );
        // DOCKER_HOST over both.
        assert_eq!(
            resolve(
                &dir,
                &[("DOCKER_CONTEXT", "sock"), ("DOCKER_HOST", "tcp://a:1")]
            ),
            "tcp://a:1 (DOCKER_HOST)"
        );
        // `default` is the usual default, whatever config.json says.
        assert_eq!(
            resolve(&dir, &[("DOCKER_CONTEXT", "default")]),
            "unix:///var/run/docker.sock (context: default)"
        );
        // Unknown or unusable contexts are errors, never a fall-back.
        let missing = resolve(&dir, &[("DOCKER_CONTEXT", "nope")]);
        assert!(
            missing.starts_with("error: bad Docker connection settings: Docker context `nope` (from DOCKER_CONTEXT) does not exist (no ")
                && missing.contains("does not fall back to another engine"),
            "{missing}"
        );
        let half = resolve(&dir, &[("DOCKER_CONTEXT", "half")]);
        assert!(half.contains("has only part of its TLS material"), "{half}");
        let insecure = resolve(&dir, &[("DOCKER_CONTEXT", "insecure")]);
        assert!(insecure.contains("skips TLS verification"), "{insecure}");
        let ssh = resolve(&dir, &[("DOCKER_CONTEXT", "over-ssh")]);
        assert!(
            ssh.contains("ssh:// engines are not supported")
                && ssh.contains("(context from DOCKER_CONTEXT)"),
            "{ssh}"
        );
        // A currentContext naming a context that is not there.
        let dangling = store(Some("gone"), &[]);
        let err = resolve(&dangling, &[]);
        assert!(
            err.contains("Docker context `gone` (from the currentContext of ")
                && err.contains("does not exist"),
            "{err}"
        );
        // No config.json, or one without currentContext: the default socket.
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            resolve(&empty, &[]),
            "unix:///var/run/docker.sock (context: default)"
        );
        assert_eq!(
            resolve(&store(None, &[]), &[]),
            "unix:///var/run/docker.sock (context: default)"
        );
        // A config.json that does not parse may name a context: refuse to guess.
        std::fs::write(empty.path().join("config.json"), "{not json").expect("write");
        let bad = resolve(&empty, &[]);
        assert!(bad.contains("is not valid JSON"), "{bad}");
    }
}
