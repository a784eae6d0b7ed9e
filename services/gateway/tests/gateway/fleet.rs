//! Spawns the whole fleet in-process: event store, accounts, transfers, account view and
//! gateway, each on a loopback port 0, with a temporary data directory. Dropping the fleet stops
//! every service.

use std::time::Duration;

use event_store::testing::TestStore;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub struct Fleet {
    pub gateway: String,
    pub store: String,
    pub accounts: String,
    pub transfers: String,
    pub view: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: CancellationToken,
    _store: TestStore,
}

/// Which services run their background loops (tests that redeliver events turn some off).
#[derive(Clone, Copy)]
pub struct Options {
    pub sagas: bool,
    pub view_follows: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sagas: true,
            view_follows: true,
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Fleet {
    pub async fn spawn() -> Fleet {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let stop = CancellationToken::new();

        let store = TestStore::start_in(&dir.path().join("event-store"), |_| {}).await;
        let store_url = store.url().to_owned();

        let mut config = accounts::Config::for_tests(&store_url);
        config.run_saga = options.sagas;
        let accounts = accounts::Application::build(config)
            .await
            .expect("accounts starts");
        let accounts_url = format!("http://127.0.0.1:{}", accounts.port());
        tokio::spawn(accounts.run_until(stop.clone().cancelled_owned()));

        let mut config = transfers::Config::for_tests(&store_url);
        config.run_saga = options.sagas;
        let transfers = transfers::Application::build(config)
            .await
            .expect("transfers starts");
        let transfers_url = format!("http://127.0.0.1:{}", transfers.port());
        tokio::spawn(transfers.run_until(stop.clone().cancelled_owned()));

        let mut config =
            account_view::Config::for_tests(dir.path().join("account-view"), &store_url);
        config.follow = options.view_follows;
        let view = account_view::Application::build(config)
            .await
            .expect("account view starts");
        let view_url = format!("http://127.0.0.1:{}", view.port());
        tokio::spawn(view.run_until(stop.clone().cancelled_owned()));

        let gateway = gateway::Application::build(gateway::Config::for_tests(
            &accounts_url,
            &transfers_url,
            &view_url,
        ))
        .await
        .expect("gateway starts");
        let gateway_url = format!("http://127.0.0.1:{}", gateway.port());
        tokio::spawn(gateway.run_until(stop.clone().cancelled_owned()));

        Fleet {
            gateway: gateway_url,
            store: store_url,
            accounts: accounts_url,
            transfers: transfers_url,
            view: view_url,
            http: reqwest::Client::new(),
            dir,
            stop,
            _store: store,
        }
    }

    /// Sends a request to the gateway and returns the status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            &format!("{}{}", self.gateway, path),
            method,
            body,
        )
        .await
    }

    /// Opens an account and returns its id.
    pub async fn open_account(&self, title: &str, balance: i64) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/accounts",
                Some(json!({"title": title, "initial_balance": balance, "customer_id": "cust-1"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["account_id"].as_str().expect("account_id").to_owned()
    }

    /// Creates a transfer and returns its id.
    pub async fn transfer(&self, from: &str, to: &str, amount: i64) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/transfers",
                Some(json!({"from_account_id": from, "to_account_id": to, "amount": amount})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["transfer_id"]
            .as_str()
            .expect("transfer_id")
            .to_owned()
    }

    /// Polls the view until the transfer is in a terminal state, and returns its document.
    pub async fn wait_terminal(&self, transfer_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self
                .call("GET", &format!("/api/transfers/{transfer_id}"), None)
                .await;
            if status == 200 {
                let state = body["state"].as_str().unwrap_or_default();
                if matches!(
                    state,
                    "COMPLETED" | "FAILED_DUE_TO_INSUFFICIENT_FUNDS" | "FAILED_AND_REFUNDED"
                ) {
                    return body;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "transfer {transfer_id} did not finish: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The account document in the view, once the view has caught up with the aggregate.
    pub async fn account_view(&self, account_id: &str) -> Value {
        let aggregate = self.account_aggregate(account_id).await;
        let version = aggregate["version"].as_u64().expect("version");
        let (status, body) = self
            .call(
                "GET",
                &format!("/api/accounts/{account_id}?min_version={version}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The account aggregate's own state, from the accounts service.
    pub async fn account_aggregate(&self, account_id: &str) -> Value {
        let (status, body) = call(
            &self.http,
            &format!("{}/accounts/{account_id}", self.accounts),
            "GET",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub async fn call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request is answered");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

impl Fleet {
    /// Starts both saga handlers (for fleets spawned with `sagas: false`).
    pub fn start_sagas(&self) {
        let client = es_client::EventStoreClient::new(&self.store).expect("store url");
        let accounts_state = accounts::AppState {
            accounts: es_client::Repository::new(client.clone()).with_snapshots(100),
            metrics: Default::default(),
        };
        let transfers_state = transfers::AppState {
            transfers: es_client::Repository::new(client.clone()),
            accounts: es_client::Repository::new(client),
            known_accounts: Default::default(),
            metrics: Default::default(),
        };
        tokio::spawn(accounts::saga::run(
            accounts_state,
            self.stop.clone().cancelled_owned(),
        ));
        tokio::spawn(transfers::saga::run(
            transfers_state,
            self.stop.clone().cancelled_owned(),
        ));
    }

    pub fn store_client(&self) -> es_client::EventStoreClient {
        es_client::EventStoreClient::new(&self.store).expect("store url")
    }

    /// Every event in the store's global log, in order.
    pub async fn all_events(&self) -> Vec<es_core::EventEnvelope> {
        let client = self.store_client();
        let mut out = Vec::new();
        loop {
            let after = out
                .last()
                .map_or(0, |e: &es_core::EventEnvelope| e.position);
            let page = client
                .read_all(after, 1000, Duration::ZERO)
                .await
                .expect("read log");
            if page.events.is_empty() {
                return out;
            }
            out.extend(page.events);
        }
    }

    /// Waits until the live view has applied every event in the store.
    pub async fn wait_view_caught_up(&self) {
        let head = self.all_events().await.last().map_or(0, |e| e.position);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, health) = call(&self.http, &format!("{}/health", self.view), "GET", None).await;
            if health["checkpoint"].as_u64().unwrap_or(0) >= head {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "view stuck at {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The live view's database file.
    pub fn view_db_path(&self) -> std::path::PathBuf {
        self.dir
            .path()
            .join("account-view")
            .join(account_view::DB_FILE)
    }
}

/// A service a test started beside the fleet, at `url`; it stops when dropped.
pub struct Extra {
    pub url: String,
    _stop: tokio_util::sync::DropGuard,
}

impl Fleet {
    /// A real indexer on the fleet's event store, committing every 200 ms.
    pub async fn spawn_indexer(&self) -> Extra {
        let mut config = indexer::Config {
            port: 0,
            data_dir: self.dir.path().join("indexer"),
            event_store_url: self.store.clone(),
            ..indexer::Config::default()
        };
        config.feed.commit_interval = Duration::from_millis(200);
        let indexer = indexer::Application::build(config)
            .await
            .expect("indexer starts");
        let url = format!("http://127.0.0.1:{}", indexer.port());
        let stop = CancellationToken::new();
        tokio::spawn(indexer.run_until(stop.clone().cancelled_owned()));
        Extra {
            url,
            _stop: stop.drop_guard(),
        }
    }

    /// A second gateway on the fleet's upstreams, with `search_url` as its indexer.
    pub async fn spawn_gateway_with_search(&self, search_url: &str) -> Extra {
        let mut config = gateway::Config::for_tests(&self.accounts, &self.transfers, &self.view);
        config.search_url = search_url.to_owned();
        let gw = gateway::Application::build(config)
            .await
            .expect("gateway starts");
        let url = format!("http://127.0.0.1:{}", gw.port());
        let stop = CancellationToken::new();
        tokio::spawn(gw.run_until(stop.clone().cancelled_owned()));
        Extra {
            url,
            _stop: stop.drop_guard(),
        }
    }
}
