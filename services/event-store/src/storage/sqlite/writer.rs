//! The writer thread: it takes every queued write as one group, writes the group into the open
//! SQLite transaction, makes it durable with one journal record (or a SQLite commit), then
//! pushes the events to live subscribers and the tail, publishes the head and answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use super::checkpoint::{checkpoint, WAL_RESTART_FRAMES};
use super::event_types::EventTypes;
use super::known_ids::KnownIds;
use super::sql::{from_micros, insert_recorded, now_micros, to_i64, to_micros};
use super::tail::Tail;
use super::writes::{ack, append, import, put_subscription};
use crate::domain::{
    AppendBatch, AppendOutcome, GroupName, ImportBatch, ImportOutcome, RecordedEvent, Snapshot,
    StreamId, Subscription, SubscriptionSpec,
};
use crate::storage::journal::Journal;
use crate::storage::{CommittedEvents, StorageError};

pub(super) enum WriteCmd {
    Append {
        batch: AppendBatch,
        reply: oneshot::Sender<Result<AppendOutcome, StorageError>>,
    },
    Import {
        batch: ImportBatch,
        reply: oneshot::Sender<Result<ImportOutcome, StorageError>>,
    },
    PutSubscription {
        group: GroupName,
        spec: SubscriptionSpec,
        reply: oneshot::Sender<Result<Subscription, StorageError>>,
    },
    Ack {
        group: GroupName,
        position: u64,
        reply: oneshot::Sender<Result<Subscription, StorageError>>,
    },
    PutSnapshot {
        stream_id: StreamId,
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
    Close,
}

/// The result of one command inside a group, sent only after the group committed.
pub(super) enum Outcome {
    Append(Result<AppendOutcome, StorageError>),
    Import(Result<ImportOutcome, StorageError>),
    Subscription(Result<Subscription, StorageError>),
    Unit(Result<(), StorageError>),
    None,
}

/// Cap on cached stream versions; the cache is cleared when it grows past this.
pub(super) const VERSION_CACHE_CAP: usize = 200_000;

/// How long the writer keeps one SQLite transaction open across groups before committing it.
/// Until then the groups' events are durable in the journal and readable from the [`Tail`].
pub(super) const COMMIT_INTERVAL: Duration = Duration::from_millis(50);
/// The writer commits SQLite sooner once the journal holds this many bytes ...
pub(super) const JOURNAL_LIMIT: u64 = 1024 * 1024;
/// ... or the tail this many events.
pub(super) const TAIL_LIMIT: usize = 16_384;

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) head: u64,
    pub(super) last_recorded: i64,
    /// Current version of recently written streams.
    pub(super) versions: HashMap<String, u64>,
    pub(super) ids: KnownIds,
    pub(super) head_tx: watch::Sender<u64>,
    pub(super) max_group: usize,
    pub(super) commits: Arc<AtomicU64>,
    pub(super) live: broadcast::Sender<CommittedEvents>,
    /// Frames in the WAL as last seen by a checkpoint (see [`WAL_RESTART_FRAMES`]).
    pub(super) wal_frames: Arc<AtomicU64>,
    pub(super) journal: Journal,
    pub(super) tail: Arc<RwLock<Tail>>,
    /// The counts per event type and schema version, acknowledged events included; persisted
    /// right before each SQLite commit.
    pub(super) types: Arc<Mutex<EventTypes>>,
    /// When the open SQLite transaction began; `None` when none is open.
    pub(super) open_since: Option<Instant>,
    /// A SQLite commit failed: acknowledged events are only in the journal, so the writer
    /// stops and a restart replays them.
    pub(super) failed: bool,
}

/// What a group changes, applied to the writer only after its commit.
pub(super) struct GroupState {
    pub(super) head: u64,
    /// The time appends of this group are stamped with: the clock, but never before the last
    /// event's time.
    pub(super) stamp: i64,
    /// `recorded_at` of the last event written so far (before the group: the store's last).
    pub(super) last_recorded: i64,
    pub(super) versions: HashMap<String, u64>,
    /// Event ids this group wrote, per stream (added to [`KnownIds`] once it is durable).
    pub(super) new_ids: HashMap<String, Vec<Uuid>>,
}

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<WriteCmd>) {
        let waiter = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "the writer could not start its timer");
                return;
            }
        };
        let mut group = Vec::with_capacity(self.max_group);
        while !self.failed {
            let first = match self.open_since {
                None => waiter.block_on(rx.recv()),
                Some(since) => {
                    let wait = COMMIT_INTERVAL.saturating_sub(since.elapsed());
                    match waiter.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                        Ok(cmd) => cmd,
                        Err(_) => {
                            self.commit_open();
                            continue;
                        }
                    }
                }
            };
            let Some(first) = first else {
                break;
            };
            group.push(first);
            while group.len() < self.max_group {
                match rx.try_recv() {
                    Ok(cmd) => group.push(cmd),
                    Err(_) => break,
                }
            }
            let closing = group.iter().any(|c| matches!(c, WriteCmd::Close));
            self.commit_group(std::mem::take(&mut group));
            let due = self.open_since.is_some_and(|since| {
                since.elapsed() >= COMMIT_INTERVAL
                    || self.journal.len() >= JOURNAL_LIMIT
                    || self
                        .tail
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .len()
                        >= TAIL_LIMIT
            });
            if due || closing {
                self.commit_open();
            }
            if closing {
                break;
            }
        }
        // Later senders see a closed channel; queued commands drop and their callers get `Closed`.
        rx.close();
        if self.failed {
            tracing::error!(
                head = self.head,
                "writer stopped after a failed commit; restart the store to replay the journal"
            );
        } else {
            tracing::info!(head = self.head, "writer stopped");
        }
    }

    /// Opens the SQLite transaction that groups write into, unless one is open.
    fn begin(&mut self) -> rusqlite::Result<()> {
        if self.open_since.is_none() {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.open_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Commits the open SQLite transaction (an fsync of the WAL), then restarts the journal and
    /// empties the tail: everything up to the head is now in SQLite.
    fn commit_open(&mut self) -> bool {
        if self.open_since.take().is_none() {
            return true;
        }
        let persisted = self
            .types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .persist(&self.conn);
        if let Err(error) = persisted.and_then(|()| {
            self.conn
                .prepare_cached("COMMIT")
                .and_then(|mut c| c.execute([]))
        }) {
            tracing::error!(%error, "committing to SQLite failed");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.failed = true;
            return false;
        }
        self.journal.restart();
        self.tail
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .reset(self.head);
        if self.wal_frames.load(Ordering::Relaxed) >= WAL_RESTART_FRAMES {
            self.finish_checkpoint();
        }
        true
    }

    /// Writes `cmds` into the open transaction and makes them durable: the new events through
    /// one journal record, or, when the group also changes consumer groups or snapshots, by
    /// committing SQLite. Answers each command after that. If the group fails as a whole, its
    /// writes are undone and each command is retried alone, so one bad write cannot fail its
    /// neighbours.
    fn commit_group(&mut self, cmds: Vec<WriteCmd>) {
        let written = self.begin().and_then(|()| self.write_group(&cmds));
        let (outcomes, state) = match written {
            Ok(written) => written,
            Err(error) => {
                self.undo_group();
                if cmds.len() > 1 {
                    tracing::warn!(%error, size = cmds.len(), "group commit failed; retrying its writes one by one");
                    for cmd in cmds {
                        if !self.failed {
                            self.commit_group(vec![cmd]);
                        }
                    }
                } else {
                    tracing::error!(%error, "write failed");
                    fail_all(cmds, &error.to_string());
                }
                return;
            }
        };
        let events = committed_events(&cmds, &outcomes, state.stamp);
        // Consumer groups and snapshots are not journaled: they are durable once SQLite commits.
        let commit_now = cmds.iter().any(|c| {
            matches!(
                c,
                WriteCmd::PutSubscription { .. }
                    | WriteCmd::Ack { .. }
                    | WriteCmd::PutSnapshot { .. }
            )
        });
        if !commit_now && !events.is_empty() {
            if let Err(error) = self.journal.append(&events, |e| to_micros(e.recorded_at)) {
                tracing::error!(%error, path = %self.journal.path().display(), "writing the journal failed");
                self.undo_group();
                fail_all(cmds, &format!("writing the journal: {error}"));
                return;
            }
        }
        self.head = state.head;
        self.last_recorded = state.last_recorded;
        if self.versions.len() + state.versions.len() > VERSION_CACHE_CAP {
            self.versions.clear();
        }
        self.versions.extend(state.versions);
        self.ids.add(state.new_ids);
        if !events.is_empty() {
            self.types
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(&events);
        }
        if commit_now && !self.commit_open() {
            fail_all(cmds, "the SQLite commit failed");
            return;
        }
        if !events.is_empty() || commit_now {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        if !events.is_empty() {
            let events = Arc::new(events);
            if !commit_now {
                self.tail
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(events.clone());
            }
            // Push to live subscribers first, so one woken by the head finds the events.
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(events);
            }
        }
        self.head_tx.send_if_modified(|h| {
            let changed = *h != self.head;
            *h = self.head;
            changed
        });
        for (cmd, outcome) in cmds.into_iter().zip(outcomes) {
            answer(cmd, outcome);
        }
    }

    /// Takes the open transaction back to the acknowledged state after a group failed part way:
    /// rolls it back and writes the tail's events (acknowledged, journaled, not yet in SQLite)
    /// again. A group needs no savepoint this way (a savepoint copies every page it touches).
    /// If even that fails, the writer stops; a restart replays the journal.
    fn undo_group(&mut self) {
        if self.open_since.take().is_none() {
            return;
        }
        // A set loaded during the failed group may hold ids of its undone writes.
        self.ids.clear();
        let redone = self.conn.execute_batch("ROLLBACK").and_then(|()| {
            self.begin()?;
            let tail = self.tail.read().unwrap_or_else(PoisonError::into_inner);
            insert_recorded(&self.conn, tail.groups.iter().flat_map(|g| g.iter()))
        });
        if let Err(error) = redone {
            tracing::error!(%error, "restoring the acknowledged writes after a failed group failed");
            self.failed = true;
        }
    }

    /// Copies the last WAL frames into the database between two transactions, so that the
    /// checkpoint is complete and the next transaction starts the WAL again from its beginning.
    /// The checkpoint thread alone never completes one under a steady stream of commits (new
    /// frames arrive while it copies), and the WAL would then grow without bound: every commit
    /// would extend the file (block allocation, zeroing, a journal commit per fsync) instead of
    /// overwriting blocks already on disk.
    fn finish_checkpoint(&mut self) {
        match checkpoint(&self.conn) {
            Ok((false, log, done)) if log == done => self.wal_frames.store(0, Ordering::Relaxed),
            Ok(_) => {} // a reader or the checkpoint thread is in the way; try after the next commit
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying later"),
        }
    }

    fn write_group(&mut self, cmds: &[WriteCmd]) -> rusqlite::Result<(Vec<Outcome>, GroupState)> {
        let now = now_micros();
        let mut state = GroupState {
            head: self.head,
            stamp: now.max(self.last_recorded),
            last_recorded: self.last_recorded,
            versions: HashMap::new(),
            new_ids: HashMap::new(),
        };
        let tx = &self.conn;
        let mut outcomes = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let outcome = match cmd {
                WriteCmd::Append { batch, .. } => Outcome::Append(append(
                    tx,
                    &self.versions,
                    &mut self.ids,
                    &mut state,
                    batch,
                )?),
                WriteCmd::Import { batch, .. } => Outcome::Import(import(
                    tx,
                    &self.versions,
                    &mut self.ids,
                    &mut state,
                    batch,
                )?),
                WriteCmd::PutSubscription { group, spec, .. } => {
                    Outcome::Subscription(put_subscription(tx, &state, group, spec)?)
                }
                WriteCmd::Ack {
                    group, position, ..
                } => Outcome::Subscription(ack(tx, &state, group, *position)?),
                WriteCmd::PutSnapshot {
                    stream_id,
                    snapshot,
                    ..
                } => {
                    tx.prepare_cached(
                        "INSERT INTO snapshots (stream_id, version, state, updated_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (stream_id) DO UPDATE
                         SET version = excluded.version, state = excluded.state,
                             updated_at = excluded.updated_at",
                    )?
                    .execute(params![
                        stream_id.as_str(),
                        to_i64(snapshot.version),
                        snapshot.state.get(),
                        now
                    ])?;
                    Outcome::Unit(Ok(()))
                }
                WriteCmd::Close => Outcome::None,
            };
            outcomes.push(outcome);
        }
        Ok((outcomes, state))
    }
}

/// Messages kept for live subscribers that fall behind (they then read from the database).
pub(super) const LIVE_CAPACITY: usize = 1024;

/// The events a committed group wrote, in position order, for live subscribers.
fn committed_events(cmds: &[WriteCmd], outcomes: &[Outcome], stamp: i64) -> Vec<RecordedEvent> {
    let recorded_at = from_micros(stamp);
    let mut events = Vec::new();
    for (cmd, outcome) in cmds.iter().zip(outcomes) {
        if let (WriteCmd::Import { batch, .. }, Outcome::Import(Ok(done))) = (cmd, outcome) {
            if !done.duplicate {
                events.extend(batch.events.iter().map(|e| RecordedEvent {
                    event_id: e.event.event_id,
                    stream_id: e.stream_id.as_str().to_owned(),
                    version: e.version,
                    position: e.position,
                    event_type: e.event.event_type.clone(),
                    schema_version: e.event.schema_version,
                    data: e.event.data.clone(),
                    metadata: e.event.metadata.clone(),
                    recorded_at: e.recorded_at,
                }));
            }
            continue;
        }
        let (WriteCmd::Append { batch, .. }, Outcome::Append(Ok(done))) = (cmd, outcome) else {
            continue;
        };
        if done.duplicate {
            continue;
        }
        let n = batch.events.len() as u64;
        for (i, event) in (0u64..).zip(&batch.events) {
            events.push(RecordedEvent {
                event_id: event.event_id,
                stream_id: batch.stream_id.as_str().to_owned(),
                version: done.version + 1 - n + i,
                position: done.position + 1 - n + i,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                data: event.data.clone(),
                metadata: event.metadata.clone(),
                recorded_at,
            });
        }
    }
    events
}

fn answer(cmd: WriteCmd, outcome: Outcome) {
    // A caller that went away (e.g. its request was cancelled) is not an error here.
    match (cmd, outcome) {
        (WriteCmd::Append { reply, .. }, Outcome::Append(r)) => {
            let _ = reply.send(r);
        }
        (WriteCmd::Import { reply, .. }, Outcome::Import(r)) => {
            let _ = reply.send(r);
        }
        (WriteCmd::PutSubscription { reply, .. }, Outcome::Subscription(r))
        | (WriteCmd::Ack { reply, .. }, Outcome::Subscription(r)) => {
            let _ = reply.send(r);
        }
        (WriteCmd::PutSnapshot { reply, .. }, Outcome::Unit(r)) => {
            let _ = reply.send(r);
        }
        (cmd, _) => fail(
            cmd,
            StorageError::backend(
                "matching a write with its outcome",
                std::io::Error::other("internal mismatch"),
            ),
        ),
    }
}

/// Fails every command of a group with the same backend error.
fn fail_all(cmds: Vec<WriteCmd>, error: &str) {
    for cmd in cmds {
        fail(
            cmd,
            StorageError::backend(
                "committing a write",
                std::io::Error::other(error.to_owned()),
            ),
        );
    }
}

fn fail(cmd: WriteCmd, error: StorageError) {
    match cmd {
        WriteCmd::Append { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        WriteCmd::Import { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        WriteCmd::PutSubscription { reply, .. } | WriteCmd::Ack { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        WriteCmd::PutSnapshot { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        WriteCmd::Close => {}
    }
}
