//! `verify` names the first fault: a changed byte, a missing segment, a segment that does not
//! decode, and gaps between or inside segments.

use std::sync::Arc;

use archiver::segment::{self, segment_name, sha256_hex};
use archiver::{Archive, ArchivedEvent, Fault, Manifest, SegmentEntry};
use object_store::memory::InMemory;
use object_store::ObjectStoreExt;

fn event(position: u64) -> ArchivedEvent {
    serde_json::from_str(&format!(
        r#"{{"position":{position},"event_id":"e{position}","stream_id":"Account-1","version":{position},
        "event_type":"AccountCredited","schema_version":1,"data":{{"amount":{position}}},
        "metadata":{{}},"recorded_at":"2026-11-26T15:00:00Z"}}"#
    ))
    .expect("test event parses")
}

/// An in-memory archive of three segments: 1-10, 11-20, 21-30.
async fn archive() -> (Archive, Manifest) {
    let archive = Archive::from_store(Arc::new(InMemory::new()), "memory");
    let mut manifest = Manifest::default();
    for first in [1u64, 11, 21] {
        let events: Vec<_> = (first..first + 10).map(event).collect();
        let encoded = segment::encode(&events).expect("encode");
        let entry = archive.put_segment(&encoded).await.expect("put");
        manifest.push(entry).expect("continues");
    }
    archive.put_manifest(&manifest).await.expect("manifest");
    (archive, manifest)
}

/// Replaces segment 11-20 by `bytes`, keeping its manifest entry in step when `relist`.
async fn replace_middle(archive: &Archive, manifest: &mut Manifest, bytes: Vec<u8>, relist: bool) {
    let name = segment_name(11, 20);
    if relist {
        let entry = &mut manifest.segments[1];
        entry.sha256 = sha256_hex(&bytes);
        entry.bytes = bytes.len() as u64;
        archive.put_manifest(manifest).await.expect("manifest");
    }
    archive.put(&name, bytes).await.expect("put");
}

async fn check(archive: &Archive, expected: Option<Fault>, good_segments: usize) {
    let report = archiver::verify(archive).await.expect("verify runs");
    assert_eq!(report.fault, expected);
    assert_eq!(report.segments_checked, good_segments);
}

#[tokio::test]
async fn a_sound_archive_passes() {
    let (archive, _) = archive().await;
    let report = archiver::verify(&archive).await.expect("verify runs");
    assert!(report.is_ok());
    assert_eq!((report.events_checked, report.last_position), (30, 30));
}

#[tokio::test]
async fn a_changed_byte_fails_the_checksum() {
    let (archive, manifest) = archive().await;
    let name = segment_name(11, 20);
    let mut bytes = archive.get(&name).await.expect("read").to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let actual = sha256_hex(&bytes);
    archive.put(&name, bytes).await.expect("put");
    let fault = Fault::Checksum {
        segment: name,
        expected: manifest.segments[1].sha256.clone(),
        actual,
    };
    assert!(fault.to_string().starts_with(
        "segment segments/00000000000000000011-00000000000000000020.ndjson.zst fails its checksum"
    ));
    check(&archive, Some(fault), 1).await;
}

#[tokio::test]
async fn a_missing_segment_is_named() {
    let (archive, _) = archive().await;
    let name = segment_name(11, 20);
    archive
        .store()
        .delete(&object_store::path::Path::from(name.as_str()))
        .await
        .expect("delete");
    check(&archive, Some(Fault::Missing { segment: name }), 1).await;
}

#[tokio::test]
async fn a_segment_that_does_not_decode_is_named() {
    let (archive, mut manifest) = archive().await;
    replace_middle(&archive, &mut manifest, b"not zstd at all".to_vec(), true).await;
    let report = archiver::verify(&archive).await.expect("verify runs");
    match report.fault {
        Some(Fault::Undecodable { segment, reason }) => {
            assert_eq!(segment, segment_name(11, 20));
            assert!(reason.starts_with("zstd failed"), "{reason}");
        }
        other => panic!("expected an undecodable segment, got {other:?}"),
    }
}

#[tokio::test]
async fn a_gap_between_segments_is_named() {
    let (archive, mut manifest) = archive().await;
    manifest.segments.remove(1);
    archive.put_manifest(&manifest).await.expect("manifest");
    let fault = Fault::Gap {
        segment: segment_name(21, 30),
        expected: 11,
        found: 21,
    };
    assert_eq!(
        fault.to_string(),
        "positions have a gap: position 11 is due, but segments/00000000000000000021-00000000000000000030.ndjson.zst has 21"
    );
    check(&archive, Some(fault), 1).await;
}

#[tokio::test]
async fn a_gap_inside_a_segment_is_named() {
    let (archive, mut manifest) = archive().await;
    // Events 11..=20 without 15, compressed by hand (the encoder refuses gaps).
    let mut text = Vec::new();
    for position in (11..=20).filter(|p| *p != 15) {
        serde_json::to_writer(&mut text, &event(position)).expect("json");
        text.push(b'\n');
    }
    let bytes = zstd::bulk::compress(&text, 3).expect("compress");
    replace_middle(&archive, &mut manifest, bytes, true).await;
    let fault = Fault::Gap {
        segment: segment_name(11, 20),
        expected: 15,
        found: 16,
    };
    check(&archive, Some(fault), 1).await;
}

#[tokio::test]
async fn an_empty_archive_is_sound_and_entries_must_match_names() {
    let archive = Archive::from_store(Arc::new(InMemory::new()), "memory");
    let report = archiver::verify(&archive).await.expect("verify runs");
    assert!(report.is_ok());
    assert_eq!(report.events_checked, 0);

    let (archive, mut manifest) = archive_with_bad_count().await;
    manifest.segments.truncate(1);
    let report = archiver::verify(&archive).await.expect("verify runs");
    assert!(
        matches!(report.fault, Some(Fault::Mismatch { .. })),
        "{:?}",
        report.fault
    );
}

async fn archive_with_bad_count() -> (Archive, Manifest) {
    let archive = Archive::from_store(Arc::new(InMemory::new()), "memory");
    let encoded = segment::encode(&(1..=10).map(event).collect::<Vec<_>>()).expect("encode");
    let mut entry: SegmentEntry = archive.put_segment(&encoded).await.expect("put");
    entry.events = 9;
    let manifest = Manifest {
        format: 1,
        segments: vec![entry],
    };
    archive.put_manifest(&manifest).await.expect("manifest");
    (archive, manifest)
}

#[tokio::test]
async fn the_verify_command_exits_2_and_names_the_fault() {
    let dir = tempfile::tempdir().expect("dir");
    let location = dir.path().join("archive").display().to_string();
    let archive = Archive::open(&location).expect("archive");
    let mut manifest = Manifest::default();
    for first in [1u64, 11] {
        let events: Vec<_> = (first..first + 10).map(event).collect();
        let entry = archive
            .put_segment(&segment::encode(&events).expect("encode"))
            .await
            .expect("put");
        manifest.push(entry).expect("continues");
    }
    archive.put_manifest(&manifest).await.expect("manifest");
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_archiver"))
            .args(["verify", "--archive", &location])
            .env("RUST_LOG", "warn")
            .output()
            .expect("verify runs")
    };

    let sound = verify();
    assert_eq!(sound.status.code(), Some(0), "{sound:?}");
    assert_eq!(
        String::from_utf8_lossy(&sound.stdout),
        "ok: 2 segments, 20 events, positions 1 to 20 with no gap\n"
    );

    let name = segment_name(11, 20);
    let path = dir.path().join("archive").join(&name);
    let mut bytes = std::fs::read(&path).expect("read segment");
    bytes[3] ^= 0x01;
    std::fs::write(&path, bytes).expect("damage segment");
    let damaged = verify();
    assert_eq!(damaged.status.code(), Some(2), "{damaged:?}");
    let out = String::from_utf8_lossy(&damaged.stdout);
    assert!(
        out.starts_with(&format!("fault: segment {name} fails its checksum")),
        "{out}"
    );
    assert!(
        out.ends_with("(after 1 good segments ending at position 10)\n"),
        "{out}"
    );
}
