//! Crash windows of a flush, replayed: a segment written but not in the manifest, and a
//! manifest committed but the group not acknowledged. Neither loses nor duplicates an event.

use std::time::Duration;

use archiver::{segment, Application, Archive, Config, Settings};
use tokio::sync::oneshot;

use crate::support::{self, Store};

fn config(store: &Store, data: &std::path::Path) -> Config {
    let mut settings = Settings::default();
    settings.flush.max_events = 10;
    settings.flush.max_age = Duration::from_millis(100);
    settings.poll_wait = Duration::from_millis(100);
    Config {
        port: 0,
        data_dir: data.to_path_buf(),
        event_store_url: store.url.clone(),
        location: None,
        s3_options: Vec::new(),
        settings,
    }
}

/// Runs the archiver in-process until the archive reaches `position`, then stops it.
async fn archive_up_to(store: &Store, data: &std::path::Path, position: u64) {
    let app = Application::build(config(store, data))
        .await
        .expect("archiver starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let archive = Archive::open(&data.join("archive").display().to_string()).expect("archive");
    support::wait_for_manifest(&archive, Duration::from_secs(30), "the archive", |m| {
        m.last_position() == position
    })
    .await;
    let _ = stop.send(());
    task.await.expect("task").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_segment_and_stale_checkpoint_are_repaired_at_start() {
    let store = Store::spawn().await;
    let data = tempfile::tempdir().expect("data dir");
    support::append_events(&store.url, 0, 25, 4).await;
    archive_up_to(&store, data.path(), 25).await;

    let archive =
        Archive::open(&data.path().join("archive").display().to_string()).expect("archive");
    // A crash after writing a segment but before the manifest: an unlisted segment over
    // positions the archive does not have yet, with made-up content.
    support::append_events(&store.url, 100, 15, 4).await;
    let client = archiver::StoreClient::new(&store.url).expect("client");
    let mut stray = client.read_log(25, 5).await.expect("read").events;
    stray.truncate(5);
    let encoded = segment::encode(&stray).expect("encode");
    archive
        .put_segment(&encoded)
        .await
        .expect("write stray segment");
    // A crash after the manifest but before the acknowledgement: the checkpoint is behind.
    support::set_checkpoint(&store.url, "archiver", 3).await;

    archive_up_to(&store, data.path(), 40).await;
    let report = archiver::verify(&archive).await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.fault);
    assert_eq!(report.events_checked, 40, "every event once");
    assert!(
        report.unlisted_segments.is_empty(),
        "the stray segment was removed"
    );
    assert_eq!(support::checkpoint(&store.url, "archiver").await, 40);
    let before = archiver::store_digest(&client).await.expect("digest");
    let archived = archiver::archive_digest(&archive).await.expect("digest");
    assert_eq!(before, archived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_store_is_archived_by_age() {
    let store = Store::spawn().await;
    let data = tempfile::tempdir().expect("data dir");
    // Three events never fill a 10-event segment: only the age flushes them.
    support::append_events(&store.url, 0, 3, 2).await;
    let app = Application::build(config(&store, data.path()))
        .await
        .expect("archiver starts");
    let metrics = app.metrics().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let archive =
        Archive::open(&data.path().join("archive").display().to_string()).expect("archive");
    let manifest = support::wait_for_manifest(&archive, Duration::from_secs(10), "3 events", |m| {
        m.last_position() == 3
    })
    .await;
    assert_eq!(manifest.segments.len(), 1);
    assert_eq!(metrics.archived_position.get(), 3);
    assert_eq!(metrics.store_head.get(), 3);
    let _ = stop.send(());
    task.await.expect("task").expect("clean stop");
}

/// The archiving loop stops on a lost manifest; `/health` then answers 503 naming it, so the
/// orchestrator restarts the archiver instead of leaving it serving with no archiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_manifest_stops_the_archiver_instead_of_archiving_over_segments() {
    let store = Store::spawn().await;
    let data = tempfile::tempdir().expect("data dir");
    support::append_events(&store.url, 0, 25, 4).await;
    archive_up_to(&store, data.path(), 25).await;
    let archive_dir = data.path().join("archive");
    std::fs::remove_file(archive_dir.join("manifest.json")).expect("lose the manifest");
    let segments_before = std::fs::read_dir(archive_dir.join("segments"))
        .expect("segments")
        .count();
    assert_eq!(segments_before, 3);

    let app = Application::build(config(&store, data.path()))
        .await
        .expect("archiver builds");
    let (port, workers) = (app.port(), app.workers());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    workers.until_stopped(1).await;
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .expect("the archiver still answers");
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.expect("a JSON body");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["stopped"][0]["worker"], "archiver-writer", "{body}");
    let reason = body["stopped"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("there is no manifest but 3 segment objects"),
        "{body}"
    );

    let _ = stop.send(());
    let error = task
        .await
        .expect("task")
        .expect_err("the stopped writer is reported");
    assert!(
        error
            .to_string()
            .contains("there is no manifest but 3 segment objects"),
        "{error}"
    );
    let segments_after = std::fs::read_dir(archive_dir.join("segments"))
        .expect("segments")
        .count();
    assert_eq!(segments_after, 3, "no segment was deleted");
}
