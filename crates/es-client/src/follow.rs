//! The one way to follow the event store's log. A [`Follower`] reads pages of events after a
//! cursor from a [`Source`] (the global log, optionally filtered: [`Log`]; or a consumer group:
//! [`Group`]), waits out store outages with [`Backoff`] (exponential, capped, reset by a
//! success), and gives up only on a refusal (a 4xx) that retrying cannot help, or when the
//! caller's stop signal completes.
//!
//! The caller owns its checkpoint (a view's transaction, an index commit, an archive manifest, a
//! group's acknowledgement) and drives the follower page by page, with a wait of its own choosing
//! per read, so it can commit on a timer between pages. What a consumer does with an event it
//! can never handle is its [`Poison`] policy, chosen per consumer.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{ClientError, EventStoreClient, LogFilter, LogPage, SubscriptionSpec};
use crate::repository::ExecuteError;
use es_core::EventEnvelope;

/// What a consumer does with a poison event: one its handler fails on every time (it does not
/// decode, or its reaction is refused for good). Each consumer chooses one and says why
/// (ARCHITECTURE.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// Log the event, count it in a metric and go on without it. For read models: one bad event
    /// must not freeze the whole view.
    Skip,
    /// Try the event again with backoff, then, after `attempts` failures in a row that were not
    /// outages, stop the follower with an error, so the worker stops and `/health` answers 503.
    /// For sagas: a reaction left out would lose a money movement.
    RetryThenStop { attempts: u32 },
    /// Stop the follower with an error at once. For a copy that must hold every event.
    Stop,
}

/// What to do after a failure of one event, as a [`Poison`] policy decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Skip,
    Retry,
    Stop,
}

/// A handler failure: either transient (the store or a peer is away; retried for as long as it
/// lasts) or not (it counts towards the consumer's [`Poison`] policy).
pub trait HandlerError: Display {
    /// Whether the failure may pass by itself.
    fn is_transient(&self) -> bool {
        false
    }
}

/// Exponential backoff, capped, reset by a success. A follower keeps one for its reads; a
/// consumer keeps one of its own for its handler or commit failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

/// A log a [`Follower`] reads.
pub trait Source: Send {
    type Event: Send;
    type Error: Display + Send;

    /// Up to `limit` events after position `after`, waiting at most `wait` when there are none.
    fn read(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Page<Self::Event>, Self::Error>> + Send;

    /// An event's global position.
    fn position(event: &Self::Event) -> u64;

    /// Whether an error is a refusal (a 4xx) that retrying cannot help; anything else is an
    /// outage, waited out.
    fn is_refusal(error: &Self::Error) -> bool;
}

/// One page read from a [`Source`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page<E> {
    pub events: Vec<E>,
    /// The newest position in the store when the page was read, when the store says.
    pub head: Option<u64>,
}

/// The global log after the follower's cursor, optionally filtered.
#[derive(Debug, Clone)]
pub struct Log {
    client: EventStoreClient,
    filter: LogFilter,
}

/// A consumer group: the store keeps its cursor (the group's checkpoint, moved by
/// [`Group::ack`]), so unacknowledged events come again. It is created (or its filter updated)
/// by the first read; the spec's start position applies only when the group is created.
#[derive(Debug, Clone)]
pub struct Group {
    client: EventStoreClient,
    name: String,
    spec: SubscriptionSpec,
    registered: bool,
}

/// Reads a [`Source`] page by page after a cursor. Cursor moves: past each page it returns, or
/// with [`Follower::advance`].
pub struct Follower<S: Source> {
    source: S,
    cursor: u64,
    limit: usize,
    wait: Duration,
    backoff: Backoff,
    /// After an outage: when the next read may go out.
    retry_at: Option<Instant>,
    outages: u32,
    on_outage: Option<OutageHook<S::Error>>,
}

type OutageHook<E> = Box<dyn FnMut(&E) + Send>;

impl Poison {
    /// The decision after the `failures`-th failure in a row of one event (counting from 1).
    pub fn verdict(self, failures: u32) -> Verdict {
        match self {
            Self::Skip => Verdict::Skip,
            Self::Stop => Verdict::Stop,
            Self::RetryThenStop { attempts } if failures < attempts => Verdict::Retry,
            Self::RetryThenStop { .. } => Verdict::Stop,
        }
    }
}

impl Backoff {
    /// Waits start at `initial` and double up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The next wait; the one after it is twice as long, up to the cap.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// After a success: the next wait is the initial one again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Sleeps the next wait unless `stop` completes first; returns whether it did.
    pub async fn pause<F: Future<Output = ()>>(&mut self, stop: &mut Pin<&mut F>) -> bool {
        let wait = self.next_wait();
        tokio::select! {
            () = stop.as_mut() => true,
            () = tokio::time::sleep(wait) => false,
        }
    }
}

impl Default for Backoff {
    /// 100 ms, doubling up to 5 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Log {
    pub fn new(client: EventStoreClient, filter: LogFilter) -> Self {
        Self { client, filter }
    }
}

impl Group {
    /// Group `name` over the events `spec` selects.
    pub fn new(
        client: EventStoreClient,
        name: &str,
        spec: SubscriptionSpec,
    ) -> Result<Self, ClientError> {
        if !event_store_api::is_valid_name(name) {
            return Err(ClientError::InvalidGroup {
                name: name.to_owned(),
            });
        }
        Ok(Self {
            client,
            name: name.to_owned(),
            spec,
            registered: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the group's checkpoint: every event up to `position` is handled.
    pub async fn ack(&self, position: u64) -> Result<(), ClientError> {
        self.client.ack(&self.name, position).await
    }
}

impl<S: Source> Follower<S> {
    /// Follows `source` after position `after`: 1000 events per read, waiting up to 5 s.
    pub fn new(source: S, after: u64) -> Self {
        Self {
            source,
            cursor: after,
            limit: 1000,
            wait: Duration::from_secs(5),
            backoff: Backoff::default(),
            retry_at: None,
            outages: 0,
            on_outage: None,
        }
    }

    /// Most events per read.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// The longest wait of a read when there are no events ([`Self::next_page`]).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The backoff between reads while the store is away.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Called on every outage (for metrics); the outage is logged anyway.
    pub fn on_outage(mut self, hook: impl FnMut(&S::Error) + Send + 'static) -> Self {
        self.on_outage = Some(Box::new(hook));
        self
    }

    /// The position read up to.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Moves the cursor forward to `position` (such as a filtered log's head when nothing after
    /// the cursor matched); never back.
    pub fn advance(&mut self, position: u64) {
        self.cursor = self.cursor.max(position);
    }

    /// Moves the cursor to `position`, back too: to read again what a failed commit did not keep.
    pub fn seek(&mut self, position: u64) {
        self.cursor = position;
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The next page after the cursor, waiting up to the follower's wait when there is none.
    /// See [`Self::next_page_within`].
    pub async fn next_page<F: Future<Output = ()>>(
        &mut self,
        stop: &mut Pin<&mut F>,
    ) -> Result<Option<Page<S::Event>>, S::Error> {
        let wait = self.wait;
        self.next_page_within(wait, stop).await
    }

    /// The next page after the cursor, within `wait`: when no event comes in that time the page
    /// is empty, and so it is (without a head) when the store is away all that time, so a caller
    /// can commit on a timer. Outages are logged and retried with backoff, across calls. Returns
    /// `Ok(None)` once `stop` completes (a read in flight is abandoned) and the error of a
    /// refusal. The cursor moves past the page's last event.
    pub async fn next_page_within<F: Future<Output = ()>>(
        &mut self,
        wait: Duration,
        stop: &mut Pin<&mut F>,
    ) -> Result<Option<Page<S::Event>>, S::Error> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(retry_at) = self.retry_at {
                tokio::select! {
                    () = stop.as_mut() => return Ok(None),
                    () = tokio::time::sleep_until(retry_at.min(deadline)) => {}
                }
                if Instant::now() < retry_at {
                    return Ok(Some(Page::empty()));
                }
                self.retry_at = None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let read = self.source.read(self.cursor, self.limit, left);
            let read = tokio::select! {
                () = stop.as_mut() => return Ok(None),
                read = read => read,
            };
            match read {
                Ok(page) => {
                    self.backoff.reset();
                    self.outages = 0;
                    if let Some(last) = page.events.last() {
                        self.advance(S::position(last));
                    }
                    return Ok(Some(page));
                }
                Err(error) if S::is_refusal(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "could not read the event store's log; retrying");
                    self.outages += 1;
                    if let Some(hook) = &mut self.on_outage {
                        hook(&error);
                    }
                    self.retry_at = Some(Instant::now() + self.backoff.next_wait());
                }
            }
        }
    }

    /// Reads that failed in a row because the store was away (0 after a successful read).
    pub fn outages(&self) -> u32 {
        self.outages
    }
}

impl Source for Log {
    type Event = EventEnvelope;
    type Error = ClientError;

    async fn read(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page<EventEnvelope>, ClientError> {
        let page = self
            .client
            .read_all_filtered(after, limit, wait, &self.filter)
            .await?;
        Ok(page.into())
    }

    fn position(event: &EventEnvelope) -> u64 {
        event.position
    }

    fn is_refusal(error: &ClientError) -> bool {
        is_refusal(error)
    }
}

impl Source for Group {
    type Event = EventEnvelope;
    type Error = ClientError;

    /// The group's events after its checkpoint; `after` is not used (the store keeps the cursor).
    async fn read(
        &mut self,
        _after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Page<EventEnvelope>, ClientError> {
        if !self.registered {
            let mut spec = self.spec.clone();
            if spec.start_position.is_some() && self.client.group_exists(&self.name).await? {
                // A start position would move an existing group's checkpoint.
                spec.start_position = None;
            }
            self.client.subscribe(&self.name, &spec).await?;
            self.registered = true;
        }
        let page = self.client.poll_group(&self.name, limit, wait).await?;
        Ok(page.into())
    }

    fn position(event: &EventEnvelope) -> u64 {
        event.position
    }

    fn is_refusal(error: &ClientError) -> bool {
        is_refusal(error)
    }
}

impl<E> Page<E> {
    /// No events, and no head.
    pub fn empty() -> Self {
        Self {
            events: Vec::new(),
            head: None,
        }
    }
}

impl From<LogPage> for Page<EventEnvelope> {
    fn from(page: LogPage) -> Self {
        Self {
            events: page.events,
            head: page.head,
        }
    }
}

impl<E: std::error::Error + 'static> HandlerError for ExecuteError<E> {
    /// The store being away, or a stream too busy to take the command: both pass.
    fn is_transient(&self) -> bool {
        match self {
            Self::Refused(_) => false,
            Self::Contended { .. } => true,
            Self::Store(error) => !is_refusal(error),
        }
    }
}

impl HandlerError for String {}

impl HandlerError for &str {}

/// A 4xx from the store, or a request that cannot be made: retrying cannot help. The store
/// being away (no connection, 5xx or 429 after the client's retries, an answer cut short) is not.
pub fn is_refusal(error: &ClientError) -> bool {
    !matches!(
        error,
        ClientError::Unreachable { .. }
            | ClientError::Unavailable { .. }
            | ClientError::BadResponse { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_a_reset_starts_again() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(500));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_wait()).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), ms(100));
    }

    #[test]
    fn each_poison_policy_decides_after_a_failure() {
        let retry = Poison::RetryThenStop { attempts: 3 };
        let check = |policy: Poison, failures, expected| {
            assert_eq!(
                policy.verdict(failures),
                expected,
                "{policy:?} after {failures}"
            );
        };
        check(Poison::Skip, 1, Verdict::Skip);
        check(Poison::Stop, 1, Verdict::Stop);
        check(retry, 1, Verdict::Retry);
        check(retry, 2, Verdict::Retry);
        check(retry, 3, Verdict::Stop);
    }
}
