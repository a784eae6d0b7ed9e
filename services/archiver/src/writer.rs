//! The archiving loop: reads the global log after the archive's last position, buffers events
//! into a segment, and flushes the segment when it reaches a size or an age. A flush writes the
//! segment, then commits it by rewriting the manifest, then acknowledges the consumer group.
//!
//! The manifest, not the group's checkpoint, says where to resume: a crash before the manifest
//! write leaves an unlisted segment (deleted at the next start, its events archived again); a
//! crash after it leaves the checkpoint behind (caught up at the next start). Either way no
//! event is lost or archived twice.

use std::future::Future;
use std::time::{Duration, Instant};

use es_client::follow::{Follower, Page, Source};
use es_client::{Backoff, Poison};
use service_kit::{Counter, Gauge};
use tokio::sync::mpsc;

use crate::archive::{Archive, ArchiveError};
use crate::manifest::{Manifest, ManifestError};
use crate::record::ArchivedEvent;
use crate::segment::{self, SegmentError};
use crate::store::{StoreClient, StoreError};

/// The archiver's poison policy. It never decodes an event (payloads stay raw JSON), so the one
/// event it cannot take is one that does not continue the archive (a gap or a different log):
/// it stops with [`ArchiverError::Discontinuous`], since an archive with a hole is worse than a
/// stopped archiver (`/health` answers 503 and the operator decides).
pub const POISON: Poison = Poison::Stop;

/// When a segment is flushed: at `max_bytes` of JSON or `max_events`, or when its first event
/// has waited `max_age`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    pub max_bytes: usize,
    pub max_events: usize,
    pub max_age: Duration,
}

/// How the archiver reads the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The consumer group whose checkpoint follows the archive.
    pub group: String,
    /// Most events per read.
    pub batch: usize,
    /// Longest wait of one read when nothing is buffered.
    pub poll_wait: Duration,
    pub flush: FlushPolicy,
}

/// Live figures, shared with `/metrics` and `/health`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The last position committed to the archive.
    pub archived_position: Gauge,
    /// The newest position in the store at the last read.
    pub store_head: Gauge,
    /// Events read but not yet in a committed segment.
    pub buffered_events: Gauge,
    /// The last position taken into the open segment (or committed): how far reading got.
    pub read_position: Gauge,
    /// 1 while the last request to the store succeeded.
    pub store_reachable: Gauge,
    pub segments_written: Counter,
    pub events_archived: Counter,
    pub bytes_written: Counter,
    pub flush_failures: Counter,
    pub store_errors: Counter,
    /// Unlisted segment objects deleted at start (left by a crash before a manifest write).
    pub orphans_removed: Counter,
}

/// Why the archiver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    #[error("could not use the archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error("the event store refused a request: {0}")]
    Store(#[source] StoreError),
    #[error("the event store sent position {found} where {expected} was due; the store's log is not the one this archive holds (was the store replaced?). Archive to a new location, or restore the store from this archive")]
    Discontinuous { expected: u64, found: u64 },
    #[error("could not encode a segment: {0}")]
    Segment(#[from] SegmentError),
    #[error("could not extend the manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("the reading task stopped unexpectedly; restart the archiver")]
    ReaderStopped,
    #[error("a segment task failed: {0}")]
    Task(String),
}

/// Events waiting to become a segment.
#[derive(Debug, Default)]
pub struct SegmentBuffer {
    events: Vec<ArchivedEvent>,
    bytes: usize,
    opened: Option<Instant>,
}

/// The archiver: one per archive (it is the archive's only writer).
#[derive(Debug, Clone)]
pub struct Archiver {
    archive: Archive,
    client: StoreClient,
    settings: Settings,
    metrics: Metrics,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
            max_events: 50_000,
            max_age: Duration::from_secs(5),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            group: "archiver".to_owned(),
            batch: 1000,
            poll_wait: Duration::from_secs(5),
            flush: FlushPolicy::default(),
        }
    }
}

impl SegmentBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next event; `now` starts the age clock of an empty buffer.
    pub fn push(&mut self, event: ArchivedEvent, now: Instant) {
        self.bytes += approximate_size(&event);
        self.events.push(event);
        self.opened.get_or_insert(now);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The last buffered position, if any.
    pub fn last_position(&self) -> Option<u64> {
        self.events.last().map(|e| e.position)
    }

    /// Whether the segment reached its size.
    pub fn is_full(&self, policy: &FlushPolicy) -> bool {
        !self.is_empty() && (self.bytes >= policy.max_bytes || self.len() >= policy.max_events)
    }

    /// Whether the segment must be flushed now (full or old enough).
    pub fn is_due(&self, policy: &FlushPolicy, now: Instant) -> bool {
        self.is_full(policy) || self.time_left(policy, now) == Some(Duration::ZERO)
    }

    /// How long until the segment is old enough to flush (`None` when empty).
    pub fn time_left(&self, policy: &FlushPolicy, now: Instant) -> Option<Duration> {
        self.opened.map(|opened| {
            policy
                .max_age
                .saturating_sub(now.saturating_duration_since(opened))
        })
    }

    pub fn events(&self) -> &[ArchivedEvent] {
        &self.events
    }

    fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
        self.opened = None;
    }
}

impl Archiver {
    pub fn new(
        archive: Archive,
        client: StoreClient,
        settings: Settings,
        metrics: Metrics,
    ) -> Self {
        Self {
            archive,
            client,
            settings,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Archives until `shutdown` completes, then flushes what is buffered and returns. Outages
    /// of the store or the object store are waited out; only a refusal or a log that does not
    /// continue the archive ends the loop with an error.
    ///
    /// A reader task long-polls the store ahead of the writer (at most two pages), so reading
    /// overlaps with compressing and writing segments.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ArchiverError> {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::default();
        // Start: the manifest says where the archive ends.
        let mut manifest = loop {
            match self.prepare().await {
                Ok(manifest) => break manifest,
                Err(error) if is_transient(&error) => {
                    tracing::warn!(%error, "could not start archiving; retrying");
                    if backoff.pause(&mut shutdown).await {
                        return Ok(());
                    }
                }
                Err(error) => return Err(error),
            }
        };
        let (pages_tx, mut pages) = mpsc::channel(2);
        let reader = ReadAhead {
            client: self.client.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            after: manifest.last_position(),
        };
        let _reader = AbortOnDrop(tokio::spawn(reader.run(pages_tx)));
        let mut buffer = SegmentBuffer::new();
        let mut expected = manifest.last_position() + 1;
        let policy = self.settings.flush;
        loop {
            if buffer.is_due(&policy, Instant::now())
                && self
                    .flush_until_done(&mut manifest, &mut buffer, &mut shutdown)
                    .await?
            {
                return Ok(());
            }
            let wait = buffer
                .time_left(&policy, Instant::now())
                .unwrap_or(Duration::from_secs(3600));
            let events = tokio::select! {
                () = &mut shutdown => {
                    self.final_flush(&mut manifest, &mut buffer).await;
                    return Ok(());
                }
                () = tokio::time::sleep(wait) => continue,
                page = pages.recv() => match page {
                    Some(Ok(events)) => events,
                    Some(Err(error)) => return Err(ArchiverError::Store(error)),
                    None => return Err(ArchiverError::ReaderStopped),
                },
            };
            let now = Instant::now();
            for event in events {
                if event.position < expected {
                    continue; // already held; cannot happen with a well-behaved store
                }
                if event.position != expected {
                    // POISON: stop.
                    return Err(ArchiverError::Discontinuous {
                        expected,
                        found: event.position,
                    });
                }
                expected += 1;
                buffer.push(event, now);
                if buffer.is_full(&policy)
                    && self
                        .flush_until_done(&mut manifest, &mut buffer, &mut shutdown)
                        .await?
                {
                    return Ok(());
                }
            }
            self.metrics.buffered_events.set(buffer.len() as i64);
            self.metrics.read_position.set(to_i64(expected - 1));
        }
    }

    /// Flushes, retrying object-store failures with backoff. Returns true when shutdown came
    /// first (the buffered events are read again at the next start).
    async fn flush_until_done(
        &self,
        manifest: &mut Manifest,
        buffer: &mut SegmentBuffer,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<bool, ArchiverError> {
        let mut backoff = Backoff::default();
        loop {
            match self.flush(manifest, buffer).await {
                Ok(()) => return Ok(false),
                Err(error) if is_transient(&error) => {
                    self.metrics.flush_failures.inc();
                    tracing::warn!(%error, buffered = buffer.len(), "could not flush a segment; retrying");
                    if backoff.pause(shutdown).await {
                        return Ok(true);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Loads the manifest, removes segments a crash left unlisted, registers the group and
    /// brings its checkpoint up to the archive.
    async fn prepare(&self) -> Result<Manifest, ArchiverError> {
        let manifest = self.archive.load_manifest().await?;
        let removed = self.archive.remove_unlisted_segments(&manifest).await?;
        for name in &removed {
            tracing::warn!(segment = %name, "removed a segment the manifest does not list (left by a crash before the manifest write); its events are archived again");
        }
        self.metrics.orphans_removed.add(removed.len() as u64);
        let last = manifest.last_position();
        self.metrics.archived_position.set(to_i64(last));
        self.metrics.read_position.set(to_i64(last));
        let group = self
            .client
            .register(&self.settings.group)
            .await
            .map_err(ArchiverError::Store)?;
        if group.checkpoint > last {
            tracing::warn!(
                checkpoint = group.checkpoint,
                archived = last,
                "the group's checkpoint is ahead of the archive (was the archive replaced?); archiving from the archive's end"
            );
        }
        if group.checkpoint < last {
            self.ack(last).await;
        }
        tracing::info!(archive = %self.archive.description(), last_position = last, segments = manifest.segments.len(), "archiver started");
        Ok(manifest)
    }

    /// Writes the buffer as a segment, commits it to the manifest, then acknowledges it.
    async fn flush(
        &self,
        manifest: &mut Manifest,
        buffer: &mut SegmentBuffer,
    ) -> Result<(), ArchiverError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut buffer.events);
        let (events, encoded) = tokio::task::spawn_blocking(move || {
            let encoded = segment::encode(&events);
            (events, encoded)
        })
        .await
        .map_err(|e| ArchiverError::Task(e.to_string()))?;
        buffer.events = events;
        let encoded = encoded?;
        let entry = self.archive.put_segment(&encoded).await?;
        let mut next = manifest.clone();
        next.push(entry.clone())?;
        self.archive.put_manifest(&next).await?;
        *manifest = next;
        buffer.clear();
        self.metrics.segments_written.inc();
        self.metrics.events_archived.add(entry.events);
        self.metrics.bytes_written.add(entry.bytes);
        self.metrics.buffered_events.set(0);
        self.metrics
            .archived_position
            .set(to_i64(entry.last_position));
        tracing::debug!(segment = %entry.name, events = entry.events, bytes = entry.bytes, "segment archived");
        self.ack(entry.last_position).await;
        Ok(())
    }

    /// At shutdown: one attempt to flush, so a graceful stop leaves nothing buffered. A failure
    /// is harmless: the events are read again at the next start.
    async fn final_flush(&self, manifest: &mut Manifest, buffer: &mut SegmentBuffer) {
        if let Err(error) = self.flush(manifest, buffer).await {
            tracing::warn!(%error, "could not flush the last segment at shutdown; its events are archived at the next start");
        }
    }

    /// Moves the group's checkpoint; a failure only delays it (the manifest is authoritative).
    async fn ack(&self, position: u64) {
        if let Err(error) = self.client.ack(&self.settings.group, position).await {
            tracing::warn!(%error, position, "could not acknowledge archived events; the checkpoint catches up later");
        }
    }
}

/// Reads the log ahead of the writer and hands it pages of events.
struct ReadAhead {
    client: StoreClient,
    settings: Settings,
    metrics: Metrics,
    /// The last position read.
    after: u64,
}

impl ReadAhead {
    /// Follows the group's events after the archive until the writer goes away. Outages are
    /// waited out; a refusal is passed on and ends the reader.
    async fn run(self, pages: mpsc::Sender<Result<Vec<ArchivedEvent>, StoreError>>) {
        let source = GroupEvents {
            client: self.client,
            group: self.settings.group.clone(),
        };
        let outage = self.metrics.clone();
        let mut follower = Follower::new(source, self.after)
            .limit(self.settings.batch)
            .wait(self.settings.poll_wait)
            .on_outage(move |_| {
                outage.store_errors.inc();
                outage.store_reachable.set(0);
            });
        let writer_gone = pages.closed();
        tokio::pin!(writer_gone);
        loop {
            let page = match follower.next_page(&mut writer_gone).await {
                Ok(Some(page)) => page,
                Ok(None) => return,
                Err(error) => {
                    let _ = pages.send(Err(error)).await;
                    return;
                }
            };
            if follower.outages() > 0 {
                continue;
            }
            self.metrics.store_reachable.set(1);
            if let Some(head) = page.head {
                self.metrics.store_head.set(to_i64(head));
            }
            if page.events.is_empty() {
                continue;
            }
            if pages.send(Ok(page.events)).await.is_err() {
                return;
            }
        }
    }
}

/// The consumer group's events after a position (not its checkpoint: the archive keeps the
/// cursor), kept as raw archived records.
struct GroupEvents {
    client: StoreClient,
    group: String,
}

impl Source for GroupEvents {
    type Event = ArchivedEvent;
    type Error = StoreError;

    async fn read(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page<ArchivedEvent>, StoreError> {
        let page = self.client.poll(&self.group, after, limit, wait).await?;
        Ok(Page {
            events: page.events,
            head: page.head,
        })
    }

    fn position(event: &ArchivedEvent) -> u64 {
        event.position
    }

    fn is_refusal(error: &StoreError) -> bool {
        !error.is_outage()
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn is_transient(error: &ArchiverError) -> bool {
    match error {
        ArchiverError::Archive(ArchiveError::Store { .. }) => true,
        ArchiverError::Store(error) => error.is_outage(),
        _ => false,
    }
}

fn approximate_size(event: &ArchivedEvent) -> usize {
    160 + event.event_id.len()
        + event.stream_id.len()
        + event.event_type.len()
        + event.data.get().len()
        + event.metadata.get().len()
        + event.recorded_at.len()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, data_len: usize) -> ArchivedEvent {
        serde_json::from_str(&format!(
            r#"{{"position":{position},"event_id":"e","stream_id":"S-1","version":1,
            "event_type":"T","schema_version":1,"data":"{}","metadata":{{}},
            "recorded_at":"2026-11-26T15:00:00Z"}}"#,
            "x".repeat(data_len)
        ))
        .expect("test event parses")
    }

    #[test]
    fn flushes_at_size_events_or_age_whichever_first() {
        let policy = FlushPolicy {
            max_bytes: 2000,
            max_events: 3,
            max_age: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut buffer = SegmentBuffer::new();
        assert!(
            !buffer.is_due(&policy, t0 + Duration::from_secs(60)),
            "empty is never due"
        );
        assert_eq!(buffer.time_left(&policy, t0), None);

        buffer.push(event(1, 10), t0);
        assert!(!buffer.is_due(&policy, t0 + Duration::from_secs(9)));
        assert_eq!(
            buffer.time_left(&policy, t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert!(buffer.is_due(&policy, t0 + Duration::from_secs(10)), "age");

        buffer.push(event(2, 10), t0 + Duration::from_secs(5));
        assert_eq!(
            buffer.time_left(&policy, t0 + Duration::from_secs(5)),
            Some(Duration::from_secs(5)),
            "the age counts from the first event"
        );
        buffer.push(event(3, 10), t0);
        assert!(buffer.is_due(&policy, t0), "events");

        let mut big = SegmentBuffer::new();
        big.push(event(1, 3000), t0);
        assert!(big.is_full(&policy), "bytes");
        big.clear();
        assert!(big.is_empty() && big.last_position().is_none());
    }
}
