//! Test support for a service's binary run as a process: the same `PORT` environment
//! variable, `healthcheck` subcommand and SIGTERM shutdown that the images rely on. Enabled by
//! the `testing` feature, for dev-dependencies only.
//!
//! ```ignore
//! let service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_accounts"), [("EVENT_STORE_URL", url)]);
//! service.wait_healthy(Duration::from_secs(20)).await;
//! assert!(service.terminate(Duration::from_secs(15)).await.success());
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether `binary healthcheck` succeeds against the service on `port`.
pub fn healthcheck(binary: &Path, port: u16) -> bool {
    Command::new(binary)
        .arg("healthcheck")
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .status()
        .expect("the healthcheck subcommand runs")
        .success()
}

/// A service binary running on a free port (or a given one); killed with SIGKILL and reaped if
/// the test ends before it does.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    binary: PathBuf,
    port: u16,
}

impl ServiceProcess {
    /// Starts `binary` with `PORT` set to a free port and `envs`, its stderr discarded. Panics
    /// if the healthcheck already passes before the start, which would make it prove nothing.
    pub fn spawn<K, V>(binary: impl AsRef<Path>, envs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::spawn_on(binary, free_port(), envs)
    }

    /// Like [`spawn`](Self::spawn), on `port`: e.g. to start the service again on the port its
    /// clients already use.
    pub fn spawn_on<K, V>(
        binary: impl AsRef<Path>,
        port: u16,
        envs: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let binary = binary.as_ref().to_owned();
        assert!(!healthcheck(&binary, port), "nothing listens yet");
        let child = Command::new(&binary)
            .env("PORT", port.to_string())
            .envs(envs)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        ServiceProcess {
            child,
            binary,
            port,
        }
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until the healthcheck passes; panics after `limit`.
    pub async fn wait_healthy(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let (binary, port) = (self.binary.clone(), self.port);
            let healthy = tokio::task::spawn_blocking(move || healthcheck(&binary, port))
                .await
                .expect("the healthcheck task");
            if healthy {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{} never became healthy within {limit:?}",
                self.binary.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit; panics after `limit`.
    pub async fn terminate(mut self, limit: Duration) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let stopped = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the service") {
                return status;
            }
            assert!(
                stopped.elapsed() < limit,
                "{} did not stop within {limit:?} of SIGTERM",
                self.binary.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (SIGKILL for a crash, SIGTERM for a stop) and returns at once.
    pub fn signal(&self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.binary.display()));
    }

    /// Waits for the exit, blocking the thread; panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the service") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "{} did not exit within {limit:?}",
                self.binary.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then reaps the process: it gets no chance to finish anything.
    pub fn kill(self) {
        // Drop kills and reaps.
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that `binary` with `PORT=http` fails with a message naming the variable, and does
/// not panic.
pub fn assert_a_bad_port_is_reported(binary: impl AsRef<Path>) {
    let output = Command::new(binary.as_ref())
        .env("PORT", "http")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("environment variable PORT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
