//! Loading and changing aggregates through the event store: load = latest snapshot plus the
//! events after it; execute = load, decide, append with the loaded version, and on a version
//! conflict catch up and decide again (bounded).
//!
//! With [`Repository::with_cache`], a command starts from the state this process last stored
//! instead of loading it. The append's expected version proves that state current; a conflict
//! catches up as usual. A refusal, or a decision to store nothing, is never trusted to a cached
//! state: it is decided again on a fresh load, because a state that missed an event written
//! elsewhere could refuse what the current one allows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use es_core::{
    derived_event_id, Aggregate, DomainEvent, EventEnvelope, ExpectedVersion, Metadata, NewEvent,
    Snapshotting, StreamId,
};

use crate::client::{ClientError, EventStoreClient, RetryPolicy, Snapshot, StreamQuery};

/// Loads and changes aggregates of type `A`.
#[derive(Debug, Clone)]
pub struct Repository<A: Aggregate> {
    client: EventStoreClient,
    snapshots: Option<SnapshotPolicy<A>>,
    cache: Option<Arc<StateCache<A>>>,
    conflict_retry: RetryPolicy,
    page_size: usize,
    _aggregate: PhantomData<fn() -> A>,
}

/// An aggregate as loaded: its state and the stream version the state includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    pub state: A,
    /// The stream version included in `state` (0 = the stream does not exist).
    pub version: u64,
    /// The version of the snapshot the load started from (0 = none).
    pub snapshot_version: u64,
}

/// The outcome of a command that was executed.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<A: Aggregate> {
    /// The stream version after the command: what a command response reports to its caller.
    pub version: u64,
    /// The events the command produced (empty when it decided nothing needs to happen).
    pub events: Vec<A::Event>,
    /// The state after the events.
    pub state: A,
    /// False when nothing new was stored: the command decided no events, or the store already
    /// had these event ids (an earlier run of the same trigger, or an earlier try whose answer
    /// was lost). `events` are then the ones the store had, or empty when it had only some.
    pub appended: bool,
    /// How many times the command was decided (1 + the version conflicts it caught up with).
    pub attempts: u32,
}

/// Why a command was not executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error + 'static> {
    /// The aggregate refused the command: a business rule, not a failure.
    #[error("command refused: {0}")]
    Refused(#[source] E),
    #[error("stream {stream} kept changing under the command; gave up after {attempts} attempts, try again later")]
    Contended { stream: StreamId, attempts: u32 },
    #[error(transparent)]
    Store(#[from] ClientError),
}

/// Where the events of a command come from, for metadata and event ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandContext {
    /// Copied onto every event the command produces.
    pub metadata: Metadata,
    /// When set, event ids derive from this trigger and purpose (idempotent handlers).
    pub derive_ids_from: Option<(Uuid, String)>,
}

impl<A: Aggregate> Repository<A> {
    /// A repository that loads by replaying every event of a stream.
    pub fn new(client: EventStoreClient) -> Self {
        Self {
            client,
            snapshots: None,
            cache: None,
            conflict_retry: RetryPolicy {
                max_attempts: 10,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(200),
            },
            page_size: 1000,
            _aggregate: PhantomData,
        }
    }

    /// Loads from the latest snapshot, and saves a new one once `every` events were appended
    /// since the last (checked after each command). `every` of 0 is taken as 1.
    pub fn with_snapshots(mut self, every: u64) -> Self
    where
        A: Snapshotting,
    {
        self.snapshots = Some(SnapshotPolicy {
            every: every.max(1),
            encode: encode_snapshot::<A>,
            decode: decode_snapshot::<A>,
        });
        self
    }

    /// Keeps the state and version of the `capacity` streams this repository changed last, and
    /// starts commands on them from that state rather than a load (see the module docs). Clones
    /// of the repository share the cache.
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = Some(Arc::new(StateCache::new(capacity.max(1))));
        self
    }

    /// How often a command is decided again after a version conflict, and the wait between.
    pub fn with_conflict_retry(mut self, retry: RetryPolicy) -> Self {
        self.conflict_retry = retry;
        self
    }

    /// How many events one read asks for.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    pub fn client(&self) -> &EventStoreClient {
        &self.client
    }

    /// The current state of a stream: its latest usable snapshot plus the events after it.
    pub async fn load(&self, stream: &StreamId) -> Result<Loaded<A>, ClientError> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            snapshot_version: 0,
        };
        if let Some(policy) = &self.snapshots {
            if let Some(snapshot) = self.client.snapshot(stream).await? {
                match (policy.decode)(snapshot.state) {
                    Ok(state) => {
                        loaded = Loaded {
                            state,
                            version: snapshot.version,
                            snapshot_version: snapshot.version,
                        }
                    }
                    Err(reason) => tracing::warn!(
                        %stream,
                        snapshot_version = snapshot.version,
                        %reason,
                        "ignoring an unusable snapshot; replaying the stream instead"
                    ),
                }
            }
        }
        self.catch_up(stream, &mut loaded, |_, _| {}).await?;
        Ok(loaded)
    }

    /// Runs `command` on the current state of `stream` and appends what it decides.
    pub async fn execute(
        &self,
        stream: &StreamId,
        command: A::Command,
    ) -> Result<Executed<A>, ExecuteError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with(stream, command, &CommandContext::default())
            .await
    }

    /// Like [`Self::execute`], with metadata and (for handlers) deterministic event ids.
    ///
    /// On a version conflict the state catches up with the events appended meanwhile and the
    /// command is decided again, up to the conflict retry policy. If the events caught up with
    /// include this command's own event ids (an earlier try whose answer was lost, or a
    /// redelivered trigger), the command counts as done.
    pub async fn execute_with(
        &self,
        stream: &StreamId,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>>
    where
        A::Command: Clone,
    {
        if let Some(cache) = &self.cache {
            if let Some(cached) = cache.get(stream) {
                match self
                    .execute_loaded(stream, cached, command.clone(), context)
                    .await
                {
                    Ok((executed, snapshot_version)) if executed.appended => {
                        cache.put(stream, &executed, snapshot_version);
                        return Ok(executed);
                    }
                    // Decided again below on the stream's current state.
                    Ok(_) | Err(ExecuteError::Refused(_)) => cache.remove(stream),
                    Err(error) => {
                        cache.remove(stream);
                        return Err(error);
                    }
                }
            }
        }
        let loaded = self.load(stream).await?;
        let (executed, snapshot_version) = self
            .execute_loaded(stream, loaded, command, context)
            .await?;
        if let Some(cache) = &self.cache {
            cache.put(stream, &executed, snapshot_version);
        }
        Ok(executed)
    }

    /// Decides `command` on a state the caller already holds (say, a cached one) and appends
    /// with its version; if the stream moved on, catches up and decides again.
    pub async fn execute_on(
        &self,
        stream: &StreamId,
        loaded: Loaded<A>,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_loaded(stream, loaded, command, context)
            .await
            .map(|(executed, _)| executed)
    }

    /// [`Self::execute_on`], also returning the version of the stream's latest snapshot.
    async fn execute_loaded(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<(Executed<A>, u64), ExecuteError<A::Error>>
    where
        A::Command: Clone,
    {
        let attempts = self.conflict_retry.max_attempts.max(1);
        let mut pending_ids: HashSet<Uuid> = HashSet::new();
        for attempt in 1..=attempts {
            let events = loaded
                .state
                .handle(command.clone())
                .map_err(ExecuteError::Refused)?;
            if events.is_empty() {
                let executed = Executed {
                    version: loaded.version,
                    events,
                    state: loaded.state,
                    appended: false,
                    attempts: attempt,
                };
                return Ok((executed, loaded.snapshot_version));
            }
            let new_events = self.encode(stream, &events, context)?;
            pending_ids.extend(new_events.iter().map(|event| event.event_id));
            let expected = ExpectedVersion::Exact(loaded.version);
            match self.client.append(stream, expected, &new_events).await {
                Ok(result) => {
                    // Stored right after the loaded version: the events follow the loaded
                    // state. Any other version means the store already had these event ids
                    // (it answers with their original version), and `loaded.state` stands.
                    let appended = result.version == loaded.version + events.len() as u64;
                    let state = if appended {
                        events.iter().fold(loaded.state, A::apply)
                    } else {
                        loaded.state
                    };
                    let executed = Executed {
                        version: if appended {
                            result.version
                        } else {
                            loaded.version
                        },
                        events,
                        state,
                        appended,
                        attempts: attempt,
                    };
                    let snapshot_version = if appended {
                        self.maybe_snapshot(stream, &executed, loaded.snapshot_version)
                            .await
                    } else {
                        loaded.snapshot_version
                    };
                    return Ok((executed, snapshot_version));
                }
                Err(ClientError::Refused { code, .. }) if code == PARTIAL_DUPLICATE => {
                    // Some of these ids are stored: an earlier run of the same trigger decided
                    // differently. That run's events stand; this one stores nothing.
                    let executed = Executed {
                        version: loaded.version,
                        events: Vec::new(),
                        state: loaded.state,
                        appended: false,
                        attempts: attempt,
                    };
                    return Ok((executed, loaded.snapshot_version));
                }
                Err(ClientError::WrongExpectedVersion { .. }) => {
                    tracing::debug!(%stream, attempt, loaded = loaded.version, "version conflict, deciding again");
                    let mut ours = Vec::new();
                    self.catch_up(stream, &mut loaded, |envelope, event| {
                        if pending_ids.contains(&envelope.event_id) {
                            ours.push(event.clone());
                        }
                    })
                    .await?;
                    if !ours.is_empty() {
                        // An earlier try of this command, or an earlier run of the same trigger,
                        // is stored already.
                        let executed = Executed {
                            version: loaded.version,
                            events: ours,
                            state: loaded.state,
                            appended: false,
                            attempts: attempt,
                        };
                        return Ok((executed, loaded.snapshot_version));
                    }
                    if attempt < attempts {
                        tokio::time::sleep(self.conflict_retry.backoff(attempt)).await;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ExecuteError::Contended {
            stream: stream.clone(),
            attempts,
        })
    }

    /// Applies the events after `loaded.version`, page by page, showing each to `seen`
    /// (its envelope without `data`, and the decoded event).
    async fn catch_up(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
        mut seen: impl FnMut(&EventEnvelope, &A::Event),
    ) -> Result<(), ClientError> {
        loop {
            let query = StreamQuery::from(loaded.version + 1, self.page_size);
            let page = self.client.read_stream(stream, &query).await?;
            let mut state = std::mem::take(&mut loaded.state);
            let mut last = loaded.version;
            for mut envelope in page.events {
                if envelope.version <= last {
                    continue;
                }
                // `data` is moved out rather than cloned: `seen` only looks at ids and versions.
                let data = std::mem::take(&mut envelope.data);
                let event = A::Event::decode(&envelope.event_type, envelope.schema_version, data)
                    .map_err(|source| ClientError::Decode {
                    stream: stream.clone(),
                    version: envelope.version,
                    source,
                })?;
                seen(&envelope, &event);
                state = state.apply(&event);
                last = envelope.version;
            }
            let progressed = last > loaded.version;
            loaded.state = state;
            loaded.version = last;
            if !progressed || last >= page.version {
                return Ok(());
            }
        }
    }

    fn encode(
        &self,
        stream: &StreamId,
        events: &[A::Event],
        context: &CommandContext,
    ) -> Result<Vec<NewEvent>, ClientError> {
        events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let event_id = match &context.derive_ids_from {
                    Some((trigger, purpose)) if index == 0 => derived_event_id(*trigger, purpose),
                    Some((trigger, purpose)) => {
                        derived_event_id(*trigger, &format!("{purpose}#{index}"))
                    }
                    None => Uuid::new_v4(),
                };
                NewEvent::with_id(event_id, event, context.metadata.clone()).map_err(|source| {
                    ClientError::Encode {
                        stream: stream.clone(),
                        source,
                    }
                })
            })
            .collect()
    }

    /// Saves a snapshot when `every` events were appended since the last one (at `since`), and
    /// returns the version of the latest snapshot. A failure is only logged: the events are
    /// stored, and the next command tries again.
    async fn maybe_snapshot(&self, stream: &StreamId, executed: &Executed<A>, since: u64) -> u64 {
        let Some(policy) = &self.snapshots else {
            return since;
        };
        if executed.version.saturating_sub(since) < policy.every {
            return since;
        }
        let state = match (policy.encode)(&executed.state) {
            Ok(state) => state,
            Err(source) => {
                let error = ClientError::Snapshot {
                    stream: stream.clone(),
                    source,
                };
                tracing::warn!(%error, "not saving a snapshot");
                return since;
            }
        };
        let snapshot = Snapshot {
            version: executed.version,
            state,
        };
        match self.client.save_snapshot(stream, &snapshot).await {
            Ok(()) => executed.version,
            Err(error) => {
                tracing::warn!(%stream, %error, "could not save a snapshot; the next command tries again");
                since
            }
        }
    }
}

impl CommandContext {
    /// A command that starts a new flow (fresh correlation id, random event ids).
    pub fn new_flow() -> Self {
        Self {
            metadata: Metadata::new_flow(),
            derive_ids_from: None,
        }
    }

    /// A command issued while handling `trigger`: correlation carried through, causation =
    /// the trigger's id, and event ids derived from the trigger's id and `purpose`, so running
    /// the handler twice for one trigger stores its events once.
    pub fn caused_by(trigger: &EventEnvelope, purpose: &str) -> Self {
        Self {
            metadata: Metadata::caused_by(trigger),
            derive_ids_from: Some((trigger.event_id, purpose.to_owned())),
        }
    }
}

/// The states of the streams a repository changed last, evicted oldest first.
#[derive(Debug)]
struct StateCache<A> {
    capacity: usize,
    entries: Mutex<CacheEntries<A>>,
}

#[derive(Debug)]
struct CacheEntries<A> {
    states: HashMap<StreamId, Loaded<A>>,
    /// Insertion order, for eviction; may name streams removed since.
    order: VecDeque<StreamId>,
}

impl<A: Aggregate> StateCache<A> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(CacheEntries {
                states: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries<A>> {
        // A panic while holding the lock leaves plain data behind; it is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, stream: &StreamId) -> Option<Loaded<A>> {
        self.lock().states.get(stream).cloned()
    }

    fn remove(&self, stream: &StreamId) {
        self.lock().states.remove(stream);
    }

    /// Keeps the state after `executed`, unless a newer one is kept already.
    fn put(&self, stream: &StreamId, executed: &Executed<A>, snapshot_version: u64) {
        let mut entries = self.lock();
        if let Some(kept) = entries.states.get_mut(stream) {
            if kept.version <= executed.version {
                *kept = Loaded {
                    state: executed.state.clone(),
                    version: executed.version,
                    snapshot_version,
                };
            }
            return;
        }
        while entries.states.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.states.remove(&oldest);
        }
        if entries.order.len() >= self.capacity * 2 {
            // Drop the names of streams removed since they were inserted.
            let CacheEntries { states, order } = &mut *entries;
            order.retain(|s| states.contains_key(s));
        }
        entries.order.push_back(stream.clone());
        entries.states.insert(
            stream.clone(),
            Loaded {
                state: executed.state.clone(),
                version: executed.version,
                snapshot_version,
            },
        );
    }
}

/// The store's error code for a batch some (not all) of whose event ids are stored already.
const PARTIAL_DUPLICATE: &str = "partial_duplicate_batch";

/// How snapshots are written and read; the functions carry the serde bound so the rest of the
/// repository does not need it.
#[derive(Debug)]
struct SnapshotPolicy<A> {
    every: u64,
    encode: fn(&A) -> Result<Value, serde_json::Error>,
    decode: fn(Value) -> Result<A, String>,
}

impl<A> Clone for SnapshotPolicy<A> {
    fn clone(&self) -> Self {
        Self {
            every: self.every,
            encode: self.encode,
            decode: self.decode,
        }
    }
}

/// The stored form of a snapshot's state: the aggregate type and snapshot version guard
/// against reading a state written by other code.
#[derive(Serialize, Deserialize)]
struct SnapshotState<T> {
    aggregate_type: String,
    snapshot_version: u32,
    state: T,
}

fn encode_snapshot<A: Snapshotting>(state: &A) -> Result<Value, serde_json::Error> {
    serde_json::to_value(SnapshotState {
        aggregate_type: A::TYPE.to_owned(),
        snapshot_version: A::SNAPSHOT_VERSION,
        state,
    })
}

fn decode_snapshot<A: Snapshotting>(value: Value) -> Result<A, String> {
    let stored: SnapshotState<Value> =
        serde_json::from_value(value).map_err(|error| error.to_string())?;
    if stored.aggregate_type != A::TYPE {
        return Err(format!(
            "it holds a {} state, not {}",
            stored.aggregate_type,
            A::TYPE
        ));
    }
    if stored.snapshot_version != A::SNAPSHOT_VERSION {
        return Err(format!(
            "it has snapshot version {}, the code reads {}",
            stored.snapshot_version,
            A::SNAPSHOT_VERSION
        ));
    }
    serde_json::from_value(stored.state).map_err(|error| error.to_string())
}
