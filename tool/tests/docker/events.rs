//! The inputs of the plan's event checks against a real engine, real fleet images, a real event
//! store and a real registry: labels read from the registry's config blobs without pulling,
//! from the engine for local and running images, and the store's `GET /event-types` asked
//! inside the project network.

use std::time::Duration;

use deployer::event_inputs::{self, EventInputsError};
use deployer::label_cache::LabelCache;
use deployer::observe;
use deployer::probe::Prober;

use crate::support::{self, Project, Registry};

const PRODUCES: &str = "io.fleet.events.produces";
const CONSUMES: &str = "io.fleet.events.consumes";

/// A manifest of the event store and accounts (from `accounts`), with `event_store:` unless
/// `store` is false.
fn fleet_yaml(project: &str, accounts: &str, store: bool) -> String {
    let event_store = if store {
        "event_store:\n  service: event-store\n  port: 8100\n"
    } else {
        ""
    };
    format!(
        "project: {project}
{event_store}volumes:
  store-data: {{}}
x-health: &health
  path: /health
  interval: 100ms
  timeout: 1s
  start_period: 0s
  retries: 100
services:
  event-store:
    image: {store_image}
    environment:
      DATA_DIR: /data
    volumes:
      - store-data:/data
    health:
      <<: *health
      port: 8100
    update:
      order: stop-first
    stop_grace_period: 5s
  accounts:
    image: {accounts}
    environment:
      EVENT_STORE_URL: http://event-store:8100
    depends_on: [event-store]
    health:
      <<: *health
      port: 8101
    stop_grace_period: 2s
",
        store_image = support::fleet_image("event-store"),
    )
}

/// Appends `count` events of `event_type@version` to the store running in `project`, straight
/// to its container address (the engine is local).
async fn append(
    engine: &deployer::engine::Engine,
    project: &str,
    event_type: &str,
    version: u32,
    count: usize,
) {
    let store = support::containers(engine, project)
        .await
        .into_iter()
        .find(|(s, _, _)| s == "event-store")
        .expect("the store runs");
    let d = engine.inspect_container(&store.1).await.expect("inspect");
    let ip = d.ips.values().next().expect("an address");
    let events: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "event_id": format!("00000000-0000-4000-8000-{:012x}", version as usize * 1_000_000 + i),
                "event_type": event_type,
                "schema_version": version,
                "data": {"n": i},
            })
        })
        .collect();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .post(format!(
            "http://{ip}:8100/streams/test-{event_type}-{version}/events"
        ))
        .json(&serde_json::json!({"expected_version": "any", "events": events}))
        .send()
        .await
        .expect("append");
    assert!(
        resp.status().is_success(),
        "append answered {}: {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_checks_read_the_registry_the_engine_and_the_store() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("events-inputs");
    let registry = Registry::start().await;
    let accounts = support::fleet_image("accounts");
    // The desired accounts: the fleet's image with a contract of its own, in the registry.
    support::derive_image(
        &accounts,
        &[
            "LABEL io.fleet.events.produces=\"AccountOpened@1,AccountOpened@2\"",
            "LABEL io.fleet.events.consumes=\"\"",
        ],
        &p.image("accounts-v2"),
        &p.name,
    );
    let remote = registry.push(&p.image("accounts-v2"), &format!("{}/accounts:v2", p.name));
    // Pushed, then removed here: its labels must come from the registry.
    support::run(std::process::Command::new("docker").args(["rmi", &remote]));
    let client = support::registry_client();
    let cache_dir = tempfile::tempdir().expect("a cache folder");
    let cache = LabelCache::at(cache_dir.path());

    // First deploy: nothing runs, the store holds nothing yet.
    let m = p.manifest(&fleet_yaml(&p.name, &accounts, true));
    let observed = observe::observe(&engine, &client, &m)
        .await
        .expect("observe");
    let prober = Prober::new(&engine, &p.name);
    let g = event_inputs::gather(&engine, &client, &cache, &m, &observed, &prober)
        .await
        .expect("gather before the first apply");
    assert!(g.inputs.running.is_empty(), "{:?}", g.inputs.running);
    assert_eq!(g.inputs.stored, Some(Vec::new()));
    assert_eq!(
        g.notes,
        ["the event store (service event-store) does not run yet: it holds no events to check"]
    );
    let local = &g.inputs.desired["accounts"];
    assert_eq!(local.image, accounts);
    let produces_file =
        std::fs::read_to_string(support::workspace().join("ci/events/accounts.produces"))
            .expect("ci/events/accounts.produces");
    let produced: Vec<&str> = produces_file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(local.labels[PRODUCES], produced.join(","));

    deployer::apply::apply(
        &engine,
        &client,
        &m,
        None,
        &deployer::apply::ApplyOptions::default(),
        &deployer::progress::Progress::capture(),
    )
    .await
    .expect("apply the fleet");
    append(&engine, &p.name, "AccountOpened", 1, 3).await;
    append(&engine, &p.name, "AccountOpened", 2, 2).await;

    // Now accounts is to come from the registry; the fleet's image runs.
    let m2 = p.manifest(&fleet_yaml(&p.name, &remote, true));
    let observed = observe::observe(&engine, &client, &m2)
        .await
        .expect("observe");
    let g = event_inputs::gather(&engine, &client, &cache, &m2, &observed, &prober)
        .await
        .expect("gather with a running fleet");
    prober.close().await;
    assert!(g.notes.is_empty(), "{:?}", g.notes);
    let desired = &g.inputs.desired["accounts"];
    assert_eq!(desired.image, remote);
    assert_eq!(desired.labels[PRODUCES], "AccountOpened@1,AccountOpened@2");
    assert_eq!(desired.labels[CONSUMES], "");
    // The running image's labels, not the container's (which add the deployer's own).
    let running = &g.inputs.running["accounts"];
    assert_eq!(running.image, accounts);
    assert_eq!(running.labels[PRODUCES], produced.join(","));
    assert!(
        !running.labels.keys().any(|k| k.starts_with("deployer.")),
        "{:?}",
        running.labels
    );
    let stored: Vec<(String, u32, u64)> = g
        .inputs
        .stored
        .expect("the store answers")
        .into_iter()
        .map(|t| (t.event_type, t.version, t.count))
        .collect();
    assert_eq!(
        stored,
        [
            ("AccountOpened".to_string(), 1, 3),
            ("AccountOpened".to_string(), 2, 2)
        ]
    );

    // Read again, every label comes from the cache, keyed by digest: an entry changed on disk
    // shows through (so the registry and the engine were not asked).
    let desired_digest = &observed.image_digests[remote.as_str()];
    let cached = |kind: &str, digest: &str| {
        cache_dir.path().join(format!(
            "labels/{kind}/{}.json",
            digest.trim_start_matches("sha256:")
        ))
    };
    assert!(cached("manifest", desired_digest).is_file());
    let running_id = observed
        .containers
        .iter()
        .find(|c| c.service == "accounts")
        .map(|c| c.image_id.clone())
        .expect("accounts runs");
    assert!(cached("image", &running_id).is_file());
    std::fs::write(
        cached("manifest", desired_digest),
        r#"{"io.fleet.events.produces":"FromTheCache@7"}"#,
    )
    .expect("change the entry");
    let again = event_inputs::gather(&engine, &client, &cache, &m2, &observed, &prober)
        .await
        .expect("gather from the cache");
    assert_eq!(
        again.inputs.desired["accounts"].labels[PRODUCES],
        "FromTheCache@7"
    );
    assert_eq!(again.inputs.running, g.inputs.running);

    // Without `event_store`, the store is not asked, and the plan is told why.
    let m3 = p.manifest(&fleet_yaml(&p.name, &accounts, false));
    let observed = observe::observe(&engine, &client, &m3)
        .await
        .expect("observe");
    let g = event_inputs::gather(&engine, &client, &cache, &m3, &observed, &prober)
        .await
        .expect("gather without event_store");
    assert_eq!(g.inputs.stored, None);
    assert_eq!(
        g.notes,
        ["the manifest names no `event_store`: stored event versions are not checked"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_come_from_the_linux_amd64_image_of_an_index() {
    if support::docker().await.is_none() {
        return;
    }
    let registry = Registry::start().await;
    let amd = registry.upload("multi/app", "amd64", "amd").await;
    let arm = registry.upload("multi/app", "arm64", "arm").await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{arm}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{amd}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let resp = reqwest::Client::new()
        .put(format!(
            "http://{}/v2/multi/app/manifests/v1",
            registry.push_addr
        ))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index)
        .send()
        .await
        .expect("put the index");
    assert_eq!(resp.status().as_u16(), 201, "put the index");
    let client = support::registry_client();
    let labels = client
        .labels(&registry.addr, "multi/app", "v1")
        .await
        .expect("labels of the index");
    assert_eq!(labels.get("variant").map(String::as_str), Some("amd"));
    // And by digest, as the plan reads them.
    let labels = client
        .labels(&registry.addr, "multi/app", &arm)
        .await
        .expect("labels by digest");
    assert_eq!(labels.get("variant").map(String::as_str), Some("arm"));

    let err = client
        .labels(&registry.addr, "multi/app", "v9")
        .await
        .expect_err("a missing tag");
    assert_eq!(
        err.to_string(),
        format!(
            "image {0}/multi/app:v9 not found in registry {0}; push it first or fix the tag",
            registry.addr
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_is_nowhere_is_named() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("events-missing");
    let image = deployer::manifest::ImageRef::parse(&p.image("absent")).expect("ref");
    let err = event_inputs::image_labels(
        &engine,
        &support::registry_client(),
        &LabelCache::off(),
        &image,
        None,
    )
    .await
    .expect_err("no such image");
    assert!(
        matches!(err, EventInputsError::MissingImage { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "image {} is not on the Docker Engine, so its labels cannot be read; build it there or name its registry in `image:`",
            p.image("absent")
        )
    );
}

/// `deployer ARGS -f FILE`: (exit code, stdout, stderr).
fn deployer(args: &[&str], file: &std::path::Path) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(support::deployer_bin())
        .args(args)
        .arg("-f")
        .arg(file)
        .arg("--no-color")
        .output()
        .expect("run deployer");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The schema of `Thing` with field `a`, plus `extra` (`"b"` optional, or required).
fn thing_schema(extra: Option<(&str, bool)>) -> String {
    let mut properties = serde_json::json!({"a": {"type": "string"}});
    let mut required = vec!["a"];
    if let Some((name, req)) = extra {
        properties[name] = serde_json::json!({"type": "integer"});
        if req {
            required.push(name);
        }
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
    })
    .to_string()
}

/// A fleet of the store, a producer and a consumer of `Thing` events (both images derived from
/// the fleet's accounts image with contracts of their own), and the gates on real plans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_gates_refuse_and_pass_real_plans() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("events-gates");
    let accounts = support::fleet_image("accounts");
    // Producers: name -> (produces, schemas); consumers: name -> consumes.
    let schema1 = thing_schema(None);
    let producers = [
        ("p1", "Thing@1", format!(r#"{{"Thing@1":{schema1}}}"#)),
        (
            "p1-optional",
            "Thing@1",
            format!(r#"{{"Thing@1":{}}}"#, thing_schema(Some(("b", false)))),
        ),
        (
            "p1-required",
            "Thing@1",
            format!(r#"{{"Thing@1":{}}}"#, thing_schema(Some(("b", true)))),
        ),
        ("p2", "Thing@2", format!(r#"{{"Thing@2":{schema1}}}"#)),
    ];
    for (name, produces, schemas) in &producers {
        support::derive_image(
            &accounts,
            &[
                &format!("LABEL io.fleet.events.produces=\"{produces}\""),
                "LABEL io.fleet.events.consumes=\"\"",
                &format!("LABEL io.fleet.events.schemas='{schemas}'"),
            ],
            &p.image(name),
            &p.name,
        );
    }
    for (name, consumes) in [
        ("c1", "Thing@1"),
        ("c12", "Thing@1,Thing@2"),
        ("c2", "Thing@2"),
    ] {
        support::derive_image(
            &accounts,
            &[
                "LABEL io.fleet.events.produces=\"\"",
                &format!("LABEL io.fleet.events.consumes=\"{consumes}\""),
                "LABEL io.fleet.events.schemas='{}'",
            ],
            &p.image(name),
            &p.name,
        );
    }
    let write = |producer: &str, consumer: &str| {
        let base =
            fleet_yaml(&p.name, &p.image(producer), true).replace("  accounts:", "  producer:");
        let consumer_block = format!(
            "  consumer:\n    image: {}\n    environment:\n      EVENT_STORE_URL: http://event-store:8100\n    depends_on: [event-store]\n    health:\n      <<: *health\n      port: 8101\n    stop_grace_period: 2s\n",
            p.image(consumer)
        );
        p.write("deploy.yaml", &format!("{base}{consumer_block}"))
    };

    // The fleet as it runs: p1 emits Thing@1, c1 reads it; the store holds three of them.
    let file = write("p1", "c1");
    let (code, _, err) = deployer(&["apply"], &file);
    assert_eq!(code, Some(0), "{err}");
    append(&engine, &p.name, "Thing", 1, 3).await;

    // Pass: an optional field added under the same version.
    let file = write("p1-optional", "c1");
    let (code, out, err) = deployer(&["plan", "--detailed-exitcode"], &file);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(!out.contains("REFUSED"), "{out}");

    // Refused: a required field added under the same version.
    let file = write("p1-required", "c1");
    let (code, out, err) = deployer(&["plan", "--detailed-exitcode"], &file);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "  REFUSED a version's schema changed\n          producer ({}) changes the meaning of Thing@1: its schema is not backward compatible with Thing@1 of {}: field `b`: ",
            p.image("p1-required"),
            p.image("p1")
        )) && out.contains("; publish Thing@2 instead (a new version consumers can add next to Thing@1), or pass --allow-incompatible Thing@1\n"),
        "{out}"
    );

    // Refused: a producer emitting a version no consumer reads.
    let file = write("p2", "c1");
    let (code, out, err) = deployer(&["plan"], &file);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "  REFUSED a consumer cannot read what is produced\n          consumer ({}) cannot read Thing@2, which producer ({}) emits: it reads Thing@1 of Thing; no roll order helps: add Thing@2 to consumer's io.fleet.events.consumes, or pass --allow-incompatible Thing@2 (roll order tried: ",
            p.image("c1"),
            p.image("p2")
        )),
        "{out}"
    );
    // And apply changes nothing.
    let before = support::containers(&engine, &p.name).await;
    let (code, _, err) = deployer(&["apply"], &file);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the event checks refuse the plan, nothing was changed"),
        "{err}"
    );
    assert_eq!(support::containers(&engine, &p.name).await, before);

    // Pass: producer and consumer upgraded in one apply; the consumer, which gains Thing@2,
    // rolls before the producer starts to emit it.
    let file = write("p2", "c12");
    let (code, out, err) = deployer(&["apply"], &file);
    assert_eq!(code, Some(0), "{out}{err}");
    let created = |service: &str| {
        let ids = support::run(std::process::Command::new("docker").args([
            "ps",
            "-q",
            "--filter",
            &format!("label=deployer.project={}", p.name),
            "--filter",
            &format!("label=deployer.service={service}"),
        ]));
        let created = support::run(std::process::Command::new("docker").args([
            "inspect",
            "-f",
            "{{.Created}}",
            ids.lines().next().expect("a container"),
        ]));
        // RFC 3339 with up to 9 fractional digits: pad them, so the texts compare as times.
        let (whole, frac) = created
            .trim_end_matches('Z')
            .split_once('.')
            .unwrap_or((created.trim_end_matches('Z'), ""));
        format!("{whole}.{frac:0<9}")
    };
    let (consumer, producer) = (created("consumer"), created("producer"));
    assert!(
        consumer < producer,
        "the consumer ({consumer}) was created before the producer ({producer})"
    );

    // Refused: a consumer dropping a version the store holds.
    let file = write("p2", "c2");
    let (code, out, err) = deployer(&["plan"], &file);
    assert_eq!(code, Some(1), "{out}{err}");
    let stored = format!(
        "consumer ({}) reads Thing but not Thing@1, and the store holds 3 Thing@1 events (positions ",
        p.image("c2")
    );
    assert!(
        out.contains(&format!(
            "  REFUSED a stored version would become unreadable\n          {stored}"
        )) && out.contains("; its next replay or rebuild would fail on them: keep Thing@1 in its io.fleet.events.consumes (upcast it to the new version), or pass --allow-incompatible Thing@1\n"),
        "{out}"
    );

    // Pass with --allow-incompatible: shown in the plan, recorded in the history.
    let (code, out, err) = deployer(&["apply", "--allow-incompatible", "Thing@1"], &file);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = deployer(&["history"], &file);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("    allowed incompatible events: Thing@1\n"),
        "{out}"
    );
}
