//! The event store's HTTP API as data: the one definition of the wire contract that the store,
//! its client (`es-client`), the archiver and the indexer share. The rules for stream ids and
//! consumer group names, the expected version of an append, the request and response bodies and
//! the error body. No IO: it depends on serde, serde_json and thiserror only.
//!
//! Bodies that carry events are generic over the event type, because each side reads them its
//! own way: the store keeps `data` and `metadata` as raw JSON text, the client decodes them into
//! `es_core::EventEnvelope`, and the archiver keeps them byte-exact.

pub mod body;
pub mod error;
pub mod names;
pub mod path;
pub mod version;

pub use body::{
    AckRequest, AppendRequest, AppendResponse, EventFilter, EventTypeCount, ImportRequest,
    ImportResponse, LogPage, Snapshot, StreamPage, Subscription, SubscriptionSpec,
};
pub use error::{ErrorBody, WrongExpectedVersionBody};
pub use names::{
    is_valid_event_type, is_valid_name, StreamId, StreamIdError, MAX_EVENT_TYPE_LEN, MAX_NAME_LEN,
};
pub use version::ExpectedVersion;
