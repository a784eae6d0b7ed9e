//! Shared helpers: an in-process event store, banking events, the indexer binary as a child
//! process that is killed when dropped, and HTTP helpers.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use banking::{AccountEvent, AccountId, CustomerId, Money, TransferDetails, TransferEvent};
use es_client::EventStoreClient;
use es_core::{ExpectedVersion, Metadata, NewEvent, StreamId};
use event_store::testing::TestStore;
use serde_json::Value;
use service_kit::testing::{ServiceProcess, Signal};

/// An event store running in this process on a free port, stopped on drop.
pub struct Store {
    pub url: String,
    bank: Bank,
    _store: TestStore,
}

/// Writes banking events to a store.
pub struct Bank {
    client: EventStoreClient,
}

impl std::ops::Deref for Store {
    type Target = Bank;
    fn deref(&self) -> &Bank {
        &self.bank
    }
}

impl Store {
    pub async fn spawn() -> Store {
        let store = TestStore::start().await;
        Store {
            bank: Bank::attach(store.url()),
            url: store.url().to_owned(),
            _store: store,
        }
    }
}

impl Bank {
    /// A writer for the store at `url`.
    pub fn attach(url: &str) -> Bank {
        Bank {
            client: EventStoreClient::new(url).expect("client"),
        }
    }

    pub async fn append_account(&self, id: AccountId, event: &AccountEvent) {
        let stream = StreamId::parse(format!("Account-{id}")).expect("stream id");
        let new = NewEvent::from_event(event, Metadata::new_flow()).expect("encode");
        self.client
            .append(&stream, ExpectedVersion::Any, &[new])
            .await
            .expect("append");
    }

    /// Appends a raw event (for event types the domain does not produce yet).
    pub async fn append_raw(&self, stream: &str, event_type: &str, data: Value) {
        let stream = StreamId::parse(stream).expect("stream id");
        let new = NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data,
            metadata: Metadata::default(),
        };
        self.client
            .append(&stream, ExpectedVersion::Any, &[new])
            .await
            .expect("append");
    }

    pub async fn open_account(&self, title: &str, description: &str, customer: &str) -> AccountId {
        let id = AccountId::new();
        let event = AccountEvent::AccountOpened {
            customer_id: Some(CustomerId::parse(customer).expect("customer id")),
            title: title.to_owned(),
            description: description.to_owned(),
            initial_balance: Money::from_minor(10_000),
        };
        self.append_account(id, &event).await;
        id
    }

    pub async fn transfer(
        &self,
        from: AccountId,
        to: AccountId,
        amount: u64,
        description: &str,
        steps: &[fn(TransferDetails) -> TransferEvent],
    ) -> uuid::Uuid {
        let id = uuid::Uuid::new_v4();
        let stream = StreamId::parse(format!("MoneyTransfer-{id}")).expect("stream id");
        let details = TransferDetails {
            from_account_id: from,
            to_account_id: to,
            amount: Money::from_minor(amount),
            date: time::OffsetDateTime::now_utc(),
            description: description.to_owned(),
        };
        let mut events = vec![TransferEvent::MoneyTransferCreated(details.clone())];
        events.extend(steps.iter().map(|step| step(details.clone())));
        let new: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent::from_event(e, Metadata::new_flow()).expect("encode"))
            .collect();
        self.client
            .append(&stream, ExpectedVersion::NO_STREAM, &new)
            .await
            .expect("append");
        id
    }

    pub async fn head(&self) -> u64 {
        self.client
            .read_all(0, 1, Duration::ZERO)
            .await
            .expect("read")
            .head
            .expect("head")
    }
}

/// The indexer binary as a child process (service-kit's `ServiceProcess`); killed (SIGKILL)
/// when dropped.
pub struct IndexerProcess {
    process: ServiceProcess,
    pub base: String,
}

impl IndexerProcess {
    pub async fn start(store_url: &str, data_dir: &Path) -> Self {
        let process = ServiceProcess::spawn(
            env!("CARGO_BIN_EXE_indexer"),
            [
                ("DATA_DIR", data_dir.as_os_str()),
                ("EVENT_STORE_URL", OsStr::new(store_url)),
                ("INDEXER_POLL_WAIT_MS", OsStr::new("200")),
                ("INDEXER_COMMIT_INTERVAL_MS", OsStr::new("50")),
                ("RUST_LOG", OsStr::new("warn")),
            ],
        );
        process.wait_healthy(Duration::from_secs(20)).await;
        Self {
            base: process.url(),
            process,
        }
    }

    /// SIGKILL: nothing staged is committed.
    pub fn kill(self) {
        self.process.kill();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.process.signal(Signal::SIGTERM);
        self.process.wait_exit(Duration::from_secs(20))
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path_and_query}", self.base))
            .await
            .expect("indexer answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the index reflects the log up to `position`.
    pub async fn wait_indexed(&self, position: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, health) = self.get("/health").await;
            if health["details"]["indexed_position"].as_u64() >= Some(position) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the index did not reach {position}: {health}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The ids of the results of a search, in rank order.
pub fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
