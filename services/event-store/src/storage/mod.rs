//! The storage port: what the HTTP layer needs from a backend. SQLite is the default backend
//! ([`sqlite::SqliteStorage`]); a PostgreSQL backend can implement the same trait.
//!
//! Contract every backend keeps:
//! - an append is all-or-nothing and is answered only once it is durable;
//! - global positions are dense (1, 2, 3, ...) and become visible in order: `head()` publishes
//!   a position only after every event up to it is committed, so a reader that reads
//!   `position <= head` never skips an event;
//! - `recorded_at` never goes backwards along the log: an append is stamped with the store's
//!   clock (never earlier than the last event), and an import, which brings its own times, is
//!   accepted only if it continues the log exactly (next position, next versions, no earlier
//!   time than the last event's, no later than the store's clock).

mod journal;
pub mod sqlite;

use futures::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use crate::domain::{
    format_time, AppendBatch, AppendOutcome, EventFilter, EventTypeCount, GroupName, ImportBatch,
    ImportOutcome, RecordedEvent, Snapshot, StreamId, Subscription, SubscriptionSpec,
};

/// A failed storage operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the stream is at version {current}, not at the expected version")]
    WrongExpectedVersion { current: u64 },
    #[error("some events of the batch are already in the stream and some are not; retry the original batch unchanged or use new event ids")]
    PartialDuplicate,
    #[error("consumer group {0} does not exist; create it with PUT /subscriptions/{0}")]
    UnknownGroup(String),
    #[error("position {position} is beyond the head of the log ({head}); acknowledge only positions you received")]
    PositionBeyondHead { position: u64, head: u64 },
    #[error(transparent)]
    Import(#[from] ImportConflict),
    #[error("the storage is shutting down; retry against the restarted service")]
    Closed,
    #[error("storage failure while {doing}: {source}")]
    Backend {
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    pub fn backend(
        doing: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            doing,
            source: Box::new(source),
        }
    }
}

/// Why an import does not continue the store's log; nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportConflict {
    #[error("events[0].position (the event at position {position}): the log's head is {head}, so an import must continue it at position {next}", next = head + 1)]
    NotNext { position: u64, head: u64 },
    #[error("events[{index}].version (the event at position {position}): version {version} does not continue stream {stream_id}, which is at version {current}; the import must continue it at version {next}", next = current + 1)]
    Version {
        index: usize,
        position: u64,
        stream_id: String,
        version: u64,
        current: u64,
    },
    #[error("events[{index}].recorded_at (the event at position {position}): {} is before {} of the store's last event; recorded_at never goes backwards", format_time(*recorded_at), format_time(*last))]
    Backwards {
        index: usize,
        position: u64,
        recorded_at: OffsetDateTime,
        last: OffsetDateTime,
    },
    #[error("events[{index}].recorded_at (the event at position {position}): {} is after the store's clock ({}); an import cannot record events in the future", format_time(*recorded_at), format_time(*now))]
    Future {
        index: usize,
        position: u64,
        recorded_at: OffsetDateTime,
        now: OffsetDateTime,
    },
    #[error("events[{index}].event_id (the event at position {position}): {event_id} is already in stream {stream_id}; every event of a stream needs its own id")]
    DuplicateId {
        index: usize,
        position: u64,
        stream_id: String,
        event_id: uuid::Uuid,
    },
    #[error("events[{index}].{field} (the event at position {position}): it differs from the store's event at that position; the store already holds it, and an import never rewrites the log")]
    Differs {
        index: usize,
        position: u64,
        field: &'static str,
    },
}

impl ImportConflict {
    /// The machine-readable error code for the HTTP answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotNext { .. } => "position_not_next",
            Self::Version { .. } => "wrong_version",
            Self::Backwards { .. } => "recorded_at_backwards",
            Self::Future { .. } => "recorded_at_in_future",
            Self::DuplicateId { .. } => "duplicate_event_id",
            Self::Differs { .. } => "import_differs",
        }
    }

    /// The offending field, as `events[i].name`.
    pub fn field(&self) -> String {
        let (index, name) = match self {
            Self::NotNext { .. } => (0, "position"),
            Self::Version { index, .. } => (*index, "version"),
            Self::Backwards { index, .. } | Self::Future { index, .. } => (*index, "recorded_at"),
            Self::DuplicateId { index, .. } => (*index, "event_id"),
            Self::Differs { index, field, .. } => (*index, *field),
        };
        format!("events[{index}].{name}")
    }

    /// The position of the offending event.
    pub fn position(&self) -> u64 {
        match self {
            Self::NotNext { position, .. }
            | Self::Version { position, .. }
            | Self::Backwards { position, .. }
            | Self::Future { position, .. }
            | Self::DuplicateId { position, .. }
            | Self::Differs { position, .. } => *position,
        }
    }
}

/// A read of one stream.
#[derive(Debug, Clone)]
pub struct StreamQuery {
    pub stream_id: StreamId,
    /// First version to return (inclusive).
    pub from_version: u64,
    pub limit: usize,
    pub as_of: AsOf,
}

/// Which state of a stream a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Now,
    /// The stream as it was at this version.
    Version(u64),
    /// The stream as it was at this instant.
    Time(OffsetDateTime),
}

/// The answer to a [`StreamQuery`].
#[derive(Debug)]
pub struct StreamSlice {
    /// The stream's version (at the `as_of` point); 0 for an unknown stream.
    pub version: u64,
    pub events: Vec<RecordedEvent>,
}

/// A read of the global log: `after < position <= up_to`, filtered, at most `limit` events.
#[derive(Debug, Clone)]
pub struct GlobalQuery {
    pub after: u64,
    pub up_to: u64,
    pub limit: usize,
    pub filter: EventFilter,
}

/// The answer to a [`GlobalQuery`].
#[derive(Debug)]
pub struct GlobalSlice {
    pub events: Vec<RecordedEvent>,
    /// Every matching event up to this position was returned; a reader continues after it.
    pub scanned_to: u64,
}

/// The new events of one commit in position order. Messages come in commit order, each sent
/// after its commit and before `head()` covers it. A receiver that lags behind loses messages
/// (`RecvError::Lagged`) and must read the missing positions with `read_all`.
pub type CommittedEvents = std::sync::Arc<Vec<RecordedEvent>>;

/// A storage backend.
pub trait Storage: Send + Sync + 'static {
    /// Appends a batch atomically; resolves once it is durable.
    fn append(&self, batch: AppendBatch) -> BoxFuture<'_, Result<AppendOutcome, StorageError>>;
    /// Writes events with their own positions, versions and `recorded_at`, atomically, like an
    /// append (same durability, same live push and head update), but only if the batch
    /// continues the log exactly; otherwise [`StorageError::Import`] and nothing is written.
    /// A batch the store already holds identically is answered as stored (`duplicate`).
    fn import(&self, batch: ImportBatch) -> BoxFuture<'_, Result<ImportOutcome, StorageError>>;
    fn read_stream(&self, query: StreamQuery) -> BoxFuture<'_, Result<StreamSlice, StorageError>>;
    fn read_all(&self, query: GlobalQuery) -> BoxFuture<'_, Result<GlobalSlice, StorageError>>;
    /// For each event type and schema version the store holds, the number of events and the
    /// positions of the first and last, sorted by type, then version. Covers every acknowledged
    /// event (an append is counted before it is answered), and is cheap: kept up to date on
    /// write, never computed from the log.
    fn event_types(&self) -> BoxFuture<'_, Result<Vec<EventTypeCount>, StorageError>>;
    /// The last committed global position, updated after each commit.
    fn head(&self) -> watch::Receiver<u64>;

    fn put_subscription(
        &self,
        group: GroupName,
        spec: SubscriptionSpec,
    ) -> BoxFuture<'_, Result<Subscription, StorageError>>;
    fn get_subscription(
        &self,
        group: GroupName,
    ) -> BoxFuture<'_, Result<Option<Subscription>, StorageError>>;
    fn list_subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StorageError>>;
    /// Advances the group's checkpoint to `position` (never moves it back).
    fn ack(
        &self,
        group: GroupName,
        position: u64,
    ) -> BoxFuture<'_, Result<Subscription, StorageError>>;

    fn put_snapshot(
        &self,
        stream_id: StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<(), StorageError>>;
    fn get_snapshot(
        &self,
        stream_id: StreamId,
    ) -> BoxFuture<'_, Result<Option<Snapshot>, StorageError>>;

    /// Answers once the storage can read and the writer is running.
    fn ping(&self) -> BoxFuture<'_, Result<(), StorageError>>;
    /// Finishes queued writes and stops the writer; later writes fail with `Closed`.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Events as they commit, for live subscribers (see [`CommittedEvents`]); `None` when the
    /// backend has no such push, in which case readers poll with `read_all`.
    fn live(&self) -> Option<broadcast::Receiver<CommittedEvents>> {
        None
    }
    /// Transactions committed so far (each one fsync), for the appends-per-commit metric.
    fn commits(&self) -> u64 {
        0
    }
}
