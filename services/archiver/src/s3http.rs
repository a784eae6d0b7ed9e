//! The HTTP transport of the S3 backend: plain HTTP over the fleet's `reqwest` client, so the
//! archiver carries no TLS stack. It serves S3-compatible stores on the internal network
//! (`AWS_ENDPOINT=http://minio:9000`, `AWS_ALLOW_HTTP=true`); https needs the `s3-tls` feature,
//! which uses object_store's own client instead.

use http_body_util::BodyExt;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};

/// Builds [`PlainHttp`] clients for object_store.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainHttpConnector;

/// An object_store HTTP service over a plain-HTTP `reqwest::Client`.
#[derive(Debug, Clone)]
pub struct PlainHttp {
    client: reqwest::Client,
}

impl HttpConnector for PlainHttpConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = service_kit::net::client_builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(PlainHttp { client }))
    }
}

#[async_trait::async_trait]
impl HttpService for PlainHttp {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        if parts.uri.scheme_str() != Some("http") {
            return Err(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::other(format!(
                    "{} is not plain http; use an http:// AWS_ENDPOINT with AWS_ALLOW_HTTP=true, or build the archiver with the s3-tls feature",
                    parts.uri
                )),
            ));
        }
        let body = body
            .collect()
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?
            .to_bytes();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        let response = self
            .client
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(classify)?;
        let mut answer = HttpResponse::new(HttpResponseBody::from(bytes));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    let kind = if error.is_timeout() {
        HttpErrorKind::Timeout
    } else if error.is_connect() {
        HttpErrorKind::Connect
    } else if error.is_body() || error.is_decode() {
        HttpErrorKind::Interrupted
    } else {
        HttpErrorKind::Request
    };
    HttpError::new(kind, error)
}
