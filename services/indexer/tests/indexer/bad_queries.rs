//! Bad searches get a 400 with a code and a message that says what to change.

use indexer::{router, AppState, FeedMetrics, SearchIndex};
use serde_json::Value;
use tower::ServiceExt;

async fn call(state: &AppState, uri: &str) -> (u16, Value) {
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn bad_queries_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("dir");
    let feeder = SearchIndex::open(dir.path()).expect("index");
    let state = AppState::new(feeder.search_index().clone(), FeedMetrics::default());
    let long = format!("/search?q={}", "a".repeat(501));
    let cases: &[(&str, u16, &str, &str)] = &[
        ("/search?q=holiday", 200, "", ""),
        ("/search?q=holiday&type=account&limit=100", 200, "", ""),
        ("/search", 400, "missing_query", "the query is empty"),
        ("/search?q=%20%20", 400, "missing_query", "give q="),
        (
            "/search?q=x&limit=0",
            400,
            "invalid_limit",
            "limit must be between 1 and 100, got 0",
        ),
        (
            "/search?q=x&limit=101",
            400,
            "invalid_limit",
            "limit must be between 1 and 100, got 101",
        ),
        ("/search?q=x&limit=ten", 400, "invalid_query", "limit"),
        (
            "/search?q=x&type=customer",
            400,
            "invalid_type",
            "type must be account or transfer",
        ),
        (
            "/search?q=title:(holiday",
            400,
            "invalid_query_syntax",
            "the query could not be parsed",
        ),
        (
            "/search?q=nosuchfield:x",
            400,
            "invalid_query_syntax",
            "fields: title",
        ),
        (&long, 400, "query_too_long", "the limit is 500"),
    ];
    for (uri, status, code, message) in cases {
        let (got, body) = call(&state, uri).await;
        assert_eq!(got, *status, "{uri}: {body}");
        if *status == 200 {
            assert_eq!(body["total"], 0, "{uri}: {body}");
            continue;
        }
        assert_eq!(body["error"], *code, "{uri}: {body}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{uri}: {text}");
    }
}
