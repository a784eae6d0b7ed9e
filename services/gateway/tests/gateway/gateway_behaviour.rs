//! The gateway's own duties: correlation ids, upstream health, retries only where they cannot
//! repeat an effect, and read-your-writes passed through.

use serde_json::Value;

use crate::fleet::call;
use crate::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_reports_each_upstream() {
    let fleet = Fleet::spawn().await;
    let (status, body) = fleet.call("GET", "/health", None).await;
    assert_eq!(status, 200, "{body}");
    for name in ["accounts", "transfers", "account-view"] {
        assert_eq!(body["upstreams"][name]["status"], "ok", "{body}");
    }

    // A gateway whose view upstream is gone reports it, and says degraded.
    let dead = dead_url().await;
    let gw = gateway::Application::build(gateway::Config::for_tests(
        &fleet.accounts,
        &fleet.transfers,
        &dead,
    ))
    .await
    .expect("gateway starts");
    let url = format!("http://127.0.0.1:{}", gw.port());
    let stop = tokio_util::sync::CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(gw.run_until(stop.cancelled_owned()));
    let http = reqwest::Client::new();
    let (status, body) = call(&http, &format!("{url}/health"), "GET", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["upstreams"]["account-view"]["status"], "unavailable");
    assert_eq!(body["upstreams"]["accounts"]["status"], "ok");

    // A GET to the dead upstream is retried (bounded) and then answered 502 naming it.
    let id = uuid::Uuid::new_v4();
    let (status, body) = call(&http, &format!("{url}/api/accounts/{id}"), "GET", None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["upstream"], "account-view");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("gateway_upstream_retries_total{upstream=\"account-view\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_is_retried_only_when_it_never_reached_the_upstream() {
    let fleet = Fleet::spawn().await;
    // accounts: nothing listens, so no connection is ever made; transfers: the connection is
    // accepted and the request read, then dropped unanswered.
    let refused = dead_url().await;
    let swallowing = swallowing_url().await;
    let gw = gateway::Application::build(gateway::Config::for_tests(
        &refused,
        &swallowing,
        &fleet.view,
    ))
    .await
    .expect("gateway starts");
    let url = format!("http://127.0.0.1:{}", gw.port());
    let stop = tokio_util::sync::CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    tokio::spawn(gw.run_until(stop.cancelled_owned()));
    let http = reqwest::Client::new();

    let body = serde_json::json!({"title": "x", "initial_balance": 1});
    let (status, body) = call(&http, &format!("{url}/api/accounts"), "POST", Some(body)).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["upstream"], "accounts");

    let transfer = serde_json::json!({
        "from_account_id": uuid::Uuid::new_v4(),
        "to_account_id": uuid::Uuid::new_v4(),
        "amount": 1,
    });
    let (status, body) = call(
        &http,
        &format!("{url}/api/transfers"),
        "POST",
        Some(transfer),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["upstream"], "transfers");

    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("gateway_upstream_retries_total{upstream=\"accounts\"} 2"),
        "a POST that could not connect is retried: {metrics}"
    );
    assert!(
        metrics.contains("gateway_upstream_retries_total{upstream=\"transfers\"} 0"),
        "a POST the upstream received is not retried: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correlation_id_is_kept_or_made_up() {
    let fleet = Fleet::spawn().await;
    let response = fleet
        .http
        .get(format!("{}/health", fleet.gateway))
        .send()
        .await
        .expect("answered");
    assert!(response.headers().get("x-correlation-id").is_none());
    let response = fleet
        .http
        .post(format!("{}/api/accounts", fleet.gateway))
        .header("x-correlation-id", "req-123")
        .json(&serde_json::json!({"title": "x", "initial_balance": 1}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], "req-123");
    let response = fleet
        .http
        .get(format!(
            "{}/api/transfers/{}",
            fleet.gateway,
            uuid::Uuid::new_v4()
        ))
        .send()
        .await
        .expect("answered");
    let made_up = response.headers()["x-correlation-id"]
        .to_str()
        .expect("ascii");
    assert!(uuid::Uuid::parse_str(made_up).is_ok(), "{made_up}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_behind_the_asked_version_answers_503_with_retry_after() {
    let fleet = Fleet::spawn().await;
    let a = fleet.open_account("a", 1).await;
    // Version 1 exists; version 99 never will within the view's bounded wait.
    let response = fleet
        .http
        .get(format!("{}/api/accounts/{a}?min_version=99", fleet.gateway))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "view_out_of_date");
    assert_eq!(body["view_version"], 1);
    // The create response's version is reached: read-your-writes.
    let (status, body) = fleet
        .call("GET", &format!("/api/accounts/{a}?min_version=1"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balance"], 1);
    assert_eq!(body["customer_id"], "cust-1");
    let (status, body) = fleet
        .call("GET", "/api/customers/cust-1/accounts", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accounts"][0]["id"], a.as_str());
}

/// A loopback URL where nothing listens.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// An upstream that accepts each connection, reads the request and closes without answering.
async fn swallowing_url() -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}
