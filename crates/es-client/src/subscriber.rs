//! A durable subscriber: a named consumer group that receives pushed events (long poll), runs an
//! async handler on each, and acknowledges only what the handler finished. A failed handler is
//! retried with backoff from the store's checkpoint, so the event comes again; after a restart
//! the store redelivers everything not acknowledged. Handlers must therefore be idempotent (see
//! [`crate::CommandContext::caused_by`]).

use std::future::Future;
use std::time::Duration;

use crate::client::{ClientError, EventStoreClient, LogFilter, RetryPolicy, SubscriptionSpec};
use es_core::EventEnvelope;

/// One consumer group's subscriber.
#[derive(Debug, Clone)]
pub struct Subscriber {
    client: EventStoreClient,
    group: String,
    spec: SubscriptionSpec,
    batch_size: usize,
    wait: Duration,
    handler_backoff: RetryPolicy,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events the store delivered.
    pub received: usize,
    /// Events the handler finished (and that were acknowledged).
    pub handled: usize,
    /// The position acknowledged, if any.
    pub acked: Option<u64>,
    /// The position of the event whose handler failed, if any: it was not acknowledged.
    pub failed: Option<u64>,
}

impl Subscriber {
    /// A subscriber for consumer group `group` that receives every event (narrow it with
    /// [`Self::event_types`] and [`Self::stream_prefix`]).
    pub fn new(client: EventStoreClient, group: &str) -> Result<Self, ClientError> {
        if es_core::StreamId::parse(group).is_err() {
            return Err(ClientError::InvalidGroup {
                name: group.to_owned(),
            });
        }
        Ok(Self {
            client,
            group: group.to_owned(),
            spec: SubscriptionSpec::default(),
            batch_size: 100,
            wait: Duration::from_secs(5),
            handler_backoff: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
            },
        })
    }

    /// Receive only events of these types.
    pub fn event_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.spec.filter.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Receive only events of streams whose id starts with `prefix` (such as `Account-`).
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.spec.filter.stream_prefix = Some(prefix.into());
        self
    }

    /// When the group is first created, start after this global position instead of the
    /// beginning of the log. An existing group keeps its checkpoint.
    pub fn start_after(mut self, position: u64) -> Self {
        self.spec.start_position = Some(position);
        self
    }

    /// How many events one poll asks for.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long one poll waits for events when there are none.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The wait after a failed handler before the event is fetched again (only the initial and
    /// maximum backoff are used: a subscriber keeps retrying until it is stopped).
    pub fn handler_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.handler_backoff.initial_backoff = initial;
        self.handler_backoff.max_backoff = max;
        self
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn filter(&self) -> &LogFilter {
        &self.spec.filter
    }

    /// Creates the consumer group in the store, or updates its filter.
    pub async fn register(&self) -> Result<(), ClientError> {
        let mut spec = self.spec.clone();
        if spec.start_position.is_some() && self.client.group_exists(&self.group).await? {
            // Setting a start position would move an existing group's checkpoint.
            spec.start_position = None;
        }
        self.client.subscribe(&self.group, &spec).await
    }

    /// Fetches one batch (waiting up to the poll wait), runs `handler` on each event in order,
    /// and acknowledges the events handled before the first failure.
    pub async fn poll_once<H, F, E>(&self, handler: &mut H) -> Result<BatchOutcome, ClientError>
    where
        H: FnMut(EventEnvelope) -> F,
        F: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let page = self
            .client
            .poll_group(&self.group, self.batch_size, self.wait)
            .await?;
        self.handle_batch(page.events, handler).await
    }

    /// Registers the group, then handles events until `shutdown` completes. A poll that is
    /// waiting is abandoned at shutdown; a batch being handled is finished and acknowledged
    /// first. Store outages are waited out; a refused request (a 4xx) ends the loop with it.
    pub async fn run<H, F, E>(
        self,
        mut handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ClientError>
    where
        H: FnMut(EventEnvelope) -> F,
        F: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        let mut registered = false;
        loop {
            let step = async {
                if !registered {
                    self.register().await?;
                    registered = true;
                }
                let page = self
                    .client
                    .poll_group(&self.group, self.batch_size, self.wait)
                    .await?;
                Ok::<_, ClientError>(page)
            };
            let fetched = tokio::select! {
                () = &mut shutdown => return Ok(()),
                fetched = step => fetched,
            };
            let pause = match fetched {
                Ok(page) => match self.handle_batch(page.events, &mut handler).await {
                    Ok(outcome) if outcome.failed.is_none() => None,
                    Ok(_) => Some(()),
                    Err(error) if is_outage(&error) => {
                        tracing::warn!(group = %self.group, %error, "could not acknowledge; retrying");
                        Some(())
                    }
                    Err(error) => return Err(error),
                },
                Err(error) if is_outage(&error) => {
                    tracing::warn!(group = %self.group, %error, "event store unavailable; retrying");
                    Some(())
                }
                Err(error) => return Err(error),
            };
            match pause {
                None => failures = 0,
                Some(()) => {
                    failures = failures.saturating_add(1);
                    let wait = self.handler_backoff.backoff(failures);
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn handle_batch<H, F, E>(
        &self,
        events: Vec<EventEnvelope>,
        handler: &mut H,
    ) -> Result<BatchOutcome, ClientError>
    where
        H: FnMut(EventEnvelope) -> F,
        F: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut outcome = BatchOutcome {
            received: events.len(),
            ..BatchOutcome::default()
        };
        let mut last_ok = None;
        for event in events {
            let position = event.position;
            let (event_id, event_type) = (event.event_id, event.event_type.clone());
            match handler(event).await {
                Ok(()) => {
                    outcome.handled += 1;
                    last_ok = Some(position);
                }
                Err(error) => {
                    tracing::warn!(
                        group = %self.group, position, %event_id, %event_type, %error,
                        "handler failed; the event will be delivered again"
                    );
                    outcome.failed = Some(position);
                    break;
                }
            }
        }
        if let Some(position) = last_ok {
            self.client.ack(&self.group, position).await?;
            outcome.acked = Some(position);
        }
        Ok(outcome)
    }
}

/// Whether an error is the store being away (worth waiting out) rather than a refusal.
fn is_outage(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Unreachable { .. } | ClientError::Unavailable { .. }
    )
}
