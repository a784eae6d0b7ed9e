//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, one writer thread, and a
//! small pool of reader connections used from `spawn_blocking`.
//!
//! The writer takes every queued write as one group and makes the group durable with one
//! fsync. Its SQLite transaction stays open across groups for up to
//! [`COMMIT_INTERVAL`](writer::COMMIT_INTERVAL): each group's new events are made durable by one
//! record in the [`Journal`] (a sequential write and an `fdatasync`), and SQLite commits the many
//! groups together, so a b-tree page that many appends touch is written once per SQLite commit
//! instead of once per group. Until SQLite commits, readers find those events in the
//! [`Tail`](tail::Tail); after a crash, start-up replays the journal's events that SQLite lacks.
//! Writes to consumer groups and snapshots are not journaled: a group holding one commits SQLite
//! before it is answered.
//!
//! This file is the front ([`SqliteStorage`]: opening, and the [`Storage`] methods that queue
//! writes or borrow a reader). Behind it: `writer` (the writer thread and its group commit),
//! `writes` (what each write does inside the group's transaction), `known_ids` (repeated event
//! ids), `tail` (acknowledged events SQLite has not committed yet), `readers` (the reader pool
//! and the reads), `checkpoint` (the checkpoint thread), `replay` (the journal at start-up) and
//! `sql` (the schema and the SQL they share).

mod checkpoint;
mod event_types;
mod known_ids;
mod readers;
mod replay;
mod sql;
mod tail;
mod writer;
mod writes;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures::future::BoxFuture;
use futures::FutureExt;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};

use self::checkpoint::{open_checkpointer, run_checkpointer};
use self::event_types::{migrate, EventTypes};
use self::known_ids::KnownIds;
use self::readers::{merge_global, read_all, read_stream, ReadPool};
use self::replay::replay;
use self::sql::{
    configure_writer, create_schema, get_raw, get_u64, row_to_subscription, select_subscription,
};
use self::tail::Tail;
use self::writer::{WriteCmd, Writer, LIVE_CAPACITY};
use super::journal::Journal;
use super::{
    CommittedEvents, GlobalQuery, GlobalSlice, Storage, StorageError, StreamQuery, StreamSlice,
};
use crate::domain::{
    AppendBatch, AppendOutcome, EventTypeCount, GroupName, ImportBatch, ImportOutcome, Snapshot,
    StreamId, Subscription, SubscriptionSpec,
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
    types: Arc<Mutex<EventTypes>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StorageError> {
        let mut conn = Connection::open(path)
            .map_err(|e| StorageError::backend("opening the database file", e))?;
        configure_writer(&conn)
            .map_err(|e| StorageError::backend("configuring the database", e))?;
        create_schema(&mut conn).map_err(|e| StorageError::backend("creating the schema", e))?;
        let started = std::time::Instant::now();
        let filled = migrate(&mut conn)
            .map_err(|e| StorageError::backend("counting the stored events by type", e))?;
        if let Some(rows) = filled {
            tracing::info!(
                rows,
                elapsed_ms = started.elapsed().as_millis(),
                "created the event_types table from the stored events"
            );
        }
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
        let types =
            Arc::new(Mutex::new(EventTypes::load(&conn).map_err(|e| {
                StorageError::backend("reading the event_types table", e)
            })?));

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
            types: types.clone(),
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
            types,
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

    fn event_types(&self) -> BoxFuture<'_, Result<Vec<EventTypeCount>, StorageError>> {
        let counts = self
            .types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts();
        async move { Ok(counts) }.boxed()
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
