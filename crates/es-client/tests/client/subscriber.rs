use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_client::Subscriber;
use es_core::EventEnvelope;
use uuid::Uuid;

use crate::support::{write_events, TestStore};

fn group() -> String {
    format!("test-{}", Uuid::new_v4())
}

async fn checkpoint(store: &TestStore, group: &str) -> u64 {
    // The next poll from a fresh subscriber starts after the checkpoint.
    let page = store
        .client
        .poll_group(group, 1, Duration::ZERO)
        .await
        .expect("poll");
    page.events
        .first()
        .map_or(u64::MAX, |event| event.position - 1)
}

#[tokio::test]
async fn acks_only_after_success_and_a_failing_handler_gets_the_event_again() {
    let store = TestStore::spawn().await;
    write_events(&store, 2).await;
    let group = group();
    let subscriber = Subscriber::new(store.client.clone(), &group)
        .expect("subscriber")
        .batch_size(10)
        .wait(Duration::from_millis(100));
    subscriber.register().await.expect("register");

    // The handler fails on the second event the first time it sees it.
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut failed_once = false;
    let mut handler = |event: EventEnvelope| {
        let seen = Arc::clone(&seen);
        let fail = event.version == 2 && !std::mem::replace(&mut failed_once, true);
        async move {
            seen.lock().expect("lock").push(event.version);
            if fail {
                Err("downstream unavailable")
            } else {
                Ok(())
            }
        }
    };

    let first = subscriber
        .poll_once(&mut handler)
        .await
        .expect("first poll");
    assert_eq!(first.received, 3);
    assert_eq!(first.handled, 1);
    let first_position = first.acked.expect("the first event was acked");
    assert!(first.failed.is_some());
    assert_eq!(
        checkpoint(&store, &group).await,
        first_position,
        "the failed event is not acked"
    );

    let second = subscriber
        .poll_once(&mut handler)
        .await
        .expect("second poll");
    assert_eq!(
        second.received, 2,
        "the failed event comes again, with the rest"
    );
    assert_eq!(second.handled, 2);
    assert_eq!(second.failed, None);
    assert_eq!(*seen.lock().expect("lock"), vec![1, 2, 2, 3]);

    let third = subscriber
        .poll_once(&mut handler)
        .await
        .expect("third poll");
    assert_eq!(third.received, 0, "everything acked: nothing comes again");
    assert_eq!(third.acked, None);
}

#[tokio::test]
async fn unacked_events_are_redelivered_to_a_recreated_subscriber() {
    let store = TestStore::spawn().await;
    write_events(&store, 4).await;
    let group = group();
    let handled: Arc<Mutex<Vec<u64>>> = Arc::default();
    let record = |handled: Arc<Mutex<Vec<u64>>>| {
        move |event: EventEnvelope| {
            let handled = Arc::clone(&handled);
            async move {
                handled.lock().expect("lock").push(event.version);
                Ok::<(), String>(())
            }
        }
    };

    {
        let first = Subscriber::new(store.client.clone(), &group)
            .expect("subscriber")
            .batch_size(2)
            .wait(Duration::from_millis(100));
        first.register().await.expect("register");
        let outcome = first
            .poll_once(&mut record(Arc::clone(&handled)))
            .await
            .expect("poll");
        assert_eq!(outcome.handled, 2);
        // Then the process "dies" having fetched the next events but before handling them.
        let fetched = store
            .client
            .poll_group(&group, 10, Duration::ZERO)
            .await
            .expect("fetch");
        assert_eq!(fetched.events.len(), 3);
    }

    let second = Subscriber::new(store.client.clone(), &group)
        .expect("subscriber")
        .batch_size(10)
        .wait(Duration::from_millis(100));
    second
        .register()
        .await
        .expect("register again keeps the checkpoint");
    let outcome = second
        .poll_once(&mut record(Arc::clone(&handled)))
        .await
        .expect("poll");
    assert_eq!(outcome.handled, 3);
    assert_eq!(*handled.lock().expect("lock"), vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn start_after_applies_only_when_the_group_is_created() {
    let store = TestStore::spawn().await;
    write_events(&store, 3).await;
    let group = group();
    let subscriber = |start| {
        Subscriber::new(store.client.clone(), &group)
            .expect("subscriber")
            .start_after(start)
            .wait(Duration::from_millis(50))
    };
    subscriber(2).register().await.expect("create at 2");
    assert_eq!(checkpoint(&store, &group).await, 2);
    let ok = |_: EventEnvelope| async { Ok::<(), String>(()) };
    let mut handler = ok;
    subscriber(2)
        .poll_once(&mut handler)
        .await
        .expect("handle the rest");
    subscriber(0).register().await.expect("register again");
    let outcome = subscriber(0).poll_once(&mut handler).await.expect("poll");
    assert_eq!(
        outcome.received, 0,
        "an existing group keeps its checkpoint"
    );
}

#[tokio::test]
async fn filters_narrow_what_the_group_receives() {
    let store = TestStore::spawn().await;
    let stream = write_events(&store, 2).await;
    write_events(&store, 1).await;
    let group = group();
    let subscriber = Subscriber::new(store.client.clone(), &group)
        .expect("subscriber")
        .event_types(["Deposited"])
        .stream_prefix(stream.as_str())
        .wait(Duration::from_millis(50));
    subscriber.register().await.expect("register");
    let types: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut handler = |event: EventEnvelope| {
        let types = Arc::clone(&types);
        async move {
            types
                .lock()
                .expect("lock")
                .push((event.stream_id.to_string(), event.event_type));
            Ok::<(), String>(())
        }
    };
    let outcome = subscriber.poll_once(&mut handler).await.expect("poll");
    assert_eq!(outcome.handled, 2);
    let expected = vec![(stream.to_string(), "Deposited".to_string()); 2];
    assert_eq!(*types.lock().expect("lock"), expected);
}

#[tokio::test]
async fn run_retries_a_failing_handler_with_backoff_until_it_succeeds_then_stops_on_shutdown() {
    let store = TestStore::spawn().await;
    write_events(&store, 1).await;
    let group = group();
    let subscriber = Subscriber::new(store.client.clone(), &group)
        .expect("subscriber")
        .wait(Duration::from_millis(100))
        .handler_backoff(Duration::from_millis(10), Duration::from_millis(40));
    let attempts: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
    let mut done = Some(done);
    let handler = {
        let attempts = Arc::clone(&attempts);
        move |event: EventEnvelope| {
            let attempts = Arc::clone(&attempts);
            let tries = {
                let mut attempts = attempts.lock().expect("lock");
                attempts.push(event.version);
                attempts.iter().filter(|v| **v == 2).count()
            };
            let finished = event.version == 2 && tries == 3;
            let signal = if finished { done.take() } else { None };
            async move {
                if event.version == 2 && tries < 3 {
                    return Err(format!("try {tries} fails"));
                }
                if let Some(signal) = signal {
                    let _ = signal.send(());
                }
                Ok(())
            }
        }
    };
    let shutdown = async move {
        let _ = done_rx.await;
    };
    tokio::time::timeout(Duration::from_secs(20), subscriber.run(handler, shutdown))
        .await
        .expect("run stops after shutdown")
        .expect("run ends cleanly");
    assert_eq!(*attempts.lock().expect("lock"), vec![1, 2, 2, 2]);
    // Give the ack (sent before the shutdown was noticed) a moment, then check nothing is left.
    let left = store
        .client
        .poll_group(&group, 10, Duration::ZERO)
        .await
        .expect("poll");
    assert!(
        left.events.is_empty(),
        "everything handled was acked: {:?}",
        left.events
    );
}
