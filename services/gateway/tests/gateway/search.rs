//! `/api/search`: proxied to a real indexer, 400s passed through, an unreachable indexer is a
//! 503 `search_unavailable`, and `/health` stays up without it.

use std::time::Duration;

use serde_json::Value;

use crate::fleet::call;
use crate::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_proxies_to_the_indexer_and_passes_its_400_through() {
    let fleet = Fleet::spawn().await;
    let indexer = fleet.spawn_indexer().await;
    let gw = fleet.spawn_gateway_with_search(&indexer.url).await;
    let http = reqwest::Client::new();

    let id = fleet.open_account("Zanzibar holiday fund", 100).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = call(
            &http,
            &format!("{}/api/search?q=zanzibar&type=account&limit=20", gw.url),
            "GET",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["total"].as_u64() >= Some(1) {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the account never became searchable: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hit = &body["results"][0];
    assert_eq!(hit["id"], id.as_str(), "{body}");
    assert_eq!(hit["type"], "account");
    assert_eq!(hit["title"], "Zanzibar holiday fund");
    assert_eq!(hit["customer_id"], "cust-1");
    assert_eq!(hit["status"], "OPEN");

    // The indexer's refusals come back unchanged.
    let (status, body) = call(
        &http,
        &format!("{}/api/search?q=zanzibar&type=nosuch", gw.url),
        "GET",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_type", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, body) = call(&http, &format!("{}/api/search", gw.url), "GET", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "missing_query", "{body}");

    // The indexer is listed as an optional upstream that is up.
    let (status, body) = call(&http, &format!("{}/health", gw.url), "GET", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["optional"]["indexer"]["status"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_indexer_gives_503_and_health_stays_up() {
    let fleet = Fleet::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    drop(listener);
    let gw = fleet.spawn_gateway_with_search(&dead).await;
    let http = reqwest::Client::new();

    let (status, body) = call(
        &http,
        &format!("{}/api/search?q=holiday", gw.url),
        "GET",
        None,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "search_unavailable", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let (status, body): (u16, Value) =
        call(&http, &format!("{}/health", gw.url), "GET", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        body["optional"]["indexer"]["status"], "unavailable",
        "{body}"
    );
}
