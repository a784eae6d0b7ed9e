//! Follows the event store's global log from the view's checkpoint (with
//! [`es_client::follow::Follower`]) and applies each page of events in one transaction with the
//! new checkpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use es_client::follow::{Follower, Log};
use es_client::{Backoff, ClientError, EventStoreClient, LogFilter, Poison};
use tokio::sync::watch;

use crate::db::{DbError, ViewDb};
use crate::projection::{project, ViewChange};
use crate::Metrics;

/// How many events one read asks for (and one transaction applies at most).
const PAGE: usize = 5000;

/// The view's poison policy: an event the projection cannot read is logged, counted in
/// `account_view_events_skipped_total` and left out, so one bad event cannot freeze every
/// account's view (a saga stops on one instead; the view only shows what the log holds).
pub const POISON: Poison = Poison::Skip;

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("reading the event store's log failed: {0}")]
    Store(#[from] ClientError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the view database task failed: {0}")]
    Task(String),
    #[error("the view cannot read event {position} ({event_id}): {reason}")]
    Poison {
        position: u64,
        event_id: uuid::Uuid,
        reason: String,
    },
}

/// How often a view waiting for the writer lock reads the checkpoint the writer committed, so
/// its queries with `min_version` see the other process's progress.
const WAITING_POLL: Duration = Duration::from_millis(50);

/// Applies pages of events until `stop` completes, then returns `Ok`. Store outages and failed
/// transactions are waited out; an event the projection cannot read follows [`POISON`]. A
/// refusal by the store or a failed database task ends it early, with an error (the service's
/// `/health` then answers 503).
///
/// Only the holder of the writer lock `lock` writes the view: a new container on the same file
/// serves reads while the old one still follows, and takes over (with `reset` first, for
/// `VIEW_REBUILD`) once the old one has let go.
pub(crate) async fn follow(
    client: EventStoreClient,
    writer: ViewDb,
    lock: WriterLock,
    reset: bool,
    checkpoint_tx: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) -> Result<(), FollowError> {
    tokio::pin!(stop);
    let Some((_held, mut writer)) = wait_for_lock(&lock, writer, &checkpoint_tx, &mut stop).await?
    else {
        return Ok(());
    };
    if reset {
        tracing::info!("rebuilding the view from position 0");
        writer.reset()?;
    }
    let after = writer.checkpoint()?;
    checkpoint_tx.send_replace(after);
    let mut writer = Some(writer);
    let mut follower = Follower::new(Log::new(client, LogFilter::default()), after)
        .limit(PAGE)
        .wait(Duration::from_secs(2));
    // For failed transactions (the follower has its own for the store).
    let mut backoff = Backoff::default();
    // A page read while the one before it was being committed.
    let mut ahead = None;
    loop {
        let page = match ahead.take() {
            Some(page) => page,
            None => match follower.next_page(&mut stop).await? {
                Some(page) => page,
                None => return Ok(()),
            },
        };
        if let Some(head) = page.head {
            metrics.head.set(i64::try_from(head).unwrap_or(i64::MAX));
            metrics
                .head_known
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let Some(last) = page.events.last().map(|e| e.position) else {
            continue;
        };
        // Behind the head (a rebuild, a catch-up): read the next page while this one commits.
        let behind = page.head.is_some_and(|head| head > last);
        let batch = project_page(&page.events, &metrics)?;
        let n = batch.len() as u64;
        let Some(mut db) = writer.take() else {
            return Err(FollowError::Task("the view database was lost".to_owned()));
        };
        // The commit runs to the end even when a stop arrives meanwhile.
        let commit = tokio::task::spawn_blocking(move || {
            let result = db.apply(&batch);
            (db, result)
        });
        let (joined, next) = if behind {
            let (joined, next) =
                tokio::join!(commit, follower.next_page_within(Duration::ZERO, &mut stop));
            (joined, Some(next))
        } else {
            (commit.await, None)
        };
        match joined {
            Ok((db, Ok(checkpoint))) => {
                writer = Some(db);
                metrics.events_applied.add(n);
                metrics.batches.inc();
                checkpoint_tx.send_replace(checkpoint);
                backoff.reset();
                match next.transpose()? {
                    Some(Some(page)) => ahead = Some(page),
                    Some(None) => return Ok(()),
                    None => {}
                }
            }
            Ok((db, Err(error))) => {
                writer = Some(db);
                tracing::error!(%error, "could not apply events to the view; retrying");
                follower.seek(*checkpoint_tx.borrow());
                if backoff.pause(&mut stop).await {
                    return Ok(());
                }
            }
            Err(join) => return Err(FollowError::Task(join.to_string())),
        }
    }
}

/// The file lock that makes one process the view's writer (`account-view.writer.lock` beside
/// the database). The operating system releases it when the process ends, however it ends.
#[derive(Debug, Clone)]
pub struct WriterLock {
    path: std::path::PathBuf,
}

impl WriterLock {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self { path }
    }

    /// The lock, held until the file is dropped; `None` while another process holds it.
    pub fn try_take(&self) -> Result<Option<std::fs::File>, FollowError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| {
                FollowError::Task(format!(
                    "opening the writer lock {}: {e}",
                    self.path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(FollowError::Task(format!(
                "taking the writer lock {}: {e}",
                self.path.display()
            ))),
        }
    }
}

/// Takes the writer lock, meanwhile following the checkpoint the holder commits; `None` when
/// `stop` completes first.
async fn wait_for_lock<F: Future<Output = ()>>(
    lock: &WriterLock,
    db: ViewDb,
    checkpoint_tx: &watch::Sender<u64>,
    stop: &mut std::pin::Pin<&mut F>,
) -> Result<Option<(std::fs::File, ViewDb)>, FollowError> {
    let mut said = false;
    loop {
        if let Some(file) = lock.try_take()? {
            if said {
                tracing::info!("took the writer lock; following the event store");
            }
            return Ok(Some((file, db)));
        }
        if !said {
            tracing::info!(
                "another process writes the view; serving reads until it lets go of the writer lock"
            );
            said = true;
        }
        match db.checkpoint() {
            Ok(position) => {
                checkpoint_tx.send_if_modified(|now| {
                    let moved = *now != position;
                    *now = position;
                    moved
                });
            }
            Err(error) => tracing::warn!(%error, "could not read the writer's checkpoint"),
        }
        tokio::select! {
            () = stop.as_mut() => return Ok(None),
            () = tokio::time::sleep(WAITING_POLL) => {}
        }
    }
}

/// The view changes of a page; an event the projection cannot read follows [`POISON`] (a
/// projection is deterministic, so trying it again cannot help: any policy but `Skip` stops).
fn project_page(
    events: &[es_core::EventEnvelope],
    metrics: &Metrics,
) -> Result<Vec<(u64, Vec<ViewChange>)>, FollowError> {
    events
        .iter()
        .map(|event| {
            let changes = match project(event) {
                Ok(changes) => changes,
                Err(error) if POISON == Poison::Skip => {
                    tracing::error!(%error, position = event.position, event_id = %event.event_id, "skipping an event the view cannot read");
                    metrics.events_skipped.inc();
                    vec![]
                }
                Err(error) => {
                    return Err(FollowError::Poison {
                        position: event.position,
                        event_id: event.event_id,
                        reason: error.to_string(),
                    })
                }
            };
            Ok((event.position, changes))
        })
        .collect()
}

/// Applies every event after the view's checkpoint up to the log's current end, then returns the
/// new checkpoint. Used by `account-view rebuild` (after a reset) and by tests.
pub async fn catch_up(client: &EventStoreClient, db: ViewDb) -> Result<(ViewDb, u64), FollowError> {
    let mut db = db;
    let mut checkpoint = db.checkpoint()?;
    loop {
        let page = client.read_all(checkpoint, PAGE, Duration::ZERO).await?;
        if page.events.is_empty() {
            return Ok((db, checkpoint));
        }
        let batch = project_page(&page.events, &Metrics::default())?;
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = db.apply(&batch);
            (db, result)
        })
        .await
        .map_err(|e| FollowError::Task(e.to_string()))?;
        db = back;
        checkpoint = result?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(
        position: u64,
        event_type: &str,
        data: serde_json::Value,
    ) -> es_core::EventEnvelope {
        serde_json::from_value(json!({
            "event_id": "6f1c2b9e-0000-4000-8000-000000000009",
            "stream_id": "Account-11111111-1111-4111-8111-111111111111",
            "version": position,
            "position": position,
            "event_type": event_type,
            "data": data,
            "recorded_at": "2026-11-26T12:00:00Z"
        }))
        .expect("envelope")
    }

    #[test]
    fn an_event_the_view_cannot_read_is_skipped_counted_and_its_position_kept() {
        let metrics = Metrics::default();
        let events = [
            envelope(
                1,
                "AccountOpened",
                json!({"title": "t", "initial_balance": 1}),
            ),
            envelope(2, "AccountDebited", json!({"amount": 1.5})),
            envelope(3, "AccountClosed", json!({})),
        ];
        let batch = project_page(&events, &metrics).expect("the view skips poison events");
        let shape: Vec<_> = batch.iter().map(|(p, c)| (*p, c.len())).collect();
        assert_eq!(
            shape,
            [(1, 1), (2, 0), (3, 1)],
            "the checkpoint still passes it"
        );
        assert_eq!(metrics.events_skipped.get(), 1);
    }
}
