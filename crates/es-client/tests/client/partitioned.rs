//! `partitioned::run`: a batch handled in parallel across keys, in log order within a key, and
//! acknowledged only up to the first failure, so a failed event comes again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_client::partitioned::{self, PartitionedGroup};
use es_client::Poison;
use uuid::Uuid;

use crate::support::{write_events, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_handled_in_log_order_and_a_failed_event_comes_again() {
    let store = TestStore::spawn().await;
    let a = write_events(&store, 3).await;
    let b = write_events(&store, 2).await;
    let last = store
        .client
        .read_all(0, 100, Duration::ZERO)
        .await
        .expect("read the log")
        .events
        .last()
        .expect("events")
        .position;

    // (stream, version, succeeded) in the order the handler saw them; version 2 of `a` fails
    // the first time.
    let seen: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let spec = PartitionedGroup {
        group: format!("test-{}", Uuid::new_v4()),
        event_types: vec!["Opened".into(), "Deposited".into()],
        batch_size: 100,
        wait: Duration::from_millis(100),
        poison: Poison::RetryThenStop { attempts: 3 },
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let (client, spec, seen, a) = (store.client.clone(), spec.clone(), seen.clone(), a.clone());
        async move {
            partitioned::run(
                client,
                spec,
                |event| Some(event.stream_id.as_str().to_owned()),
                move |event| {
                    let seen = seen.clone();
                    let fail = event.stream_id == a
                        && event.version == 2
                        && !seen
                            .lock()
                            .expect("lock")
                            .iter()
                            .any(|(s, v, _)| s == a.as_str() && *v == 2);
                    async move {
                        seen.lock().expect("lock").push((
                            event.stream_id.as_str().to_owned(),
                            event.version,
                            !fail,
                        ));
                        if fail {
                            Err("the first try fails")
                        } else {
                            Ok(())
                        }
                    }
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        }
    });

    // Wait (bounded) until every event has succeeded once.
    let all_done = |seen: &[(String, u64, bool)]| {
        [(&a, 4), (&b, 3)].iter().all(|(stream, versions)| {
            (1..=*versions).all(|v| {
                seen.iter()
                    .any(|(s, sv, ok)| s == stream.as_str() && *sv == v && *ok)
            })
        })
    };
    for _ in 0..300 {
        if all_done(&seen.lock().expect("lock")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(()).expect("the loop runs");
    task.await
        .expect("the loop task")
        .expect("the loop ends cleanly");

    let seen = seen.lock().expect("lock").clone();
    assert!(all_done(&seen), "not every event succeeded: {seen:?}");
    for stream in [&a, &b] {
        // Within one key, no event is handled before the one before it succeeded.
        let mut done = 0;
        for (_, version, ok) in seen.iter().filter(|(s, _, _)| s == stream.as_str()) {
            assert!(*version <= done + 1, "{stream} out of order: {seen:?}");
            if *ok && *version == done + 1 {
                done = *version;
            }
        }
    }
    let retried: Vec<_> = seen
        .iter()
        .filter(|(s, v, _)| s == a.as_str() && *v == 2)
        .map(|(_, _, ok)| *ok)
        .collect();
    assert_eq!(retried, [false, true], "the failed event came again once");

    // The group is acknowledged to the end: nothing is delivered again.
    let page = store
        .client
        .poll_group(&spec.group, 10, Duration::ZERO)
        .await
        .expect("poll");
    assert!(
        page.events.is_empty(),
        "acknowledged up to {last}: {page:?}"
    );
}
