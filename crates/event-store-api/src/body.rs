//! The request and response bodies of the store's routes. Those that carry events are generic
//! over the event: each side reads and writes the envelope in its own form.

use serde::{Deserialize, Serialize};

use crate::names::StreamId;
use crate::version::ExpectedVersion;

/// `POST /streams/{stream_id}/events`: append `events` if the stream is at `expected_version`.
/// Re-sending an event id the stream already holds is acknowledged without storing a copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendRequest<E> {
    pub expected_version: ExpectedVersion,
    pub events: Vec<E>,
}

/// The answer to an append (also to a repeated one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResponse {
    /// The stream's version after the append (the version of the batch's last event).
    pub version: u64,
    /// The global position of the batch's last event.
    #[serde(default)]
    pub position: u64,
}

/// `GET /streams/{stream_id}/events`: one page of a stream. An unknown stream is an empty page at
/// version 0. Query: `from_version` (from 1), `limit`, and either `up_to_version` or `as_of`
/// (RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPage<E> {
    pub stream_id: StreamId,
    /// The stream's version (its last event's version; 0 when it does not exist).
    pub version: u64,
    pub events: Vec<E>,
}

/// `GET /events` (query `after`, `limit`, `wait_ms`, `event_types=A,B`, `stream_prefix`) and
/// `GET /subscriptions/{group}/events` (query `after`, `limit`, `wait_ms`): events after a
/// position, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage<E> {
    pub events: Vec<E>,
    /// The position of the newest event in the log when the page was read.
    #[serde(default)]
    pub head: Option<u64>,
}

/// Which events of the global log a reader wants, or a consumer group receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only these event types (all when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// Only streams whose id starts with this (all when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_prefix: Option<String>,
}

/// `PUT /subscriptions/{group}`: creates or updates a consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_prefix: Option<String>,
    /// Sets the checkpoint: delivery continues after this position (0 = from the beginning).
    /// Left out, a new group starts at the beginning of the log and an existing group keeps its
    /// checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_position: Option<u64>,
}

/// A consumer group as the store reports it (`PUT`, `GET /subscriptions/{group}`, and the ack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub group: String,
    /// The last acknowledged position; delivery starts after it.
    pub checkpoint: u64,
    #[serde(flatten)]
    pub filter: EventFilter,
}

/// `POST /subscriptions/{group}/ack`: every event up to `position` is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub position: u64,
}

/// `GET` and `PUT /streams/{stream_id}/snapshot`: a saved state at a stream version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<S> {
    /// The stream version the state includes.
    pub version: u64,
    pub state: S,
}

/// `POST /import`: whole envelopes (as `GET /events` serves them), written with their own
/// positions, versions and times only if they continue the log exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest<E> {
    pub events: Vec<E>,
}

/// The answer to an import (also to a repeated one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResponse {
    pub first_position: u64,
    pub last_position: u64,
    pub events: u64,
}

/// One row of `GET /event-types`: how many events of one type at one schema version the store
/// holds, and the positions of the first and last of them. The answer is an array of these,
/// sorted by type, then version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeCount {
    /// The event type (`event_type` of the envelope).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version (`schema_version` of the envelope).
    pub version: u32,
    pub count: u64,
    pub first_position: u64,
    pub last_position: u64,
}

impl EventFilter {
    pub fn is_empty(&self) -> bool {
        self.event_types.is_none() && self.stream_prefix.is_none()
    }

    /// Parses the `event_types=A,B` and `stream_prefix=P` query parameters; empty ones mean
    /// "all".
    pub fn from_query(event_types: Option<&str>, stream_prefix: Option<&str>) -> Self {
        let event_types = event_types
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty());
        let stream_prefix = stream_prefix.filter(|p| !p.is_empty()).map(str::to_owned);
        Self {
            event_types,
            stream_prefix,
        }
    }

    /// The query parameters that ask for this filter (the reverse of [`Self::from_query`]).
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if let Some(types) = &self.event_types {
            params.push(("event_types", types.join(",")));
        }
        if let Some(prefix) = &self.stream_prefix {
            params.push(("stream_prefix", prefix.clone()));
        }
        params
    }

    pub fn matches(&self, event_type: &str, stream_id: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == event_type))
            && self
                .stream_prefix
                .as_ref()
                .is_none_or(|p| stream_id.starts_with(p.as_str()))
    }
}

impl SubscriptionSpec {
    /// A group that receives the events `filter` selects, keeping its checkpoint if it exists.
    pub fn new(filter: EventFilter) -> Self {
        Self {
            event_types: filter.event_types,
            stream_prefix: filter.stream_prefix,
            start_position: None,
        }
    }

    /// Also sets the group's checkpoint to `position`.
    pub fn start_after(mut self, position: u64) -> Self {
        self.start_position = Some(position);
        self
    }

    /// The events the group receives.
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            event_types: self.event_types.clone(),
            stream_prefix: self.stream_prefix.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters() {
        let f = EventFilter::from_query(Some("A, B,"), Some("Account-"));
        assert_eq!(f.event_types, Some(vec!["A".to_owned(), "B".to_owned()]));
        assert!(f.matches("A", "Account-1"));
        assert!(!f.matches("C", "Account-1"));
        assert!(!f.matches("A", "Transfer-1"));
        assert!(EventFilter::from_query(Some(""), Some("")).is_empty());
        let params = f.to_query();
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            EventFilter::from_query(get("event_types"), get("stream_prefix")),
            f
        );
    }

    #[test]
    fn subscription_spec_wire_format() {
        let spec = SubscriptionSpec::new(EventFilter {
            event_types: Some(vec!["AccountDebited".into()]),
            stream_prefix: None,
        })
        .start_after(4);
        assert_eq!(
            serde_json::to_value(&spec).ok(),
            Some(json!({"event_types": ["AccountDebited"], "start_position": 4}))
        );
        let empty: SubscriptionSpec = serde_json::from_value(json!({})).expect("parses");
        assert_eq!(empty, SubscriptionSpec::default());
    }

    #[test]
    fn subscription_reads_as_the_store_writes_it() {
        let sub: Subscription = serde_json::from_value(
            json!({"group": "g", "checkpoint": 7, "event_types": ["A"], "head": 9, "lag": 2}),
        )
        .expect("parses");
        assert_eq!(sub.checkpoint, 7);
        assert_eq!(sub.filter.event_types, Some(vec!["A".to_owned()]));
    }

    #[test]
    fn pages_tolerate_a_missing_head() {
        let page: LogPage<serde_json::Value> =
            serde_json::from_value(json!({"events": []})).expect("parses");
        assert_eq!(page.head, None);
    }

    #[test]
    fn event_type_count_wire_format() {
        let row = EventTypeCount {
            event_type: "AccountOpened".into(),
            version: 1,
            count: 3,
            first_position: 1,
            last_position: 9,
        };
        let wire = json!({"type": "AccountOpened", "version": 1, "count": 3,
                          "first_position": 1, "last_position": 9});
        assert_eq!(serde_json::to_value(&row).ok(), Some(wire.clone()));
        assert_eq!(
            serde_json::from_value::<EventTypeCount>(wire).ok(),
            Some(row)
        );
    }
}
