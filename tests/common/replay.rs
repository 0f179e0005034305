//! Replaying a seed's traffic through the real proxy: stand-in services on
//! 127.0.0.1 answer as the seed shows, and make their own nested calls
//! through tracer while they serve a call, so the nesting is real. Also
//! the score of the callers found for a seed's calls, however they were
//! replayed.

use super::seeds::{self, Kind, Section};
use super::{try_read_response, Tracer};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracer::model::{CallerSource, Exchange};

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
    pub async fn run(&self, stamps: bool, extra_config: &str) -> Run {
        let run = self.start(stamps, extra_config).await;
        for &i in &self.top {
            let call = &self.calls[i];
            send_call(run.tracer.addr(&call.exchange.service), call, stamps).await;
        }
        run
    }

    /// Starts the stand-ins and tracer in front of them, and makes no call:
    /// the stand-ins answer whoever makes the seed's calls, in its order.
    pub async fn start(&self, stamps: bool, extra_config: &str) -> Run {
        let tracer_ports: Arc<OnceLock<HashMap<String, SocketAddr>>> = Arc::new(OnceLock::new());
        let received: Received = Arc::default();
        let calls = Arc::new(self.calls.clone());
        let mut upstreams = Vec::new();
        for name in self.services() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let queue: VecDeque<usize> = (0..self.calls.len())
                .filter(|&i| self.calls[i].exchange.service == name)
                .collect();
            let queue = Arc::new(Mutex::new(queue));
            let (calls, ports, received) = (calls.clone(), tracer_ports.clone(), received.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (calls, ports, queue, received) = (
                        calls.clone(),
                        ports.clone(),
                        queue.clone(),
                        received.clone(),
                    );
                    tokio::spawn(serve_stand_in(
                        stream, calls, ports, queue, received, stamps,
                    ));
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
        Run { tracer, received }
    }
}

/// The `X-Requestshook-Request-From` each call reached its stand-in with,
/// by index in `Replay::calls` (absent: no such header).
type Received = Arc<Mutex<HashMap<usize, String>>>;

/// A replay under way: tracer, still running, and what its stand-ins saw.
pub struct Run {
    pub tracer: Tracer,
    received: Received,
}

impl Run {
    /// The `X-Requestshook-Request-From` call `i` (of `Replay::calls`)
    /// reached its stand-in with; None if it has not arrived or had none.
    pub fn received_from(&self, i: usize) -> Option<String> {
        self.received.lock().unwrap().get(&i).cloned()
    }
}

/// A message of the seed as it crosses the wire: the start line, the
/// section's header lines (the `X-Requestshook-*` ones only if `stamps`),
/// and the whole body if `body`.
fn message(start_line: &str, section: &Section, stamps: bool, body: bool) -> Vec<u8> {
    let mut wire = format!("{start_line}\r\n").into_bytes();
    for line in &section.header_lines {
        if stamps || !seeds::is_stamp(line) {
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
    }
    wire.extend_from_slice(b"\r\n");
    if body {
        wire.extend_from_slice(&seeds::wire_body(section));
    }
    wire
}

/// Makes one call through tracer and reads its whole response.
async fn send_call(tracer: SocketAddr, call: &Call, stamps: bool) {
    let e = &call.exchange;
    let start_line = format!("{} {} HTTP/1.1", e.method, e.target);
    let wire = message(&start_line, &call.request, stamps, true);
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
    received: Received,
    stamps: bool,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head and its Content-Length body.
        let (head_len, content_length, method, target, from) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut slots);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(|v| v.trim().to_string())
                };
                let cl = header("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                break (
                    n,
                    cl,
                    req.method.unwrap().to_string(),
                    req.path.unwrap().to_string(),
                    header("x-requestshook-request-from"),
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
        if let Some(from) = from {
            received.lock().unwrap().insert(i, from);
        }
        let ports = ports.get().unwrap();
        for &c in &call.children {
            let child = &calls[c];
            Box::pin(send_call(ports[&child.exchange.service], child, stamps)).await;
        }
        // The seed's response, without the stamps tracer adds itself.
        let Kind::Response { status, reason } = &call.response.kind else {
            unreachable!()
        };
        let start_line = format!("HTTP/1.1 {status} {reason}");
        let wire = message(&start_line, &call.response, false, method != "HEAD");
        let has_length = call
            .response
            .header_lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("content-length:"));
        if stream.write_all(&wire).await.is_err() {
            return;
        }
        // Without a Content-Length the body ends when the connection does.
        if !has_length && *status != 204 && *status != 304 && method != "HEAD" {
            return;
        }
    }
}

/// The callers found for a seed's calls against the seed's own, call by
/// call, however the calls were replayed.
#[derive(Default)]
pub struct Score {
    rows: Vec<ScoreRow>,
}

struct ScoreRow {
    number: i64,
    source: CallerSource,
    /// None when right; else what is wrong.
    wrong: Option<String>,
    line: String,
}

impl Score {
    /// One call: `seed` as the seed shows it (its `caller` is the right
    /// one), the `caller` and `source` found, and, where a stand-in saw
    /// the call, the `X-Requestshook-Request-From` it received, which must
    /// name the same caller.
    pub fn add(
        &mut self,
        seed: &Exchange,
        caller: &str,
        source: CallerSource,
        received: Option<Option<&str>>,
    ) {
        let mut wrong = Vec::new();
        if caller != seed.caller {
            wrong.push(format!(
                "expected {}, got {caller} ({})",
                seed.caller,
                source.as_str()
            ));
        }
        match received {
            Some(from) if from != Some(caller) => wrong.push(format!(
                "its service received X-Requestshook-Request-From: {}, stored {caller}",
                from.unwrap_or("(none)")
            )),
            _ => {}
        }
        let line = format!(
            "({:>2}) {:<4} {:<19} {:<44} -> {:<18} {:<13}",
            seed.request_seq,
            seed.method,
            seed.service,
            &seed.target[..seed.target.len().min(44)],
            caller,
            source.as_str(),
        );
        let wrong = (!wrong.is_empty()).then(|| {
            format!(
                "({}) {} {} to {}: {}",
                seed.request_seq,
                seed.method,
                seed.target,
                seed.service,
                wrong.join("; ")
            )
        });
        self.rows.push(ScoreRow {
            number: seed.request_seq,
            source,
            wrong,
            line,
        });
    }

    pub fn right(&self) -> usize {
        self.rows.iter().filter(|r| r.wrong.is_none()).count()
    }

    /// The request event numbers of the calls that came out wrong.
    pub fn wrong(&self) -> Vec<i64> {
        self.rows
            .iter()
            .filter(|r| r.wrong.is_some())
            .map(|r| r.number)
            .collect()
    }

    /// How many came out right, by source.
    pub fn by_source(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.wrong.is_none()) {
            *out.entry(r.source.as_str()).or_insert(0) += 1;
        }
        out
    }

    /// Prints the table, call by call, and the share right by source.
    pub fn print(&self, title: &str) {
        println!("{title}");
        for r in &self.rows {
            let verdict = if r.wrong.is_none() { "ok" } else { "WRONG" };
            println!("  {} {verdict}", r.line);
        }
        println!(
            "  right: {}/{} calls, by source: {:?}",
            self.right(),
            self.rows.len(),
            self.by_source()
        );
    }

    /// Panics, listing every wrong call, unless all are right.
    #[track_caller]
    pub fn assert_all_right(&self) {
        let wrong: Vec<&str> = self
            .rows
            .iter()
            .filter_map(|r| r.wrong.as_deref())
            .collect();
        let (n, of) = (wrong.len(), self.rows.len());
        assert!(n == 0, "{n} of {of} calls wrong:\n{}", wrong.join("\n"));
    }

    /// Panics unless the right calls came from `sources` (source, calls).
    #[track_caller]
    pub fn assert_sources(&self, sources: &[(&str, usize)]) {
        let want: BTreeMap<&str, usize> = sources.iter().copied().collect();
        assert_eq!(self.by_source(), want, "right calls by source");
    }
}

/// One event of a lab capture (tests/data/lab/*.jsonl, see its README): a
/// request (`req`), a response head (`resp_head`) or a response's end
/// (`resp_end`, its body), in the order tracer or the capture saw them.
#[derive(serde::Deserialize, Clone, Debug)]
pub struct LabEvent {
    pub ev: String,
    pub xid: u64,
    pub service: Option<String>,
    pub method: Option<String>,
    pub target: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
    pub body: Option<String>,
    pub body_len: Option<u64>,
    /// The peer's command line (captures made beside the lab).
    pub cmdline: Option<String>,
    /// The caller tracer named from the peer process (flows tracer recorded).
    pub process: Option<String>,
    /// The right caller.
    pub expected: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
}

/// The events of a lab capture.
pub fn lab_events(jsonl: &str) -> Vec<LabEvent> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a lab event"))
        .collect()
}
