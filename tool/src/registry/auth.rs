//! Registry credentials as the docker CLI keeps them, and `WWW-Authenticate` challenges.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use super::RegistryError;

/// A user name and password (or token) for one registry. Debug never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
    /// Where they came from, for messages: the config file or the helper program.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, (sensitive))", self.username)
    }
}

impl Credentials {
    /// `Basic base64(user:secret)`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The parts of `~/.docker/config.json` that hold credentials.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    /// The file this was read from, for messages.
    #[serde(skip)]
    path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Reads `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`; a missing file is
    /// an empty configuration.
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<DockerConfig, RegistryError> {
        let dir = env("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")));
        let Some(dir) = dir else {
            return Ok(DockerConfig::default());
        };
        let path = dir.join("config.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => match DockerConfig::parse(&text) {
                Ok(config) => Ok(DockerConfig {
                    path: Some(path),
                    ..config
                }),
                Err(e) => Err(RegistryError::Credentials(format!(
                    "parsing {}: {e}",
                    path.display()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(e) => Err(RegistryError::Credentials(format!(
                "reading {}: {e}",
                path.display()
            ))),
        }
    }

    /// Parses the JSON text of a `config.json`.
    pub fn parse(text: &str) -> Result<DockerConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Credentials for `registry`: a `credHelpers` entry first, then `auths`, then `credsStore`.
    /// Helpers are found on `PATH`.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(helper) = self.cred_helpers.get(registry) {
            return run_helper(helper, registry, &self.file_name());
        }
        if let Some(entry) = self.auth_entry(registry) {
            if let Some(c) = entry.decode(registry, &self.file_name())? {
                return Ok(Some(c));
            }
        }
        if let Some(store) = &self.creds_store {
            return run_helper(store, registry, &self.file_name());
        }
        Ok(None)
    }

    /// The path of the file this configuration was read from, or a general name for it.
    pub fn file_name(&self) -> String {
        self.path.as_ref().map_or_else(
            || "the docker config.json".to_string(),
            |p| p.display().to_string(),
        )
    }

    fn auth_entry(&self, registry: &str) -> Option<&AuthEntry> {
        self.auths.get(registry).or_else(|| {
            self.auths.iter().find_map(|(k, v)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let k = k.split('/').next().unwrap_or(k);
                (k == registry).then_some(v)
            })
        })
    }
}

impl AuthEntry {
    fn decode(&self, registry: &str, file: &str) -> Result<Option<Credentials>, RegistryError> {
        let source = format!("the auths entry in {file}");
        if let Some(token) = &self.identitytoken {
            return Ok(Some(Credentials {
                username: "<token>".into(),
                secret: token.clone(),
                source,
            }));
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                secret: p.clone(),
                source,
            }));
        }
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| {
                RegistryError::Credentials(format!(
                    "the auth entry for {registry} is not base64; run `docker login {registry}` again"
                ))
            })?;
        let raw = String::from_utf8_lossy(&raw);
        let (u, p) = raw.split_once(':').ok_or_else(|| {
            RegistryError::Credentials(format!(
                "the auth entry for {registry} is not user:password; run `docker login {registry}` again"
            ))
        })?;
        Ok(Some(Credentials {
            username: u.to_string(),
            secret: p.to_string(),
            source,
        }))
    }
}

/// What helpers print (with a failure status) when they hold nothing for the registry.
const HELPER_NOT_FOUND: &str = "credentials not found";

/// Runs `docker-credential-<helper> get` with the registry on stdin. A helper that holds no
/// credentials for it (it says "credentials not found") means none; any other failure is an error.
fn run_helper(
    helper: &str,
    registry: &str,
    file: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Err(RegistryError::Credentials(format!(
                "running {program}: {e}; install it or remove it from {file}"
            )))
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("running {program}: {e}")))?;
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains(HELPER_NOT_FOUND) || stderr.contains(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        let said = [stderr.trim(), stdout.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(|s| format!(": {}", s.lines().next().unwrap_or(s)))
            .unwrap_or_default();
        return Err(RegistryError::Credentials(format!(
            "`{program} get` failed for {registry} ({}){said}; fix the helper or remove it from {file}",
            out.status
        )));
    }
    #[derive(serde::Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|e| {
        RegistryError::Credentials(format!(
            "reading the answer of `{program} get` for {registry}: {e}; fix the helper or remove it from {file}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
        source: program,
    }))
}

/// A `WWW-Authenticate` challenge from a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut fields = BTreeMap::new();
        let mut rest = params.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let key = key.trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            fields.insert(key, value.to_string());
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge::Bearer {
            realm: fields.remove("realm")?,
            service: fields.remove("service"),
            scope: fields.remove("scope"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Bearer realm="https://r/t""#),
            Some(Challenge::Bearer {
                realm: "https://r/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=\"x\""), None);
    }

    #[test]
    fn reads_auths_entries() {
        let cfg = DockerConfig::parse(
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"},
                "https://index.example.com/v1/": {"auth": "YTpiOmM="}
            }}"#,
        )
        .expect("parse");
        let c = cfg
            .credentials("127.0.0.1:5000")
            .expect("creds")
            .expect("some");
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("user", "pass"));
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYXNz");
        let c = cfg
            .credentials("index.example.com")
            .expect("creds")
            .expect("some");
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("a", "b:c"));
        assert_eq!(cfg.credentials("other:5000").expect("creds"), None);
        assert_eq!(format!("{c:?}"), "Credentials(a, (sensitive))");
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let cfg = DockerConfig::parse(r#"{"credHelpers": {"r.example": "nope-not-installed"}}"#)
            .expect("parse");
        let err = cfg.credentials("r.example").expect_err("helper missing");
        assert!(
            err.to_string().starts_with(
                "reading docker credentials: running docker-credential-nope-not-installed: "
            ),
            "{err}"
        );
    }
}
