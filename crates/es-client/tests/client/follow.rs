//! `follow`: a follower reads pages after its cursor from the global log or a consumer group,
//! and `partitioned::run` applies the group's poison policy to a handler that keeps failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_client::follow::{Follower, Group, Log};
use es_client::partitioned::{self, PartitionedGroup};
use es_client::{ClientError, ExecuteError, LogFilter, Poison, SubscriptionSpec};
use es_core::{EventEnvelope, StreamId};
use uuid::Uuid;

use crate::support::{write_events, TestStore, WalletError};

fn group() -> String {
    format!("test-{}", Uuid::new_v4())
}

fn every_event() -> SubscriptionSpec {
    SubscriptionSpec::default()
}

/// A stop signal that never comes.
fn never() -> std::future::Pending<()> {
    std::future::pending()
}

async fn checkpoint(store: &TestStore, group: &str) -> u64 {
    // The next poll starts after the checkpoint.
    let page = store
        .client
        .poll_group(group, 1, Duration::ZERO)
        .await
        .expect("poll");
    page.events
        .first()
        .map_or(u64::MAX, |event| event.position - 1)
}

fn versions(events: &[EventEnvelope]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

#[tokio::test]
async fn a_log_follower_reads_pages_after_its_cursor_and_moves_it() {
    let store = TestStore::spawn().await;
    let stream = write_events(&store, 2).await;
    write_events(&store, 1).await;
    let filter = LogFilter {
        event_types: None,
        stream_prefix: Some(stream.as_str().to_owned()),
    };
    let mut follower = Follower::new(Log::new(store.client.clone(), filter), 0)
        .limit(2)
        .wait(Duration::from_millis(50));
    let stop = never();
    tokio::pin!(stop);

    let first = follower
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("a page");
    assert_eq!(versions(&first.events), [1, 2]);
    assert_eq!(follower.cursor(), first.events[1].position);
    assert_eq!(first.head, Some(5), "the head of the whole log");
    let second = follower
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("a page");
    assert_eq!(versions(&second.events), [3]);
    let empty = follower
        .next_page_within(Duration::ZERO, &mut stop)
        .await
        .expect("read")
        .expect("a page");
    assert!(empty.events.is_empty(), "only the other stream is left");
    follower.advance(2);
    assert_eq!(follower.cursor(), 3, "the cursor never moves back");
}

#[tokio::test]
async fn a_stop_ends_a_waiting_read() {
    let store = TestStore::spawn().await;
    let mut follower = Follower::new(Log::new(store.client.clone(), LogFilter::default()), 0)
        .wait(Duration::from_secs(30));
    let stop = tokio::time::sleep(Duration::from_millis(100));
    tokio::pin!(stop);
    let read = tokio::time::timeout(Duration::from_secs(5), follower.next_page(&mut stop))
        .await
        .expect("the stop ends the wait");
    assert!(matches!(read, Ok(None)), "{read:?}");
}

#[tokio::test]
async fn an_outage_is_retried_counted_and_still_ends_a_read_on_time() {
    // Nothing listens on port 1: every read is an outage.
    let client = es_client::EventStoreClient::new("http://127.0.0.1:1")
        .expect("client")
        .with_retry(es_client::RetryPolicy::NONE);
    let hooked = Arc::new(Mutex::new(0u32));
    let mut follower = Follower::new(Log::new(client, LogFilter::default()), 7)
        .backoff(es_client::Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(40),
        ))
        .on_outage({
            let hooked = Arc::clone(&hooked);
            move |error| {
                assert!(matches!(error, ClientError::Unreachable { .. }), "{error}");
                *hooked.lock().expect("lock") += 1;
            }
        });
    let stop = never();
    tokio::pin!(stop);
    let read = follower.next_page_within(Duration::from_millis(300), &mut stop);
    let page = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the read ends within its wait")
        .expect("an outage is not an error")
        .expect("not stopped");
    assert_eq!(page, es_client::follow::Page::empty());
    let outages = follower.outages();
    assert!(outages >= 3, "retried with backoff: {outages}");
    assert_eq!(*hooked.lock().expect("lock"), outages);
    assert_eq!(follower.cursor(), 7);
}

#[tokio::test]
async fn a_refusal_ends_the_follower_with_its_error() {
    let store = TestStore::spawn().await;
    let filter = LogFilter {
        event_types: Some((0..101).map(|i| format!("T{i}")).collect()),
        stream_prefix: None,
    };
    let mut follower = Follower::new(Log::new(store.client.clone(), filter), 0);
    let stop = never();
    tokio::pin!(stop);
    let read = tokio::time::timeout(Duration::from_secs(5), follower.next_page(&mut stop))
        .await
        .expect("a refusal is not retried");
    assert!(matches!(read, Err(ClientError::Refused { .. })), "{read:?}");
}

#[tokio::test]
async fn unacked_events_are_redelivered_to_a_recreated_group_follower() {
    let store = TestStore::spawn().await;
    write_events(&store, 4).await;
    let name = group();
    let stop = never();
    tokio::pin!(stop);
    {
        let group = Group::new(store.client.clone(), &name, every_event()).expect("group");
        let mut first = Follower::new(group, 0).limit(2);
        let page = first
            .next_page(&mut stop)
            .await
            .expect("read")
            .expect("page");
        assert_eq!(versions(&page.events), [1, 2]);
        first
            .source()
            .ack(page.events[1].position)
            .await
            .expect("ack");
        // Then the process "dies" having read the next events but before acknowledging them.
        let page = first
            .next_page(&mut stop)
            .await
            .expect("read")
            .expect("page");
        assert_eq!(versions(&page.events), [3, 4]);
    }
    let group = Group::new(store.client.clone(), &name, every_event()).expect("group");
    let mut second = Follower::new(group, 0).limit(10);
    let page = second
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("page");
    assert_eq!(
        versions(&page.events),
        [3, 4, 5],
        "registering again keeps the checkpoint"
    );
}

#[tokio::test]
async fn a_start_position_applies_only_when_the_group_is_created() {
    let store = TestStore::spawn().await;
    write_events(&store, 3).await;
    let name = group();
    let stop = never();
    tokio::pin!(stop);
    let starting_at = |start| {
        let spec = SubscriptionSpec {
            start_position: Some(start),
            ..SubscriptionSpec::default()
        };
        let group = Group::new(store.client.clone(), &name, spec).expect("group");
        Follower::new(group, 0).wait(Duration::from_millis(50))
    };
    let mut first = starting_at(2);
    let page = first
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("page");
    assert_eq!(versions(&page.events), [3, 4]);
    first
        .source()
        .ack(page.events[1].position)
        .await
        .expect("ack");
    let page = starting_at(0)
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("page");
    assert!(
        page.events.is_empty(),
        "an existing group keeps its checkpoint"
    );
    assert_eq!(checkpoint(&store, &name).await, u64::MAX, "nothing left");
}

#[tokio::test]
async fn filters_narrow_what_the_group_receives() {
    let store = TestStore::spawn().await;
    let stream = write_events(&store, 2).await;
    write_events(&store, 1).await;
    let spec = SubscriptionSpec {
        event_types: Some(vec!["Deposited".into()]),
        stream_prefix: Some(stream.as_str().to_owned()),
        start_position: None,
    };
    let group = Group::new(store.client.clone(), &group(), spec).expect("group");
    let mut follower = Follower::new(group, 0).wait(Duration::from_millis(50));
    let stop = never();
    tokio::pin!(stop);
    let page = follower
        .next_page(&mut stop)
        .await
        .expect("read")
        .expect("page");
    let seen: Vec<_> = page
        .events
        .iter()
        .map(|e| (e.stream_id.clone(), e.event_type.as_str()))
        .collect();
    assert_eq!(seen, vec![(stream.clone(), "Deposited"); 2]);
}

#[test]
fn an_invalid_group_name_is_refused_up_front() {
    let client = es_client::EventStoreClient::new("http://127.0.0.1:1").expect("client");
    let group = Group::new(client, "not a group", every_event());
    assert!(matches!(group, Err(ClientError::InvalidGroup { .. })));
}

/// Runs `partitioned::run` over one lane with `handler` until it returns or `stop` fires.
async fn run_group<H, F, E>(
    store: &TestStore,
    group: &str,
    poison: Poison,
    handler: H,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), partitioned::Error>
where
    H: Fn(EventEnvelope) -> F,
    F: std::future::Future<Output = Result<(), E>>,
    E: es_client::follow::HandlerError,
{
    let spec = PartitionedGroup {
        group: group.to_owned(),
        event_types: vec!["Opened".into(), "Deposited".into()],
        batch_size: 100,
        wait: Duration::from_millis(100),
        poison,
    };
    let run = partitioned::run(store.client.clone(), spec, |_| Some(()), handler, stop);
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the loop ends")
}

#[tokio::test]
async fn a_failing_handler_is_retried_with_backoff_until_it_succeeds_then_a_stop_ends_the_loop() {
    let store = TestStore::spawn().await;
    write_events(&store, 1).await;
    let group = group();
    let attempts: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
    let done = Mutex::new(Some(done));
    let handler = |event: EventEnvelope| {
        let tries = {
            let mut attempts = attempts.lock().expect("lock");
            attempts.push(event.version);
            attempts.iter().filter(|v| **v == 2).count()
        };
        let signal = (event.version == 2 && tries == 3)
            .then(|| done.lock().expect("lock").take())
            .flatten();
        async move {
            if event.version == 2 && tries < 3 {
                return Err(format!("try {tries} fails"));
            }
            if let Some(signal) = signal {
                let _ = signal.send(());
            }
            Ok(())
        }
    };
    let stop = async move {
        let _ = done_rx.await;
    };
    run_group(
        &store,
        &group,
        Poison::RetryThenStop { attempts: 3 },
        handler,
        stop,
    )
    .await
    .expect("the loop ends cleanly");
    assert_eq!(*attempts.lock().expect("lock"), vec![1, 2, 2, 2]);
    assert_eq!(
        checkpoint(&store, &group).await,
        u64::MAX,
        "everything handled was acked"
    );
}

#[tokio::test]
async fn a_poison_event_stops_the_loop_after_its_attempts_with_the_events_before_it_acked() {
    let store = TestStore::spawn().await;
    write_events(&store, 2).await;
    let group = group();
    let tries = Mutex::new(0u32);
    let handler = |event: EventEnvelope| {
        let fail = event.version == 2;
        if fail {
            *tries.lock().expect("lock") += 1;
        }
        async move {
            if fail {
                Err("never decodes")
            } else {
                Ok(())
            }
        }
    };
    let stopped = run_group(
        &store,
        &group,
        Poison::RetryThenStop { attempts: 2 },
        handler,
        never(),
    )
    .await
    .expect_err("a poison event stops the loop");
    let partitioned::Error::Poison {
        position, failures, ..
    } = stopped
    else {
        panic!("not a poison stop: {stopped}");
    };
    assert_eq!((position, failures), (2, 2));
    assert_eq!(*tries.lock().expect("lock"), 2);
    assert_eq!(
        checkpoint(&store, &group).await,
        1,
        "acked up to the event before it"
    );
}

#[tokio::test]
async fn a_skipped_poison_event_is_acked_with_the_rest() {
    let store = TestStore::spawn().await;
    write_events(&store, 2).await;
    let group = group();
    let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
    let done = Mutex::new(Some(done));
    let handler = |event: EventEnvelope| {
        let last = event.version == 3;
        let signal = if last {
            done.lock().expect("lock").take()
        } else {
            None
        };
        async move {
            if let Some(signal) = signal {
                let _ = signal.send(());
            }
            if event.version == 2 {
                Err("never decodes")
            } else {
                Ok(())
            }
        }
    };
    let stop = async move {
        let _ = done_rx.await;
        // Let the ack of the batch go out first.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    run_group(&store, &group, Poison::Skip, handler, stop)
        .await
        .expect("the loop ends cleanly");
    assert_eq!(
        checkpoint(&store, &group).await,
        u64::MAX,
        "everything acked"
    );
}

#[tokio::test]
async fn transient_handler_failures_never_count_as_poison() {
    let store = TestStore::spawn().await;
    write_events(&store, 0).await;
    let group = group();
    let tries = Mutex::new(0u32);
    let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
    let done = Mutex::new(Some(done));
    let handler = |event: EventEnvelope| {
        let attempt = {
            let mut tries = tries.lock().expect("lock");
            *tries += 1;
            *tries
        };
        let signal = (attempt == 4)
            .then(|| done.lock().expect("lock").take())
            .flatten();
        async move {
            if attempt < 4 {
                return Err(ExecuteError::<WalletError>::Contended {
                    stream: StreamId::parse(event.stream_id.as_str()).expect("stream id"),
                    attempts: 10,
                });
            }
            if let Some(signal) = signal {
                let _ = signal.send(());
            }
            Ok(())
        }
    };
    let stop = async move {
        let _ = done_rx.await;
    };
    run_group(&store, &group, Poison::Stop, handler, stop)
        .await
        .expect("a contended stream is waited out, even by a group that stops on poison");
    assert_eq!(*tries.lock().expect("lock"), 4);
}
