//! A durable consumer-group loop, built on [`crate::follow`], that handles each batch in parallel
//! across aggregates: events with the same key (the aggregate they change) run in log order,
//! different keys run at once. The group is acknowledged up to the last event before the first
//! failure, so a failed event and everything after it come again; handlers must be idempotent
//! (derived event ids). A failure that is not transient counts towards the group's [`Poison`]
//! policy.
//!
//! The saga handlers of the accounts and transfers services use it: one event at a time caps a saga at one
//! store round trip chain per event, which is far below the fleet's target throughput.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use crate::follow::{Backoff, Follower, Group, HandlerError, Poison, Verdict};
use crate::{ClientError, EventStoreClient, ExecuteError, SubscriptionSpec};
use es_core::{DecodeError, EventEnvelope};
use futures::future::join_all;
use uuid::Uuid;

/// What a partitioned subscriber reads and how.
#[derive(Debug, Clone)]
pub struct PartitionedGroup {
    pub group: String,
    pub event_types: Vec<String>,
    pub batch_size: usize,
    pub wait: Duration,
    /// What a handler failure that is not transient leads to.
    pub poison: Poison,
}

/// Why a saga's reaction to one event failed: the event does not decode (retrying cannot help,
/// so it counts towards the group's [`Poison`] policy), or the command it caused failed
/// (transient or not, as [`ExecuteError`] says). The loop's own error names the event.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Execute(#[from] ExecuteError<E>),
}

impl<E: std::error::Error + 'static> HandlerError for ReactionError<E> {
    fn is_transient(&self) -> bool {
        match self {
            Self::Decode(_) => false,
            Self::Execute(error) => error.is_transient(),
        }
    }
}

/// Why the loop stopped before it was told to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event store refused a request of consumer group {group}: {source}")]
    Store {
        group: String,
        #[source]
        source: ClientError,
    },
    #[error("consumer group {group} stopped at event {position} ({event_type}, id {event_id}): its handler failed {failures} time(s): {reason}; fix the cause and restart the service, the event comes again")]
    Poison {
        group: String,
        position: u64,
        event_id: Uuid,
        event_type: String,
        failures: u32,
        reason: String,
    },
}

/// Handles events until `stop` completes, then returns `Ok`. `key` names the aggregate an event
/// will change (None: nothing to do, acknowledged at once). Store outages and transient handler
/// failures are retried with backoff from the group's checkpoint; other handler failures follow
/// `spec.poison`; a refusal by the store ends the loop with an error.
pub async fn run<K, KF, H, F, E>(
    client: EventStoreClient,
    spec: PartitionedGroup,
    key: KF,
    handler: H,
    stop: impl Future<Output = ()>,
) -> Result<(), Error>
where
    K: Hash + Eq,
    KF: Fn(&EventEnvelope) -> Option<K>,
    H: Fn(EventEnvelope) -> F,
    F: Future<Output = Result<(), E>>,
    E: HandlerError,
{
    tokio::pin!(stop);
    let store = |source| Error::Store {
        group: spec.group.clone(),
        source,
    };
    let subscription = SubscriptionSpec {
        event_types: Some(spec.event_types.clone()),
        ..SubscriptionSpec::default()
    };
    let group = Group::new(client, &spec.group, subscription).map_err(store)?;
    let mut follower = Follower::new(group, 0)
        .limit(spec.batch_size)
        .wait(spec.wait);
    // Failures in a row that were not transient, by position.
    let mut failures: HashMap<u64, u32> = HashMap::new();
    let mut backoff = Backoff::default();
    loop {
        let Some(page) = follower.next_page(&mut stop).await.map_err(store)? else {
            return Ok(());
        };
        if page.events.is_empty() {
            continue;
        }
        let outcome = handle_batch(&spec, page.events, &key, &handler).await;
        if let Some(position) = outcome.acked {
            if let Err(error) = follower.source().ack(position).await {
                if crate::follow::is_refusal(&error) {
                    return Err(store(error));
                }
                tracing::warn!(group = %spec.group, %error, "could not acknowledge; retrying");
            }
        }
        let Some(failure) = outcome.failure else {
            failures.clear();
            backoff.reset();
            continue;
        };
        if !failure.transient {
            let count = failures.entry(failure.position).or_default();
            *count += 1;
            if spec.poison.verdict(*count) == Verdict::Stop {
                return Err(Error::Poison {
                    group: spec.group.clone(),
                    position: failure.position,
                    event_id: failure.event_id,
                    event_type: failure.event_type,
                    failures: *count,
                    reason: failure.reason,
                });
            }
        }
        if backoff.pause(&mut stop).await {
            return Ok(());
        }
    }
}

/// What one batch came to.
struct BatchOutcome {
    /// The last position of the prefix (in log order) that succeeded or was skipped.
    acked: Option<u64>,
    /// The first failure in log order, which comes again.
    failure: Option<Failure>,
}

struct Failure {
    position: u64,
    event_id: Uuid,
    event_type: String,
    transient: bool,
    reason: String,
}

/// Runs one batch: each lane in order, stopping at its first failure (unless the policy skips
/// it).
async fn handle_batch<K, KF, H, F, E>(
    spec: &PartitionedGroup,
    events: Vec<EventEnvelope>,
    key: &KF,
    handler: &H,
) -> BatchOutcome
where
    K: Hash + Eq,
    KF: Fn(&EventEnvelope) -> Option<K>,
    H: Fn(EventEnvelope) -> F,
    F: Future<Output = Result<(), E>>,
    E: HandlerError,
{
    let group = spec.group.as_str();
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    let mut lanes: HashMap<K, Vec<EventEnvelope>> = HashMap::new();
    for event in events {
        if let Some(k) = key(&event) {
            lanes.entry(k).or_default().push(event);
        }
    }
    let failures = join_all(lanes.into_values().map(|lane| async move {
        for event in lane {
            let (position, event_id, event_type) =
                (event.position, event.event_id, event.event_type.clone());
            let Err(error) = handler(event).await else {
                continue;
            };
            let transient = error.is_transient();
            if !transient && spec.poison == Poison::Skip {
                tracing::error!(group, position, %event_id, %event_type, %error,
                    "handler failed; skipping the event");
                continue;
            }
            tracing::warn!(group, position, %event_id, %event_type, %error,
                "handler failed; the event will be delivered again");
            return Some(Failure {
                position,
                event_id,
                event_type,
                transient,
                reason: error.to_string(),
            });
        }
        None
    }))
    .await;
    let failure = failures.into_iter().flatten().min_by_key(|f| f.position);
    let acked = positions
        .iter()
        .copied()
        .take_while(|p| failure.as_ref().is_none_or(|f| *p < f.position))
        .last();
    BatchOutcome { acked, failure }
}
