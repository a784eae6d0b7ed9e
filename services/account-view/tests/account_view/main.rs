//! The account view against a real event store (both in-process on port 0): projection,
//! read-your-writes and restart safety.

mod process;

use std::time::Duration;

use banking::{Account, AccountEvent, AccountId, Money, TransferId};
use es_client::EventStoreClient;
use es_core::{ExpectedVersion, Metadata, NewEvent};
use event_store::testing::TestStore;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Starts a view on `data_dir`; returns its URL, its stop token and its task.
async fn view(
    data_dir: &std::path::Path,
    store: &str,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), service_kit::ServeError>>,
) {
    view_waiting(data_dir, store, Duration::from_millis(300)).await
}

/// Like [`view`], with queries waiting up to `max_wait` for a `min_version`.
async fn view_waiting(
    data_dir: &std::path::Path,
    store: &str,
    max_wait: Duration,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), service_kit::ServeError>>,
) {
    let mut config = account_view::Config::for_tests(data_dir, store);
    config.max_wait = max_wait;
    let app = account_view::Application::build(config)
        .await
        .expect("view starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
    (url, stop, task)
}

async fn append(client: &EventStoreClient, id: AccountId, version: u64, event: AccountEvent) {
    let stream = es_core::stream_of::<Account>(id.as_uuid());
    let new = NewEvent::from_event(&event, Metadata::default()).expect("encodes");
    client
        .append(&stream, ExpectedVersion::Exact(version), &[new])
        .await
        .expect("appended");
}

async fn get(url: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::get(url).await.expect("answered");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.json().await.unwrap_or(Value::Null), retry)
}

fn opened(balance: u64) -> AccountEvent {
    AccountEvent::AccountOpened {
        customer_id: None,
        title: "t".into(),
        description: String::new(),
        initial_balance: Money::from_minor(balance),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_view_resumes_from_its_checkpoint_and_applies_nothing_twice() {
    let store = TestStore::start().await;
    let client = EventStoreClient::new(store.url()).expect("client");
    let data = tempfile::tempdir().expect("data dir");
    let id = AccountId::new();
    append(&client, id, 0, opened(100)).await;
    let tx = TransferId::new();
    append(
        &client,
        id,
        1,
        AccountEvent::AccountDebited {
            amount: Money::from_minor(30),
            transaction_id: tx,
        },
    )
    .await;

    let (url, stop, task) = view(data.path(), store.url()).await;
    let (status, doc, _) = get(&format!("{url}/accounts/{id}?min_version=2")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["balance"], 70);
    assert_eq!(doc["changes"][0]["balance_delta"], -30);
    stop.cancel();
    task.await.expect("joined").expect("stopped cleanly");

    // Written while the view is down; the restarted view must apply only this one.
    append(
        &client,
        id,
        2,
        AccountEvent::AccountCredited {
            amount: Money::from_minor(5),
            transaction_id: TransferId::new(),
        },
    )
    .await;
    let (url, _stop, _task) = view(data.path(), store.url()).await;
    let (status, doc, _) = get(&format!("{url}/accounts/{id}?min_version=3")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["balance"], 75, "each event applied exactly once: {doc}");
    assert_eq!(doc["changes"].as_array().map(Vec::len), Some(2));
    let (_, health, _) = get(&format!("{url}/health")).await;
    assert_eq!(health["checkpoint"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_for_a_version_the_view_lacks_waits_then_answers_503() {
    let store = TestStore::start().await;
    let client = EventStoreClient::new(store.url()).expect("client");
    let data = tempfile::tempdir().expect("data dir");
    let (url, _stop, _task) = view(data.path(), store.url()).await;
    let id = AccountId::new();

    // Not there yet: 404 without min_version, 503 with it.
    let (status, _, _) = get(&format!("{url}/accounts/{id}")).await;
    assert_eq!(status, 404);
    let (status, body, retry) = get(&format!("{url}/accounts/{id}?min_version=1")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "view_out_of_date");
    assert_eq!(body["view_version"], 0);
    assert_eq!(retry.as_deref(), Some("1"));

    // A query that is waiting when the event arrives is answered as soon as it is applied.
    let waiting = tokio::spawn({
        let url = format!("{url}/accounts/{id}?min_version=1");
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    append(&client, id, 0, opened(9)).await;
    let (status, doc, _) = waiting.await.expect("joined");
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["balance"], 9);
}

/// The same-version hand-over: a second view on the same file serves reads at once, while the
/// first still writes (its queries with `min_version` see the first's commits), and becomes the
/// writer when the first lets go. Regression: the view rolled stop-first, and reads through the
/// gateway answered 502 in the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_view_on_the_same_file_serves_reads_and_takes_over_writing_when_the_first_stops() {
    let store = TestStore::start().await;
    let client = EventStoreClient::new(store.url()).expect("client");
    let data = tempfile::tempdir().expect("data dir");
    let id = AccountId::new();
    append(&client, id, 0, opened(100)).await;
    let (old_url, old_stop, old_task) =
        view_waiting(data.path(), store.url(), Duration::from_secs(10)).await;
    let (status, _, _) = get(&format!("{old_url}/accounts/{id}?min_version=1")).await;
    assert_eq!(status, 200);

    let (new_url, _new_stop, _new_task) =
        view_waiting(data.path(), store.url(), Duration::from_secs(10)).await;
    let (status, doc, _) = get(&format!("{new_url}/accounts/{id}")).await;
    assert_eq!(
        status, 200,
        "reads are served before the writer lock is free: {doc}"
    );
    assert_eq!(doc["balance"], 100);

    // Written while the old view still holds the writer lock: the new one reads it from the file.
    let credit = |n| AccountEvent::AccountCredited {
        amount: Money::from_minor(n),
        transaction_id: TransferId::new(),
    };
    append(&client, id, 1, credit(5)).await;
    let (status, doc, _) = get(&format!("{new_url}/accounts/{id}?min_version=2")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["balance"], 105);
    // Its checkpoint follows the writer's (read from the file every 50 ms).
    let mut position = Value::Null;
    for _ in 0..100 {
        position = get(&format!("{new_url}/projection")).await.1["position"].clone();
        if position == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(position, 2);

    old_stop.cancel();
    old_task.await.expect("joined").expect("stopped cleanly");
    append(&client, id, 2, credit(7)).await;
    let (status, doc, _) = get(&format!("{new_url}/accounts/{id}?min_version=3")).await;
    assert_eq!(status, 200, "the new view writes now: {doc}");
    assert_eq!(
        doc["balance"], 112,
        "each event applied exactly once: {doc}"
    );
    let (_, projection, _) = get(&format!("{new_url}/projection")).await;
    assert_eq!(
        projection,
        serde_json::json!({"version": 1, "position": 3, "head": 3, "lag": 0})
    );
}
