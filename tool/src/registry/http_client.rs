//! A small HTTP/1.1 client over hyper and rustls (ring provider, system roots plus any CA
//! certificates given for one registry), for registry requests. The deployer does not use reqwest's TLS: its features would spread to every
//! workspace binary built alongside it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

/// How long one request (and reading its body) may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled HTTP and HTTPS client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

/// A request that got no answer.
#[derive(Debug)]
pub struct SendError {
    pub detail: String,
    /// The server's certificate was refused (unknown issuer, wrong name, expired...).
    pub untrusted: bool,
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    /// A client trusting the system's roots and `extra_roots`.
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<HttpClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A certificate the store cannot use is skipped, as the docker CLI does.
            let _ = roots.add(cert);
        }
        for cert in extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| format!("a CA certificate cannot be used: {e}"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Sends one request; reads the body only when `read_body`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        read_body: bool,
    ) -> Result<Response, SendError> {
        let other = |detail: String| SendError {
            detail,
            untrusted: false,
        };
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| other(format!("building the request for {url}: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| other(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| SendError {
                detail: error_chain(&e),
                untrusted: refused_certificate(&e),
            })?;
        let (parts, body) = resp.into_parts();
        let body = if read_body {
            tokio::time::timeout(TIMEOUT, body.collect())
                .await
                .map_err(|_| other(format!("the answer did not arrive within {TIMEOUT:?}")))?
                .map_err(|e| other(error_chain(&e)))?
                .to_bytes()
        } else {
            Bytes::new()
        };
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg
}

/// Whether rustls refused the server's certificate somewhere in `e`'s chain. rustls errors
/// travel inside (possibly nested) `std::io::Error`s, whose `source` skips the wrapped error, so
/// look inside those too.
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_)
        );
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        if refused_certificate(inner) {
            return true;
        }
    }
    e.source().is_some_and(refused_certificate)
}
