//! Health gates beyond HTTP (`health.tcp`, `health.command`), probed from inside the project
//! network on an engine that is not local, and `status` showing the gate's view.

use std::process::{Command, Output};

use crate::support::{self, build_canary, Project};

fn deployer(args: &[&str]) -> Command {
    let mut c = Command::new(support::deployer_bin());
    c.args(args);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Three canary services, none publishing a port: `web` with an HTTP check (on `web_image`),
/// `db` with a TCP check and `cmd` with a command check (both on `cmd_image`).
fn manifest(project: &str, web_image: &str, cmd_image: &str) -> String {
    let service = |name: &str, health: &str| {
        let image = if name == "web" { web_image } else { cmd_image };
        format!(
            "  {name}:\n    image: {image}\n    health:\n{health}      interval: 100ms\n      timeout: 1s\n      retries: 10\n    stop_grace_period: 1s\n"
        )
    };
    format!(
        "project: {project}\nservices:\n{}{}{}",
        service("web", "      path: /health\n      port: 8090\n"),
        service("db", "      tcp: 8090\n"),
        service("cmd", "      command: [\"/canary\", \"healthcheck\"]\n"),
    )
}

/// `deployer status --output json`: container health per service.
fn status_health(envs: &[(&str, String)], f: &str) -> Vec<(String, String, String)> {
    let mut cmd = deployer(&["status", "-f", f, "--output", "json"]);
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().expect("run status");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let mut v: Vec<_> = s
        .as_array()
        .expect("array")
        .iter()
        .map(|svc| {
            let c = &svc["containers"][0];
            (
                svc["service"].as_str().unwrap_or_default().to_string(),
                c["health"].as_str().unwrap_or_default().to_string(),
                c["health_check"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_command_checks_gate_the_roll_and_status_shows_the_gates_view() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("kinds");
    build_canary(&p.image("v1"), &p.name, &[], false);
    build_canary(&p.image("v2"), &p.name, &[("CANARY_HEALTH", "fail")], false);
    let file = p.write(
        "deploy.yaml",
        &manifest(&p.name, &p.image("v1"), &p.image("v1")),
    );
    let f = file.to_str().expect("utf-8 path");
    let out = deployer(&["apply", "-f", f]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        status_health(&[], f),
        vec![
            (
                "cmd".into(),
                "healthy".into(),
                "command /canary healthcheck".into()
            ),
            ("db".into(), "healthy".into(), "TCP :8090".into()),
            ("web".into(), "healthy".into(), "GET :8090/health".into()),
        ]
    );

    // A version whose health command fails is not rolled out.
    p.write(
        "deploy.yaml",
        &manifest(&p.name, &p.image("v1"), &p.image("v2")),
    );
    let out = deployer(&["apply", "-f", f]).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`/canary healthcheck` exited with 1"), "{err}");
    assert!(
        !err.contains("Published") && !err.contains("Some("),
        "{err}"
    );
    drop(engine);
}

/// The host's address on the default bridge: the IPAM gateway when the engine records one, else
/// the address of the bridge's interface (engines restarted with an existing `docker0` leave the
/// gateway out of IPAM).
fn bridge_gateway() -> String {
    let recorded = support::run(Command::new("docker").args([
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]));
    if !recorded.trim().is_empty() {
        return recorded.trim().to_string();
    }
    let interface = support::run(Command::new("docker").args([
        "network",
        "inspect",
        "bridge",
        "-f",
        r#"{{index .Options "com.docker.network.bridge.name"}}"#,
    ]));
    let shown =
        support::run(Command::new("ip").args(["-4", "-o", "addr", "show", interface.trim()]));
    shown
        .split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no IPv4 address on {interface}: {shown}"))
        .to_string()
}

/// Forwards TCP connections on `addr` to the engine's unix socket: the same engine, seen as a
/// remote one.
async fn remote_engine_proxy(socket: String) -> String {
    let gateway = bridge_gateway();
    let listener = tokio::net::TcpListener::bind(format!("{gateway}:0"))
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    format!("tcp://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_is_probed_from_inside_the_network_without_published_ports() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let local =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| deployer::engine::DEFAULT_HOST.to_string());
    let Some(socket) = local.strip_prefix("unix://") else {
        panic!("this test needs the engine on a unix socket, not {local}");
    };
    let host = remote_engine_proxy(socket.to_string()).await;
    let p = Project::new("remote");
    build_canary(&p.image("v1"), &p.name, &[], false);
    build_canary(&p.image("v2"), &p.name, &[("CANARY_HEALTH", "fail")], false);
    let file = p.write(
        "deploy.yaml",
        &manifest(&p.name, &p.image("v1"), &p.image("v1")),
    );
    let f = file.to_str().expect("utf-8 path");
    let remote = |args: &[&str]| {
        let mut c = deployer(args);
        c.env("DOCKER_HOST", &host)
            .env_remove("DEPLOYER_PROBE_BINARY");
        c
    };

    // Without a static binary for the probe: plan warns, apply fails at once and says why.
    let out = remote(&["plan", "-f", f]).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("engine: {host} (DOCKER_HOST)")),
        "{err}"
    );
    assert!(
        err.contains("warning: apply cannot run the health checks of db, web: ")
            && err.contains("DEPLOYER_PROBE_BINARY is not set"),
        "{err}"
    );
    let started = std::time::Instant::now();
    let out = remote(&["apply", "-f", f]).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("run from a probe container inside the project network")
            && !err.contains("Published"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the apply waited out the health deadline: {err}"
    );

    // With one: every kind of check passes through the probe, no port published.
    let binary = support::deployer_static_binary();
    let probe_env = [
        ("DOCKER_HOST", host.clone()),
        ("DEPLOYER_PROBE_BINARY", binary.display().to_string()),
    ];
    let out = remote(&["apply", "-f", f])
        .envs(probe_env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        status_health(&probe_env, f),
        vec![
            (
                "cmd".into(),
                "healthy".into(),
                "command /canary healthcheck".into()
            ),
            ("db".into(), "healthy".into(), "TCP :8090".into()),
            ("web".into(), "healthy".into(), "GET :8090/health".into()),
        ]
    );
    // The event checks ask the store from inside the network too: web stands in for a store
    // from before `GET /event-types`, and its 404 comes back through the probe container.
    let with_store = p.write(
        "events.yaml",
        &format!(
            "{}event_store:\n  service: web\n  port: 8090\n",
            manifest(&p.name, &p.image("v1"), &p.image("v1"))
        ),
    );
    let out = remote(&["plan", "-f", with_store.to_str().expect("utf-8 path")])
        .envs(probe_env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(
            "note    the running event store (service web) does not answer GET /event-types (it predates it)"
        ),
        "{shown}"
    );
    // A failing HTTP check is seen through the probe too; nothing of the probe is left behind.
    p.write(
        "deploy.yaml",
        &manifest(&p.name, &p.image("v2"), &p.image("v1")),
    );
    let out = remote(&["apply", "-f", f])
        .envs(probe_env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/health answered 503"), "{err}");
    let left = engine
        .list_containers(&[("deployer.probe", Some(p.name.as_str()))])
        .await
        .expect("list");
    assert!(left.is_empty(), "probe containers left: {left:?}");
}
