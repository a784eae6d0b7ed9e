//! The Docker command line, as the tests use it: is the daemon there, run a command and keep its
//! output, find a container and its address.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::Error;

/// The variable that turns "Docker is missing" from a notice into a test failure.
pub const REQUIRE_DOCKER: &str = "DEPLOYER_REQUIRE_DOCKER";

/// Whether the Docker daemon answers. When it does not, a test calling this returns early with
/// a printed notice; with `DEPLOYER_REQUIRE_DOCKER=1` it panics instead, so the test fails.
pub fn available_or_skip(test: &str) -> bool {
    let answer = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    let problem = match answer {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => format!("cannot run the docker command: {e}"),
    };
    if std::env::var(REQUIRE_DOCKER).as_deref() == Ok("1") {
        panic!(
            "{test}: the Docker daemon does not answer ({problem}) and {REQUIRE_DOCKER}=1; \
             start Docker or unset {REQUIRE_DOCKER}"
        );
    }
    eprintln!(
        "NOTICE {test}: skipped, the Docker daemon does not answer ({problem}); \
         set {REQUIRE_DOCKER}=1 to make this a failure"
    );
    false
}

/// Runs `command`; its stdout when it exits 0, else an error with its output.
pub fn run(what: &str, command: &mut Command) -> Result<String, Error> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io(format!(
            "{what}: starting {:?}",
            command.get_program()
        )))?;
    checked(what, out)
}

/// The stdout of a finished command when it exited 0, else an error with its output.
pub fn checked(what: &str, out: Output) -> Result<String, Error> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            what: what.to_owned(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// `docker ARGS...`; its stdout.
pub fn docker(args: &[&str]) -> Result<String, Error> {
    run(
        &format!("docker {}", args.join(" ")),
        Command::new("docker").args(args),
    )
}

/// The names of the running containers of `service` in deployer project `project`.
pub fn containers_of(project: &str, service: &str) -> Result<Vec<String>, Error> {
    let out = docker(&[
        "ps",
        "--filter",
        &format!("label=deployer.project={project}"),
        "--filter",
        &format!("label=deployer.service={service}"),
        "--format",
        "{{.Names}}",
    ])?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// The one running container of `service`, waiting up to `wait` for one to exist.
pub fn container_of(project: &str, service: &str, wait: Duration) -> Result<String, Error> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let names = containers_of(project, service)?;
        if let Some(first) = names.into_iter().next() {
            return Ok(first);
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::unexpected(
                format!("finding the container of {service} in project {project}"),
                format!("none runs after {wait:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The container's address on its first network (reachable from this host on a local engine).
pub fn container_ip(container: &str) -> Result<String, Error> {
    let out = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        container,
    ])?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| Error::unexpected(format!("reading the address of {container}"), "none"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, Error> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("finding a free port"))?
        .port();
    Ok(port)
}

/// Waits until the containers of `project` use under 5 % of a CPU together (`docker stats`,
/// every 5 s), at most `within`. Returns how long it waited.
pub fn wait_until_idle(project: &str, within: Duration) -> Result<Duration, Error> {
    let started = std::time::Instant::now();
    loop {
        let out = docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"])?;
        let busy: f64 = out
            .lines()
            .filter(|l| l.starts_with(project))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|c| c.trim_end_matches('%').parse::<f64>().ok())
            .sum();
        if busy < 5.0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(Error::unexpected(
                format!("waiting for {project} to be idle"),
                format!("after {within:?} its containers still use {busy:.0} % of a CPU"),
            ));
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}
