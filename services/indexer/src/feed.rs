//! The indexing loop: reads the relevant events of the global log after the index's
//! checkpoint, stages the entries they change, and commits entries and checkpoint together.
//!
//! The checkpoint lives in the index's own commit, so after a kill the index and its position
//! agree: events after the last commit are read again, and none is indexed twice (re-staging an
//! entry replaces it). The consumer group `indexer` is acknowledged after each commit, for the
//! store's view of its subscribers; the index never reads its position from it.

use std::future::Future;
use std::time::{Duration, Instant};

use es_client::follow::{Follower, Log};
use es_client::{ClientError, EventStoreClient, LogFilter, Poison, SubscriptionSpec};
use service_kit::{Counter, Gauge};

use crate::entry::{self, EVENT_TYPES};
use crate::index::{IndexError, IndexFeeder};

/// How the indexer reads and commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    pub group: String,
    /// Most events per read.
    pub batch: usize,
    /// Longest wait of one read when there is nothing to commit.
    pub poll_wait: Duration,
    /// Staged changes are committed at the latest this long after the first one...
    pub commit_interval: Duration,
    /// ...or once this many events are applied.
    pub commit_events: usize,
}

/// Live figures, shared with `/metrics` and `/health`.
#[derive(Debug, Clone, Default)]
pub struct FeedMetrics {
    /// The checkpoint of the last commit: the index reflects the log up to here.
    pub indexed_position: Gauge,
    /// The newest position in the store at the last read.
    pub store_head: Gauge,
    pub store_reachable: Gauge,
    pub events_indexed: Counter,
    pub commits: Counter,
    pub store_errors: Counter,
}

/// Why indexing stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("the event store refused a request: {0}")]
    Store(#[source] ClientError),
    #[error("the index task failed: {0}")]
    Join(String),
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            group: "indexer".to_owned(),
            batch: 1000,
            poll_wait: Duration::from_secs(5),
            commit_interval: Duration::from_millis(200),
            commit_events: 5000,
        }
    }
}

/// The filter of the events the indexer reads.
pub fn filter() -> LogFilter {
    LogFilter {
        event_types: Some(EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect()),
        stream_prefix: None,
    }
}

/// The indexer's poison policy. An event of the indexed types that does not make an entry (it
/// does not decode) changes nothing in the index and is counted in `events_indexed` like any
/// other: a search index may lack an entry, but must not stop following the log for it.
pub const POISON: Poison = Poison::Skip;

/// Indexes until `shutdown` completes, then commits what is staged. Store outages are waited
/// out (staged entries are still committed on time); a refusal or an index failure ends the
/// loop with an error.
pub async fn run(
    mut feeder: IndexFeeder,
    client: EventStoreClient,
    settings: FeedSettings,
    metrics: FeedMetrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FeedError> {
    tokio::pin!(shutdown);
    let mut checkpoint = feeder.search_index().checkpoint()?;
    metrics.indexed_position.set(to_i64(checkpoint));
    let spec = SubscriptionSpec::new(filter());
    let mut registered = false;
    let outage = metrics.clone();
    // The follower's cursor is the position read up to.
    let mut follower = Follower::new(Log::new(client.clone(), filter()), checkpoint)
        .limit(settings.batch)
        .on_outage(move |_| {
            outage.store_errors.inc();
            outage.store_reachable.set(0);
        });
    // The events applied since the last commit.
    let mut applied = 0usize;
    let mut first_staged: Option<Instant> = None;
    tracing::info!(checkpoint, "indexer started");
    loop {
        let cursor = follower.cursor();
        let due = first_staged.is_some_and(|t| t.elapsed() >= settings.commit_interval)
            || applied >= settings.commit_events;
        if due && cursor > checkpoint {
            feeder = commit(feeder, cursor).await?;
            checkpoint = cursor;
            applied = 0;
            first_staged = None;
            metrics.commits.inc();
            metrics.indexed_position.set(to_i64(checkpoint));
            if registered {
                if let Err(error) = client.ack(&settings.group, checkpoint).await {
                    tracing::debug!(%error, "could not acknowledge; the next commit will");
                }
            }
        }
        if !registered {
            match client.subscribe(&settings.group, &spec).await {
                Ok(()) => registered = true,
                Err(error) => tracing::debug!(%error, "could not register the consumer group yet"),
            }
        }
        let wait = match first_staged {
            Some(t) => settings.commit_interval.saturating_sub(t.elapsed()),
            None => settings.poll_wait,
        };
        let page = match follower.next_page_within(wait, &mut shutdown).await {
            Ok(Some(page)) => page,
            Ok(None) => {
                let cursor = follower.cursor();
                if cursor > checkpoint {
                    feeder = commit(feeder, cursor).await?;
                    metrics.indexed_position.set(to_i64(cursor));
                }
                drop(feeder);
                return Ok(());
            }
            Err(error) => return Err(FeedError::Store(error)),
        };
        if follower.outages() > 0 {
            continue; // the store is away; what is staged is committed on time meanwhile
        }
        metrics.store_reachable.set(1);
        let head = page.head.unwrap_or(cursor);
        metrics.store_head.set(to_i64(head));
        if page.events.is_empty() {
            // Nothing matched up to the head: the index reflects the log up to there.
            if head > cursor {
                follower.advance(head);
                first_staged.get_or_insert_with(Instant::now);
            }
            continue;
        }
        for event in &page.events {
            let Some(key) = entry::key_of(event) else {
                continue;
            };
            let current = feeder.current(&key)?;
            let next = entry::apply(event, current.as_ref(), |id| feeder.account(id));
            if let Some(next) = next {
                feeder.stage(next)?;
            }
            metrics.events_indexed.inc();
        }
        applied += page.events.len();
        first_staged.get_or_insert_with(Instant::now);
    }
}

/// Commits on a blocking thread (tantivy fsyncs) and hands the feeder back.
async fn commit(mut feeder: IndexFeeder, position: u64) -> Result<IndexFeeder, FeedError> {
    let (feeder, result) = tokio::task::spawn_blocking(move || {
        let result = feeder.commit(position);
        (feeder, result)
    })
    .await
    .map_err(|e| FeedError::Join(e.to_string()))?;
    result?;
    Ok(feeder)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
