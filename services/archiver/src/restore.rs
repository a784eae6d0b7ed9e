//! `archiver restore`: replays an archive into an empty event store, in position order, so the
//! restored store has the same events, stream versions, global positions and `recorded_at`
//! times. Each segment is checked (as `verify` does) before any of its events is written.
//!
//! Events go to the store's `POST /import` in batches of consecutive positions (across streams),
//! as the archived envelopes: the store writes each batch all-or-nothing, and only if it
//! continues its log exactly (next position, next version of each stream, no earlier time), so
//! positions are asserted by the store, not hoped for. A restore that stopped can be run again:
//! it checks that the store's log is a prefix of the archive and continues after it.

use std::time::Instant;

use serde::Serialize;

use crate::archive::{Archive, ArchiveError};
use crate::record::{ArchivedEvent, DigestSummary, LogDigest};
use crate::store::{StoreClient, StoreError};
use crate::verify::{check_segment, Fault};

/// Most events in one import (the store's default limit is 1000).
pub const MAX_IMPORT_EVENTS: usize = 500;
/// Most payload bytes in one import (the store's default body limit is 4 MiB; the envelopes
/// around the payloads add a few hundred bytes per event).
pub const MAX_IMPORT_BYTES: usize = 1024 * 1024;

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    /// Events already in the store and matching the archive (a resumed restore).
    pub skipped: u64,
    /// Events imported.
    pub restored: u64,
    /// `POST /import` requests made.
    pub imports: u64,
    pub last_position: u64,
    pub seconds: f64,
    /// The digest of the archive's whole log, to compare with `archiver digest --from store`.
    pub archive_digest: DigestSummary,
}

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("could not read the archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error("the archive is damaged: {0}; run `archiver verify` and repair or replace the segment before restoring")]
    Fault(Fault),
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the target store already holds {head} events but its event at position {position} is not the archive's ({found} instead of {expected}); restore into an empty event store")]
    NotAPrefix {
        head: u64,
        position: u64,
        expected: String,
        found: String,
    },
    #[error("the target store holds {head} events, more than the archive's {archived}; restore into an empty event store")]
    StoreAhead { head: u64, archived: u64 },
    #[error("the store answered an import of positions {want_first} to {want_last} with positions {got_first} to {got_last}; restore into an event store that supports POST /import")]
    PositionDrift {
        want_first: u64,
        want_last: u64,
        got_first: u64,
        got_last: u64,
    },
}

/// Replays `archive` into the store behind `client`. `progress` is called with the last
/// position written after each segment.
pub async fn restore(
    archive: &Archive,
    client: &StoreClient,
    mut progress: impl FnMut(u64),
) -> Result<RestoreReport, RestoreError> {
    let started = Instant::now();
    let manifest = archive.load_manifest().await?;
    let head = client.head().await?;
    if head > manifest.last_position() {
        return Err(RestoreError::StoreAhead {
            head,
            archived: manifest.last_position(),
        });
    }
    if head > 0 {
        check_prefix(archive, client, head).await?;
    }
    let mut report = RestoreReport {
        skipped: 0,
        restored: 0,
        imports: 0,
        last_position: head,
        seconds: 0.0,
        archive_digest: LogDigest::new().finish(),
    };
    let mut digest = LogDigest::new();
    let mut expected = 1;
    for entry in &manifest.segments {
        let bytes = archive.get(&entry.name).await?;
        let events = check_segment(entry, &bytes, expected).map_err(RestoreError::Fault)?;
        expected = entry.last_position + 1;
        events.iter().for_each(|e| digest.update(e));
        let pending: Vec<ArchivedEvent> =
            events.into_iter().filter(|e| e.position > head).collect();
        report.skipped += entry.events - pending.len() as u64;
        for batch in batches(&pending) {
            let (first, last) = (&batch[0], &batch[batch.len() - 1]);
            let imported = client.import(batch).await?;
            report.imports += 1;
            if (imported.first_position, imported.last_position) != (first.position, last.position)
            {
                return Err(RestoreError::PositionDrift {
                    want_first: first.position,
                    want_last: last.position,
                    got_first: imported.first_position,
                    got_last: imported.last_position,
                });
            }
            report.restored += batch.len() as u64;
            report.last_position = last.position;
        }
        progress(report.last_position);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.archive_digest = digest.finish();
    Ok(report)
}

/// The store's digest: reads the whole global log.
pub async fn store_digest(client: &StoreClient) -> Result<DigestSummary, StoreError> {
    let mut digest = LogDigest::new();
    let mut after = 0;
    loop {
        let page = client.read_log(after, 5000).await?;
        let Some(last) = page.events.last() else {
            break;
        };
        after = last.position;
        page.events.iter().for_each(|e| digest.update(e));
    }
    Ok(digest.finish())
}

/// The archive's digest, with every segment checked on the way.
pub async fn archive_digest(archive: &Archive) -> Result<DigestSummary, RestoreError> {
    let manifest = archive.load_manifest().await?;
    let mut digest = LogDigest::new();
    let mut expected = 1;
    for entry in &manifest.segments {
        let bytes = archive.get(&entry.name).await?;
        let events = check_segment(entry, &bytes, expected).map_err(RestoreError::Fault)?;
        expected = entry.last_position + 1;
        events.iter().for_each(|e| digest.update(e));
    }
    Ok(digest.finish())
}

/// Splits events (consecutive positions) into import batches bounded in count and payload
/// bytes; a single event larger than the byte bound goes alone.
pub fn batches(events: &[ArchivedEvent]) -> Vec<&[ArchivedEvent]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let size = event.data.get().len() + event.metadata.get().len();
        let breaks =
            i > start && (i - start >= MAX_IMPORT_EVENTS || bytes + size > MAX_IMPORT_BYTES);
        if breaks {
            batches.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        batches.push(&events[start..]);
    }
    batches
}

/// Checks that the store's event at `head` is the archive's (so the store holds a prefix of
/// the archive, left by an interrupted restore).
async fn check_prefix(
    archive: &Archive,
    client: &StoreClient,
    head: u64,
) -> Result<(), RestoreError> {
    let page = client.read_log(head - 1, 1).await?;
    let found = page
        .events
        .first()
        .map(|e| e.event_id.clone())
        .unwrap_or_default();
    let manifest = archive.load_manifest().await?;
    let entry = manifest
        .segments
        .iter()
        .find(|s| s.first_position <= head && head <= s.last_position);
    let mut expected = String::new();
    if let Some(entry) = entry {
        let bytes = archive.get(&entry.name).await?;
        let events =
            check_segment(entry, &bytes, entry.first_position).map_err(RestoreError::Fault)?;
        if let Some(event) = events.iter().find(|e| e.position == head) {
            expected = event.event_id.clone();
        }
    }
    if expected.is_empty() || expected != found {
        return Err(RestoreError::NotAPrefix {
            head,
            position: head,
            expected,
            found,
        });
    }
    tracing::info!(
        head,
        "the store holds the archive's first {head} events; continuing after them"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, stream: &str, version: u64) -> ArchivedEvent {
        serde_json::from_str(&format!(
            r#"{{"position":{position},"event_id":"e{position}","stream_id":"{stream}","version":{version},
            "event_type":"T","schema_version":1,"data":{{}},"metadata":{{}},
            "recorded_at":"2026-11-26T15:00:00Z"}}"#
        ))
        .expect("test event parses")
    }

    fn check(events: &[ArchivedEvent], expected: &[&[u64]]) {
        let got: Vec<Vec<u64>> = batches(events)
            .iter()
            .map(|batch| batch.iter().map(|e| e.position).collect())
            .collect();
        let want: Vec<Vec<u64>> = expected.iter().map(|r| r.to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn batches_cross_streams_and_are_bounded_in_count_and_bytes() {
        check(&[], &[]);
        check(&[event(1, "A", 1)], &[&[1]]);
        // Streams interleave freely inside one import.
        check(
            &[
                event(1, "A", 1),
                event(2, "A", 2),
                event(3, "B", 1),
                event(4, "A", 3),
            ],
            &[&[1, 2, 3, 4]],
        );
        let many: Vec<_> = (1..=(MAX_IMPORT_EVENTS as u64 * 2 + 1))
            .map(|p| event(p, "A", p))
            .collect();
        let split = batches(&many);
        assert_eq!(
            split.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [MAX_IMPORT_EVENTS, MAX_IMPORT_EVENTS, 1]
        );
        let mut big = event(2, "B", 1);
        big.data = serde_json::value::RawValue::from_string(format!(
            "\"{}\"",
            "x".repeat(MAX_IMPORT_BYTES)
        ))
        .expect("valid JSON");
        check(
            &[event(1, "A", 1), big, event(3, "A", 2)],
            &[&[1], &[2], &[3]],
        );
    }
}
