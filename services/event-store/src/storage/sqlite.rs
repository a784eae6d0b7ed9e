//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, one writer thread, and a
//! small pool of reader connections used from `spawn_blocking`.
//!
//! The writer takes every queued write as one group and makes the group durable with one
//! fsync. Its SQLite transaction stays open across groups for up to [`COMMIT_INTERVAL`]: each
//! group's new events are made durable by one record in the [`Journal`] (a sequential write and
//! an `fdatasync`), and SQLite commits the many groups together, so a b-tree page that many
//! appends touch is written once per SQLite commit instead of once per group. Until SQLite
//! commits, readers find those events in the [`Tail`]; after a crash, start-up replays the
//! journal's events that SQLite lacks. Writes to consumer groups and snapshots are not
//! journaled: a group holding one commits SQLite before it is answered.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
use uuid::Uuid;

use super::journal::{Journal, JournalEvent};
use super::{
    AsOf, CommittedEvents, GlobalQuery, GlobalSlice, ImportConflict, Storage, StorageError,
    StreamQuery, StreamSlice,
};
use crate::domain::{
    AppendBatch, AppendOutcome, EventFilter, ExpectedVersion, GroupName, ImportBatch,
    ImportOutcome, RecordedEvent, Snapshot, StreamId, Subscription, SubscriptionSpec,
};

/// Tuning of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most reader connections open at once.
    pub read_connections: usize,
    /// Most writes (appends, acks, ...) committed in one transaction.
    pub max_group: usize,
    /// Writes waiting for the writer before new ones wait for room.
    pub queue_depth: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_connections: 4,
            max_group: 1024,
            queue_depth: 8192,
        }
    }
}

/// The SQLite storage backend. Open one per data file and process.
pub struct SqliteStorage {
    writer: mpsc::Sender<WriteCmd>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropping the sender stops the checkpointer thread.
    checkpointer: Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    head: watch::Receiver<u64>,
    readers: Arc<ReadPool>,
    read_permits: Arc<Semaphore>,
    commits: Arc<AtomicU64>,
    live: broadcast::Sender<CommittedEvents>,
    tail: Arc<RwLock<Tail>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)
            .map_err(|e| StorageError::backend("opening the database file", e))?;
        configure_writer(&conn)
            .map_err(|e| StorageError::backend("configuring the database", e))?;
        create_schema(&mut conn).map_err(|e| StorageError::backend("creating the schema", e))?;
        let (mut journal, journaled) = Journal::open(&path.with_extension("journal"))
            .map_err(|e| StorageError::backend("opening the journal", e))?;
        replay(&mut conn, journaled)?;
        // Everything the journal held is in SQLite now. New records start at its beginning: a
        // record written after an older chain, whose last position may lie below the head (a
        // group that committed SQLite directly is not journaled), would not continue that chain,
        // and the next start-up would stop reading before it.
        journal.restart();
        let (head, last_recorded) = conn
            .query_row(
                "SELECT coalesce(max(position), 0), coalesce(max(recorded_at), 0) FROM events",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .map_err(|e| StorageError::backend("reading the head position", e))?;
        let head = u64::try_from(head).unwrap_or(0);

        let (head_tx, head_rx) = watch::channel(head);
        let commits = Arc::new(AtomicU64::new(0));
        let wal_frames = Arc::new(AtomicU64::new(0));
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let tail = Arc::new(RwLock::new(Tail {
            base: head,
            ..Tail::default()
        }));
        let writer = Writer {
            conn,
            head,
            last_recorded,
            versions: HashMap::new(),
            ids: KnownIds::default(),
            head_tx,
            max_group: options.max_group.max(1),
            commits: commits.clone(),
            live: live.clone(),
            wal_frames: wal_frames.clone(),
            journal,
            tail: tail.clone(),
            open_since: None,
            failed: false,
        };
        let thread = std::thread::Builder::new()
            .name("event-store-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| StorageError::backend("starting the writer thread", e))?;
        let (stop_checkpoints, stopped) = std::sync::mpsc::channel();
        let checkpoint_conn = open_checkpointer(path)
            .map_err(|e| StorageError::backend("opening the checkpoint connection", e))?;
        let checkpointer = std::thread::Builder::new()
            .name("event-store-checkpointer".to_owned())
            .spawn(move || run_checkpointer(checkpoint_conn, stopped, wal_frames))
            .map_err(|e| StorageError::backend("starting the checkpoint thread", e))?;

        let readers = Arc::new(ReadPool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            max_idle: options.read_connections.max(1),
        });
        // Check a reader can open now, so a broken file fails at startup.
        readers
            .with(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .map_err(|e| StorageError::backend("opening a reader connection", e))?;

        Ok(Self {
            writer: tx,
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop_checkpoints, checkpointer))),
            head: head_rx,
            readers,
            read_permits: Arc::new(Semaphore::new(options.read_connections.max(1))),
            commits,
            live,
            tail,
        })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> WriteCmd,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(make(reply))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    async fn read<T, F>(&self, doing: &'static str, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| StorageError::Closed)?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StorageError::backend(doing, e))?
            .map_err(|e| StorageError::backend(doing, e))
    }
}

impl Storage for SqliteStorage {
    fn append(&self, batch: AppendBatch) -> BoxFuture<'_, Result<AppendOutcome, StorageError>> {
        self.write(move |reply| WriteCmd::Append { batch, reply })
            .boxed()
    }

    fn import(&self, batch: ImportBatch) -> BoxFuture<'_, Result<ImportOutcome, StorageError>> {
        self.write(move |reply| WriteCmd::Import { batch, reply })
            .boxed()
    }

    fn read_stream(&self, query: StreamQuery) -> BoxFuture<'_, Result<StreamSlice, StorageError>> {
        let (base, tail) = self
            .tail
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .stream(query.stream_id.as_str());
        self.read("reading a stream", move |conn| {
            read_stream(conn, &query, base, tail)
        })
        .boxed()
    }

    fn read_all(&self, query: GlobalQuery) -> BoxFuture<'_, Result<GlobalSlice, StorageError>> {
        async move {
            if query.after >= query.up_to || query.limit == 0 {
                return Ok(GlobalSlice {
                    events: Vec::new(),
                    scanned_to: query.after,
                });
            }
            let (base, tail) = self
                .tail
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .global(&query);
            if query.after >= base {
                // All of it is in the tail: no need to ask SQLite.
                return Ok(merge_global(&query, Vec::new(), tail));
            }
            self.read("reading the global log", move |conn| {
                let stored = read_all(
                    conn,
                    &GlobalQuery {
                        up_to: query.up_to.min(base),
                        ..query.clone()
                    },
                )?;
                Ok(merge_global(&query, stored.events, tail))
            })
            .await
        }
        .boxed()
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    fn put_subscription(
        &self,
        group: GroupName,
        spec: SubscriptionSpec,
    ) -> BoxFuture<'_, Result<Subscription, StorageError>> {
        self.write(move |reply| WriteCmd::PutSubscription { group, spec, reply })
            .boxed()
    }

    fn get_subscription(
        &self,
        group: GroupName,
    ) -> BoxFuture<'_, Result<Option<Subscription>, StorageError>> {
        self.read("reading a consumer group", move |conn| {
            select_subscription(conn, group.as_str())
        })
        .boxed()
    }

    fn list_subscriptions(&self) -> BoxFuture<'_, Result<Vec<Subscription>, StorageError>> {
        self.read("listing consumer groups", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, checkpoint, event_types, stream_prefix FROM subscriptions ORDER BY name",
            )?;
            let rows = stmt.query_map([], row_to_subscription)?;
            rows.collect()
        })
        .boxed()
    }

    fn ack(
        &self,
        group: GroupName,
        position: u64,
    ) -> BoxFuture<'_, Result<Subscription, StorageError>> {
        self.write(move |reply| WriteCmd::Ack {
            group,
            position,
            reply,
        })
        .boxed()
    }

    fn put_snapshot(
        &self,
        stream_id: StreamId,
        snapshot: Snapshot,
    ) -> BoxFuture<'_, Result<(), StorageError>> {
        self.write(move |reply| WriteCmd::PutSnapshot {
            stream_id,
            snapshot,
            reply,
        })
        .boxed()
    }

    fn get_snapshot(
        &self,
        stream_id: StreamId,
    ) -> BoxFuture<'_, Result<Option<Snapshot>, StorageError>> {
        self.read("reading a snapshot", move |conn| {
            conn.prepare_cached("SELECT version, state FROM snapshots WHERE stream_id = ?1")?
                .query_row([stream_id.as_str()], |row| {
                    Ok(Snapshot {
                        version: get_u64(row, 0)?,
                        state: get_raw(row, 1)?,
                    })
                })
                .optional()
        })
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        async move {
            if self.writer.is_closed() {
                return Err(StorageError::Closed);
            }
            self.read("checking the database", |conn| {
                conn.query_row("SELECT 1", [], |_| Ok(()))
            })
            .await
        }
        .boxed()
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn live(&self) -> Option<broadcast::Receiver<CommittedEvents>> {
        Some(self.live.subscribe())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        async move {
            // Queued writes before `Close` are still committed and answered.
            let _ = self.writer.send(WriteCmd::Close).await;
            let thread = self
                .writer_thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(thread) = thread {
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("the writer thread ended abnormally");
                }
            }
            let checkpointer = self
                .checkpointer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some((stop, thread)) = checkpointer {
                drop(stop);
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("the checkpoint thread ended abnormally");
                }
            }
        }
        .boxed()
    }
}

// ---------------------------------------------------------------------------------------------
// Schema and connections

fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, WAL is required"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints run on their own thread (see `run_checkpointer`), not inside appends' commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Keep the WAL file's size after a checkpoint so it is overwritten rather than regrown.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Runs PASSIVE checkpoints until `stop` is dropped. A PASSIVE checkpoint never blocks the
/// writer or readers; it syncs the WAL before copying and the database file after, so the
/// writer's commits only pay for their own WAL fsync.
fn run_checkpointer(
    conn: Connection,
    stop: std::sync::mpsc::Receiver<()>,
    wal_frames: Arc<AtomicU64>,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        match checkpoint(&conn) {
            Ok((_, log, _)) => wal_frames.store(log, Ordering::Relaxed),
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying later"),
        }
    }
}

/// The writer finishes a checkpoint itself once the WAL holds this many frames (of one page
/// each), so the WAL restarts from its beginning and stays about this size.
const WAL_RESTART_FRAMES: u64 = 4096;

/// Runs a PASSIVE checkpoint: (busy, frames in the WAL, frames copied into the database).
fn checkpoint(conn: &Connection) -> rusqlite::Result<(bool, u64, u64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)? != 0,
            u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        ))
    })
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn create_schema(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "
        CREATE TABLE IF NOT EXISTS events (
            position       INTEGER PRIMARY KEY,
            stream_id      TEXT    NOT NULL,
            version        INTEGER NOT NULL,
            event_id       BLOB    NOT NULL,
            event_type     TEXT    NOT NULL,
            schema_version INTEGER NOT NULL,
            data           TEXT    NOT NULL,
            metadata       TEXT    NOT NULL,
            recorded_at    INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events (stream_id, version);
        -- Repeated event ids are found in memory (see KnownIds); stores made before that had
        -- this index, which only slowed their commits.
        DROP INDEX IF EXISTS events_stream_event_id;
        CREATE TABLE IF NOT EXISTS subscriptions (
            name          TEXT    PRIMARY KEY,
            checkpoint    INTEGER NOT NULL,
            event_types   TEXT,
            stream_prefix TEXT,
            updated_at    INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS snapshots (
            stream_id  TEXT    PRIMARY KEY,
            version    INTEGER NOT NULL,
            state      TEXT    NOT NULL,
            updated_at INTEGER NOT NULL
        );
        ",
    )
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// The writer

enum WriteCmd {
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
enum Outcome {
    Append(Result<AppendOutcome, StorageError>),
    Import(Result<ImportOutcome, StorageError>),
    Subscription(Result<Subscription, StorageError>),
    Unit(Result<(), StorageError>),
    None,
}

/// Cap on cached stream versions; the cache is cleared when it grows past this.
const VERSION_CACHE_CAP: usize = 200_000;

/// How long the writer keeps one SQLite transaction open across groups before committing it.
/// Until then the groups' events are durable in the journal and readable from the [`Tail`].
const COMMIT_INTERVAL: Duration = Duration::from_millis(50);
/// The writer commits SQLite sooner once the journal holds this many bytes ...
const JOURNAL_LIMIT: u64 = 1024 * 1024;
/// ... or the tail this many events.
const TAIL_LIMIT: usize = 16_384;

struct Writer {
    conn: Connection,
    head: u64,
    last_recorded: i64,
    /// Current version of recently written streams.
    versions: HashMap<String, u64>,
    ids: KnownIds,
    head_tx: watch::Sender<u64>,
    max_group: usize,
    commits: Arc<AtomicU64>,
    live: broadcast::Sender<CommittedEvents>,
    /// Frames in the WAL as last seen by a checkpoint (see [`WAL_RESTART_FRAMES`]).
    wal_frames: Arc<AtomicU64>,
    journal: Journal,
    tail: Arc<RwLock<Tail>>,
    /// When the open SQLite transaction began; `None` when none is open.
    open_since: Option<Instant>,
    /// A SQLite commit failed: acknowledged events are only in the journal, so the writer
    /// stops and a restart replays them.
    failed: bool,
}

/// What a group changes, applied to the writer only after its commit.
struct GroupState {
    head: u64,
    /// The time appends of this group are stamped with: the clock, but never before the last
    /// event's time.
    stamp: i64,
    /// `recorded_at` of the last event written so far (before the group: the store's last).
    last_recorded: i64,
    versions: HashMap<String, u64>,
    /// Event ids this group wrote, per stream (added to [`KnownIds`] once it is durable).
    new_ids: HashMap<String, Vec<Uuid>>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<WriteCmd>) {
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
        if let Err(error) = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut c| c.execute([]))
        {
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

/// Most event ids [`KnownIds`] holds; past this it forgets every stream and loads them again
/// as they are written (about 20 bytes per id).
const KNOWN_IDS_CAP: usize = 1_000_000;

/// The event ids of recently written streams, each stream's set complete: loaded whole from
/// SQLite the first time the stream is written (after start-up or after the cap cleared it),
/// then kept current by the writer, the only one who writes. Repeats are found here instead of
/// through a unique index on (stream_id, event_id): random ids spread such an index's inserts
/// over many b-tree pages, each written to the WAL again on every commit.
#[derive(Default)]
struct KnownIds {
    streams: HashMap<String, HashSet<Uuid>>,
    total: usize,
}

impl KnownIds {
    /// Whether the stream already holds any of `ids` (this group's own writes included).
    fn any_known(
        &mut self,
        tx: &Connection,
        state: &GroupState,
        stream: &str,
        ids: impl Iterator<Item = Uuid> + Clone,
    ) -> rusqlite::Result<bool> {
        if let Some(written) = state.new_ids.get(stream) {
            if ids.clone().any(|id| written.contains(&id)) {
                return Ok(true);
            }
        }
        if !self.streams.contains_key(stream) {
            let mut scan = tx.prepare_cached("SELECT event_id FROM events WHERE stream_id = ?1")?;
            let loaded = scan
                .query_map([stream], |row| {
                    row.get::<_, [u8; 16]>(0).map(Uuid::from_bytes)
                })?
                .collect::<rusqlite::Result<HashSet<Uuid>>>()?;
            self.total += loaded.len();
            self.streams.insert(stream.to_owned(), loaded);
        }
        let known = &self.streams[stream];
        let any = ids.clone().any(|id| known.contains(&id));
        Ok(any)
    }

    /// Adds a durable group's ids to the streams whose sets are loaded.
    fn add(&mut self, new_ids: HashMap<String, Vec<Uuid>>) {
        for (stream, ids) in new_ids {
            if let Some(set) = self.streams.get_mut(&stream) {
                let before = set.len();
                set.extend(ids);
                self.total += set.len() - before;
            }
        }
        if self.total > KNOWN_IDS_CAP {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.streams.clear();
        self.total = 0;
    }
}

/// Events acknowledged but not yet committed to SQLite, for readers: every event after `base`
/// is here, in position order. Readers take what they need from it first and then read SQLite
/// only up to `base`, which SQLite held before `base` was set.
#[derive(Default)]
struct Tail {
    base: u64,
    groups: Vec<CommittedEvents>,
    /// Per stream, (group index, event index) in version order.
    streams: HashMap<String, Vec<(u32, u32)>>,
    len: usize,
}

impl Tail {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, events: CommittedEvents) {
        let g = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        for (i, event) in (0u32..).zip(events.iter()) {
            self.streams
                .entry(event.stream_id.clone())
                .or_default()
                .push((g, i));
        }
        self.len += events.len();
        self.groups.push(events);
    }

    fn reset(&mut self, base: u64) {
        self.base = base;
        self.groups.clear();
        self.streams.clear();
        self.len = 0;
    }

    /// (base, the stream's events in the tail).
    fn stream(&self, stream: &str) -> (u64, Vec<RecordedEvent>) {
        let events = self.streams.get(stream).map_or_else(Vec::new, |at| {
            at.iter()
                .map(|&(g, i)| self.groups[g as usize][i as usize].clone())
                .collect()
        });
        (self.base, events)
    }

    /// (base, the tail's events with `after < position <= up_to` that match, at most `limit`).
    fn global(&self, query: &GlobalQuery) -> (u64, Vec<RecordedEvent>) {
        let events = self
            .groups
            .iter()
            .flat_map(|g| g.iter())
            .skip_while(|e| e.position <= query.after)
            .take_while(|e| e.position <= query.up_to)
            .filter(|e| query.filter.matches(&e.event_type, &e.stream_id))
            .take(query.limit)
            .cloned()
            .collect();
        (self.base, events)
    }
}

/// Messages kept for live subscribers that fall behind (they then read from the database).
const LIVE_CAPACITY: usize = 1024;

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

/// Appends one batch inside the group's transaction. The outer error aborts the group; the
/// inner one is this batch's answer (nothing of it was written).
///
/// Repeats are found in memory ([`KnownIds`]); only a batch with a known id reads the stream
/// back, to tell an idempotent retry (the original answer) from a partial repeat.
fn append(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    ids: &mut KnownIds,
    state: &mut GroupState,
    batch: &AppendBatch,
) -> rusqlite::Result<Result<AppendOutcome, StorageError>> {
    let stream = batch.stream_id.as_str();
    let current = current_version(tx, cache, state, stream)?;
    if current > 0 && ids.any_known(tx, state, stream, batch.events.iter().map(|e| e.event_id))? {
        if let Some(repeat) = find_repeat(tx, batch)? {
            return Ok(repeat);
        }
    }
    let version_ok = match batch.expected_version {
        ExpectedVersion::Any => true,
        ExpectedVersion::Exact(expected) => expected == current,
    };
    if !version_ok {
        return Ok(Err(StorageError::WrongExpectedVersion { current }));
    }
    // A failed insert fails the whole group, which is undone (see `Writer::undo_group`), so a
    // batch needs no savepoint of its own to be all-or-nothing.
    Ok(Ok(insert_events(tx, state, batch, current)?))
}

/// Inserts the batch after `current`; updates `state` only when every insert succeeded.
fn insert_events(
    tx: &Connection,
    state: &mut GroupState,
    batch: &AppendBatch,
    current: u64,
) -> rusqlite::Result<AppendOutcome> {
    let stream = batch.stream_id.as_str();
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut version = current;
    let mut position = state.head;
    for event in &batch.events {
        version += 1;
        position += 1;
        insert.execute(params![
            to_i64(position),
            stream,
            to_i64(version),
            &event.event_id.as_bytes()[..],
            event.event_type,
            event.schema_version,
            event.data.get(),
            event.metadata.get(),
            state.stamp,
        ])?;
    }
    state.head = position;
    state.last_recorded = state.stamp;
    state.versions.insert(stream.to_owned(), version);
    state
        .new_ids
        .entry(stream.to_owned())
        .or_default()
        .extend(batch.events.iter().map(|e| e.event_id));
    Ok(AppendOutcome {
        version,
        position,
        duplicate: false,
    })
}

/// The stream's version as of this point of the group.
fn current_version(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    state: &mut GroupState,
    stream: &str,
) -> rusqlite::Result<u64> {
    if let Some(v) = state.versions.get(stream).or_else(|| cache.get(stream)) {
        return Ok(*v);
    }
    let v = tx
        .prepare_cached(
            "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1",
        )?
        .query_row([stream], |row| get_u64(row, 0))
        .optional()?
        .unwrap_or(0);
    state.versions.insert(stream.to_owned(), v);
    Ok(v)
}

/// Imports one batch inside the group's transaction, only if it continues the log exactly:
/// its first position is the head's next, every event's version is its stream's next, and its
/// times lie between the last event's and this group's stamp. The outer error aborts the
/// group; the inner one is this batch's answer (nothing of it was written).
fn import(
    tx: &Connection,
    cache: &HashMap<String, u64>,
    ids: &mut KnownIds,
    state: &mut GroupState,
    batch: &ImportBatch,
) -> rusqlite::Result<Result<ImportOutcome, StorageError>> {
    let (Some(first), Some(last)) = (batch.events.first(), batch.events.last()) else {
        return Ok(Ok(ImportOutcome {
            first_position: state.head,
            last_position: state.head,
            events: 0,
            duplicate: true,
        }));
    };
    let conflict = |c: ImportConflict| Ok(Err(StorageError::Import(c)));
    if last.position <= state.head {
        return import_repeat(tx, batch);
    }
    if first.position != state.head + 1 {
        return conflict(ImportConflict::NotNext {
            position: first.position,
            head: state.head,
        });
    }
    if to_micros(first.recorded_at) < state.last_recorded {
        return conflict(ImportConflict::Backwards {
            index: 0,
            position: first.position,
            recorded_at: first.recorded_at,
            last: from_micros(state.last_recorded),
        });
    }
    // Times never decrease inside a checked batch, so the last one is the latest.
    if to_micros(last.recorded_at) > state.stamp {
        return conflict(ImportConflict::Future {
            index: batch.events.len() - 1,
            position: last.position,
            recorded_at: last.recorded_at,
            now: from_micros(state.stamp),
        });
    }
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (index, event) in batch.events.iter().enumerate() {
        let stream = event.stream_id.as_str();
        let current = match versions.get(stream) {
            Some(v) => *v,
            None => current_version(tx, cache, state, stream)?,
        };
        if event.version != current + 1 {
            return conflict(ImportConflict::Version {
                index,
                position: event.position,
                stream_id: stream.to_owned(),
                version: event.version,
                current,
            });
        }
        versions.insert(stream.to_owned(), event.version);
    }

    for (index, e) in batch.events.iter().enumerate() {
        let stream = e.stream_id.as_str();
        if ids.any_known(tx, state, stream, std::iter::once(e.event.event_id))? {
            return conflict(ImportConflict::DuplicateId {
                index,
                position: e.position,
                stream_id: stream.to_owned(),
                event_id: e.event.event_id,
            });
        }
    }
    insert_imported(tx, batch)?;
    for e in &batch.events {
        state
            .new_ids
            .entry(e.stream_id.as_str().to_owned())
            .or_default()
            .push(e.event.event_id);
    }
    state.head = last.position;
    state.last_recorded = to_micros(last.recorded_at);
    state.versions.extend(versions);
    Ok(Ok(ImportOutcome {
        first_position: first.position,
        last_position: last.position,
        events: batch.events.len() as u64,
        duplicate: false,
    }))
}

fn insert_imported(tx: &Connection, batch: &ImportBatch) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    for e in &batch.events {
        insert.execute(params![
            to_i64(e.position),
            e.stream_id.as_str(),
            to_i64(e.version),
            &e.event.event_id.as_bytes()[..],
            e.event.event_type,
            e.event.schema_version,
            e.event.data.get(),
            e.event.metadata.get(),
            to_micros(e.recorded_at),
        ])?;
    }
    Ok(())
}

/// A batch wholly at or below the head: the idempotent answer if the store holds exactly these
/// events at these positions (a retried import whose answer was lost), else `Differs`.
fn import_repeat(
    tx: &Connection,
    batch: &ImportBatch,
) -> rusqlite::Result<Result<ImportOutcome, StorageError>> {
    let first = batch.first_position();
    let last = batch.last_position();
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ?1 AND position <= ?2 ORDER BY position"
    ))?;
    let stored = stmt
        .query_map(params![to_i64(first), to_i64(last)], row_to_event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (index, e) in batch.events.iter().enumerate() {
        let differs = match stored.get(index) {
            None => Some("position"),
            Some(s) if s.event_id != e.event.event_id => Some("event_id"),
            Some(s) if s.stream_id != e.stream_id.as_str() => Some("stream_id"),
            Some(s) if s.version != e.version => Some("version"),
            Some(s) if s.event_type != e.event.event_type => Some("event_type"),
            Some(s) if s.schema_version != e.event.schema_version => Some("schema_version"),
            Some(s) if s.data.get() != e.event.data.get() => Some("data"),
            Some(s) if s.metadata.get() != e.event.metadata.get() => Some("metadata"),
            Some(s) if s.recorded_at != e.recorded_at => Some("recorded_at"),
            Some(_) => None,
        };
        if let Some(field) = differs {
            return Ok(Err(StorageError::Import(ImportConflict::Differs {
                index,
                position: e.position,
                field,
            })));
        }
    }
    Ok(Ok(ImportOutcome {
        first_position: first,
        last_position: last,
        events: batch.events.len() as u64,
        duplicate: true,
    }))
}

/// When some event of the batch is already in the stream: the idempotent answer if all are
/// (the original version and position), `PartialDuplicate` if only some are; `None` if none.
fn find_repeat(
    tx: &Connection,
    batch: &AppendBatch,
) -> rusqlite::Result<Option<Result<AppendOutcome, StorageError>>> {
    // No index holds event ids (see `KnownIds`): read the stream's ids once, in version order.
    let mut scan = tx.prepare_cached(
        "SELECT event_id, version, position FROM events WHERE stream_id = ?1 ORDER BY version",
    )?;
    let wanted: HashSet<Uuid> = batch.events.iter().map(|e| e.event_id).collect();
    let mut found: Option<(u64, u64)> = None;
    let mut found_count = 0usize;
    let mut rows = scan.query([batch.stream_id.as_str()])?;
    while let Some(row) = rows.next()? {
        let id: [u8; 16] = row.get(0)?;
        if wanted.contains(&Uuid::from_bytes(id)) {
            let hit = (get_u64(row, 1)?, get_u64(row, 2)?);
            found_count += 1;
            found = Some(found.map_or(hit, |f: (u64, u64)| (f.0.max(hit.0), f.1.max(hit.1))));
        }
    }
    Ok(found.map(|(version, position)| {
        if found_count == batch.events.len() {
            Ok(AppendOutcome {
                version,
                position,
                duplicate: true,
            })
        } else {
            Err(StorageError::PartialDuplicate)
        }
    }))
}

fn put_subscription(
    tx: &Connection,
    state: &GroupState,
    group: &GroupName,
    spec: &SubscriptionSpec,
) -> rusqlite::Result<Result<Subscription, StorageError>> {
    let existing = select_subscription(tx, group.as_str())?;
    if let Some(start) = spec.start_position {
        if start > state.head {
            return Ok(Err(StorageError::PositionBeyondHead {
                position: start,
                head: state.head,
            }));
        }
    }
    let checkpoint = spec
        .start_position
        .or(existing.map(|s| s.checkpoint))
        .unwrap_or(0);
    let filter = EventFilter {
        event_types: spec.event_types.clone().filter(|t| !t.is_empty()),
        stream_prefix: spec.stream_prefix.clone().filter(|p| !p.is_empty()),
    };
    let types_json = filter
        .event_types
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".to_owned()));
    tx.prepare_cached(
        "INSERT INTO subscriptions (name, checkpoint, event_types, stream_prefix, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE
         SET checkpoint = excluded.checkpoint, event_types = excluded.event_types,
             stream_prefix = excluded.stream_prefix, updated_at = excluded.updated_at",
    )?
    .execute(params![
        group.as_str(),
        to_i64(checkpoint),
        types_json,
        filter.stream_prefix,
        now_micros()
    ])?;
    Ok(Ok(Subscription {
        group: group.as_str().to_owned(),
        checkpoint,
        filter,
    }))
}

fn ack(
    tx: &Connection,
    state: &GroupState,
    group: &GroupName,
    position: u64,
) -> rusqlite::Result<Result<Subscription, StorageError>> {
    let Some(mut sub) = select_subscription(tx, group.as_str())? else {
        return Ok(Err(StorageError::UnknownGroup(group.as_str().to_owned())));
    };
    if position > state.head {
        return Ok(Err(StorageError::PositionBeyondHead {
            position,
            head: state.head,
        }));
    }
    if position > sub.checkpoint {
        tx.prepare_cached(
            "UPDATE subscriptions SET checkpoint = ?2, updated_at = ?3 WHERE name = ?1",
        )?
        .execute(params![group.as_str(), to_i64(position), now_micros()])?;
        sub.checkpoint = position;
    }
    Ok(Ok(sub))
}

// ---------------------------------------------------------------------------------------------
// Reads

const INSERT_EVENT: &str = "INSERT INTO events
     (position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const EVENT_COLUMNS: &str =
    "position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at";

/// Reads a stream from SQLite up to position `base` and from `tail`, the stream's events after
/// `base` (see [`Tail`]).
fn read_stream(
    conn: &Connection,
    query: &StreamQuery,
    base: u64,
    tail: Vec<RecordedEvent>,
) -> rusqlite::Result<StreamSlice> {
    let tx = conn.unchecked_transaction()?;
    let stream = query.stream_id.as_str();
    let current = match tail.last() {
        Some(last) => last.version,
        None => tx
            .prepare_cached(
                "SELECT version FROM events WHERE stream_id = ?1 AND position <= ?2
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![stream, to_i64(base)], |row| get_u64(row, 0))
            .optional()?
            .unwrap_or(0),
    };
    let version = match query.as_of {
        AsOf::Now => current,
        AsOf::Version(v) => v.min(current),
        AsOf::Time(t) => match tail.iter().rev().find(|e| e.recorded_at <= t) {
            Some(e) => e.version,
            None => tx
                .prepare_cached(
                    "SELECT version FROM events
                     WHERE stream_id = ?1 AND recorded_at <= ?2 AND position <= ?3
                     ORDER BY version DESC LIMIT 1",
                )?
                .query_row(params![stream, to_micros(t), to_i64(base)], |row| {
                    get_u64(row, 0)
                })
                .optional()?
                .unwrap_or(0),
        },
    };
    let mut events = Vec::new();
    if version >= query.from_version && query.limit > 0 {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 AND position <= ?5
             ORDER BY version LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                stream,
                to_i64(query.from_version),
                to_i64(version),
                to_i64(query.limit as u64),
                to_i64(base)
            ],
            row_to_event,
        )?;
        for row in rows {
            events.push(row?);
        }
        let room = query.limit - events.len();
        events.extend(
            tail.into_iter()
                .filter(|e| e.version >= query.from_version && e.version <= version)
                .take(room),
        );
    }
    Ok(StreamSlice { version, events })
}

/// Joins the events SQLite returned (all before the tail's) with the tail's, at most
/// `query.limit`, and says how far the reader has seen.
fn merge_global(
    query: &GlobalQuery,
    mut events: Vec<RecordedEvent>,
    tail: Vec<RecordedEvent>,
) -> GlobalSlice {
    events.extend(tail);
    events.truncate(query.limit);
    let scanned_to = if events.len() >= query.limit {
        events.last().map_or(query.up_to, |e| e.position)
    } else {
        query.up_to
    };
    GlobalSlice { events, scanned_to }
}

/// Inserts events that already have their positions, versions and times.
fn insert_recorded<'a>(
    conn: &Connection,
    events: impl Iterator<Item = &'a RecordedEvent>,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    for e in events {
        insert.execute(params![
            to_i64(e.position),
            e.stream_id,
            to_i64(e.version),
            &e.event_id.as_bytes()[..],
            e.event_type,
            e.schema_version,
            e.data.get(),
            e.metadata.get(),
            to_micros(e.recorded_at),
        ])?;
    }
    Ok(())
}

/// Writes the journal's events that SQLite lacks (those after its last position), in one
/// transaction, before the store serves anything.
fn replay(conn: &mut Connection, journaled: Vec<JournalEvent>) -> Result<(), StorageError> {
    let head: i64 = conn
        .query_row("SELECT coalesce(max(position), 0) FROM events", [], |row| {
            row.get(0)
        })
        .map_err(|e| StorageError::backend("reading the head position", e))?;
    let head = u64::try_from(head).unwrap_or(0);
    let missing: Vec<JournalEvent> = journaled
        .into_iter()
        .filter(|e| e.position > head)
        .collect();
    let Some(first) = missing.first() else {
        return Ok(());
    };
    if first.position != head + 1 {
        return Err(StorageError::backend(
            "replaying the journal",
            std::io::Error::other(format!(
                "the journal continues at position {}, but the database ends at {head}; \
                 the journal does not belong to this database",
                first.position
            )),
        ));
    }
    let count = missing.len();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    let events: Vec<RecordedEvent> = missing
        .into_iter()
        .map(|e| RecordedEvent {
            event_id: e.event_id,
            stream_id: e.stream_id,
            version: e.version,
            position: e.position,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: from_micros(e.recorded_at),
        })
        .collect();
    insert_recorded(&tx, events.iter())
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    tx.commit()
        .map_err(|e| StorageError::backend("replaying the journal", e))?;
    tracing::info!(
        events = count,
        from = head + 1,
        "replayed acknowledged events from the journal"
    );
    Ok(())
}

fn read_all(conn: &Connection, query: &GlobalQuery) -> rusqlite::Result<GlobalSlice> {
    let mut sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 AND position <= ?2");
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Integer(to_i64(query.after)),
        SqlValue::Integer(to_i64(query.up_to)),
    ];
    if let Some(types) = &query.filter.event_types {
        let marks: Vec<String> = types
            .iter()
            .map(|t| {
                args.push(SqlValue::Text(t.clone()));
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND event_type IN ({})", marks.join(", ")));
    }
    if let Some(prefix) = &query.filter.stream_prefix {
        args.push(SqlValue::Integer(prefix.chars().count() as i64));
        args.push(SqlValue::Text(prefix.clone()));
        sql.push_str(&format!(
            " AND substr(stream_id, 1, ?{}) = ?{}",
            args.len() - 1,
            args.len()
        ));
    }
    args.push(SqlValue::Integer(to_i64(query.limit as u64)));
    sql.push_str(&format!(" ORDER BY position LIMIT ?{}", args.len()));

    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_event)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row?);
    }
    let scanned_to = if events.len() >= query.limit {
        events.last().map_or(query.up_to, |e| e.position)
    } else {
        query.up_to
    };
    Ok(GlobalSlice { events, scanned_to })
}

fn select_subscription(conn: &Connection, name: &str) -> rusqlite::Result<Option<Subscription>> {
    conn.prepare_cached(
        "SELECT name, checkpoint, event_types, stream_prefix FROM subscriptions WHERE name = ?1",
    )?
    .query_row([name], row_to_subscription)
    .optional()
}

fn row_to_subscription(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let types: Option<String> = row.get(2)?;
    let event_types = match types {
        None => None,
        Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?),
    };
    Ok(Subscription {
        group: row.get(0)?,
        checkpoint: get_u64(row, 1)?,
        filter: EventFilter {
            event_types,
            stream_prefix: row.get(3)?,
        },
    })
}

fn row_to_event(row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    let id: Vec<u8> = row.get(3)?;
    let event_id = Uuid::from_slice(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    let micros: i64 = row.get(8)?;
    Ok(RecordedEvent {
        position: get_u64(row, 0)?,
        stream_id: row.get(1)?,
        version: get_u64(row, 2)?,
        event_id,
        event_type: row.get(4)?,
        schema_version: row.get(5)?,
        data: get_raw(row, 6)?,
        metadata: get_raw(row, 7)?,
        recorded_at: from_micros(micros),
    })
}

fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn get_raw(row: &Row<'_>, idx: usize) -> rusqlite::Result<Box<RawValue>> {
    let text: String = row.get(idx)?;
    RawValue::from_string(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Positions and versions are below 2^63 in practice; saturate rather than wrap.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
