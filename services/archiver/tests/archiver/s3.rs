//! The S3 backend against a real S3-compatible server: moto's standalone server (`moto_server`,
//! from PyPI `moto[server]`; `ci/test.sh` installs it into `target/moto-venv`). The archiver
//! runs in-process over `s3://bucket/prefix`, is stopped and started again, and the bucket's
//! archive is verified, listed over plain S3 and restored into a fresh store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use archiver::{Application, Archive, Config, Settings, StoreClient};
use tokio::sync::oneshot;

use crate::support::{self, Store};

const BUCKET: &str = "fleet-archive";
const PREFIX: &str = "prod/log";
/// How to get `moto_server`, for the failure message when it is missing.
const INSTALL: &str = "run ci/test.sh, which installs it, or from the workspace root: \
    python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_archive_in_moto_is_written_resumed_verified_and_restored() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;
    let location = format!("s3://{BUCKET}/{PREFIX}");
    let s3_options = moto.s3_options();
    let archive = Archive::open_with(&location, &s3_options).expect("the S3 archive opens");
    let source = Store::spawn().await;

    // First run: 120 events, in segments of at most 50.
    support::append_events(&source.url, 0, 120, 7).await;
    run_until_archived(&source, &location, &s3_options, &archive, 120).await;
    // Second run over the same bucket: it resumes after the manifest's end.
    support::append_events(&source.url, 1000, 40, 5).await;
    let head = support::head(&source.url).await;
    assert_eq!(head, 160);
    run_until_archived(&source, &location, &s3_options, &archive, head).await;
    assert_eq!(support::checkpoint(&source.url, "archiver").await, head);

    // The bucket holds the manifest and exactly the segments it lists, as seen over plain S3.
    let manifest = archive.load_manifest().await.expect("manifest");
    assert!(manifest.segments.len() >= 4, "{:?}", manifest.segments);
    let mut expected: Vec<String> = manifest
        .segments
        .iter()
        .map(|s| format!("{PREFIX}/{}", s.name))
        .collect();
    expected.push(format!("{PREFIX}/manifest.json"));
    expected.sort();
    assert_eq!(moto.list_keys(BUCKET, PREFIX).await, expected);

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
    assert_eq!(
        archiver::archive_digest(&archive).await.expect("digest"),
        before
    );
    let source_log = support::log(&source.url).await;
    source.stop().await;

    let target = Store::spawn().await;
    let target_client = StoreClient::new(&target.url).expect("client");
    let restored = archiver::restore(&archive, &target_client, |_| {})
        .await
        .expect("restore from the bucket succeeds");
    assert_eq!((restored.restored, restored.skipped), (head, 0));
    assert_eq!(
        archiver::store_digest(&target_client)
            .await
            .expect("digest target"),
        before,
        "the restored log is identical, times included"
    );
    assert_eq!(support::log(&target.url).await, source_log);
}

#[test]
fn an_unknown_s3_setting_is_refused_with_its_name() {
    let options = [("AWS_ENDPIONT".to_owned(), "http://127.0.0.1:1".to_owned())];
    let error = Archive::open_with("s3://bucket/prefix", &options).expect_err("a typo is refused");
    assert!(
        error
            .to_string()
            .contains("AWS_ENDPIONT is not an S3 setting"),
        "{error}"
    );
}

/// Runs the archiver in-process over the S3 location until the manifest reaches `position`,
/// then stops it gracefully.
async fn run_until_archived(
    store: &Store,
    location: &str,
    s3_options: &[(String, String)],
    archive: &Archive,
    position: u64,
) {
    let data = tempfile::tempdir().expect("data dir");
    let mut settings = Settings::default();
    settings.flush.max_events = 50;
    settings.flush.max_age = Duration::from_millis(200);
    settings.poll_wait = Duration::from_millis(100);
    let config = Config {
        port: 0,
        data_dir: data.path().to_path_buf(),
        event_store_url: store.url.clone(),
        location: Some(location.to_owned()),
        s3_options: s3_options.to_vec(),
        settings,
    };
    let app = Application::build(config).await.expect("archiver starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    support::wait_for_manifest(archive, Duration::from_secs(30), "the S3 archive", |m| {
        m.last_position() == position
    })
    .await;
    let _ = stop.send(());
    task.await.expect("task").expect("clean stop");
}

/// `moto_server` on a free port of 127.0.0.1, killed when dropped (also when a test fails).
struct Moto {
    url: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts the server and waits until it answers; panics (never skips) when it is missing.
    async fn start() -> Moto {
        let program = find_moto_server().unwrap_or_else(|| {
            panic!("moto_server was not found (MOTO_SERVER, target/moto-venv/bin/moto_server, PATH); {INSTALL}")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}; {INSTALL}", program.display()));
        let mut moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = http.get(&moto.url).send().await {
                if response.status().is_success() {
                    return moto;
                }
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "{} exited with {status} before answering:\n{}",
                    program.display(),
                    moto.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer on {} within 60s:\n{}",
                program.display(),
                moto.url,
                moto.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The archiver's S3 settings for this server (path-style requests, plain HTTP).
    fn s3_options(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.url.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.url))
            .send()
            .await
            .expect("moto answers");
        assert!(
            response.status().is_success(),
            "creating bucket {bucket}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// The keys under `prefix`, sorted, from a plain ListObjectsV2 request (not object_store).
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let response = reqwest::Client::new()
            .get(format!("{}/{bucket}", self.url))
            .query(&[("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")])
            .send()
            .await
            .expect("moto answers");
        assert!(response.status().is_success(), "{}", response.status());
        let body = response.text().await.expect("listing");
        assert!(
            !body.contains("<IsTruncated>true</IsTruncated>"),
            "one page lists them all"
        );
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect();
        keys.sort();
        keys
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `MOTO_SERVER`, else the venv `ci/test.sh` makes under the workspace's `target/`, else PATH.
fn find_moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}
