//! Health probes as the roll's gate runs them: an HTTP or TCP check from where the container's
//! network can be reached, or a command run inside the container (exec API).
//!
//! On a local engine the deployer reaches container addresses itself (the fast path). On any
//! other engine it probes from inside the project network: a probe container made on the fly
//! `FROM scratch` out of a statically linked deployer binary (imported through the engine's
//! image API, so nothing is pulled), left idle, in which `deployer probe http|tcp` is exec'd.
//! Published ports are never needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::engine::{ContainerDetails, Engine};
use crate::manifest::{HealthCheck, HealthKind};

/// The label the probe container carries (value: the project).
pub const PROBE_LABEL: &str = "deployer.probe";
/// The environment variable naming a static deployer binary for probe containers.
pub const BINARY_ENV: &str = "DEPLOYER_PROBE_BINARY";
/// The probe container exits on its own after this long, should the deployer die first.
const IDLE_LIMIT: Duration = Duration::from_secs(3600);

/// Why one probe did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The container is not (yet) healthy; the gate tries again.
    NotYet(String),
    /// The probe cannot be run at all (no static binary, ...): waiting will not help.
    Impossible(String),
}

/// Probes containers for one command run (an apply, a rollback, a status); call
/// [`Prober::close`] at the end to remove the probe container, if one was started.
pub struct Prober<'a> {
    engine: &'a Engine,
    http: reqwest::Client,
    project: String,
    direct: bool,
    helper: tokio::sync::Mutex<Option<Result<Helper, String>>>,
}

struct Helper {
    id: String,
    networks: BTreeSet<String>,
}

impl<'a> Prober<'a> {
    /// A prober for `project`'s containers on `engine`. The fast path (probing container
    /// addresses from this process) is used for a local engine on Linux; `DEPLOYER_PROBE=network`
    /// forces the in-network probe.
    pub fn new(engine: &'a Engine, project: &str) -> Prober<'a> {
        let forced = std::env::var("DEPLOYER_PROBE").is_ok_and(|v| v == "network");
        Prober {
            engine,
            http: http_client(),
            project: project.to_string(),
            direct: cfg!(target_os = "linux") && engine.options().is_local() && !forced,
            helper: tokio::sync::Mutex::new(None),
        }
    }

    /// The engine probed.
    pub fn engine(&self) -> &'a Engine {
        self.engine
    }

    /// True when HTTP and TCP checks run from this process.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Runs `check` once against the container `d`, reached on `network` (else any of its
    /// networks).
    pub async fn check_once(
        &self,
        d: &ContainerDetails,
        check: &HealthCheck,
        network: &str,
    ) -> Result<(), ProbeFailure> {
        let timeout = if check.timeout.is_zero() {
            Duration::from_secs(2)
        } else {
            check.timeout
        };
        if check.kind == HealthKind::Command {
            return self.command(d, check, timeout).await;
        }
        let Some((net, host)) = address(&d.ips, network) else {
            return Err(ProbeFailure::NotYet(
                "the container has no network address".into(),
            ));
        };
        let target = match check.kind {
            HealthKind::Tcp => format!("{host}:{}", check.port),
            _ => format!("http://{host}:{}{}", check.port, http_path(&check.path)),
        };
        if self.direct {
            let r = match check.kind {
                HealthKind::Tcp => probe_tcp(&target, timeout).await,
                _ => probe_http(&self.http, &target, timeout).await,
            };
            return r.map_err(ProbeFailure::NotYet);
        }
        let helper = self
            .helper_on(net)
            .await
            .map_err(ProbeFailure::Impossible)?;
        let kind = if check.kind == HealthKind::Tcp {
            "tcp"
        } else {
            "http"
        };
        let cmd = probe_command(kind, &target, timeout);
        let out = self
            .engine
            .exec(&helper, &cmd, timeout + Duration::from_secs(5))
            .await
            .map_err(|e| ProbeFailure::NotYet(format!("running the probe container: {e}")))?;
        match out.exit_code {
            Some(0) => Ok(()),
            _ if out.timed_out => Err(ProbeFailure::NotYet(format!(
                "the probe of {target} did not finish within {timeout:?}"
            ))),
            _ => Err(ProbeFailure::NotYet(last_line(&out.output, "probe failed"))),
        }
    }

    /// `GET http://<address>:<port><path>` of container `name`, whose address per network is
    /// `ips`, reached on `network` (else any of its networks) from where that network can be
    /// reached (this process on a local engine, else the probe container), with the body read
    /// up to [`MAX_BODY_BYTES`]. `Ok` holds the body of a 200; `Err` says why there is none
    /// (no address, refused, another status, too large...).
    pub async fn get(
        &self,
        name: &str,
        ips: &BTreeMap<String, String>,
        network: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let Some((net, host)) = address(ips, network) else {
            return Err(format!("container {name} has no network address"));
        };
        let url = format!("http://{host}:{port}{}", http_path(path));
        if self.direct {
            return get_body(&self.http, &url, timeout, MAX_BODY_BYTES).await;
        }
        let helper = self.helper_on(net).await?;
        let cmd = probe_command("get", &url, timeout);
        let out = self
            .engine
            .exec(&helper, &cmd, timeout + Duration::from_secs(5))
            .await
            .map_err(|e| format!("running the probe container: {e}"))?;
        match out.exit_code {
            Some(0) => Ok(out.output),
            _ if out.timed_out => Err(format!("GET {url} did not finish within {timeout:?}")),
            _ => Err(last_line(&out.output, "the probe failed")),
        }
    }

    async fn command(
        &self,
        d: &ContainerDetails,
        check: &HealthCheck,
        timeout: Duration,
    ) -> Result<(), ProbeFailure> {
        let shown = check.command.join(" ");
        let out = self
            .engine
            .exec(&d.id, &check.command, timeout)
            .await
            .map_err(|e| ProbeFailure::NotYet(e.to_string()))?;
        match out.exit_code {
            Some(0) => Ok(()),
            _ if out.timed_out => Err(ProbeFailure::NotYet(format!(
                "`{shown}` did not finish within {timeout:?}"
            ))),
            Some(code) => Err(ProbeFailure::NotYet(format!(
                "`{shown}` exited with {code}: {}",
                last_line(&out.output, "no output")
            ))),
            None => Err(ProbeFailure::NotYet(format!(
                "`{shown}` did not report an exit code"
            ))),
        }
    }

    /// The probe container, started on first use and joined to `network`.
    async fn helper_on(&self, network: &str) -> Result<String, String> {
        let mut slot = self.helper.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_helper(network).await);
        }
        let helper = match slot.as_mut() {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("the probe container was not started".into()),
        };
        if !helper.networks.contains(network) {
            self.engine
                .connect_network(network, &helper.id)
                .await
                .map_err(|e| format!("joining the probe container to {network}: {e}"))?;
            helper.networks.insert(network.to_string());
        }
        Ok(helper.id.clone())
    }

    async fn start_helper(&self, network: &str) -> Result<Helper, String> {
        let binary = static_binary(&|k| std::env::var(k).ok()).map_err(|e| {
            format!(
                "health checks on the engine at {} run from a probe container inside the project network, \
                 and it cannot be made: {e}",
                self.engine.options().host
            )
        })?;
        let image = probe_image(self.engine, &binary).await?;
        let name = format!("{}-probe-{}", self.project, random_hex());
        let body = serde_json::json!({
            "Image": image,
            "Entrypoint": ["/deployer"],
            "Cmd": ["probe", "idle", "--secs", IDLE_LIMIT.as_secs().to_string()],
            "Labels": { PROBE_LABEL: self.project },
            "HostConfig": { "AutoRemove": true, "NetworkMode": network }
        });
        let id = self
            .engine
            .create_container_json(&name, body)
            .await
            .map_err(|e| format!("creating the probe container: {e}"))?;
        if let Err(e) = self.engine.start_container(&id).await {
            let _ = self.engine.remove_container(&id).await;
            return Err(format!("starting the probe container: {e}"));
        }
        Ok(Helper {
            id,
            networks: BTreeSet::from([network.to_string()]),
        })
    }

    /// Removes the probe container, if one was started.
    pub async fn close(&self) {
        if let Some(Ok(h)) = self.helper.lock().await.take() {
            let _ = self.engine.remove_container(&h.id).await;
        }
    }
}

/// The network to reach a container on (`network` when it has an address there, else its
/// first) and its address there as a URL host (an IPv6 one in brackets).
fn address<'m>(ips: &'m BTreeMap<String, String>, network: &str) -> Option<(&'m str, String)> {
    let (net, ip) = ips.get_key_value(network).or_else(|| ips.iter().next())?;
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.clone()
    };
    Some((net, host))
}

/// The path with a leading `/`.
fn http_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn last_line(output: &str, empty: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(empty)
        .to_string()
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// A statically linked deployer binary for the probe container: the running one when it is
/// static, else `DEPLOYER_PROBE_BINARY` (which must be static too).
pub fn static_binary(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this deployer binary: {e}"))?;
    if is_static_elf(&exe) == Ok(true) {
        return Ok(exe);
    }
    match env(BINARY_ENV).filter(|p| !p.trim().is_empty()) {
        Some(p) => {
            let path = PathBuf::from(&p);
            match is_static_elf(&path) {
                Ok(true) => Ok(path),
                Ok(false) => Err(format!(
                    "{BINARY_ENV}={p} is dynamically linked and cannot run FROM scratch; \
                     build a static one with `ci/build-static.sh deployer`"
                )),
                Err(e) => Err(format!("{BINARY_ENV}={p}: {e}")),
            }
        }
        None => Err(format!(
            "this deployer ({}) is dynamically linked and {BINARY_ENV} is not set; set it to a \
             statically linked deployer (`ci/build-static.sh deployer` builds \
             target/x86_64-unknown-linux-gnu/release/deployer)",
            exe.display()
        )),
    }
}

/// Whether `path` is an ELF executable without a program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    elf_is_static(&bytes).ok_or_else(|| format!("{} is not an ELF executable", path.display()))
}

/// `Some(true)` for a 64-bit little-endian ELF with no `PT_INTERP` program header.
fn elf_is_static(b: &[u8]) -> Option<bool> {
    if b.get(..4)? != b"\x7fELF" || *b.get(4)? != 2 || *b.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// Makes sure the probe image for `binary` exists (`deployer-probe:<hash of the binary>`),
/// importing it from a one-file archive when not; returns its name.
async fn probe_image(engine: &Engine, binary: &Path) -> Result<String, String> {
    let bytes = std::fs::read(binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let name = format!("deployer-probe:{}", &hash[..12]);
    match engine.image(&name).await {
        Ok(Some(_)) => return Ok(name),
        Ok(None) => {}
        Err(e) => return Err(format!("looking for the probe image: {e}")),
    }
    let archive = crate::engine::tar_one_file("deployer", &bytes, 0o755);
    engine
        .import_image(
            &name,
            archive,
            vec![
                "ENTRYPOINT [\"/deployer\"]".to_string(),
                format!("LABEL {PROBE_LABEL}=image"),
            ],
        )
        .await
        .map_err(|e| format!("importing the probe image: {e}"))?;
    Ok(name)
}

/// One HTTP probe: `Ok` on 200.
pub async fn probe_http(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(), String> {
    match http.get(url).timeout(timeout).send().await {
        Ok(r) if r.status().as_u16() == 200 => Ok(()),
        Ok(r) => Err(format!("GET {url} answered {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err(format!("GET {url}: no answer within {timeout:?}")),
        Err(e) if e.is_connect() => Err(format!("GET {url}: connection refused")),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

/// The largest body [`Prober::get`] and `deployer probe get` read.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// `GET url`: the body of a 200, read up to `max` bytes (more is an error).
pub async fn get_body(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max: usize,
) -> Result<String, String> {
    let mut resp = match http.get(url).timeout(timeout).send().await {
        Ok(r) if r.status().as_u16() == 200 => r,
        Ok(r) => return Err(format!("GET {url} answered {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => return Err(format!("GET {url}: no answer within {timeout:?}")),
        Err(e) if e.is_connect() => return Err(format!("GET {url}: connection refused")),
        Err(e) => return Err(format!("GET {url}: {e}")),
    };
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(format!("GET {url}: the answer is larger than {max} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("GET {url}: reading the answer: {e}")),
        }
    }
    String::from_utf8(body).map_err(|_| format!("GET {url}: the answer is not UTF-8 text"))
}

/// One TCP probe: `Ok` when `addr` accepts a connection.
pub async fn probe_tcp(addr: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("TCP {addr}: {e}")),
        Err(_) => Err(format!("TCP {addr}: no connection within {timeout:?}")),
    }
}

/// The HTTP client health probes use (no proxy, no TLS, no kept connections).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

/// `deployer probe http URL | get URL | tcp HOST:PORT [--timeout-ms N] | idle [--secs N]`,
/// the commands run inside the probe container. Prints one line (`get`: the body of a 200);
/// exit status 0 when healthy.
pub async fn run_cli(args: &[String]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let timeout = Duration::from_millis(flag("--timeout-ms", 2000));
    let result = match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("http"), Some(url)) => probe_http(&http_client(), url, timeout).await,
        (Some("tcp"), Some(addr)) => probe_tcp(addr, timeout).await,
        (Some("get"), Some(url)) => match get_body(&http_client(), url, timeout, MAX_BODY_BYTES).await {
            Ok(body) => {
                print!("{body}");
                return ExitCode::SUCCESS;
            }
            Err(e) => Err(e),
        },
        (Some("idle"), _) => {
            tokio::time::sleep(Duration::from_secs(flag("--secs", IDLE_LIMIT.as_secs()))).await;
            return ExitCode::SUCCESS;
        }
        _ => Err(
            "usage: deployer probe http URL | get URL | tcp HOST:PORT [--timeout-ms N] | idle [--secs N]"
                .into(),
        ),
    };
    match result {
        Ok(()) => {
            println!("healthy");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The services whose health checks cannot be probed on this engine, and why: checks that need
/// the in-network probe when no static deployer binary is available. `None` when all can.
pub fn unprobeable(
    engine: &Engine,
    checks: &[(String, Option<&HealthCheck>)],
) -> Option<(Vec<String>, String)> {
    let forced = std::env::var("DEPLOYER_PROBE").is_ok_and(|v| v == "network");
    if cfg!(target_os = "linux") && engine.options().is_local() && !forced {
        return None;
    }
    let needing: Vec<String> = checks
        .iter()
        .filter(|(_, c)| c.is_some_and(|c| c.kind != HealthKind::Command))
        .map(|(s, _)| s.clone())
        .collect();
    if needing.is_empty() {
        return None;
    }
    static_binary(&|k| std::env::var(k).ok())
        .err()
        .map(|e| (needing, e))
}

/// The `deployer probe KIND TARGET --timeout-ms N` command run in the probe container.
fn probe_command(kind: &str, target: &str, timeout: Duration) -> Vec<String> {
    let timeout_ms = timeout.as_millis().to_string();
    [
        "/deployer",
        "probe",
        kind,
        target,
        "--timeout-ms",
        &timeout_ms,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic_executables() {
        // This test binary is dynamically linked (target/debug).
        let exe = std::env::current_exe().expect("current exe");
        assert_eq!(is_static_elf(&exe), Ok(false));
        let mut elf = vec![0u8; 0x40 + 56 * 2];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert_eq!(elf_is_static(&elf), Some(true));
        elf[0x40 + 56..0x40 + 60].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert_eq!(elf_is_static(&elf), Some(false));
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn a_dynamic_binary_is_refused_with_what_to_do() {
        let exe = std::env::current_exe().expect("current exe");
        let none = static_binary(&|_| None).expect_err("no static binary");
        assert!(
            none.contains("is dynamically linked and DEPLOYER_PROBE_BINARY is not set"),
            "{none}"
        );
        let path = exe.display().to_string();
        let dynamic = static_binary(&|k| (k == BINARY_ENV).then(|| path.clone()))
            .expect_err("a dynamic DEPLOYER_PROBE_BINARY");
        assert!(
            dynamic.contains("is dynamically linked and cannot run FROM scratch"),
            "{dynamic}"
        );
    }

    #[test]
    fn the_archive_is_a_valid_tar() {
        let tar = crate::engine::tar_one_file("deployer", b"hello", 0o755);
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[257..262], b"ustar");
        let stored: u32 = tar[..512]
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        let field = std::str::from_utf8(&tar[148..154]).expect("octal");
        assert_eq!(u32::from_str_radix(field, 8), Ok(stored));
        assert_eq!(&tar[512..517], b"hello");
    }
}
