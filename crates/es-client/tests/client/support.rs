//! A store spawned per test, and a small aggregate to drive it.

use std::sync::LazyLock;

use es_client::EventStoreClient;
use es_core::{Aggregate, DomainEvent, Snapshotting, StreamId, Upcasters};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// An event store running on a free port with its data in a temporary directory, and a client
/// for it. Dropping it stops the server and removes the data.
pub struct TestStore {
    pub client: EventStoreClient,
    _store: event_store::testing::TestStore,
}

impl TestStore {
    pub async fn spawn() -> Self {
        let store = event_store::testing::TestStore::start().await;
        let client = EventStoreClient::new(store.url()).expect("client for the test store");
        Self {
            client,
            _store: store,
        }
    }
}

pub fn new_stream() -> StreamId {
    es_core::stream_of::<Wallet>(Uuid::new_v4())
}

/// A wallet: opened, then deposits and withdrawals without overdraft.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Wallet {
    pub owner: Option<String>,
    pub balance: i64,
    pub movements: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WalletCommand {
    Open { owner: String },
    Deposit { amount: i64 },
    Withdraw { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    Opened {
        #[serde(default)]
        owner: String,
    },
    /// Schema version 2; version 1 called `amount` `value`.
    Deposited {
        amount: i64,
    },
    Withdrawn {
        amount: i64,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum WalletError {
    #[error("wallet is already open")]
    AlreadyOpen,
    #[error("wallet is not open")]
    NotOpen,
    #[error("balance {balance} is below {amount}")]
    InsufficientFunds { balance: i64, amount: i64 },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> &'static str {
        match self {
            WalletEvent::Opened { .. } => "Opened",
            WalletEvent::Deposited { .. } => "Deposited",
            WalletEvent::Withdrawn { .. } => "Withdrawn",
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            WalletEvent::Deposited { .. } => 2,
            _ => 1,
        }
    }

    fn upcasters() -> &'static Upcasters {
        static UPCASTERS: LazyLock<Upcasters> =
            LazyLock::new(|| Upcasters::new().with("Deposited", 1, rename_value_to_amount));
        &UPCASTERS
    }
}

fn rename_value_to_amount(mut data: Value) -> Value {
    if let Some(map) = data.as_object_mut() {
        if let Some(value) = map.remove("value") {
            map.insert("amount".into(), value);
        }
    }
    data
}

impl Aggregate for Wallet {
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    const TYPE: &'static str = "Wallet";

    fn handle(&self, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::Open { .. } if self.owner.is_some() => Err(WalletError::AlreadyOpen),
            WalletCommand::Open { owner } => Ok(vec![WalletEvent::Opened { owner }]),
            _ if self.owner.is_none() => Err(WalletError::NotOpen),
            WalletCommand::Deposit { amount } => Ok(vec![WalletEvent::Deposited { amount }]),
            WalletCommand::Withdraw { amount } if amount > self.balance => {
                Err(WalletError::InsufficientFunds {
                    balance: self.balance,
                    amount,
                })
            }
            WalletCommand::Withdraw { amount } => Ok(vec![WalletEvent::Withdrawn { amount }]),
        }
    }

    fn apply(mut self, event: &WalletEvent) -> Self {
        match event {
            WalletEvent::Opened { owner } => self.owner = Some(owner.clone()),
            WalletEvent::Deposited { amount } => {
                self.balance += amount;
                self.movements += 1;
            }
            WalletEvent::Withdrawn { amount } => {
                self.balance -= amount;
                self.movements += 1;
            }
        }
        self
    }
}

impl Snapshotting for Wallet {}

/// Opens a wallet and makes `deposits` deposits: 1 + deposits events.
pub async fn write_events(store: &TestStore, deposits: i64) -> StreamId {
    let stream = new_stream();
    let repository = es_client::Repository::<Wallet>::new(store.client.clone());
    repository
        .execute(
            &stream,
            WalletCommand::Open {
                owner: "ada".into(),
            },
        )
        .await
        .expect("open");
    for amount in 1..=deposits {
        repository
            .execute(&stream, WalletCommand::Deposit { amount })
            .await
            .expect("deposit");
    }
    stream
}
