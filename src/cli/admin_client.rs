//! The one call the CLI makes to a running daemon: `POST /api/flush`, which
//! the daemon answers once every exchange it has answered is stored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long `flow stop` waits for the daemon's writer.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
pub enum FlushOutcome {
    /// The daemon answered 200: everything it answered is in the database,
    /// but for the responses still streaming it stopped waiting for.
    Flushed {
        still_streaming: u64,
    },
    /// Nothing listens on the admin address: no daemon, nothing to wait for.
    NoDaemon,
    TimedOut,
    /// Something answered, but not with 200 (or could not be reached).
    Failed(String),
}

/// Where to reach the admin listener configured as `listen`: a wildcard
/// address is reached on the loopback of its family.
pub fn admin_address(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

pub async fn flush(addr: SocketAddr, timeout: Duration) -> FlushOutcome {
    match tokio::time::timeout(timeout, request_flush(addr)).await {
        Ok(outcome) => outcome,
        Err(_) => FlushOutcome::TimedOut,
    }
}

async fn request_flush(addr: SocketAddr) -> FlushOutcome {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return FlushOutcome::NoDaemon
        }
        Err(e) => return FlushOutcome::Failed(format!("cannot connect to {addr}: {e}")),
    };
    let request = format!(
        "POST /api/flush HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return FlushOutcome::Failed(format!("cannot send to {addr}: {e}"));
    }
    // The answer is short and the connection closes after it (bounded:
    // the caller's timeout covers a server that keeps it open).
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while answer.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if answer.is_empty() => {
                return FlushOutcome::Failed(format!("no answer from {addr}: {e}"))
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let line = text.lines().next().unwrap_or("").trim();
    let still_streaming = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|v| v["still_streaming"].as_u64())
        .unwrap_or(0);
    match line.split_whitespace().nth(1) {
        Some("200") => FlushOutcome::Flushed { still_streaming },
        _ if line.is_empty() => FlushOutcome::Failed(format!("{addr} closed without answering")),
        _ => FlushOutcome::Failed(format!("{addr} answered {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn one_shot_server(
        answer: &'static str,
    ) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; 4096];
            let n = s.read(&mut got).await.unwrap();
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&got[..n]).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn flushed_on_200() {
        let (addr, server) = one_shot_server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(
            flush(addr, FLUSH_TIMEOUT).await,
            FlushOutcome::Flushed { still_streaming: 0 }
        );
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /api/flush HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Connection: close\r\n"));
    }

    #[tokio::test]
    async fn other_status_is_a_failure() {
        let (addr, _server) = one_shot_server("HTTP/1.1 404 Not Found\r\n\r\n").await;
        match flush(addr, FLUSH_TIMEOUT).await {
            FlushOutcome::Failed(m) => assert!(m.contains("404"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn refused_means_no_daemon() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap(); // dropped: the port is closed again
        assert_eq!(flush(addr, FLUSH_TIMEOUT).await, FlushOutcome::NoDaemon);
    }

    #[tokio::test]
    async fn a_silent_daemon_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let outcome = flush(addr, Duration::from_millis(200)).await;
        assert_eq!(outcome, FlushOutcome::TimedOut);
        drop(listener);
    }

    #[test]
    fn wildcard_admin_is_reached_on_loopback() {
        assert_eq!(
            admin_address("0.0.0.0:8799".parse().unwrap()),
            "127.0.0.1:8799".parse().unwrap()
        );
        assert_eq!(
            admin_address("[::]:8799".parse().unwrap()),
            "[::1]:8799".parse().unwrap()
        );
        assert_eq!(
            admin_address("10.0.0.1:1".parse().unwrap()),
            "10.0.0.1:1".parse().unwrap()
        );
    }
}
