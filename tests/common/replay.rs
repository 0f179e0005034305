//! Replaying a seed's traffic through the real proxy: stand-in services on
//! 127.0.0.1 answer as the seed shows, and make their own nested calls
//! through tracer while they serve a call, so the nesting is real.

use super::seeds::{self, Kind, Section};
use super::{try_read_response, Tracer};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracer::model::Exchange;

/// One call of the seed: who makes it, to whom, the bytes of both sides,
/// and the calls its service makes while serving it.
#[derive(Debug, Clone)]
pub struct Call {
    pub exchange: Exchange,
    pub request: Section,
    pub response: Section,
    pub children: Vec<usize>,
}

pub struct Replay {
    pub sections: Vec<Section>,
    pub calls: Vec<Call>,
    /// Calls the CLI ("openstack") makes itself, in order.
    pub top: Vec<usize>,
}

impl Replay {
    pub fn load(seed: &str) -> Replay {
        let sections = seeds::parse(&seeds::read_seed(seed));
        let mut exchanges = seeds::exchanges(&sections);
        exchanges.sort_by_key(|e| e.request_seq);
        let section = |n: i64| {
            sections
                .iter()
                .find(|s| s.number as i64 == n)
                .unwrap()
                .clone()
        };
        let mut calls: Vec<Call> = exchanges
            .iter()
            .map(|e| Call {
                exchange: e.clone(),
                request: section(e.request_seq),
                response: section(e.response_seq.expect("every seed call is answered")),
                children: Vec::new(),
            })
            .collect();
        // The parent of a call: the innermost call in flight to the caller's service.
        let mut top = Vec::new();
        for i in 0..calls.len() {
            let e = &calls[i].exchange;
            let parent = (0..calls.len())
                .filter(|&p| {
                    let x = &calls[p].exchange;
                    x.service == e.caller
                        && x.request_seq < e.request_seq
                        && e.request_seq < x.response_seq.unwrap()
                })
                .max_by_key(|&p| calls[p].exchange.request_seq);
            match parent {
                Some(p) => calls[p].children.push(i),
                None => top.push(i),
            }
        }
        Replay {
            sections,
            calls,
            top,
        }
    }

    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .calls
            .iter()
            .map(|c| c.exchange.service.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Runs the seed's traffic through tracer. `stamps`: send the seed's
    /// `X-Requestshook-*` headers (true) or strip them so tracer must
    /// attribute every call itself (false). Returns tracer, still running.
    pub async fn run(&self, stamps: bool, extra_config: &str) -> Tracer {
        let tracer_ports: Arc<OnceLock<HashMap<String, SocketAddr>>> = Arc::new(OnceLock::new());
        let calls = Arc::new(self.calls.clone());
        let mut upstreams = Vec::new();
        for name in self.services() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let queue: VecDeque<usize> = (0..self.calls.len())
                .filter(|&i| self.calls[i].exchange.service == name)
                .collect();
            let queue = Arc::new(Mutex::new(queue));
            let (calls, ports) = (calls.clone(), tracer_ports.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (calls, ports, queue) = (calls.clone(), ports.clone(), queue.clone());
                    tokio::spawn(serve_stand_in(stream, calls, ports, queue, stamps));
                }
            });
            upstreams.push((name, format!("http://{addr}")));
        }
        let services: Vec<(&str, String)> = upstreams
            .iter()
            .map(|(n, u)| (n.as_str(), u.clone()))
            .collect();
        let tracer = Tracer::start(&services, extra_config);
        let ports = tracer
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), SocketAddr::from(([127, 0, 0, 1], *p))))
            .collect();
        tracer_ports.set(ports).unwrap();
        let ports = tracer_ports.get().unwrap();
        for &i in &self.top {
            let call = &self.calls[i];
            send_call(ports[&call.exchange.service], call, stamps).await;
        }
        tracer
    }
}

fn header_lines(section: &Section, stamps: bool) -> Vec<&String> {
    section
        .header_lines
        .iter()
        .filter(|l| stamps || !l.to_ascii_lowercase().starts_with("x-requestshook-"))
        .collect()
}

/// Makes one call through tracer and reads its whole response.
async fn send_call(tracer: SocketAddr, call: &Call, stamps: bool) {
    let e = &call.exchange;
    let mut wire = format!("{} {} HTTP/1.1\r\n", e.method, e.target).into_bytes();
    for line in header_lines(&call.request, stamps) {
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(&seeds::wire_body(&call.request));
    let mut stream = TcpStream::connect(tracer).await.unwrap();
    stream.write_all(&wire).await.unwrap();
    let mut buf = Vec::new();
    let (head, _) = try_read_response(&mut stream, &mut buf, &e.method)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no response to ({}) {} {}",
                e.request_seq, e.method, e.target
            )
        });
    let status = String::from_utf8_lossy(&head[9..12]).to_string();
    assert_eq!(
        status,
        e.status.unwrap().to_string(),
        "({}) {}",
        e.request_seq,
        e.target
    );
}

/// A stand-in service: answers its calls in the seed's order, making the
/// nested calls first.
async fn serve_stand_in(
    mut stream: TcpStream,
    calls: Arc<Vec<Call>>,
    ports: Arc<OnceLock<HashMap<String, SocketAddr>>>,
    queue: Arc<Mutex<VecDeque<usize>>>,
    stamps: bool,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head and its Content-Length body.
        let (head_len, content_length, method, target) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut slots);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let cl = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .unwrap_or(0);
                break (
                    n,
                    cl,
                    req.method.unwrap().to_string(),
                    req.path.unwrap().to_string(),
                );
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + content_length {
            let mut chunk = vec![0u8; 256 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_len + content_length);
        let i = queue
            .lock()
            .unwrap()
            .pop_front()
            .expect("a call the seed does not show");
        let call = &calls[i];
        assert_eq!(
            (method.as_str(), target.as_str()),
            (call.exchange.method.as_str(), call.exchange.target.as_str())
        );
        let ports = ports.get().unwrap();
        for &c in &call.children {
            let child = &calls[c];
            Box::pin(send_call(ports[&child.exchange.service], child, stamps)).await;
        }
        // The seed's response, without the stamps tracer adds itself.
        let Kind::Response { status, reason } = &call.response.kind else {
            unreachable!()
        };
        let mut wire = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
        let lines = header_lines(&call.response, false);
        for line in &lines {
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        let has_length = lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("content-length:"));
        if method != "HEAD" {
            wire.extend_from_slice(&seeds::wire_body(&call.response));
        }
        if stream.write_all(&wire).await.is_err() {
            return;
        }
        // Without a Content-Length the body ends when the connection does.
        if !has_length && *status != 204 && *status != 304 && method != "HEAD" {
            return;
        }
    }
}
