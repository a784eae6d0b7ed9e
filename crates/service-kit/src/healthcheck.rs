//! The `healthcheck` subcommand: images are `FROM scratch` and have no curl, so Docker's
//! HEALTHCHECK runs `/<binary> healthcheck`, which probes the service over plain HTTP/1.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long the probe waits for connecting, writing and reading, each.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends `GET {path}` to `127.0.0.1:{port}` and exits 0 on a 200 answer, 1 otherwise.
///
/// Uses a blocking `std::net::TcpStream` with timeouts, so no async runtime is needed. The reason
/// for a failure is printed to stderr.
pub fn run_healthcheck(port: u16, path: &str) -> ExitCode {
    match probe(port, path, HEALTHCHECK_TIMEOUT) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: GET {path} on port {port} answered {status}, expected 200");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck: GET {path} on port {port} failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Performs the GET and returns the HTTP status code of the answer.
pub fn probe(port: u16, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;

    // The status line is all we need; read until the first line ends or 1 KiB arrived.
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer does not start with an HTTP status line",
        )
    })
}

fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn check_status_line(input: &str, expected: Option<u16>) {
        assert_eq!(
            parse_status_line(input.as_bytes()),
            expected,
            "input: {input:?}"
        );
    }

    #[test]
    fn status_lines() {
        check_status_line("HTTP/1.1 200 OK\r\n", Some(200));
        check_status_line("HTTP/1.0 503 Service Unavailable\r\n", Some(503));
        check_status_line("HTTP/1.1 404\r\n", Some(404));
        check_status_line("SSH-2.0-OpenSSH\r\n", None);
        check_status_line("", None);
        check_status_line("HTTP/1.1 abc\r\n", None);
    }

    fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        let port = listener.local_addr().expect("local addr").port();
        std::thread::spawn(move || {
            if let Ok((mut socket, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf);
                let _ = socket.write_all(answer.as_bytes());
            }
        });
        port
    }

    #[test]
    fn healthy_service_exits_zero() {
        let port = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(run_healthcheck(port, "/health"), ExitCode::SUCCESS);
    }

    #[test]
    fn unhealthy_service_exits_one() {
        let port = serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(run_healthcheck(port, "/health"), ExitCode::FAILURE);
    }

    #[test]
    fn closed_port_exits_one() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
            listener.local_addr().expect("local addr").port()
        };
        assert_eq!(run_healthcheck(port, "/health"), ExitCode::FAILURE);
    }
}
