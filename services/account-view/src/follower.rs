//! Follows the event store's global log from the view's checkpoint and applies each page of
//! events in one transaction with the new checkpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use es_client::{ClientError, EventStoreClient};
use tokio::sync::watch;

use crate::db::{DbError, ViewDb};
use crate::projection::{project, ViewChange};
use crate::Metrics;

/// How many events one read asks for (and one transaction applies at most).
const PAGE: usize = 1000;

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("reading the event store's log failed: {0}")]
    Store(#[from] ClientError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the view database task failed: {0}")]
    Task(String),
}

/// Applies pages of events until `stop` completes, then returns `Ok`. Store outages and failed
/// transactions are waited out; a projection error (an event that does not decode) is logged and
/// the event skipped, so one bad event cannot stop the view. Only a failed database task ends it
/// early, with an error (the service's `/health` then answers 503).
pub(crate) async fn follow(
    client: EventStoreClient,
    writer: ViewDb,
    checkpoint_tx: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) -> Result<(), FollowError> {
    tokio::pin!(stop);
    let mut writer = Some(writer);
    let mut backoff = Duration::from_millis(100);
    loop {
        let after = *checkpoint_tx.borrow();
        let page = tokio::select! {
            () = &mut stop => return Ok(()),
            page = client.read_all(after, PAGE, Duration::from_secs(2)) => page,
        };
        let page = match page {
            Ok(page) => {
                backoff = Duration::from_millis(100);
                page
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the event store's log; retrying");
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Some(head) = page.head {
            metrics.head.set(i64::try_from(head).unwrap_or(i64::MAX));
        }
        if page.events.is_empty() {
            continue;
        }
        let batch = project_page(&page.events);
        let n = batch.len() as u64;
        let Some(mut db) = writer.take() else {
            return Err(FollowError::Task("the view database was lost".to_owned()));
        };
        // The commit runs to the end even when a stop arrives meanwhile.
        let joined = tokio::task::spawn_blocking(move || {
            let result = db.apply(&batch);
            (db, result)
        })
        .await;
        match joined {
            Ok((db, Ok(checkpoint))) => {
                writer = Some(db);
                metrics.events_applied.add(n);
                metrics.batches.inc();
                checkpoint_tx.send_replace(checkpoint);
            }
            Ok((db, Err(error))) => {
                writer = Some(db);
                tracing::error!(%error, "could not apply events to the view; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(join) => return Err(FollowError::Task(join.to_string())),
        }
    }
}

fn project_page(events: &[es_core::EventEnvelope]) -> Vec<(u64, Vec<ViewChange>)> {
    events
        .iter()
        .map(|event| {
            let changes = project(event).unwrap_or_else(|error| {
                tracing::error!(%error, position = event.position, "skipping an event the view cannot read");
                vec![]
            });
            (event.position, changes)
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
        let batch = project_page(&page.events);
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
