//! Plan computation on plain data: a manifest from YAML text, an engine state made by
//! "applying" plans in memory, and the expected actions, reasons and renderings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::manifest::{self, Manifest};

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const FLEET: &str = r#"
project: shop
volumes:
  data: {}
services:
  db:
    image: db:1
    volumes: ["data:/data"]
    environment:
      A: "1"
      B: "2"
  api:
    image: api:1
    ports: ["8080:80"]
    depends_on: [db]
    secrets:
      TOKEN: {env: TOKEN}
    health: {port: 80}
  worker:
    image: worker:1
    depends_on: [db]
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("t0ps3cret".to_owned()),
        _ => None,
    }
}

fn load(yaml: &str) -> Manifest {
    manifest::load_sources(&[(PathBuf::from("m.yaml"), yaml.to_owned())], &env)
        .unwrap_or_else(|e| panic!("test manifest must load:\n{e}"))
}

fn digests() -> BTreeMap<String, String> {
    ["db:1", "api:1", "worker:1", "api:2"]
        .iter()
        .map(|i| (i.to_string(), DIGEST_A.to_owned()))
        .collect()
}

/// The engine state after a successful apply of `plan`: one running, healthy container per
/// desired spec, labelled the way apply labels them; networks and volumes created.
fn applied(plan: &Plan, observed: &Observed) -> Observed {
    let mut containers = Vec::new();
    for sp in &plan.services {
        for (i, d) in sp.desired.iter().enumerate() {
            let digest = sp.image_digest.clone().unwrap_or_default();
            containers.push(ObservedContainer {
                id: format!("id-{}-{}-{}", sp.service, d.replica, &d.spec_hash[..6]),
                name: d.container_name(&format!("{i:08x}")),
                service: sp.service.clone(),
                image: sp.image.clone().unwrap_or_default(),
                image_id: digest.clone(),
                ips: BTreeMap::new(),
                labels: d.labels_with_digest(&digest),
                state: ContainerState::Running,
                health: HealthStatus::Healthy,
                created: 1_700_000_000 + i as i64,
            });
        }
    }
    let mut networks = observed.networks.clone();
    networks.extend(plan.networks_to_create.iter().map(|n| ObservedNetwork {
        id: format!("net-{}", n.engine_name),
        name: n.engine_name.clone(),
        labels: n.labels.clone(),
    }));
    let mut volumes = observed.volumes.clone();
    volumes.extend(plan.volumes_to_create.iter().map(|v| ObservedVolume {
        name: v.engine_name.clone(),
        labels: v.labels.clone(),
    }));
    Observed {
        containers,
        networks,
        volumes,
        image_digests: observed.image_digests.clone(),
    }
}

fn empty() -> Observed {
    Observed {
        image_digests: digests(),
        ..Observed::default()
    }
}

/// `service: action` lines, one per service, with reasons.
fn actions(plan: &Plan) -> String {
    plan.services
        .iter()
        .map(|s| {
            let action = match &s.action {
                Action::Create => "create".to_owned(),
                Action::Replace { reasons } => format!(
                    "replace [{}]",
                    reasons
                        .iter()
                        .map(reason_text)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                Action::Scale { from, to } => format!("scale {from} -> {to}"),
                Action::Remove => "remove".to_owned(),
                Action::Unchanged => "unchanged".to_owned(),
            };
            format!("{}: {action}", s.service)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(plan: &Plan, expected: &str) {
    assert_eq!(
        actions(plan),
        expected.trim(),
        "\nsummary: {}",
        summary_line(plan)
    );
}

/// Applies the fleet, then edits the manifest text and plans again.
fn replan(edit: impl Fn(&str) -> String, tweak: impl Fn(&mut Observed)) -> Plan {
    let before = load(FLEET);
    let first = compute(&before, &empty());
    let mut observed = applied(&first, &empty());
    tweak(&mut observed);
    compute(&load(&edit(FLEET)), &observed)
}

#[test]
fn fresh_engine_creates_everything() {
    let plan = compute(&load(FLEET), &empty());
    check(&plan, "api: create\ndb: create\nworker: create");
    assert_eq!(
        summary_line(&plan),
        "Plan: 5 to create, 0 to replace, 0 to remove."
    );
    assert_eq!(plan.networks_to_create.len(), 1);
    assert_eq!(plan.networks_to_create[0].engine_name, "shop-default");
    assert_eq!(plan.volumes_to_create[0].engine_name, "shop-data");
    assert_eq!(
        plan.deploy_order,
        vec![
            vec!["db".to_owned()],
            vec!["api".to_owned(), "worker".to_owned()]
        ]
    );
}

#[test]
fn apply_then_plan_shows_no_changes() {
    let plan = replan(|s| s.to_owned(), |_| {});
    check(&plan, "api: unchanged\ndb: unchanged\nworker: unchanged");
    assert!(!plan.has_changes());
    assert_eq!(summary_line(&plan), "No changes.");
}

#[test]
fn environment_order_does_not_matter() {
    let plan = replan(
        |s| {
            s.replace(
                "      A: \"1\"\n      B: \"2\"",
                "      B: \"2\"\n      A: \"1\"",
            )
        },
        |_| {},
    );
    assert!(!plan.has_changes(), "{}", actions(&plan));
}

#[test]
fn engine_added_labels_and_order_do_not_cause_drift() {
    // Regression: a plan must compare only what the manifest says, never engine defaults.
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            o.containers.reverse();
            for c in &mut o.containers {
                c.labels
                    .insert("org.opencontainers.image.version".into(), "9".into());
            }
        },
    );
    assert!(!plan.has_changes(), "{}", actions(&plan));
}

#[test]
fn changing_one_service_replaces_only_it_and_names_the_fields() {
    let plan = replan(|s| s.replace("B: \"2\"", "B: \"3\""), |_| {});
    check(
        &plan,
        "api: unchanged\ndb: replace [configuration changed: environment]\nworker: unchanged",
    );
    let plan = replan(
        |s| {
            s.replace(
                "ports: [\"8080:80\"]",
                "ports: [\"8081:80\"]\n    command: serve",
            )
        },
        |_| {},
    );
    check(
        &plan,
        "api: replace [configuration changed: command, ports]\ndb: unchanged\nworker: unchanged",
    );
    assert_eq!(
        summary_line(&plan),
        "Plan: 0 to create, 1 to replace, 0 to remove."
    );
}

#[test]
fn a_changed_secret_replaces_without_showing_it() {
    let before = load(FLEET);
    let observed = applied(&compute(&before, &empty()), &empty());
    let other = |name: &str| match name {
        "TOKEN" => Some("n3w-s3cret".to_owned()),
        _ => None,
    };
    let after = manifest::load_sources(&[(PathBuf::from("m.yaml"), FLEET.to_owned())], &other)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = compute(&after, &observed);
    check(
        &plan,
        "api: replace [configuration changed: secrets]\ndb: unchanged\nworker: unchanged",
    );
    let json = plan.to_json();
    let human = render_human(&plan, false);
    for text in [&json, &human] {
        assert!(!text.contains("n3w-s3cret") && !text.contains("t0ps3cret"));
    }
    assert!(json.contains("\"TOKEN\": \"(sensitive)\""));
    for c in &observed.containers {
        assert!(c.labels.values().all(|v| !v.contains("t0ps3cret")));
    }
}

#[test]
fn a_moved_tag_replaces_by_digest() {
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            o.image_digests.insert("worker:1".into(), DIGEST_B.into());
        },
    );
    check(
        &plan,
        "api: unchanged\ndb: unchanged\nworker: replace [image digest changed: sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb]",
    );
    // A container created while the digest was unknown (empty label) shows `unknown`.
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            for c in &mut o.containers {
                if c.service == "worker" {
                    c.labels
                        .insert(crate::labels::IMAGE_DIGEST.into(), String::new());
                }
            }
        },
    );
    check(
        &plan,
        "api: unchanged\ndb: unchanged\nworker: replace [image digest changed: unknown -> sha256:aaaaaaaaaaaa]",
    );
    // An unknown digest is no reason to replace.
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            o.image_digests.remove("worker:1");
        },
    );
    assert!(!plan.has_changes(), "{}", actions(&plan));
}

#[test]
fn a_new_tag_is_a_config_and_digest_change() {
    let plan = replan(
        |s| s.replace("image: api:1", "image: api:2"),
        |o| {
            o.image_digests.insert("api:2".into(), DIGEST_B.into());
        },
    );
    check(
        &plan,
        "api: replace [image digest changed: sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb; configuration changed: image]\ndb: unchanged\nworker: unchanged",
    );
}

#[test]
fn unhealthy_or_exited_containers_are_replaced() {
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            for c in &mut o.containers {
                match c.service.as_str() {
                    "db" => c.health = HealthStatus::Unhealthy,
                    "worker" => c.state = ContainerState::Exited { code: 137 },
                    _ => {}
                }
            }
        },
    );
    check(
        &plan,
        "api: unchanged\ndb: replace [container shop-db-1-00000000 is unhealthy]\nworker: replace [container shop-worker-1-00000000 is not running (exited (137))]",
    );
}

#[test]
fn replica_changes_scale() {
    let plan = replan(
        |s| s.replace("image: worker:1", "image: worker:1\n    replicas: 3"),
        |_| {},
    );
    check(&plan, "api: unchanged\ndb: unchanged\nworker: scale 1 -> 3");
    assert_eq!(
        summary_line(&plan),
        "Plan: 0 to create, 0 to replace, 1 to scale, 0 to remove."
    );
    let worker = &plan.services[2];
    assert_eq!(
        worker.desired.iter().map(|d| d.replica).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    // And back down: the same spec hash for every replica, so only the count differs.
    let three = load(&FLEET.replace("image: worker:1", "image: worker:1\n    replicas: 3"));
    let observed = applied(&compute(&three, &empty()), &empty());
    let plan = compute(&load(FLEET), &observed);
    check(&plan, "api: unchanged\ndb: unchanged\nworker: scale 3 -> 1");
}

#[test]
fn services_gone_from_the_manifest_are_removed() {
    let without_worker =
        |s: &str| s.replace("  worker:\n    image: worker:1\n    depends_on: [db]\n", "");
    let plan = replan(without_worker, |_| {});
    check(&plan, "api: unchanged\ndb: unchanged\nworker: remove");
    assert_eq!(plan.services[2].current.len(), 1);
    assert_eq!(
        summary_line(&plan),
        "Plan: 0 to create, 0 to replace, 1 to remove."
    );
}

#[test]
fn leftover_duplicates_and_foreign_objects() {
    let plan = replan(
        |s| s.to_owned(),
        |o| {
            let mut extra = o.containers[0].clone();
            extra.id = "leftover".into();
            extra.name = "shop-api-1-leftover".into();
            extra.created += 100;
            o.containers.push(extra);
            // The lock object and another project's container are not services of this one.
            let mut lock = o.containers[0].clone();
            lock.service = String::new();
            lock.labels.remove(crate::labels::SERVICE);
            o.containers.push(lock);
            let mut other = o.containers[1].clone();
            other
                .labels
                .insert(crate::labels::PROJECT.into(), "other".into());
            o.containers.push(other);
        },
    );
    // Replica 1 already runs what it should: the duplicate is removed, nothing is replaced.
    check(&plan, "api: scale 2 -> 1\ndb: unchanged\nworker: unchanged");
}

#[test]
fn fingerprint_tracks_the_engine_state_not_its_order() {
    let first = compute(&load(FLEET), &empty());
    let observed = applied(&first, &empty());
    let base = fingerprint(&observed);
    assert!(base.starts_with("sha256:") && base.len() == 71);
    assert_ne!(base, fingerprint(&empty()));

    let mut reordered = observed.clone();
    reordered.containers.reverse();
    reordered.networks.reverse();
    assert_eq!(fingerprint(&reordered), base);

    type Change = Box<dyn Fn(&mut Observed)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "state",
            Box::new(|o| o.containers[0].state = ContainerState::Exited { code: 0 }),
        ),
        (
            "health",
            Box::new(|o| o.containers[0].health = HealthStatus::Unhealthy),
        ),
        (
            "new container",
            Box::new(|o| {
                let mut c = o.containers[0].clone();
                c.id = "new".into();
                o.containers.push(c);
            }),
        ),
        (
            "removed container",
            Box::new(|o| {
                o.containers.pop();
            }),
        ),
        (
            "digest",
            Box::new(|o| {
                o.image_digests.insert("db:1".into(), DIGEST_B.into());
            }),
        ),
        (
            "network",
            Box::new(|o| {
                o.networks.clear();
            }),
        ),
        (
            "volume",
            Box::new(|o| {
                o.volumes.clear();
            }),
        ),
        (
            "spec label",
            Box::new(|o| {
                o.containers[0]
                    .labels
                    .insert(crate::labels::SPEC_HASH.into(), "x".into());
            }),
        ),
    ];
    for (what, change) in changes {
        let mut o = observed.clone();
        change(&mut o);
        assert_ne!(
            fingerprint(&o),
            base,
            "a change of {what} must change the fingerprint"
        );
    }
}

#[test]
fn saved_plans_round_trip_without_secrets() {
    let m = load(FLEET);
    let plan = compute(&m, &empty());
    let json = plan.to_json();
    let mut loaded = Plan::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
    let api = |p: &Plan| p.services.iter().find(|s| s.service == "api").cloned();
    let secret = |p: &Plan| {
        api(p).and_then(|s| {
            s.desired[0]
                .secrets
                .get("TOKEN")
                .and_then(|v| v.expose().map(str::to_owned))
        })
    };
    assert_eq!(secret(&loaded), None, "a saved plan holds no secret value");
    loaded.restore_secrets(&m).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(secret(&loaded).as_deref(), Some("t0ps3cret"));
    assert_eq!(loaded, plan);

    let changed = load(&FLEET.replace("B: \"2\"", "B: \"9\""));
    let mut again = Plan::from_json(&json).unwrap_or_else(|e| panic!("{e}"));
    let err = again.restore_secrets(&changed).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("the manifest changed since the plan was made (service `db` differs); make the plan again")
    );

    let future = json.replacen("\"format_version\": 1", "\"format_version\": 2", 1);
    let err = Plan::from_json(&future).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("the saved plan has format version 2, this deployer reads version 1; make the plan again with this deployer")
    );
}

#[test]
fn a_saved_plan_from_before_the_event_checks_still_reads() {
    let plan = replan(|s| s.replace("B: \"2\"", "B: \"3\""), |_| {});
    let mut v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("events");
    }
    let back = Plan::from_json(&v.to_string()).map_err(|e| e.to_string());
    assert_eq!(
        back.map(|p| (p.events.checked, p.refused())),
        Ok((false, false))
    );
}

#[test]
fn json_schema_top_level_shape() {
    let plan = replan(|s| s.replace("B: \"2\"", "B: \"3\""), |_| {});
    let v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap_or_default();
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "deploy_order",
            "events",
            "fingerprint",
            "format_version",
            "manifests",
            "networks_to_create",
            "project",
            "services",
            "summary",
            "volumes_to_create"
        ]
    );
    let db = &v["services"][1];
    assert_eq!(db["service"], "db");
    assert_eq!(
        db["action"],
        serde_json::json!({"type": "replace", "reasons": [{"reason": "config_changed", "fields": ["environment"],
            "changes": [{"field": "environment", "added": [], "changed": ["B"], "removed": []}]}]})
    );
    assert_eq!(
        db["current"][0]["state"],
        serde_json::json!({"status": "running"})
    );
    assert_eq!(db["current"][0]["health"], "healthy");
    assert_eq!(v["summary"]["replace"], 1);
}

#[test]
fn human_rendering() {
    let plan = replan(
        |s| {
            s.replace("B: \"2\"", "B: \"3\"")
                .replace("image: worker:1", "image: worker:1\n    replicas: 2")
                .replace(
                    "  api:\n",
                    "  web:\n    image: web:1\n    secrets:\n      KEY: {env: TOKEN}\n  api:\n",
                )
        },
        |o| {
            o.image_digests.insert("web:1".into(), DIGEST_B.into());
            for c in &mut o.containers {
                if c.service == "api" {
                    c.service = "legacy".into();
                }
            }
        },
    );
    let expected = "\
Project shop

+ api: create (1 replica)
    image    api:1 (sha256:aaaaaaaaaaaa)
    ports    8080->80
    secrets  TOKEN=(sensitive)

~ db: replace (1 replica)
    configuration changed: environment
      environment: B changed

+ web: create (1 replica)
    image    web:1 (sha256:bbbbbbbbbbbb)
    secrets  KEY=(sensitive)

^ worker: scale 1 -> 2
    image    worker:1 (sha256:aaaaaaaaaaaa)

- legacy: remove (no longer in the manifest), 1 container
    shop-api-1-00000000 (running, healthy)

Plan: 2 to create, 1 to replace, 1 to scale, 1 to remove.
";
    assert_eq!(render_human(&plan, false), expected);
    let colored = render_human(&plan, true);
    assert!(colored.contains("\x1b[33m~ db: replace (1 replica)\x1b[0m"));
    assert!(colored.contains("\x1b[32m+ api: create (1 replica)\x1b[0m"));
}

// Regression (issue 18): plans named only the changed fields, and showed an ephemeral host
// port `127.0.0.1:8080` as if it were host port 8080.
#[test]
fn plans_show_which_keys_and_ports_changed_never_values() {
    let before = load(FLEET);
    let observed = applied(&compute(&before, &empty()), &empty());
    let other = |name: &str| match name {
        "TOKEN" => Some("n3w-s3cret".to_owned()),
        _ => None,
    };
    let edited = FLEET
        .replace("B: \"2\"", "C: \"3\"")
        .replace("A: \"1\"", "A: \"9\"")
        .replace(
            "ports: [\"8080:80\"]",
            "ports: [{target: 80, host_ip: 127.0.0.1}, \"9090:90/udp\"]",
        );
    let after = manifest::load_sources(&[(PathBuf::from("m.yaml"), edited)], &other)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = compute(&after, &observed);
    let human = render_human(&plan, false);
    assert!(
        human.contains(
            "~ api: replace (1 replica)
    configuration changed: ports, secrets
      secrets: TOKEN changed (values not shown)
      ports: 8080->80 => 127.0.0.1:<random>->80, 9090->90/udp
"
        ),
        "{human}"
    );
    assert!(
        human.contains(
            "~ db: replace (1 replica)
    configuration changed: environment
      environment: A changed; C added; B removed
"
        ),
        "{human}"
    );
    let json = plan.to_json();
    for text in [&json, &human] {
        assert!(!text.contains("n3w-s3cret") && !text.contains("t0ps3cret"));
    }
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let db = &v["services"][1]["action"]["reasons"][0];
    assert_eq!(
        db["changes"],
        serde_json::json!([{"field": "environment", "added": ["C"], "changed": ["A"], "removed": ["B"]}])
    );
    for c in &observed.containers {
        assert!(c.labels.values().all(|v| !v.contains("t0ps3cret")));
    }

    // Containers made before `deployer.detail` existed still plan, naming only the fields.
    let mut old = observed.clone();
    for c in &mut old.containers {
        c.labels.remove(labels::DETAIL);
    }
    let plan = compute(&after, &old);
    check(
        &plan,
        "api: replace [configuration changed: ports, secrets]\ndb: replace [configuration changed: environment]\nworker: unchanged",
    );
    let human = render_human(&plan, false);
    assert!(
        !human.contains("environment: ") && !human.contains("secrets: "),
        "{human}"
    );
}

#[test]
fn no_changes_rendering() {
    let plan = replan(|s| s.to_owned(), |_| {});
    let expected = "\
Project shop

= api: unchanged
    image    api:1 (sha256:aaaaaaaaaaaa)

= db: unchanged
    image    db:1 (sha256:aaaaaaaaaaaa)

= worker: unchanged
    image    worker:1 (sha256:aaaaaaaaaaaa)

No changes.
";
    assert_eq!(render_human(&plan, false), expected);
}

#[test]
fn stop_signal_init_user_and_secret_targets_roll_and_drain_does_not() {
    let add = |extra: &str| {
        let extra = extra.to_owned();
        move |s: &str| {
            s.replace(
                "    image: worker:1\n",
                &format!("    image: worker:1\n{extra}"),
            )
        }
    };
    for (extra, field) in [
        ("    stop_signal: SIGQUIT\n", "stop_signal"),
        ("    init: true\n", "init"),
        ("    user: \"1000\"\n", "user"),
    ] {
        let plan = replan(add(extra), |_| {});
        check(
            &plan,
            &format!(
                "api: unchanged\ndb: unchanged\nworker: replace [configuration changed: {field}]"
            ),
        );
        // And back: a key removed again is named too.
        let set = load(&add(extra)(FLEET));
        let observed = applied(&compute(&set, &empty()), &empty());
        let plan = compute(&load(FLEET), &observed);
        check(
            &plan,
            &format!(
                "api: unchanged\ndb: unchanged\nworker: replace [configuration changed: {field}]"
            ),
        );
    }
    let plan = replan(add("    drain: 10s\n"), |_| {});
    assert!(!plan.has_changes(), "{}", actions(&plan));
    let plan = replan(
        |s| s.replace("{env: TOKEN}", "{env: TOKEN, target: /run/secrets/token}"),
        |_| {},
    );
    check(
        &plan,
        "api: replace [configuration changed: secrets]\ndb: unchanged\nworker: unchanged",
    );
    let spec = &plan
        .services
        .iter()
        .find(|s| s.service == "api")
        .expect("api")
        .desired[0];
    assert_eq!(spec.env_list().expect("values"), Vec::<String>::new());
    assert_eq!(
        spec.secret_file_contents().expect("values"),
        vec![("/run/secrets/token", "t0ps3cret")]
    );
    assert!(!plan.to_json().contains("t0ps3cret"));
}

#[test]
fn spec_hash_is_stable_across_runs() {
    // Pinned: a change here replaces every container of every fleet on the next apply, so it
    // must be deliberate.
    let m = load(FLEET);
    let db = &m.services["db"];
    let spec = crate::spec::container_spec(&m, db, 1);
    assert_eq!(spec.spec_hash, crate::spec::spec_hash(&spec));
    assert_eq!(
        spec.spec_hash,
        crate::spec::container_spec(&m, db, 2).spec_hash
    );
    assert_eq!(spec.name_prefix, "shop-db-1-");
    assert_eq!(spec.spec_hash, PINNED_DB_HASH);
}

const PINNED_DB_HASH: &str = "ea0041654816a9b1e0eafa4e1002579cc19372fc39d9d910dd171e145ec93671";

/// The event gates on a real plan: api (a consumer gaining Ev@2) and worker (starting to emit
/// it) are created together, both depending on db; api must roll a level before worker.
#[test]
fn event_checks_split_a_level_and_a_refusal_is_rendered() {
    let manifest = load(FLEET);
    let mut plan = compute(&manifest, &empty());
    let labels = |p: &str, c: &str| {
        BTreeMap::from([
            (contract::LABEL_PRODUCES.to_string(), p.to_string()),
            (contract::LABEL_CONSUMES.to_string(), c.to_string()),
        ])
    };
    let image = |i: &str, p: &str, c: &str| contract::ImageLabels {
        image: i.to_string(),
        labels: labels(p, c),
    };
    let mut inputs = EventInputs {
        running: BTreeMap::from([
            ("api".to_string(), image("api:0", "", "Ev@1")),
            ("worker".to_string(), image("worker:0", "Ev@1", "")),
        ]),
        desired: BTreeMap::from([
            ("db".to_string(), image("db:1", "", "")),
            ("api".to_string(), image("api:1", "", "Ev@1,Ev@2")),
            ("worker".to_string(), image("worker:1", "Ev@2", "")),
        ]),
        stored: None,
    };
    plan.check_events(&inputs, &BTreeSet::new()).unwrap();
    assert!(!plan.refused());
    assert_eq!(plan.deploy_order, [vec!["db"], vec!["api"], vec!["worker"]]);

    inputs
        .desired
        .insert("api".to_string(), image("api:1", "", "Ev@1"));
    let mut plan = compute(&manifest, &empty());
    plan.check_events(&inputs, &BTreeSet::new()).unwrap();
    assert!(plan.refused());
    let text = render_human(&plan, false);
    assert!(
        text.contains("  REFUSED a consumer cannot read what is produced\n          api (api:1) cannot read Ev@2, which worker (worker:1) emits")
            && text.ends_with("The event checks refuse this plan: apply will change nothing (see events above).\n"),
        "{text}"
    );
    let back = Plan::from_json(&plan.to_json()).map(|p| p.refused());
    assert!(matches!(back, Ok(true)));
}
