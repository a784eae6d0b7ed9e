//! One error type for HTTP handlers, and body/query extractors whose rejections use it.
//!
//! Every error answer has the body `{"error": <code>, "message": <text for a person>}`, possibly
//! with extra fields (e.g. `current_version`). Client mistakes are 4xx; 5xx answers hide the
//! internals, which are logged instead.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// An error answer: status, machine-readable code, human message and optional extra fields.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    fields: Map<String, Value>,
    /// For 5xx: what really happened. Logged, never sent.
    internal: Option<String>,
}

impl AppError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            fields: Map::new(),
            internal: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the request is well-formed but its content is not acceptable.
    pub fn unprocessable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is over the configured limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
    }

    /// 503: a dependency is not available right now; the client may retry.
    pub fn unavailable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500: something failed inside. `detail` is logged; the client sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the service failed to handle the request; the cause was logged, try again later",
        );
        error.internal = Some(format!("{detail:#}"));
        error
    }

    /// Adds an extra field to the JSON body (ignored if it cannot be serialised).
    pub fn with_field(mut self, key: &str, value: impl Serialize) -> Self {
        if let Ok(value) = serde_json::to_value(value) {
            self.fields.insert(key.to_owned(), value);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            tracing::error!(status = %self.status, code = %self.code, detail = %detail, "request failed");
        } else if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = %self.code, message = %self.message, "request failed");
        }
        let mut body = Map::with_capacity(2 + self.fields.len());
        body.insert("error".to_owned(), Value::String(self.code.into_owned()));
        body.insert("message".to_owned(), Value::String(self.message));
        body.extend(self.fields);
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// Answers unknown routes with a JSON 404 (use as the router's fallback).
pub async fn route_not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found(
        "route_not_found",
        format!(
            "no route for {}; see the service README for its routes",
            uri.path()
        ),
    )
}

/// A JSON body extractor whose rejections are [`AppError`]s naming the offending field.
///
/// - malformed JSON: 400 `malformed_json`
/// - wrong type, missing or unknown field: 422 `invalid_field` with `"field": <path>`
/// - body over the limit (axum's `DefaultBodyLimit`): 413 `body_too_large`
///
/// The content type is not checked, so clients that forget the header still work.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::payload_too_large(
                    "the request body is over the size limit; send a smaller body (e.g. split the batch)",
                )
            } else {
                AppError::bad_request(
                    "unreadable_body",
                    format!("could not read the request body: {}", rejection.body_text()),
                )
            }
        })?;
        json_from_slice(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Parses a JSON body with the same error mapping as [`ApiJson`].
pub fn json_from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, error: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let message = if path == "." {
                format!("the request body does not have the expected shape: {error}")
            } else {
                format!("the field `{path}` is invalid: {error}")
            };
            AppError::unprocessable("invalid_field", message).with_field("field", path)
        }
        Category::Syntax | Category::Eof | Category::Io => AppError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {error}"),
        ),
    }
}

/// A query-string extractor whose rejections are 400 `invalid_query` [`AppError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = if path == "." {
                    format!("the query string is invalid: {}", error.inner())
                } else {
                    format!("the query parameter `{path}` is invalid: {}", error.inner())
                };
                AppError::bad_request("invalid_query", message).with_field("parameter", path)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    #[derive(Debug, serde::Deserialize, Serialize)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
        count: u32,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize, Serialize)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Params {
        limit: Option<u32>,
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/json",
                post(|ApiJson(b): ApiJson<Body1>| async move { ApiJson(b) }),
            )
            .route(
                "/query",
                get(|ApiQuery(p): ApiQuery<Params>| async move { format!("{:?}", p.limit) }),
            )
            .route(
                "/conflict",
                get(|| async {
                    AppError::conflict("wrong_expected_version", "stale")
                        .with_field("current_version", 3)
                }),
            )
            .route(
                "/boom",
                get(|| async { AppError::internal("disk on fire at /secret/path") }),
            )
            .fallback(route_not_found)
            .layer(DefaultBodyLimit::max(64))
    }

    async fn call(method: &str, uri: &str, body: &str) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("valid request");
        let response = app().oneshot(request).await.expect("router answers");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("read body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn check(
        method: &str,
        uri: &str,
        body: &str,
        status: u16,
        code: &str,
        field: Option<&str>,
    ) {
        let (got_status, value) = call(method, uri, body).await;
        assert_eq!(got_status, status, "{method} {uri} {body}: {value}");
        assert_eq!(value["error"], code, "{method} {uri} {body}: {value}");
        assert!(
            value["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{value}"
        );
        if let Some(field) = field {
            let key = if uri.starts_with("/query") {
                "parameter"
            } else {
                "field"
            };
            assert_eq!(value[key], field, "{value}");
        }
    }

    #[tokio::test]
    async fn rejections_are_json_errors() {
        check("POST", "/json", "{not json", 400, "malformed_json", None).await;
        check(
            "POST",
            "/json",
            r#"{"name":"a","count":1,"items":[]} x"#,
            400,
            "malformed_json",
            None,
        )
        .await;
        check(
            "POST",
            "/json",
            r#"{"name":"a","count":"1","items":[]}"#,
            422,
            "invalid_field",
            Some("count"),
        )
        .await;
        check(
            "POST",
            "/json",
            r#"{"name":"a","count":1,"items":[{"id":"x"}]}"#,
            422,
            "invalid_field",
            Some("items[0].id"),
        )
        .await;
        check(
            "POST",
            "/json",
            r#"{"name":"a","count":1}"#,
            422,
            "invalid_field",
            Some("."),
        )
        .await;
        check(
            "POST",
            "/json",
            &format!(r#"{{"name":"{}","count":1,"items":[]}}"#, "a".repeat(100)),
            413,
            "body_too_large",
            None,
        )
        .await;
        check(
            "GET",
            "/query?limit=abc",
            "",
            400,
            "invalid_query",
            Some("limit"),
        )
        .await;
        check("GET", "/conflict", "", 409, "wrong_expected_version", None).await;
        check("GET", "/nowhere", "", 404, "route_not_found", None).await;
    }

    #[tokio::test]
    async fn good_input_passes() {
        let (status, value) = call(
            "POST",
            "/json",
            r#"{"name":"a","count":1,"items":[{"id":2}]}"#,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(value["items"][0]["id"], 2);
        let (status, value) = call("GET", "/query?limit=7", "").await;
        assert_eq!((status, value), (200, Value::String("Some(7)".into())));
    }

    #[tokio::test]
    async fn extra_fields_and_hidden_internals() {
        let (_, value) = call("GET", "/conflict", "").await;
        assert_eq!(value["current_version"], 3);
        let (status, value) = call("GET", "/boom", "").await;
        assert_eq!(status, 500);
        assert_eq!(value["error"], "internal_error");
        assert!(!value.to_string().contains("secret"), "{value}");
    }
}
