//! Valid manifests: what the checked form holds, through one `check(files, expected)` helper
//! that describes the manifest as text. (Broken manifests live in `tests/manifests/`.)

use std::fmt::Write as _;
use std::path::PathBuf;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "TAG" => Some("1.2".to_owned()),
        "EMPTY" => Some(String::new()),
        "TOKEN" => Some("from-env".to_owned()),
        _ => None,
    }
}

fn describe(m: &Manifest) -> String {
    let mut out = format!("project {}\n", m.project);
    if let Some(e) = &m.event_store {
        let _ = writeln!(out, "event store {}:{}", e.service, e.port);
    }
    for n in m.networks.values() {
        let _ = writeln!(out, "network {} -> {}", n.name, n.engine_name);
    }
    for v in m.volumes.values() {
        let _ = writeln!(out, "volume {} -> {}", v.name, v.engine_name);
    }
    for s in m.services.values() {
        let _ = writeln!(out, "service {}", s.name);
        let _ = writeln!(out, "  image {}", s.image);
        if let Some(c) = &s.command {
            let _ = writeln!(out, "  command {c:?}");
        }
        for (k, v) in &s.environment {
            let _ = writeln!(out, "  env {k}={v}");
        }
        for (k, v) in &s.secrets {
            let _ = writeln!(
                out,
                "  secret {k}={v} ({} chars)",
                v.expose().map_or(0, str::len)
            );
        }
        for p in &s.ports {
            let _ = writeln!(out, "  port {p}");
        }
        let nets: Vec<&str> = s.networks.iter().map(|n| n.as_str()).collect();
        let _ = writeln!(out, "  networks {}", nets.join(","));
        for v in &s.volumes {
            let _ = writeln!(out, "  mount {} {} ro={}", v.volume, v.target, v.read_only);
        }
        if let Some(h) = &s.health {
            let _ = writeln!(
                out,
                "  health {}:{} every {:?} timeout {:?} start {:?} retries {}",
                h.path, h.port, h.interval, h.timeout, h.start_period, h.retries
            );
        }
        if !s.depends_on.is_empty() {
            let deps: Vec<&str> = s.depends_on.iter().map(|d| d.as_str()).collect();
            let _ = writeln!(out, "  depends_on {}", deps.join(","));
        }
        let _ = writeln!(
            out,
            "  replicas {} update {:?}/{}/{:?} restart {:?} grace {:?}",
            s.replicas,
            s.update.order,
            s.update.parallelism,
            s.update.failure_action,
            s.restart,
            s.stop_grace_period
        );
        if s.resources != Resources::default() {
            let _ = writeln!(
                out,
                "  resources memory={:?} nano_cpus={:?}",
                s.resources.memory_bytes, s.resources.nano_cpus
            );
        }
        for (k, v) in &s.labels {
            let _ = writeln!(out, "  label {k}={v}");
        }
    }
    out
}

fn check(files: &[(&str, &str)], expected: &str) {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    let got = match load_sources(&sources, &env) {
        Ok(m) => describe(&m),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got.trim(), expected.trim());
}

#[test]
fn minimal_service_gets_the_defaults() {
    check(
        &[("m.yaml", "project: p\nservices:\n  api:\n    image: api\n")],
        "
project p
network default -> p-default
service api
  image api
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}

#[test]
fn interpolation_everywhere_values_are_written() {
    check(
        &[(
            "m.yaml",
            r#"
project: p
services:
  api:
    image: registry.local:5000/api:${TAG}
    command: serve --price "$$5" --name '${MISSING:-anon}'
    environment:
      - LEVEL=${EMPTY:-info}
      - RAW=${EMPTY-unused}
    replicas: ${REPLICAS:-2}
"#,
        )],
        r#"
project p
network default -> p-default
service api
  image registry.local:5000/api:1.2
  command ["serve", "--price", "$5", "--name", "anon"]
  env LEVEL=info
  env RAW=
  networks default
  replicas 2 update StartFirst/1/Rollback restart UnlessStopped grace 10s"#,
    );
}

#[test]
fn every_key_in_long_and_short_forms() {
    check(
        &[(
            "m.yaml",
            r#"
project: shop
networks:
  backend: {}
volumes:
  data:
services:
  db:
    image: db@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    command: [postgres, -c, "fsync=off"]
    volumes:
      - data:/var/lib/db
      - {source: data, target: /backup, read_only: true}
    networks: [backend]
    restart: on-failure:3
    replicas: 3
    stop_grace_period: 1m30s
    resources: {memory: 1g, cpus: "1.5"}
  api:
    image: api:1
    ports:
      - "127.0.0.1:8080:80"
      - {target: 9090, protocol: udp}
    networks: [default, backend]
    health:
      path: /ready
      interval: 200ms
      timeout: 2s
      start_period: 1m
      retries: 5
    depends_on: [db]
    update: {order: stop-first, parallelism: 2, failure_action: pause}
    labels:
      com.example.team: payments
      com.example.empty:
"#,
        )],
        r#"
project shop
network backend -> shop-backend
network default -> shop-default
volume data -> shop-data
service api
  image api:1
  port 127.0.0.1:8080:80
  port 9090/udp
  networks default,backend
  health /ready:80 every 200ms timeout 2s start 60s retries 5
  depends_on db
  replicas 1 update StopFirst/2/Pause restart UnlessStopped grace 10s
  label com.example.empty=
  label com.example.team=payments
service db
  image db@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  command ["postgres", "-c", "fsync=off"]
  networks backend
  mount data /var/lib/db ro=false
  mount data /backup ro=true
  replicas 3 update StartFirst/1/Rollback restart OnFailure { max_retries: Some(3) } grace 90s
  resources memory=Some(1073741824) nano_cpus=Some(1500000000)"#,
    );
}

#[test]
fn overlays_merge_maps_and_replace_lists() {
    check(
        &[
            (
                "base.yaml",
                r#"
project: p
services:
  api:
    image: api:1
    ports: ["8080:80", "9090:90"]
    environment: {A: "1", B: "2"}
  db:
    image: db:1
"#,
            ),
            (
                "ci.yaml",
                r#"
services:
  api:
    image: api:2
    ports: ["18080:80"]
    environment: {B: "20", C: "3"}
"#,
            ),
        ],
        "
project p
network default -> p-default
service api
  image api:2
  env A=1
  env B=20
  env C=3
  port 18080:80
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s
service db
  image db:1
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}

#[test]
fn an_empty_overlay_changes_nothing() {
    check(
        &[
            ("m.yaml", "project: p\nservices:\n  api: {image: api}\n"),
            ("empty.yaml", "# nothing yet\n"),
        ],
        "
project p
network default -> p-default
service api
  image api
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}

#[test]
fn env_files_and_secrets_are_read_relative_to_the_manifest() {
    let dir = TempDir::new("env-files");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.0.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"))
    };
    write(
        "common.env",
        "# shared\nA=1\nexport B=\"two words\"\n\nC='3'\n",
    );
    write("password.txt", "hunter2\n");
    let manifest = dir.0.join("m.yaml");
    let text = r#"
project: p
services:
  api:
    image: api
    env_file: [common.env]
    environment: {C: over}
    secrets:
      DB_PASSWORD: {file: password.txt}
      API_TOKEN: {env: TOKEN}
"#;
    std::fs::write(&manifest, text).unwrap_or_else(|e| panic!("{e}"));
    let m = load(&[manifest], &env).unwrap_or_else(|e| panic!("{e}"));
    let got = describe(&m);
    assert!(
        got.contains("  env A=1\n  env B=two words\n  env C=over\n"),
        "{got}"
    );
    assert!(
        got.contains("  secret API_TOKEN=(sensitive) (8 chars)\n  secret DB_PASSWORD=(sensitive) (7 chars)\n"),
        "{got}"
    );
    let api = &m.services["api"];
    assert_eq!(api.secrets["DB_PASSWORD"].expose(), Some("hunter2"));
    assert!(
        !format!("{m:?}").contains("hunter2"),
        "Debug never shows a secret"
    );
}

#[test]
fn health_port_defaults_to_the_first_container_port() {
    check(
        &[(
            "m.yaml",
            "project: p\nservices:\n  api:\n    image: api\n    ports: [\"8080\"]\n    health: {}\n",
        )],
        "
project p
network default -> p-default
service api
  image api
  port 8080
  networks default
  health /health:8080 every 1s timeout 1s start 0ns retries 30
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}

#[test]
fn anchors_merge_keys_and_extension_fields() {
    check(
        &[(
            "m.yaml",
            r#"
project: p
x-common: &common
  restart: always
  environment: {LOG: info}
services:
  a:
    <<: *common
    image: a
  b:
    <<: *common
    image: b
    restart: "no"
"#,
        )],
        "
project p
network default -> p-default
service a
  image a
  env LOG=info
  networks default
  replicas 1 update StartFirst/1/Rollback restart Always grace 10s
service b
  image b
  env LOG=info
  networks default
  replicas 1 update StartFirst/1/Rollback restart No grace 10s",
    );
}

#[test]
fn deploy_order_levels() {
    let text = r#"
project: p
services:
  gateway: {image: g, depends_on: [accounts, transfers]}
  accounts: {image: a, depends_on: [event-store]}
  transfers: {image: t, depends_on: [event-store]}
  event-store: {image: e}
  view: {image: v, depends_on: [event-store]}
  canary: {image: c}
"#;
    let m = load_sources(&[(PathBuf::from("m.yaml"), text.to_owned())], &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let levels: Vec<String> = m
        .deploy_order()
        .iter()
        .map(|l| l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        levels,
        ["canary,event-store", "accounts,transfers,view", "gateway"]
    );
}

#[test]
fn no_files_and_unreadable_files() {
    let err = load(&[], &env).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("no manifest given: use -f FILE"));
    let err = load(&[PathBuf::from("/nonexistent/m.yaml")], &env)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("/nonexistent/m.yaml: cannot read the manifest: No such file or directory (os error 2); check the path")
    );
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "deployer-manifest-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn no_input_makes_the_checker_panic() {
    // Every prefix of the annotated example, and the example with bytes replaced by YAML's
    // special characters (a fixed pseudo-random sequence), must give Ok or Err, never a panic.
    let example = include_str!("../../manifest-example.yaml");
    let env = |_: &str| None;
    let run = |text: &str| {
        let _ = load_sources(&[(PathBuf::from("fuzz.yaml"), text.to_owned())], &env);
    };
    for end in (0..=example.len()).filter(|i| example.is_char_boundary(*i)) {
        run(&example[..end]);
    }
    let specials = b":-[]{}&*!|>'\"%@`#,? \n\t$";
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut bytes = example.as_bytes().to_vec();
        for _ in 0..3 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = specials[(next() % specials.len() as u64) as usize];
        }
        if let Ok(text) = String::from_utf8(bytes) {
            run(&text);
        }
    }
}

#[test]
fn depends_on_long_form_as_compose_writes_it() {
    check(
        &[(
            "m.yaml",
            "project: p\nservices:\n  db: {image: db}\n  q: {image: q}\n  api:\n    image: api\n    depends_on:\n      db: {condition: service_healthy}\n      q:\n",
        )],
        "
project p
network default -> p-default
service api
  image api
  networks default
  depends_on db,q
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s
service db
  image db
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s
service q
  image q
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}

#[test]
fn stop_signal_init_user_drain_and_secret_targets_are_read() {
    let sources = vec![(
        PathBuf::from("m.yaml"),
        r#"
project: p
services:
  api:
    image: api
    stop_signal: quit
    init: true
    user: "1000:app"
    drain: 500ms
    secrets:
      TOKEN: {env: TOKEN, target: /run/secrets/token}
      PLAIN: {env: TOKEN}
  web:
    image: web
"#
        .to_owned(),
    )];
    let m = load_sources(&sources, &env).unwrap_or_else(|e| panic!("{e}"));
    let api = &m.services["api"];
    assert_eq!(api.stop_signal.as_deref(), Some("SIGQUIT"));
    assert!(api.init);
    assert_eq!(api.user.as_deref(), Some("1000:app"));
    assert_eq!(api.update.drain, std::time::Duration::from_millis(500));
    assert_eq!(
        api.secret_files.get("TOKEN").map(String::as_str),
        Some("/run/secrets/token")
    );
    assert!(!api.secret_files.contains_key("PLAIN"));
    let web = &m.services["web"];
    assert_eq!(
        (web.stop_signal.as_deref(), web.init, web.user.as_deref()),
        (None, false, None)
    );
    assert_eq!(web.update.drain, DEFAULT_DRAIN);
}

#[test]
fn the_event_store_is_named_by_service_and_port() {
    check(
        &[(
            "m.yaml",
            "project: p\nevent_store:\n  service: store\n  port: 8100\nservices:\n  store:\n    image: es\n",
        )],
        "
project p
event store store:8100
network default -> p-default
service store
  image es
  networks default
  replicas 1 update StartFirst/1/Rollback restart UnlessStopped grace 10s",
    );
}
