//! Registry client: resolves an image tag to its manifest digest through the registry HTTP API
//! (v2), without pulling. Handles bearer-token and basic auth with credentials from the docker
//! CLI's `config.json` (`auths`, `credsStore`, `credHelpers`), and private CAs laid out like the
//! Docker daemon's `/etc/docker/certs.d/<host:port>/*.crt`.

mod auth;
mod http_client;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use sha2::Digest as _;

pub use auth::{Challenge, Credentials, DockerConfig};
use http_client::{HttpClient, SendError};

/// The variable naming the directory of per-registry CA certificates.
pub const CERTS_DIR_ENV: &str = "DEPLOYER_REGISTRY_CERTS";
/// Where the Docker daemon keeps per-registry CA certificates; the default of [`CERTS_DIR_ENV`].
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The directory of per-registry CA certificates: `$DEPLOYER_REGISTRY_CERTS`, else
/// `/etc/docker/certs.d`. `<dir>/<host:port>/*.crt` are the CAs trusted for that registry.
pub fn certs_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env(CERTS_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CERTS_DIR), PathBuf::from)
}

/// Manifest media types we accept, most specific last (the registry picks).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A failed registry look-up.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "cannot reach registry {registry}: {detail}; check the address and that the registry runs"
    )]
    Unreachable { registry: String, detail: String },
    #[error("authentication to registry {registry} failed: {config} holds no credentials for it; run `docker login {registry}`")]
    NoCredentials {
        registry: String,
        repository: String,
        config: String,
    },
    #[error("authentication to registry {registry} failed: it refused user {username} from {from}; run `docker login {registry}` again or fix the credentials there")]
    AuthFailed {
        registry: String,
        repository: String,
        username: String,
        from: String,
    },
    #[error("registry {registry} refused access to {repository} ({status}); check that the credentials may pull it")]
    Denied {
        registry: String,
        repository: String,
        status: u16,
    },
    #[error("the certificate of registry {registry} is not trusted ({detail}); put the certificate of the CA that signed it in {ca_file}, or set {CERTS_DIR_ENV} to a directory laid out like {DEFAULT_CERTS_DIR}")]
    Untrusted {
        registry: String,
        detail: String,
        ca_file: String,
    },
    #[error("registry {registry} answered 400 to plain HTTP; if it serves HTTPS, put the certificate of the CA that signed it in {ca_file} (a loopback registry is spoken to over HTTPS only when that directory exists)")]
    PlainHttpRefused { registry: String, ca_file: String },
    #[error("reading the CA certificates for registry {registry} in {dir}: {detail}; put PEM certificates in files ending .crt there")]
    Certificates {
        registry: String,
        dir: String,
        detail: String,
    },
    #[error("image {image} not found in registry {registry}; push it first or fix the tag")]
    NotFound { registry: String, image: String },
    #[error("registry {registry} answered {status} for {image}: {detail}")]
    Unexpected {
        registry: String,
        image: String,
        status: u16,
        detail: String,
    },
    #[error("reading docker credentials: {0}")]
    Credentials(String),
}

/// Resolves tags to digests; keeps one HTTP connection pool, plus one per registry that has
/// its own CA certificates. HTTPS uses rustls with the ring provider and the system's root
/// certificates, plus `<certs dir>/<host:port>/*.crt` for that registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: HttpClient,
    config: DockerConfig,
    certs_dir: PathBuf,
    with_own_ca: Arc<Mutex<HashMap<String, HttpClient>>>,
    /// The `Authorization` that last worked per (registry, repository), so the manifest and
    /// blob requests after a tag's resolution fetch no new token.
    authorizations: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl RegistryClient {
    /// A client using `config` for credentials and CA certificates from `/etc/docker/certs.d`.
    pub fn new(config: DockerConfig) -> Result<RegistryClient, RegistryError> {
        let http = HttpClient::new(&[]).map_err(|detail| RegistryError::Unreachable {
            registry: "(any)".into(),
            detail: format!("preparing the HTTPS client: {detail}"),
        })?;
        Ok(RegistryClient {
            http,
            config,
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            with_own_ca: Arc::default(),
            authorizations: Arc::default(),
        })
    }

    /// The same client, taking per-registry CA certificates from `dir` (see [`certs_dir`]).
    pub fn with_certs_dir(self, dir: impl Into<PathBuf>) -> RegistryClient {
        RegistryClient {
            certs_dir: dir.into(),
            with_own_ca: Arc::default(),
            ..self
        }
    }

    /// Credentials for `registry`, if the docker configuration has any.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        self.config.credentials(registry)
    }

    /// The manifest digest (`sha256:...`) that `reference` (a tag or digest) points to in
    /// `repository` on `registry` (`host[:port]`). Plain HTTP is used for `localhost`,
    /// `127.0.0.1` and `[::1]`, as Docker treats those as insecure registries, unless the certs
    /// directory has a folder for the registry; HTTPS otherwise.
    pub async fn resolve(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<String, RegistryError> {
        let (scheme, _) = self.endpoint(registry)?;
        let url = format!("{scheme}://{registry}/v2/{repository}/manifests/{reference}");
        let image = format!("{registry}/{repository}:{reference}");
        let resp = self
            .authed(
                registry,
                repository,
                &image,
                Method::HEAD,
                &url,
                MANIFEST_ACCEPT,
            )
            .await?;
        if let Some(d) = digest_header(&resp.headers) {
            return Ok(d);
        }
        // Some registries omit the header on HEAD: fetch and hash the manifest.
        let resp = self
            .authed(
                registry,
                repository,
                &image,
                Method::GET,
                &url,
                MANIFEST_ACCEPT,
            )
            .await?;
        if let Some(d) = digest_header(&resp.headers) {
            return Ok(d);
        }
        Ok(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&resp.body))
        ))
    }

    /// The labels (`config.Labels`) of the image `reference` (a tag or digest) in `repository`
    /// on `registry`, read from its config blob without pulling: the manifest, the linux/amd64
    /// entry of an index or manifest list, then the config blob. An image without labels has
    /// an empty map.
    pub async fn labels(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        let (scheme, _) = self.endpoint(registry)?;
        let image = if reference.starts_with("sha256:") {
            format!("{registry}/{repository}@{reference}")
        } else {
            format!("{registry}/{repository}:{reference}")
        };
        let bad = |detail: String| RegistryError::Unexpected {
            registry: registry.to_string(),
            image: image.clone(),
            status: 200,
            detail,
        };
        let manifest_url = |r: &str| format!("{scheme}://{registry}/v2/{repository}/manifests/{r}");
        let mut url = manifest_url(reference);
        // The manifest; for an index or manifest list, then its linux/amd64 image manifest.
        for _ in 0..2 {
            let body = self
                .authed(
                    registry,
                    repository,
                    &image,
                    Method::GET,
                    &url,
                    MANIFEST_ACCEPT,
                )
                .await?
                .body;
            let m: ManifestDoc = serde_json::from_slice(&body)
                .map_err(|e| bad(format!("reading the manifest at {url}: {e}")))?;
            if let Some(config) = m.config {
                let blob = format!(
                    "{scheme}://{registry}/v2/{repository}/blobs/{}",
                    config.digest
                );
                let resp = self
                    .authed(registry, repository, &image, Method::GET, &blob, "*/*")
                    .await?;
                let resp = self.follow_redirect(registry, resp).await?;
                if !config.digest.starts_with("sha256:")
                    || format!("sha256:{}", hex::encode(sha2::Sha256::digest(&resp.body)))
                        != config.digest
                {
                    return Err(bad(format!(
                        "the config blob at {blob} does not match its digest {}",
                        config.digest
                    )));
                }
                let c: ImageConfig = serde_json::from_slice(&resp.body)
                    .map_err(|e| bad(format!("reading the image config at {blob}: {e}")))?;
                return Ok(c.config.and_then(|c| c.labels).unwrap_or_default());
            }
            let Some(entries) = m.manifests else {
                return Err(bad(format!(
                    "the manifest at {url} has neither a config nor a list of manifests"
                )));
            };
            let chosen = entries
                .iter()
                .find(|e| {
                    e.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or(match entries.as_slice() {
                    [only] if only.platform.is_none() => Some(only),
                    _ => None,
                })
                .ok_or_else(|| {
                    bad(format!(
                        "the index at {url} holds no linux/amd64 image ({} entries)",
                        entries.len()
                    ))
                })?;
            url = manifest_url(&chosen.digest);
        }
        Err(bad(format!("the index at {url} nests another index")))
    }

    /// A blob answer may redirect to storage elsewhere (S3, a CDN): follow one redirect,
    /// without the registry's credentials.
    async fn follow_redirect(
        &self,
        registry: &str,
        resp: http_client::Response,
    ) -> Result<http_client::Response, RegistryError> {
        if !resp.status.is_redirection() {
            return Ok(resp);
        }
        let location = resp
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Unreachable {
                registry: registry.to_string(),
                detail: format!("a redirect ({}) without a location", resp.status),
            })?
            .to_string();
        let resp = self
            .http
            .send(Method::GET, &location, &[], true)
            .await
            .map_err(|e| self.send_error(registry, e))?;
        if !resp.status.is_success() {
            return Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                detail: format!("{location} answered {}", resp.status),
            });
        }
        Ok(resp)
    }

    /// One request to `registry` for `repository`, authenticating on a 401 (bearer or basic,
    /// as challenged) and keeping the authorization for the next requests on the same
    /// repository. Answers 2xx and 3xx; the others become errors naming `image`.
    async fn authed(
        &self,
        registry: &str,
        repository: &str,
        image: &str,
        method: Method,
        url: &str,
        accept: &str,
    ) -> Result<http_client::Response, RegistryError> {
        let (scheme, http) = self.endpoint(registry)?;
        let read_body = method != Method::HEAD;
        let key = (registry.to_string(), repository.to_string());
        let cached = self
            .authorizations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let mut auth_header: Option<String> = cached.clone();
        let mut sent: Option<Credentials> = None;
        // A kept authorization may have expired: one more round then.
        let rounds = if cached.is_some() { 3 } else { 2 };
        for attempt in 0..rounds {
            let mut headers = vec![(ACCEPT, accept.to_string())];
            if let Some(h) = &auth_header {
                headers.push((AUTHORIZATION, h.clone()));
            }
            let resp = http
                .send(method.clone(), url, &headers, read_body)
                .await
                .map_err(|e| self.send_error(registry, e))?;
            match resp.status {
                s if s.is_success() || s.is_redirection() => {
                    if let Some(h) = auth_header.filter(|h| Some(h) != cached.as_ref()) {
                        self.authorizations
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, h);
                    }
                    return Ok(resp);
                }
                StatusCode::UNAUTHORIZED if attempt + 1 < rounds => {
                    let challenge = resp
                        .headers
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(Challenge::parse);
                    sent = self.config.credentials(registry)?;
                    auth_header = Some(match challenge {
                        Some(Challenge::Basic) | None => match &sent {
                            Some(c) => c.basic_header(),
                            None => return Err(self.auth_failed(registry, repository, None)),
                        },
                        Some(Challenge::Bearer {
                            realm,
                            service,
                            scope,
                        }) => {
                            let scope =
                                scope.unwrap_or_else(|| format!("repository:{repository}:pull"));
                            let token = self
                                .fetch_token(
                                    &http,
                                    registry,
                                    repository,
                                    &realm,
                                    service.as_deref(),
                                    &scope,
                                    sent.as_ref(),
                                )
                                .await?;
                            format!("Bearer {token}")
                        }
                    });
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(self.auth_failed(registry, repository, sent.as_ref()))
                }
                StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Denied {
                        registry: registry.to_string(),
                        repository: repository.to_string(),
                        status: 403,
                    })
                }
                // Go's TLS servers answer a plain HTTP request so.
                StatusCode::BAD_REQUEST if scheme == "http" => {
                    return Err(RegistryError::PlainHttpRefused {
                        registry: registry.to_string(),
                        ca_file: self.ca_file(registry),
                    })
                }
                StatusCode::NOT_FOUND => {
                    return Err(RegistryError::NotFound {
                        registry: registry.to_string(),
                        image: image.to_string(),
                    })
                }
                other => {
                    return Err(RegistryError::Unexpected {
                        registry: registry.to_string(),
                        image: image.to_string(),
                        status: other.as_u16(),
                        detail: other.canonical_reason().unwrap_or("").to_string(),
                    })
                }
            }
        }
        Err(self.auth_failed(registry, repository, sent.as_ref()))
    }

    /// The scheme and the client for `registry`: HTTPS trusting `<certs dir>/<registry>/*.crt`
    /// when that folder exists, else [`scheme_for`] and the system's roots.
    fn endpoint(&self, registry: &str) -> Result<(&'static str, HttpClient), RegistryError> {
        let dir = self.certs_dir.join(registry);
        if !dir.is_dir() {
            return Ok((scheme_for(registry), self.http.clone()));
        }
        let mut clients = self.with_own_ca.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(registry) {
            return Ok(("https", c.clone()));
        }
        let failed = |detail: String| RegistryError::Certificates {
            registry: registry.to_string(),
            dir: dir.display().to_string(),
            detail,
        };
        let cas = read_cas(&dir).map_err(failed)?;
        let client = HttpClient::new(&cas).map_err(failed)?;
        clients.insert(registry.to_string(), client.clone());
        Ok(("https", client))
    }

    /// Where the CA certificate for `registry` belongs.
    fn ca_file(&self, registry: &str) -> String {
        self.certs_dir
            .join(registry)
            .join("ca.crt")
            .display()
            .to_string()
    }

    fn send_error(&self, registry: &str, e: SendError) -> RegistryError {
        if e.untrusted {
            RegistryError::Untrusted {
                registry: registry.to_string(),
                detail: e.detail,
                ca_file: self.ca_file(registry),
            }
        } else {
            RegistryError::Unreachable {
                registry: registry.to_string(),
                detail: e.detail,
            }
        }
    }

    /// A 401: no credentials were found, or the ones sent were refused.
    fn auth_failed(
        &self,
        registry: &str,
        repository: &str,
        sent: Option<&Credentials>,
    ) -> RegistryError {
        match sent {
            None => RegistryError::NoCredentials {
                registry: registry.to_string(),
                repository: repository.to_string(),
                config: self.config.file_name(),
            },
            Some(c) => RegistryError::AuthFailed {
                registry: registry.to_string(),
                repository: repository.to_string(),
                username: c.username.clone(),
                from: c.source.clone(),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_token(
        &self,
        http: &HttpClient,
        registry: &str,
        repository: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let unexpected = |detail: String| RegistryError::Unexpected {
            registry: registry.to_string(),
            image: repository.to_string(),
            status: 200,
            detail,
        };
        let mut url = url::Url::parse(realm)
            .map_err(|e| unexpected(format!("the token realm {realm:?} is not a URL: {e}")))?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(s) = service {
            url.query_pairs_mut().append_pair("service", s);
        }
        let mut headers = Vec::new();
        if let Some(c) = creds {
            headers.push((AUTHORIZATION, c.basic_header()));
        }
        let resp = http
            .send(Method::GET, url.as_str(), &headers, true)
            .await
            .map_err(|e| {
                self.send_error(
                    registry,
                    SendError {
                        detail: format!("fetching a token from {realm}: {}", e.detail),
                        ..e
                    },
                )
            })?;
        if resp.status == StatusCode::UNAUTHORIZED {
            return Err(self.auth_failed(registry, repository, creds));
        }
        if !resp.status.is_success() {
            return Err(RegistryError::Denied {
                registry: registry.to_string(),
                repository: repository.to_string(),
                status: resp.status.as_u16(),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&resp.body)
            .map_err(|e| unexpected(format!("reading the token answer from {realm}: {e}")))?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| unexpected(format!("the token answer from {realm} holds no token")))
    }
}

/// `http` for loopback registries (all of 127.0.0.0/8, `localhost`, `[::1]`; Docker treats them as
/// insecure), `https` otherwise.
pub fn scheme_for(registry: &str) -> &'static str {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    let loopback = host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback());
    if loopback || matches!(host, "localhost" | "[::1]") {
        "http"
    } else {
        "https"
    }
}

/// The PEM certificates in the `*.crt` files of `dir`, in name order.
fn read_cas(dir: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    let mut cas = Vec::new();
    for file in files {
        let name = file.display();
        let pem = std::fs::read(&file).map_err(|e| format!("reading {name}: {e}"))?;
        let before = cas.len();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cas.push(cert.map_err(|e| format!("{name}: {e}"))?);
        }
        if cas.len() == before {
            return Err(format!("{name} holds no PEM certificate"));
        }
    }
    Ok(cas)
}

/// The parts of an image manifest, an OCI index or a Docker manifest list that matter here.
#[derive(serde::Deserialize)]
struct ManifestDoc {
    config: Option<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

#[derive(serde::Deserialize)]
struct Descriptor {
    digest: String,
    platform: Option<Platform>,
}

#[derive(serde::Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

/// The image config blob: only `config.Labels` is read.
#[derive(serde::Deserialize)]
struct ImageConfig {
    config: Option<ContainerConfig>,
}

#[derive(serde::Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

fn digest_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        assert_eq!(scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(scheme_for("127.0.5.9:5000"), "http");
        assert_eq!(scheme_for("128.0.0.1:5000"), "https");
        assert_eq!(scheme_for("localhost:5000"), "http");
        assert_eq!(scheme_for("localhost"), "http");
        assert_eq!(scheme_for("[::1]:5000"), "http");
        assert_eq!(scheme_for("registry.example.com"), "https");
        assert_eq!(scheme_for("ghcr.io"), "https");
    }
}
