//! `archiver restore`: replays an archive into an empty event store, in position order, so the
//! restored store has the same events, stream versions and global positions. Each segment is
//! checked (as `verify` does) before any of its events is written.
//!
//! Consecutive events of one stream go in one append whose expected version is the version
//! before them; the store answers with the position it gave the last one, which must be the
//! archived position. A restore that stopped can be run again: it checks that the store's log
//! is a prefix of the archive and continues after it.

use std::time::Instant;

use serde::Serialize;

use crate::archive::{Archive, ArchiveError};
use crate::record::{ArchivedEvent, DigestSummary, LogDigest};
use crate::store::{StoreClient, StoreError};
use crate::verify::{check_segment, Fault};

/// Most events in one append (the store's default limit is 1000).
pub const MAX_APPEND_EVENTS: usize = 500;
/// Most payload bytes in one append (the store's default body limit is 4 MiB).
pub const MAX_APPEND_BYTES: usize = 1024 * 1024;

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    /// Events already in the store and matching the archive (a resumed restore).
    pub skipped: u64,
    /// Events appended.
    pub restored: u64,
    pub appends: u64,
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
    #[error("the store put event {event_id} of {stream_id} at position {got}, not the archived {want}; was something else writing to the store during the restore? Restore into an empty store that nothing else writes to")]
    PositionDrift {
        event_id: String,
        stream_id: String,
        want: u64,
        got: u64,
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
        appends: 0,
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
        for run in runs(&pending) {
            let appended = client.append_original(run).await?;
            report.appends += 1;
            let last = &run[run.len() - 1];
            if appended.position != last.position || appended.version != last.version {
                return Err(RestoreError::PositionDrift {
                    event_id: last.event_id.clone(),
                    stream_id: last.stream_id.clone(),
                    want: last.position,
                    got: appended.position,
                });
            }
            report.restored += run.len() as u64;
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

/// Splits events into runs of consecutive events of one stream, bounded in count and bytes.
pub fn runs(events: &[ArchivedEvent]) -> Vec<&[ArchivedEvent]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let size = event.data.get().len() + event.metadata.get().len();
        let breaks = i > start
            && (event.stream_id != events[start].stream_id
                || event.version != events[i - 1].version + 1
                || i - start >= MAX_APPEND_EVENTS
                || bytes + size > MAX_APPEND_BYTES);
        if breaks {
            runs.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        runs.push(&events[start..]);
    }
    runs
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
        let got: Vec<Vec<u64>> = runs(events)
            .iter()
            .map(|run| run.iter().map(|e| e.position).collect())
            .collect();
        let want: Vec<Vec<u64>> = expected.iter().map(|r| r.to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn runs_group_consecutive_events_of_one_stream() {
        check(&[], &[]);
        check(&[event(1, "A", 1)], &[&[1]]);
        check(
            &[
                event(1, "A", 1),
                event(2, "A", 2),
                event(3, "B", 1),
                event(4, "A", 3),
            ],
            &[&[1, 2], &[3], &[4]],
        );
        // A version jump inside one stream starts a new append (it is checked separately).
        check(&[event(1, "A", 1), event(2, "A", 3)], &[&[1], &[2]]);
        let many: Vec<_> = (1..=(MAX_APPEND_EVENTS as u64 + 1))
            .map(|p| event(p, "A", p))
            .collect();
        let split = runs(&many);
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].len(), 1);
    }
}
