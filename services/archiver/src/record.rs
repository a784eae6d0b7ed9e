//! One archived event: the store's envelope with `data` and `metadata` kept as the raw JSON text
//! the store served, so that a restore writes back exactly the bytes that were stored.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// A stored event as the event store serves it, with its payload kept verbatim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedEvent {
    /// The event's position in the global log, from 1.
    pub position: u64,
    pub event_id: String,
    pub stream_id: String,
    /// The event's version in its stream, from 1.
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Box<RawValue>,
    pub metadata: Box<RawValue>,
    /// When the original store recorded the event (RFC 3339), kept as served.
    pub recorded_at: String,
}

/// A running SHA-256 over a log's events in position order: equal digests mean identical
/// positions, ids, streams, versions, types, schema versions, data, metadata and `recorded_at`
/// (the text the store serves, RFC 3339 in UTC to the microsecond; a restore imports it as it
/// is).
#[derive(Debug, Clone, Default)]
pub struct LogDigest {
    hasher: Sha256,
    events: u64,
    last_position: u64,
}

/// The finished digest of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSummary {
    /// Hex SHA-256 over the events' canonical lines.
    pub sha256: String,
    pub events: u64,
    pub last_position: u64,
}

impl LogDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next event of the log.
    pub fn update(&mut self, event: &ArchivedEvent) {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            event.position,
            event.event_id,
            event.stream_id,
            event.version,
            event.event_type,
            event.schema_version,
            event.data.get(),
            event.metadata.get(),
            event.recorded_at,
        );
        self.hasher.update(line.as_bytes());
        self.events += 1;
        self.last_position = event.position;
    }

    pub fn finish(self) -> DigestSummary {
        DigestSummary {
            sha256: hex::encode(self.hasher.finalize()),
            events: self.events,
            last_position: self.last_position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, data: &str) -> ArchivedEvent {
        serde_json::from_str(&format!(
            r#"{{"position":{position},"event_id":"e{position}","stream_id":"S-1","version":{position},
            "event_type":"T","schema_version":1,"data":{data},"metadata":{{}},
            "recorded_at":"2026-11-26T15:00:00Z"}}"#
        ))
        .expect("test event parses")
    }

    fn digest(events: &[ArchivedEvent]) -> String {
        let mut digest = LogDigest::new();
        events.iter().for_each(|e| digest.update(e));
        digest.finish().sha256
    }

    #[test]
    fn digest_sees_payload_bytes_and_order() {
        let a = [event(1, r#"{"a":1,"b":2}"#), event(2, "3")];
        let same = [event(1, r#"{"a":1,"b":2}"#), event(2, "3")];
        let reordered_keys = [event(1, r#"{"b":2,"a":1}"#), event(2, "3")];
        assert_eq!(digest(&a), digest(&same));
        assert_ne!(digest(&a), digest(&reordered_keys));
        assert_ne!(digest(&a), digest(&a[..1]));
    }

    #[test]
    fn digest_sees_recorded_at() {
        let a = [event(1, "1")];
        let mut later = a.clone();
        later[0].recorded_at = "2026-11-26T15:00:00.000001Z".to_owned();
        assert_ne!(digest(&a), digest(&later));
    }

    #[test]
    fn payload_text_round_trips_verbatim() {
        let raw = r#"{"position":7,"event_id":"x","stream_id":"S-1","version":1,"event_type":"T","schema_version":2,"data":{"z": 1,  "a":[1, 2]},"metadata":{"k":"v"},"recorded_at":"2026-11-26T15:00:00.5Z","extra":true}"#;
        let parsed: ArchivedEvent = serde_json::from_str(raw).expect("parses");
        assert_eq!(parsed.data.get(), r#"{"z": 1,  "a":[1, 2]}"#);
        let line = serde_json::to_string(&parsed).expect("serialises");
        let again: ArchivedEvent = serde_json::from_str(&line).expect("parses again");
        assert_eq!(again.data.get(), parsed.data.get());
        assert_eq!(again.recorded_at, "2026-11-26T15:00:00.5Z");
    }
}
