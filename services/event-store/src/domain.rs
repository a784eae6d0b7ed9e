//! Checked request types: raw HTTP bodies are parsed into these, and storage only sees them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

pub use event_store_api::{
    is_valid_event_type, is_valid_name, EventFilter, EventTypeCount, ExpectedVersion, Subscription,
    SubscriptionSpec, MAX_EVENT_TYPE_LEN, MAX_NAME_LEN,
};

/// The raw body of `POST /streams/{stream_id}/events`, as sent.
pub type AppendBody = event_store_api::AppendRequest<EventBody>;

/// The raw body of `POST /import`, as sent: full envelopes, as `GET /events` serves them.
pub type ImportBody = event_store_api::ImportRequest<ImportEventBody>;

/// A stored snapshot of a stream's state at a version, the state as raw JSON text.
pub type Snapshot = event_store_api::Snapshot<Box<RawValue>>;

/// Why a name (stream id, group name) or an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("the {what} {value:?} is invalid: use 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 and - _ . : @ $ +")]
    Name { what: &'static str, value: String },
    #[error("events[{index}].event_id {value:?} is not a UUID; give every event a UUID such as a random v4")]
    EventId { index: usize, value: String },
    #[error(
        "events[{index}].event_id {value} appears twice in the batch; every event needs its own id"
    )]
    DuplicateEventId { index: usize, value: Uuid },
    #[error(
        "events[{index}].event_type is invalid: use 1 to {MAX_EVENT_TYPE_LEN} printable characters"
    )]
    EventType { index: usize },
    #[error("events[{index}].metadata must be a JSON object (or be left out)")]
    Metadata { index: usize },
    #[error("events[{index}].schema_version must be at least 1")]
    SchemaVersion { index: usize },
    #[error("the batch has no events; send at least one")]
    EmptyBatch,
    #[error(
        "the batch has {len} events, more than the limit of {max}; split it into smaller appends"
    )]
    BatchTooLarge { len: usize, max: usize },
}

impl InvalidInput {
    /// The machine-readable error code for the HTTP answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Name {
                what: "stream id", ..
            } => "invalid_stream_id",
            Self::Name { .. } => "invalid_name",
            Self::EventId { .. } => "invalid_event_id",
            Self::DuplicateEventId { .. } => "duplicate_event_id",
            Self::EventType { .. } => "invalid_event_type",
            Self::Metadata { .. } => "invalid_metadata",
            Self::SchemaVersion { .. } => "invalid_schema_version",
            Self::EmptyBatch => "empty_batch",
            Self::BatchTooLarge { .. } => "batch_too_large",
        }
    }
}

fn check_name(what: &'static str, value: &str) -> Result<(), InvalidInput> {
    if is_valid_name(value) {
        Ok(())
    } else {
        Err(InvalidInput::Name {
            what,
            value: value.chars().take(MAX_NAME_LEN + 8).collect(),
        })
    }
}

/// A checked stream id: 1 to 256 characters from `A-Z a-z 0-9 - _ . : @ $ +`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidInput> {
        let value = value.into();
        check_name("stream id", &value)?;
        Ok(Self(value))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked consumer group name, same alphabet as [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidInput> {
        let value = value.into();
        check_name("group name", &value)?;
        Ok(Self(value))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event of an [`AppendBody`], as sent.
#[derive(Debug, Deserialize)]
pub struct EventBody {
    pub event_id: String,
    pub event_type: String,
    #[serde(default)]
    pub schema_version: Option<u32>,
    pub data: Box<RawValue>,
    #[serde(default)]
    pub metadata: Option<Box<RawValue>>,
}

/// A checked event to append.
#[derive(Debug)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// Raw JSON text, stored and served verbatim.
    pub data: Box<RawValue>,
    /// Raw JSON object text (`{}` when none was sent).
    pub metadata: Box<RawValue>,
}

/// A checked, all-or-nothing append.
#[derive(Debug)]
pub struct AppendBatch {
    pub stream_id: StreamId,
    pub expected_version: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl AppendBatch {
    /// Checks a raw body; `max_batch` bounds the number of events.
    pub fn parse(
        stream_id: StreamId,
        body: AppendBody,
        max_batch: usize,
    ) -> Result<Self, InvalidInput> {
        if body.events.is_empty() {
            return Err(InvalidInput::EmptyBatch);
        }
        if body.events.len() > max_batch {
            return Err(InvalidInput::BatchTooLarge {
                len: body.events.len(),
                max: max_batch,
            });
        }
        let mut events = Vec::with_capacity(body.events.len());
        for (index, raw) in body.events.into_iter().enumerate() {
            let event_id = Uuid::parse_str(&raw.event_id).map_err(|_| InvalidInput::EventId {
                index,
                value: raw.event_id.chars().take(64).collect(),
            })?;
            if events.iter().any(|e: &NewEvent| e.event_id == event_id) {
                return Err(InvalidInput::DuplicateEventId {
                    index,
                    value: event_id,
                });
            }
            if !event_type_ok(&raw.event_type) {
                return Err(InvalidInput::EventType { index });
            }
            let schema_version = raw.schema_version.unwrap_or(1);
            if schema_version == 0 {
                return Err(InvalidInput::SchemaVersion { index });
            }
            let metadata = match raw.metadata {
                None => empty_object(),
                Some(m) if metadata_ok(&m) => m,
                Some(_) => return Err(InvalidInput::Metadata { index }),
            };
            events.push(NewEvent {
                event_id,
                event_type: raw.event_type,
                schema_version,
                data: raw.data,
                metadata,
            });
        }
        Ok(Self {
            stream_id,
            expected_version: body.expected_version,
            events,
        })
    }

    /// Bytes of `data` and `metadata` in the batch.
    pub fn payload_bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.data.get().len() + e.metadata.get().len())
            .sum()
    }
}

/// One event of an [`ImportBody`]: every field of the stored envelope, all required. The
/// optional ones are checked by [`ImportBatch::parse`], so that a missing field is named as
/// `events[i].name` together with the event's position.
#[derive(Debug, Deserialize)]
pub struct ImportEventBody {
    #[serde(default)]
    pub position: Option<u64>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// Any JSON, `null` included, as for an append.
    pub data: Box<RawValue>,
    #[serde(default)]
    pub metadata: Option<Box<RawValue>>,
    /// RFC 3339, parsed by [`ImportBatch::parse`].
    #[serde(default)]
    pub recorded_at: Option<String>,
}

/// An [`ImportEventBody`] with every field present.
struct ImportEventFields {
    event_id: String,
    stream_id: String,
    version: u64,
    event_type: String,
    schema_version: u32,
    data: Box<RawValue>,
    metadata: Box<RawValue>,
    recorded_at: String,
}

/// A checked event of an import: its place in the log and its original time.
#[derive(Debug)]
pub struct ImportedEvent {
    pub position: u64,
    pub stream_id: StreamId,
    pub version: u64,
    pub event: NewEvent,
    /// Whole microseconds (the store's resolution).
    pub recorded_at: OffsetDateTime,
}

/// A checked, all-or-nothing import: consecutive positions, versions that continue within the
/// batch, and times that never go backwards. Whether it continues the store's log is checked by
/// the storage, inside the same transaction that writes it.
#[derive(Debug)]
pub struct ImportBatch {
    pub events: Vec<ImportedEvent>,
}

/// Why an import was rejected before it reached storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidImport {
    /// The batch as a whole (empty or too large).
    #[error(transparent)]
    Batch(InvalidInput),
    /// One event: names the field and the event's position.
    #[error("events[{index}].{field} (the event at position {position}): {problem}")]
    Event {
        index: usize,
        position: u64,
        field: &'static str,
        code: &'static str,
        problem: String,
    },
}

impl InvalidImport {
    /// The machine-readable error code for the HTTP answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Batch(e) => e.code(),
            Self::Event { code, .. } => code,
        }
    }
}

impl ImportBatch {
    /// Checks a raw body; `max_batch` bounds the number of events.
    pub fn parse(body: ImportBody, max_batch: usize) -> Result<Self, InvalidImport> {
        if body.events.is_empty() {
            return Err(InvalidImport::Batch(InvalidInput::EmptyBatch));
        }
        if body.events.len() > max_batch {
            return Err(InvalidImport::Batch(InvalidInput::BatchTooLarge {
                len: body.events.len(),
                max: max_batch,
            }));
        }
        let mut events: Vec<ImportedEvent> = Vec::with_capacity(body.events.len());
        for (index, raw) in body.events.into_iter().enumerate() {
            let position = raw.position.unwrap_or_default();
            let fault =
                |field: &'static str, code: &'static str, problem: String| InvalidImport::Event {
                    index,
                    position,
                    field,
                    code,
                    problem,
                };
            let missing = |field: &'static str| {
                fault(
                    field,
                    "invalid_field",
                    format!("{field} is missing; an import carries every field of the envelope"),
                )
            };
            if raw.position.is_none() {
                return Err(missing("position"));
            }
            let raw = ImportEventFields {
                event_id: raw.event_id.ok_or_else(|| missing("event_id"))?,
                stream_id: raw.stream_id.ok_or_else(|| missing("stream_id"))?,
                version: raw.version.ok_or_else(|| missing("version"))?,
                event_type: raw.event_type.ok_or_else(|| missing("event_type"))?,
                schema_version: raw
                    .schema_version
                    .ok_or_else(|| missing("schema_version"))?,
                data: raw.data,
                metadata: raw.metadata.ok_or_else(|| missing("metadata"))?,
                recorded_at: raw.recorded_at.ok_or_else(|| missing("recorded_at"))?,
            };
            let previous = events.last();
            if position == 0 {
                return Err(fault(
                    "position",
                    "invalid_position",
                    "0 is not a position; positions start at 1".to_owned(),
                ));
            }
            if let Some(previous) = previous {
                if position != previous.position + 1 {
                    return Err(fault(
                        "position",
                        "position_gap",
                        format!(
                            "{position} does not follow position {} of events[{}]; the positions of an import are consecutive",
                            previous.position,
                            index - 1
                        ),
                    ));
                }
            }
            let stream_id = StreamId::parse(raw.stream_id)
                .map_err(|e| fault("stream_id", "invalid_stream_id", e.to_string()))?;
            if raw.version == 0 {
                return Err(fault(
                    "version",
                    "invalid_version",
                    "0 is not a version; stream versions start at 1".to_owned(),
                ));
            }
            let earlier = events.iter().rev().find(|e| e.stream_id == stream_id);
            if let Some(earlier) = earlier {
                if raw.version != earlier.version + 1 {
                    return Err(fault(
                        "version",
                        "version_gap",
                        format!(
                            "version {} does not follow version {} of stream {stream_id} at position {} of this import; a stream's versions go up by 1",
                            raw.version, earlier.version, earlier.position
                        ),
                    ));
                }
            }
            let event_id = Uuid::parse_str(&raw.event_id).map_err(|_| {
                fault(
                    "event_id",
                    "invalid_event_id",
                    format!(
                        "{:?} is not a UUID",
                        raw.event_id.chars().take(64).collect::<String>()
                    ),
                )
            })?;
            if events
                .iter()
                .any(|e| e.event.event_id == event_id && e.stream_id == stream_id)
            {
                return Err(fault(
                    "event_id",
                    "duplicate_event_id",
                    format!("{event_id} appears twice in stream {stream_id} in this import"),
                ));
            }
            if !event_type_ok(&raw.event_type) {
                return Err(fault(
                    "event_type",
                    "invalid_event_type",
                    format!("the event type is invalid: use 1 to {MAX_EVENT_TYPE_LEN} printable characters"),
                ));
            }
            if raw.schema_version == 0 {
                return Err(fault(
                    "schema_version",
                    "invalid_schema_version",
                    "the schema version must be at least 1".to_owned(),
                ));
            }
            if !metadata_ok(&raw.metadata) {
                return Err(fault(
                    "metadata",
                    "invalid_metadata",
                    "metadata must be a JSON object".to_owned(),
                ));
            }
            let recorded_at = parse_recorded_at(&raw.recorded_at)
                .map_err(|problem| fault("recorded_at", "invalid_recorded_at", problem))?;
            if let Some(previous) = previous {
                if recorded_at < previous.recorded_at {
                    return Err(fault(
                        "recorded_at",
                        "recorded_at_backwards",
                        format!(
                            "{} is before {} of the event at position {}; recorded_at never goes backwards",
                            raw.recorded_at,
                            format_time(previous.recorded_at),
                            previous.position
                        ),
                    ));
                }
            }
            events.push(ImportedEvent {
                position,
                stream_id,
                version: raw.version,
                event: NewEvent {
                    event_id,
                    event_type: raw.event_type,
                    schema_version: raw.schema_version,
                    data: raw.data,
                    metadata: raw.metadata,
                },
                recorded_at,
            });
        }
        Ok(Self { events })
    }

    pub fn first_position(&self) -> u64 {
        self.events.first().map_or(0, |e| e.position)
    }

    pub fn last_position(&self) -> u64 {
        self.events.last().map_or(0, |e| e.position)
    }

    /// Bytes of `data` and `metadata` in the batch.
    pub fn payload_bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.event.data.get().len() + e.event.metadata.get().len())
            .sum()
    }
}

/// The result of a successful (or idempotently repeated) import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub first_position: u64,
    pub last_position: u64,
    pub events: u64,
    /// True when the store already held exactly these events at these positions.
    #[serde(skip)]
    pub duplicate: bool,
}

/// Formats a time as the envelope does (RFC 3339, UTC).
pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn parse_recorded_at(text: &str) -> Result<OffsetDateTime, String> {
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 time ({e}); send it as the store served it, e.g. 2026-11-26T15:30:00.123456Z")
        })?;
    if t.nanosecond() % 1000 != 0 {
        return Err(format!(
            "{text:?} is finer than a microsecond, the store's resolution; it would not be kept exactly"
        ));
    }
    Ok(t.to_offset(time::UtcOffset::UTC))
}

fn event_type_ok(event_type: &str) -> bool {
    is_valid_event_type(event_type)
}

fn metadata_ok(metadata: &RawValue) -> bool {
    metadata.get().trim_start().starts_with('{')
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is valid JSON"))
}

/// The result of a successful (or idempotently repeated) append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppendOutcome {
    /// The stream's version after the append (the version of the batch's last event).
    pub version: u64,
    /// The global position of the batch's last event.
    pub position: u64,
    /// True when every event of the batch was already stored and nothing new was written.
    #[serde(skip)]
    pub duplicate: bool,
}

/// A stored event, serialised as the wire envelope.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    pub version: u64,
    pub position: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Box<RawValue>,
    pub metadata: Box<RawValue>,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_stream_id(input: &str, ok: bool) {
        assert_eq!(StreamId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn stream_ids() {
        check_stream_id("Account-5f0c6a1e-2b8a-4d7e-9b1a-0f6d2f3c4b5a", true);
        check_stream_id("transfer:42", true);
        check_stream_id("$all", true);
        check_stream_id("a", true);
        check_stream_id(&"a".repeat(256), true);
        check_stream_id(&"a".repeat(257), false);
        check_stream_id("", false);
        check_stream_id("has space", false);
        check_stream_id("slash/inside", false);
        check_stream_id("ümlaut", false);
        check_stream_id("new\nline", false);
    }

    fn check_expected(input: &str, expected: Option<ExpectedVersion>) {
        let got = serde_json::from_str::<ExpectedVersion>(input).ok();
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn expected_versions() {
        check_expected("0", Some(ExpectedVersion::Exact(0)));
        check_expected("17", Some(ExpectedVersion::Exact(17)));
        check_expected("\"any\"", Some(ExpectedVersion::Any));
        check_expected("-1", None);
        check_expected("\"3\"", None);
        check_expected("1.5", None);
        check_expected("null", None);
        check_expected("true", None);
    }

    fn body(json: &str) -> AppendBody {
        serde_json::from_str(json).expect("test body parses")
    }

    fn check_batch(json: &str, expected: Result<usize, &str>) {
        let stream = StreamId::parse("s-1").expect("valid");
        let got = AppendBatch::parse(stream, body(json), 3)
            .map(|b| b.events.len())
            .map_err(|e| e.code());
        assert_eq!(got, expected, "{json}");
    }

    const ID1: &str = "0b7f7d5e-8c55-4f0e-9a43-1f7e9f0d1a01";
    const ID2: &str = "0b7f7d5e-8c55-4f0e-9a43-1f7e9f0d1a02";

    #[test]
    fn batches() {
        let ev = |id: &str, extra: &str| {
            format!(r#"{{"event_id":"{id}","event_type":"T","data":{{"a":1}}{extra}}}"#)
        };
        let batch = |events: Vec<String>| {
            format!(
                r#"{{"expected_version":0,"events":[{}]}}"#,
                events.join(",")
            )
        };
        check_batch(&batch(vec![ev(ID1, "")]), Ok(1));
        check_batch(&batch(vec![ev(ID1, ""), ev(ID2, "")]), Ok(2));
        check_batch(&batch(vec![]), Err("empty_batch"));
        check_batch(&batch(vec![ev("not-a-uuid", "")]), Err("invalid_event_id"));
        check_batch(
            &batch(vec![ev(ID1, ""), ev(ID1, "")]),
            Err("duplicate_event_id"),
        );
        check_batch(
            &batch(vec![ev(ID1, r#","metadata":[1]"#)]),
            Err("invalid_metadata"),
        );
        check_batch(&batch(vec![ev(ID1, r#","metadata":null"#)]), Ok(1));
        check_batch(
            &batch(vec![ev(ID1, r#","schema_version":0"#)]),
            Err("invalid_schema_version"),
        );
        let four = (1..=4)
            .map(|i| ev(&format!("0b7f7d5e-8c55-4f0e-9a43-1f7e9f0d1a1{i}"), ""))
            .collect();
        check_batch(&batch(four), Err("batch_too_large"));
        check_batch(
            &batch(vec![
                r#"{"event_id":"0b7f7d5e-8c55-4f0e-9a43-1f7e9f0d1a01","event_type":"","data":1}"#
                    .to_owned(),
            ]),
            Err("invalid_event_type"),
        );
    }

    /// One import event as JSON: position, stream, version, time, plus extra fields.
    fn imported(position: u64, stream: &str, version: u64, at: &str) -> String {
        format!(
            r#"{{"position":{position},"event_id":"0b7f7d5e-8c55-4f0e-9a43-1f7e9f0d1a{position:02}","stream_id":"{stream}","version":{version},"event_type":"T","schema_version":1,"data":null,"metadata":{{}},"recorded_at":"{at}"}}"#
        )
    }

    fn check_import(events: &[String], expected: Result<usize, (&str, &str, u64)>) {
        let json = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let body: ImportBody = serde_json::from_str(&json).expect("test body parses");
        let got = ImportBatch::parse(body, 3)
            .map(|b| b.events.len())
            .map_err(|e| match e {
                InvalidImport::Event {
                    field,
                    code,
                    position,
                    ..
                } => (code, field, position),
                InvalidImport::Batch(e) => (e.code(), "", 0),
            });
        assert_eq!(got, expected, "{json}");
    }

    #[test]
    fn imports() {
        const T0: &str = "2026-11-26T15:00:00Z";
        const T1: &str = "2026-11-26T15:00:00.000001Z";
        check_import(&[imported(7, "A", 1, T0)], Ok(1));
        check_import(
            &[
                imported(7, "A", 1, T0),
                imported(8, "B", 4, T0),
                imported(9, "A", 2, T1),
            ],
            Ok(3),
        );
        check_import(&[], Err(("empty_batch", "", 0)));
        check_import(
            &[imported(7, "A", 1, T0), imported(9, "A", 2, T0)],
            Err(("position_gap", "position", 9)),
        );
        check_import(
            &[imported(7, "A", 1, T0), imported(8, "A", 3, T0)],
            Err(("version_gap", "version", 8)),
        );
        check_import(
            &[imported(7, "A", 1, T1), imported(8, "A", 2, T0)],
            Err(("recorded_at_backwards", "recorded_at", 8)),
        );
        check_import(
            &[imported(7, "A", 1, "2026-11-26T15:00:00.0000001Z")],
            Err(("invalid_recorded_at", "recorded_at", 7)),
        );
        // An offset is accepted and kept as the same instant in UTC.
        check_import(&[imported(7, "A", 1, "2026-11-26T16:00:00+01:00")], Ok(1));
        check_import(
            &[imported(0, "A", 1, T0)],
            Err(("invalid_position", "position", 0)),
        );
        check_import(
            &[imported(7, "A", 0, T0)],
            Err(("invalid_version", "version", 7)),
        );
        check_import(
            &[imported(7, "A b", 1, T0)],
            Err(("invalid_stream_id", "stream_id", 7)),
        );
        check_import(
            &[imported(7, "A", 1, T0)
                .replace(r#""recorded_at":"2026-11-26T15:00:00Z""#, r#""other":1"#)],
            Err(("invalid_field", "recorded_at", 7)),
        );
    }

    /// What the store answers reads as the wire contract's response types.
    #[test]
    fn outcomes_are_the_wire_contracts_responses() {
        let append = AppendOutcome {
            version: 3,
            position: 9,
            duplicate: true,
        };
        let json = serde_json::to_string(&append).expect("serialises");
        assert_eq!(
            serde_json::from_str::<event_store_api::AppendResponse>(&json).ok(),
            Some(event_store_api::AppendResponse {
                version: 3,
                position: 9
            })
        );
        let import = ImportOutcome {
            first_position: 4,
            last_position: 6,
            events: 3,
            duplicate: false,
        };
        let json = serde_json::to_string(&import).expect("serialises");
        assert_eq!(
            serde_json::from_str::<event_store_api::ImportResponse>(&json).ok(),
            Some(event_store_api::ImportResponse {
                first_position: 4,
                last_position: 6,
                events: 3
            })
        );
    }

    #[test]
    fn filters() {
        let f = EventFilter::from_query(Some("A, B,"), Some("Account-"));
        assert_eq!(f.event_types, Some(vec!["A".to_owned(), "B".to_owned()]));
        assert!(f.matches("A", "Account-1"));
        assert!(!f.matches("C", "Account-1"));
        assert!(!f.matches("A", "Transfer-1"));
        assert!(EventFilter::from_query(Some(""), Some("")).is_empty());
    }
}
