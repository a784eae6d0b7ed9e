//! The disaster-recovery path end to end: archive, kill the archiver mid-segment, restart it,
//! verify, restore into a fresh store, and compare digests of the whole log, `recorded_at`
//! included.

use std::time::Duration;

use archiver::{Archive, StoreClient};

use crate::support::{self, ArchiverProcess, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_kill_restart_verify_restore_gives_the_same_log() {
    let source = Store::spawn().await;
    let data = tempfile::tempdir().expect("archiver data dir");
    let archive =
        Archive::open(&data.path().join("archive").display().to_string()).expect("archive opens");
    // Segments of 50 events, flushed by size only in the first run (the age is long).
    let slow = [
        ("ARCHIVER_SEGMENT_MAX_EVENTS", "50"),
        ("ARCHIVER_SEGMENT_MAX_AGE_MS", "600000"),
        ("ARCHIVER_POLL_WAIT_MS", "200"),
    ];
    support::append_events(&source.url, 0, 120, 7).await;
    let first = ArchiverProcess::start(&source.url, data.path(), &slow);
    support::wait_for_manifest(
        &archive,
        Duration::from_secs(30),
        "two full segments",
        |m| m.last_position() == 100,
    )
    .await;
    // More events arrive while 20 sit in the open segment; kill it mid-segment.
    let writer = {
        let url = source.url.clone();
        tokio::spawn(async move { support::append_events(&url, 1000, 60, 5).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill();
    writer.await.expect("appends finish");
    let killed_at = archive
        .load_manifest()
        .await
        .expect("manifest")
        .last_position();
    assert!(
        killed_at < 180,
        "the kill left events unarchived ({killed_at})"
    );

    // Restart with a short age so everything gets flushed, and keep writing meanwhile.
    let fast = [
        ("ARCHIVER_SEGMENT_MAX_EVENTS", "50"),
        ("ARCHIVER_SEGMENT_MAX_AGE_MS", "200"),
        ("ARCHIVER_POLL_WAIT_MS", "200"),
    ];
    let second = ArchiverProcess::start(&source.url, data.path(), &fast);
    support::append_events(&source.url, 5000, 40, 9).await;
    let head = support::head(&source.url).await;
    assert_eq!(head, 220);
    support::wait_for_manifest(&archive, Duration::from_secs(30), "the whole log", |m| {
        m.last_position() == head
    })
    .await;
    let status = second.terminate();
    assert!(status.success(), "graceful stop exits 0, got {status}");
    assert_eq!(support::checkpoint(&source.url, "archiver").await, head);

    let report = archiver::verify(&archive).await.expect("archive readable");
    assert!(report.is_ok(), "verify found {:?}", report.fault);
    assert_eq!(report.events_checked, head, "no gap and no duplicate");
    assert_eq!(report.last_position, head);
    assert!(
        report.unlisted_segments.is_empty(),
        "{:?}",
        report.unlisted_segments
    );

    let source_client = StoreClient::new(&source.url).expect("client");
    let before = archiver::store_digest(&source_client)
        .await
        .expect("digest source");
    let source_log = support::log(&source.url).await;
    // Every event was appended by its own request, so each has its own time.
    let times: std::collections::HashSet<&str> = source_log
        .iter()
        .map(|e| e["recorded_at"].as_str().expect("recorded_at"))
        .collect();
    assert_eq!(
        times.len() as u64,
        head,
        "the source's events have distinct times"
    );
    source.stop().await;

    let target = Store::spawn().await;
    let target_client = StoreClient::new(&target.url).expect("client");
    let restored = archiver::restore(&archive, &target_client, |_| {})
        .await
        .expect("restore succeeds");
    assert_eq!(restored.restored, head);
    assert_eq!(restored.archive_digest, before);
    let after = archiver::store_digest(&target_client)
        .await
        .expect("digest target");
    assert_eq!(
        after, before,
        "the restored log is identical, times included"
    );
    assert_eq!(after.events, head);
    // Event by event: the restore kept each original time rather than stamping its own.
    assert_eq!(support::log(&target.url).await, source_log);

    // Running the restore again is a no-op: the store already holds the archive.
    let again = archiver::restore(&archive, &target_client, |_| {})
        .await
        .expect("a repeated restore succeeds");
    assert_eq!((again.restored, again.skipped), (0, head));
    assert_eq!(
        archiver::store_digest(&target_client)
            .await
            .expect("digest"),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_store_that_holds_other_events() {
    let source = Store::spawn().await;
    support::append_events(&source.url, 0, 30, 3).await;
    let data = tempfile::tempdir().expect("archiver data dir");
    let archive_dir = data.path().join("archive");
    let archive = Archive::open(&archive_dir.display().to_string()).expect("archive opens");
    let process = ArchiverProcess::start(
        &source.url,
        data.path(),
        &[("ARCHIVER_SEGMENT_MAX_AGE_MS", "100")],
    );
    support::wait_for_manifest(&archive, Duration::from_secs(30), "30 events", |m| {
        m.last_position() == 30
    })
    .await;
    drop(process);

    let other = Store::spawn().await;
    support::append_events(&other.url, 77, 5, 2).await;
    let client = StoreClient::new(&other.url).expect("client");
    let error = archiver::restore(&archive, &client, |_| {})
        .await
        .expect_err("a store with other events is refused");
    assert!(
        error
            .to_string()
            .contains("restore into an empty event store"),
        "{error}"
    );
    assert_eq!(support::head(&other.url).await, 5, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_continues_and_keeps_the_original_times() {
    let source = Store::spawn().await;
    support::append_events(&source.url, 0, 15, 3).await;
    // A pause, so two runs of events lie clearly apart in time.
    tokio::time::sleep(Duration::from_millis(50)).await;
    support::append_events(&source.url, 100, 15, 4).await;
    let data = tempfile::tempdir().expect("archiver data dir");
    let archive =
        Archive::open(&data.path().join("archive").display().to_string()).expect("archive opens");
    let process = ArchiverProcess::start(
        &source.url,
        data.path(),
        &[
            ("ARCHIVER_SEGMENT_MAX_EVENTS", "10"),
            ("ARCHIVER_SEGMENT_MAX_AGE_MS", "100"),
        ],
    );
    support::wait_for_manifest(&archive, Duration::from_secs(30), "30 events", |m| {
        m.last_position() == 30
    })
    .await;
    drop(process);
    let source_client = StoreClient::new(&source.url).expect("client");
    let before = archiver::store_digest(&source_client)
        .await
        .expect("digest");
    let source_log = support::log(&source.url).await;

    // A restore that stopped after the first 12 events (an import is all-or-nothing, so a
    // stopped restore leaves a prefix).
    let target = Store::spawn().await;
    let client = StoreClient::new(&target.url).expect("client");
    let first = source_client.read_log(0, 12).await.expect("read").events;
    let imported = client.import(&first).await.expect("import");
    assert_eq!((imported.first_position, imported.last_position), (1, 12));

    let report = archiver::restore(&archive, &client, |_| {})
        .await
        .expect("the restore continues");
    assert_eq!((report.skipped, report.restored), (12, 18));
    assert_eq!(
        archiver::store_digest(&client).await.expect("digest"),
        before
    );
    assert_eq!(support::log(&target.url).await, source_log);
}
