//! Segments: a run of consecutive events as newline-delimited JSON compressed with zstd, named
//! by its position range, and the pure code that encodes, names and decodes them.

use sha2::{Digest, Sha256};

use crate::record::ArchivedEvent;

/// Where segments live inside the archive.
pub const SEGMENT_DIR: &str = "segments";

/// The zstd level: fast, and still about 5-10x smaller than the JSON.
pub const ZSTD_LEVEL: i32 = 3;

/// An encoded segment, ready to be written.
#[derive(Debug, Clone)]
pub struct EncodedSegment {
    pub first_position: u64,
    pub last_position: u64,
    pub events: u64,
    pub uncompressed_bytes: u64,
    /// The zstd-compressed NDJSON.
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// Why a segment could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("a segment needs at least one event")]
    Empty,
    #[error("events are not consecutive: position {found} follows {previous}")]
    NotConsecutive { previous: u64, found: u64 },
    #[error("could not serialise the event at position {position}: {source}")]
    Serialise {
        position: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("zstd failed: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("the decompressed segment is not UTF-8 text")]
    NotText,
    #[error("line {line} is not an archived event: {source}")]
    BadLine {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// The object name of the segment holding positions `first..=last`, e.g.
/// `segments/00000000000000000001-00000000000000000500.ndjson.zst`. Zero-padding makes names
/// sort in position order.
pub fn segment_name(first: u64, last: u64) -> String {
    format!("{SEGMENT_DIR}/{first:020}-{last:020}.ndjson.zst")
}

/// The position range a segment name stands for, if it is one.
pub fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name
        .strip_prefix(SEGMENT_DIR)?
        .strip_prefix('/')?
        .strip_suffix(".ndjson.zst")?;
    let (first, last) = stem.split_once('-')?;
    if first.len() != 20 || last.len() != 20 {
        return None;
    }
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// Encodes consecutive events as one segment.
pub fn encode(events: &[ArchivedEvent]) -> Result<EncodedSegment, SegmentError> {
    let first = events.first().ok_or(SegmentError::Empty)?.position;
    let mut text = Vec::with_capacity(events.len() * 256);
    let mut previous: Option<u64> = None;
    for event in events {
        if let Some(previous) = previous {
            if event.position != previous + 1 {
                return Err(SegmentError::NotConsecutive {
                    previous,
                    found: event.position,
                });
            }
        }
        previous = Some(event.position);
        serde_json::to_writer(&mut text, event).map_err(|source| SegmentError::Serialise {
            position: event.position,
            source,
        })?;
        text.push(b'\n');
    }
    let last = previous.unwrap_or(first);
    let bytes = zstd::bulk::compress(&text, ZSTD_LEVEL).map_err(SegmentError::Zstd)?;
    let sha256 = sha256_hex(&bytes);
    Ok(EncodedSegment {
        first_position: first,
        last_position: last,
        events: events.len() as u64,
        uncompressed_bytes: text.len() as u64,
        bytes,
        sha256,
    })
}

/// Decompresses and parses a segment's bytes (no checks on positions: see `verify`).
pub fn decode(bytes: &[u8]) -> Result<Vec<ArchivedEvent>, SegmentError> {
    let text = zstd::stream::decode_all(bytes).map_err(SegmentError::Zstd)?;
    let text = std::str::from_utf8(&text).map_err(|_| SegmentError::NotText)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| SegmentError::BadLine {
                line: index + 1,
                source,
            })
        })
        .collect()
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64) -> ArchivedEvent {
        serde_json::from_str(&format!(
            r#"{{"position":{position},"event_id":"e{position}","stream_id":"S-1","version":{position},
            "event_type":"T","schema_version":1,"data":{{"n": {position}}},"metadata":{{}},
            "recorded_at":"2026-11-26T15:00:00Z"}}"#
        ))
        .expect("test event parses")
    }

    #[test]
    fn names_round_trip_and_sort_by_position() {
        let check = |name: &str, expected: Option<(u64, u64)>| {
            assert_eq!(parse_segment_name(name), expected, "{name}");
        };
        check(&segment_name(1, 500), Some((1, 500)));
        check(
            &segment_name(u64::MAX - 1, u64::MAX),
            Some((u64::MAX - 1, u64::MAX)),
        );
        check("segments/1-2.ndjson.zst", None);
        check("manifest.json", None);
        check(
            "other/00000000000000000001-00000000000000000002.ndjson.zst",
            None,
        );
        assert!(segment_name(9, 10) < segment_name(10, 11));
    }

    #[test]
    fn encode_then_decode_gives_the_events_back() {
        let events: Vec<_> = (5..=9).map(event).collect();
        let segment = encode(&events).expect("encodes");
        assert_eq!((segment.first_position, segment.last_position), (5, 9));
        assert_eq!(segment.events, 5);
        assert_eq!(segment.sha256, sha256_hex(&segment.bytes));
        let back = decode(&segment.bytes).expect("decodes");
        let positions: Vec<u64> = back.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![5, 6, 7, 8, 9]);
        assert_eq!(back[0].data.get(), r#"{"n": 5}"#);
    }

    #[test]
    fn encode_refuses_gaps_and_empty_runs() {
        assert!(matches!(encode(&[]), Err(SegmentError::Empty)));
        let error = encode(&[event(1), event(3)]).expect_err("gap");
        assert_eq!(
            error.to_string(),
            "events are not consecutive: position 3 follows 1"
        );
    }

    #[test]
    fn decode_names_what_is_wrong() {
        let error = decode(b"not zstd").expect_err("garbage");
        assert!(error.to_string().starts_with("zstd failed"), "{error}");
        let bytes = zstd::bulk::compress(b"{\"position\":1}\n", 1).expect("compress");
        let error = decode(&bytes).expect_err("incomplete line");
        assert!(
            error
                .to_string()
                .starts_with("line 1 is not an archived event"),
            "{error}"
        );
    }
}
