//! Real parts for integration tests: the tracer binary on 127.0.0.1 with a
//! real SQLite file (or any database URL), raw-socket stand-in upstreams, a
//! raw-socket client; the test databases of both backends in `db`.
#![allow(dead_code)]

pub mod db;
pub mod faulty;
pub mod memstore;
pub mod pages;
pub mod replay;
pub mod seeds;
pub mod tools;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracer::model::Exchange;
use tracer::store::ExchangeFilter;

/// The binary under test: this build's, or `$TRACER_TEST_BIN` (to show a
/// test failing on an older build).
pub fn tracer_bin() -> std::path::PathBuf {
    std::env::var_os("TRACER_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tracer").into())
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `tracer serve` with its own config and database in a temp dir.
pub struct Tracer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub admin: SocketAddr,
    pub ports: HashMap<String, u16>,
    pub stderr_path: std::path::PathBuf,
}

impl Tracer {
    /// `services`: (name, upstream URL). `extra`: more TOML (e.g. a [proxy] table).
    /// The database is a SQLite file in the tracer's temp dir.
    pub fn start(services: &[(&str, String)], extra: &str) -> Tracer {
        Self::start_on(None, services, extra)
    }

    /// Like `start`, storing into `db_url` (e.g. a PostgreSQL test schema)
    /// when given.
    pub fn start_on(db_url: Option<&str>, services: &[(&str, String)], extra: &str) -> Tracer {
        let dir = tempfile::tempdir().unwrap();
        let db_url = db_url.map_or_else(
            || format!("sqlite://{}/tracer.db", dir.path().display()),
            str::to_string,
        );
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut config = format!("[admin]\nlisten = \"{admin}\"\n{extra}\n");
        let mut ports = HashMap::new();
        for (name, upstream) in services {
            let port = free_port();
            ports.insert(name.to_string(), port);
            config.push_str(&format!(
                "[[service]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{upstream}\"\n"
            ));
        }
        let config_path = dir.path().join("tracer.toml");
        std::fs::write(&config_path, config).unwrap();
        let stderr_path = dir.path().join("serve.log");
        let child = Command::new(tracer_bin())
            .arg("--config")
            .arg(&config_path)
            .arg("--db")
            .arg(&db_url)
            .arg("serve")
            .env("TRACER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let t = Tracer {
            child: Some(child),
            dir,
            db_url,
            admin,
            ports,
            stderr_path,
        };
        t.wait_listening();
        t
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut addrs: Vec<SocketAddr> = self
            .ports
            .values()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        addrs.push(self.admin);
        for addr in addrs {
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "tracer did not listen on {addr}: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn addr(&self, service: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[service]))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tracer did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the daemon to store everything it has answered.
    pub async fn flush(&self) {
        let (status, _) = raw_roundtrip(
            self.admin,
            b"POST /api/flush HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(status.starts_with(b"HTTP/1.1 200"), "flush failed");
    }

    /// Every stored exchange, in event order.
    pub async fn exchanges(&self) -> Vec<Exchange> {
        let store = tracer::store::open(&self.db_url).await.unwrap();
        store
            .list_exchanges(&ExchangeFilter {
                include_ignored: true,
                ..Default::default()
            })
            .await
            .unwrap()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a stand-in upstream answers to a request (head + body as received).
pub type Script = Arc<dyn Fn(&Request) -> Vec<u8> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Request {
    /// The bytes exactly as they arrived (head and body framing included).
    pub raw: Vec<u8>,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The payload (chunked framing removed).
    pub body: Vec<u8>,
}

/// A raw-socket HTTP/1.1 server standing in for an OpenStack service: it
/// records every request byte for byte and answers with scripted bytes.
pub struct Upstream {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Upstream {
    pub async fn start(script: Script) -> Upstream {
        Self::start_with(script, false).await
    }

    /// `send_continue`: answer `Expect: 100-continue` with an interim 100 first.
    pub async fn start_with(script: Script, send_continue: bool) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                *conns.lock().unwrap() += 1;
                let (reqs, script) = (reqs.clone(), script.clone());
                tokio::spawn(async move {
                    let mut stream = stream;
                    let mut buf = Vec::new();
                    while let Some(req) = read_request(&mut stream, &mut buf, send_continue).await {
                        let close = req.headers.iter().any(|(n, v)| {
                            n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case(b"close")
                        });
                        let answer = script(&req);
                        reqs.lock().unwrap().push(req);
                        if stream.write_all(&answer).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            requests,
            connections,
        }
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A canned response with a Content-Length.
pub fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status_line}\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = vec![0u8; 64 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    send_continue: bool,
) -> Option<Request> {
    let (head_len, method, target, headers) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut slots);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let headers: Vec<(String, Vec<u8>)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect();
            break (
                n,
                req.method.unwrap().to_string(),
                req.path.unwrap().to_string(),
                headers,
            );
        }
        if !fill(stream, buf).await {
            return None;
        }
    };
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
    };
    if send_continue && get("expect").as_deref() == Some("100-continue") {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .ok()?;
    }
    let mut body = Vec::new();
    let mut pos = head_len;
    if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let (line, size) = loop {
                if let Ok(httparse::Status::Complete(found)) =
                    httparse::parse_chunk_size(&buf[pos..])
                {
                    break found;
                }
                if !fill(stream, buf).await {
                    return None;
                }
            };
            pos += line;
            if size == 0 {
                while !buf[pos..].starts_with(b"\r\n") {
                    // skip trailer lines
                    match buf[pos..].windows(2).position(|w| w == b"\r\n") {
                        Some(i) => pos += i + 2,
                        None => {
                            if !fill(stream, buf).await {
                                return None;
                            }
                        }
                    }
                }
                while buf.len() < pos + 2 {
                    if !fill(stream, buf).await {
                        return None;
                    }
                }
                pos += 2;
                break;
            }
            while buf.len() < pos + size as usize + 2 {
                if !fill(stream, buf).await {
                    return None;
                }
            }
            body.extend_from_slice(&buf[pos..pos + size as usize]);
            pos += size as usize + 2;
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < head_len + n {
            if !fill(stream, buf).await {
                return None;
            }
        }
        body = buf[head_len..head_len + n].to_vec();
        pos = head_len + n;
    }
    let raw: Vec<u8> = buf.drain(..pos).collect();
    Some(Request {
        raw,
        method,
        target,
        headers,
        body,
    })
}

/// Reads one response: (head bytes including the blank line, body payload).
pub async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
) -> (Vec<u8>, Vec<u8>) {
    try_read_response(stream, buf, method)
        .await
        .expect("connection closed before a whole response")
}

/// Like `read_response`, None if the connection closes first.
pub async fn try_read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
) -> Option<(Vec<u8>, Vec<u8>)> {
    loop {
        let (head_len, status, headers) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 128];
            let mut resp = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(buf) {
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).to_ascii_lowercase(),
                        )
                    })
                    .collect();
                break (n, resp.code.unwrap(), headers);
            }
            if !fill(stream, buf).await {
                return None;
            }
        };
        if (100..200).contains(&status) {
            buf.drain(..head_len);
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let head: Vec<u8> = buf.drain(..head_len).collect();
        if method == "HEAD" || status == 204 || status == 304 {
            return Some((head, Vec::new()));
        }
        if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let (line, size) = loop {
                    if let Ok(httparse::Status::Complete(f)) = httparse::parse_chunk_size(buf) {
                        break f;
                    }
                    if !fill(stream, buf).await {
                        return None;
                    }
                };
                while buf.len() < line + size as usize + 2 {
                    if !fill(stream, buf).await {
                        return None;
                    }
                }
                body.extend_from_slice(&buf[line..line + size as usize]);
                buf.drain(..line + size as usize + 2);
                if size == 0 {
                    return Some((head, body));
                }
            }
        }
        if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while buf.len() < n {
                if !fill(stream, buf).await {
                    return None;
                }
            }
            return Some((head, buf.drain(..n).collect()));
        }
        while fill(stream, buf).await {}
        return Some((head, std::mem::take(buf)));
    }
}

/// Sends raw bytes on a fresh connection and reads one response.
pub async fn raw_roundtrip(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let method = String::from_utf8_lossy(request.split(|&b| b == b' ').next().unwrap()).to_string();
    let mut buf = Vec::new();
    read_response(&mut stream, &mut buf, &method).await
}

/// Sends raw bytes and reads everything until the peer closes (bounded).
pub async fn raw_until_close(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    out
}

/// Header lines of a head, without the start line and the blank line.
pub fn header_lines(head: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until the daemon has stored `n` exchanges.
pub async fn wait_for_exchanges(t: &Tracer, n: usize) -> Vec<Exchange> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        t.flush().await;
        let all = t.exchanges().await;
        if all.len() >= n || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
