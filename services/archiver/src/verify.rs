//! `archiver verify`: reads every segment the manifest lists and checks that its checksum
//! matches, that it decodes, and that positions run from 1 to the last with no gap. It stops at
//! the first fault and names it.

use serde::Serialize;

use crate::archive::{Archive, ArchiveError};
use crate::manifest::SegmentEntry;
use crate::record::ArchivedEvent;
use crate::segment::{self, parse_segment_name};

/// What a verification read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Segments that passed every check.
    pub segments_checked: usize,
    pub segments_listed: usize,
    /// Events in the segments that passed.
    pub events_checked: u64,
    /// The last position of the segments that passed.
    pub last_position: u64,
    /// Segment objects the manifest does not list (left by a crash, removed at the next start).
    pub unlisted_segments: Vec<String>,
    /// The first fault found, if any.
    pub fault: Option<Fault>,
}

/// A fault in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    #[error("segment {segment} is listed in the manifest but missing from the archive")]
    Missing { segment: String },
    #[error("segment {segment} fails its checksum: the manifest says {expected}, the object hashes to {actual}")]
    Checksum {
        segment: String,
        expected: String,
        actual: String,
    },
    #[error("segment {segment} has {actual} bytes, the manifest says {expected}")]
    Size {
        segment: String,
        expected: u64,
        actual: u64,
    },
    #[error("segment {segment} does not decode: {reason}")]
    Undecodable { segment: String, reason: String },
    #[error("positions have a gap: position {expected} is due, but {segment} has {found}")]
    Gap {
        segment: String,
        expected: u64,
        found: u64,
    },
    #[error("segment {segment} does not hold what the manifest says: {reason}")]
    Mismatch { segment: String, reason: String },
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// Verifies the archive. An `Err` means it could not be read at all (e.g. the bucket is
/// unreachable or the manifest is corrupt); faults in segments are in the report.
pub async fn verify(archive: &Archive) -> Result<VerifyReport, ArchiveError> {
    let manifest = archive.load_manifest().await?;
    let mut report = VerifyReport {
        segments_listed: manifest.segments.len(),
        ..VerifyReport::default()
    };
    report.unlisted_segments = archive
        .list_segment_objects()
        .await?
        .into_iter()
        .filter(|name| !manifest.lists(name))
        .collect();
    let mut expected = 1;
    for entry in &manifest.segments {
        let bytes = match archive.get(&entry.name).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => {
                report.fault = Some(Fault::Missing {
                    segment: entry.name.clone(),
                });
                return Ok(report);
            }
            Err(error) => return Err(error),
        };
        match check_segment(entry, &bytes, expected) {
            Ok(events) => {
                report.segments_checked += 1;
                report.events_checked += events.len() as u64;
                report.last_position = entry.last_position;
                expected = entry.last_position + 1;
            }
            Err(fault) => {
                report.fault = Some(fault);
                return Ok(report);
            }
        }
    }
    Ok(report)
}

/// Checks one segment's bytes against its manifest entry, given the position it must start
/// at, and returns its events.
pub fn check_segment(
    entry: &SegmentEntry,
    bytes: &[u8],
    expected_first: u64,
) -> Result<Vec<ArchivedEvent>, Fault> {
    let segment = || entry.name.clone();
    let mismatch = |reason: String| Fault::Mismatch {
        segment: segment(),
        reason,
    };
    let actual = segment::sha256_hex(bytes);
    if actual != entry.sha256 {
        return Err(Fault::Checksum {
            segment: segment(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    if bytes.len() as u64 != entry.bytes {
        return Err(Fault::Size {
            segment: segment(),
            expected: entry.bytes,
            actual: bytes.len() as u64,
        });
    }
    let events = segment::decode(bytes).map_err(|e| Fault::Undecodable {
        segment: segment(),
        reason: e.to_string(),
    })?;
    let mut due = expected_first;
    for event in &events {
        if event.position != due {
            return Err(Fault::Gap {
                segment: segment(),
                expected: due,
                found: event.position,
            });
        }
        due += 1;
    }
    if entry.first_position != expected_first {
        return Err(Fault::Gap {
            segment: segment(),
            expected: expected_first,
            found: entry.first_position,
        });
    }
    let last = due - 1;
    if events.is_empty() || last != entry.last_position || events.len() as u64 != entry.events {
        return Err(mismatch(format!(
            "it holds {} events ending at position {last}, the manifest says {} ending at {}",
            events.len(),
            entry.events,
            entry.last_position
        )));
    }
    if parse_segment_name(&entry.name) != Some((entry.first_position, entry.last_position)) {
        return Err(mismatch(format!(
            "its name does not match the range {}-{}",
            entry.first_position, entry.last_position
        )));
    }
    Ok(events)
}
