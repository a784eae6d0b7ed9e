//! Registry client: resolves an image tag to its manifest digest through the registry HTTP API
//! (v2), without pulling. Handles bearer-token and basic auth with credentials from the docker
//! CLI's `config.json` (`auths`, `credsStore`, `credHelpers`).

mod auth;
mod http_client;

use http::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use sha2::Digest as _;

pub use auth::{Challenge, Credentials, DockerConfig};
use http_client::HttpClient;

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
    #[error("registry {registry} refused access to {repository} ({status}); run `docker login {registry}` or check the credentials")]
    Denied {
        registry: String,
        repository: String,
        status: u16,
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

/// Resolves tags to digests; keeps one HTTP connection pool. HTTPS uses rustls with the ring
/// provider and the system's root certificates.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: HttpClient,
    config: DockerConfig,
}

impl RegistryClient {
    /// A client using `config` for credentials.
    pub fn new(config: DockerConfig) -> Result<RegistryClient, RegistryError> {
        let http = HttpClient::new().map_err(|detail| RegistryError::Unreachable {
            registry: "(any)".into(),
            detail: format!("preparing the HTTPS client: {detail}"),
        })?;
        Ok(RegistryClient { http, config })
    }

    /// Credentials for `registry`, if the docker configuration has any.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        self.config.credentials(registry)
    }

    /// The manifest digest (`sha256:...`) that `reference` (a tag or digest) points to in
    /// `repository` on `registry` (`host[:port]`). Plain HTTP is used for `localhost`,
    /// `127.0.0.1` and `[::1]`, as Docker treats those as insecure registries; HTTPS otherwise.
    pub async fn resolve(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<String, RegistryError> {
        let url = format!(
            "{}://{registry}/v2/{repository}/manifests/{reference}",
            scheme_for(registry)
        );
        let image = format!("{registry}/{repository}:{reference}");
        let unreachable = |detail: String| RegistryError::Unreachable {
            registry: registry.to_string(),
            detail,
        };

        let mut auth_header: Option<String> = None;
        for attempt in 0..2 {
            let mut headers = vec![(ACCEPT, MANIFEST_ACCEPT.to_string())];
            if let Some(h) = &auth_header {
                headers.push((AUTHORIZATION, h.clone()));
            }
            let resp = self
                .http
                .send(Method::HEAD, &url, &headers, false)
                .await
                .map_err(unreachable)?;
            match resp.status {
                StatusCode::OK => {
                    if let Some(d) = digest_header(&resp.headers) {
                        return Ok(d);
                    }
                    // Some registries omit the header on HEAD: fetch and hash the manifest.
                    let resp = self
                        .http
                        .send(Method::GET, &url, &headers, true)
                        .await
                        .map_err(unreachable)?;
                    if let Some(d) = digest_header(&resp.headers) {
                        return Ok(d);
                    }
                    return Ok(format!(
                        "sha256:{}",
                        hex::encode(sha2::Sha256::digest(&resp.body))
                    ));
                }
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    let challenge = resp
                        .headers
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(Challenge::parse);
                    let creds = self.config.credentials(registry)?;
                    auth_header = Some(match challenge {
                        Some(Challenge::Basic) | None => match creds {
                            Some(c) => c.basic_header(),
                            None => {
                                return Err(RegistryError::Denied {
                                    registry: registry.to_string(),
                                    repository: repository.to_string(),
                                    status: 401,
                                })
                            }
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
                                    registry,
                                    repository,
                                    &realm,
                                    service.as_deref(),
                                    &scope,
                                    creds.as_ref(),
                                )
                                .await?;
                            format!("Bearer {token}")
                        }
                    });
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Denied {
                        registry: registry.to_string(),
                        repository: repository.to_string(),
                        status: resp.status.as_u16(),
                    })
                }
                StatusCode::NOT_FOUND => {
                    return Err(RegistryError::NotFound {
                        registry: registry.to_string(),
                        image,
                    })
                }
                other => {
                    return Err(RegistryError::Unexpected {
                        registry: registry.to_string(),
                        image,
                        status: other.as_u16(),
                        detail: other.canonical_reason().unwrap_or("").to_string(),
                    })
                }
            }
        }
        Err(RegistryError::Denied {
            registry: registry.to_string(),
            repository: repository.to_string(),
            status: 401,
        })
    }

    async fn fetch_token(
        &self,
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
        let resp = self
            .http
            .send(Method::GET, url.as_str(), &headers, true)
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: registry.to_string(),
                detail: format!("fetching a token from {realm}: {e}"),
            })?;
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

/// `http` for loopback registries (which Docker treats as insecure), `https` otherwise.
pub fn scheme_for(registry: &str) -> &'static str {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        "http"
    } else {
        "https"
    }
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
        assert_eq!(scheme_for("localhost:5000"), "http");
        assert_eq!(scheme_for("localhost"), "http");
        assert_eq!(scheme_for("[::1]:5000"), "http");
        assert_eq!(scheme_for("registry.example.com"), "https");
        assert_eq!(scheme_for("ghcr.io"), "https");
    }
}
