//! A durable consumer-group loop that handles each batch in parallel across aggregates: events
//! with the same key (the aggregate they change) run in log order, different keys run at once.
//! The group is acknowledged up to the last event before the first failure, so a failed event and
//! everything after it come again; handlers must be idempotent (derived event ids).
//!
//! The saga handlers of the accounts and transfers services use it: one event at a time caps a saga at one
//! store round trip chain per event, which is far below the fleet's target throughput.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use es_core::EventEnvelope;

use crate::{ClientError, EventStoreClient, LogFilter, SubscriptionSpec};
use futures::future::join_all;

/// What a partitioned subscriber reads and how.
#[derive(Debug, Clone)]
pub struct PartitionedGroup {
    pub group: String,
    pub event_types: Vec<String>,
    pub batch_size: usize,
    pub wait: Duration,
}

/// Handles events until `stop` completes. `key` names the aggregate an event will change (None:
/// nothing to do, acknowledged at once). Store outages and handler failures are retried with
/// backoff from the group's checkpoint.
pub async fn run<K, KF, H, F, E>(
    client: EventStoreClient,
    spec: PartitionedGroup,
    key: KF,
    handler: H,
    stop: impl Future<Output = ()>,
) -> Result<(), ClientError>
where
    K: Hash + Eq,
    KF: Fn(&EventEnvelope) -> Option<K>,
    H: Fn(EventEnvelope) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(stop);
    let subscription = SubscriptionSpec {
        filter: LogFilter {
            event_types: Some(spec.event_types.clone()),
            stream_prefix: None,
        },
        ..SubscriptionSpec::default()
    };
    let mut registered = false;
    let mut backoff = Duration::from_millis(50);
    loop {
        let fetched = async {
            if !registered {
                client.subscribe(&spec.group, &subscription).await?;
                registered = true;
            }
            client
                .poll_group(&spec.group, spec.batch_size, spec.wait)
                .await
        };
        let page = tokio::select! {
            () = &mut stop => return Ok(()),
            page = fetched => page,
        };
        let ok = match page {
            Ok(page) if page.events.is_empty() => true,
            Ok(page) => match handle_batch(&client, &spec.group, page.events, &key, &handler).await
            {
                Ok(all_ok) => all_ok,
                Err(error) if is_refusal(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(group = %spec.group, %error, "could not acknowledge; retrying");
                    false
                }
            },
            Err(error) if is_refusal(&error) => return Err(error),
            Err(error) => {
                tracing::warn!(group = %spec.group, %error, "event store unavailable; retrying");
                false
            }
        };
        if ok {
            backoff = Duration::from_millis(50);
        } else {
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Runs one batch; returns whether every event succeeded. Acknowledges the longest prefix (in log
/// order) of events that succeeded.
async fn handle_batch<K, KF, H, F, E>(
    client: &EventStoreClient,
    group: &str,
    events: Vec<EventEnvelope>,
    key: &KF,
    handler: &H,
) -> Result<bool, ClientError>
where
    K: Hash + Eq,
    KF: Fn(&EventEnvelope) -> Option<K>,
    H: Fn(EventEnvelope) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    let mut lanes: HashMap<K, Vec<EventEnvelope>> = HashMap::new();
    for event in events {
        if let Some(k) = key(&event) {
            lanes.entry(k).or_default().push(event);
        }
    }
    // Each lane runs in order and stops at its first failure; it reports that position.
    let failures = join_all(lanes.into_values().map(|lane| async move {
        for event in lane {
            let (position, event_id, event_type) =
                (event.position, event.event_id, event.event_type.clone());
            if let Err(error) = handler(event).await {
                tracing::warn!(group, position, %event_id, %event_type, %error,
                    "handler failed; the event will be delivered again");
                return Some(position);
            }
        }
        None
    }))
    .await;
    let first_failure = failures.into_iter().flatten().min();
    let acked = positions
        .iter()
        .copied()
        .take_while(|p| first_failure.is_none_or(|f| *p < f))
        .last();
    if let Some(position) = acked {
        client.ack(group, position).await?;
    }
    Ok(first_failure.is_none())
}

/// A 4xx from the store: retrying the same request cannot help.
fn is_refusal(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Refused { .. } | ClientError::InvalidGroup { .. }
    )
}
