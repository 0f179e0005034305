//! Seed 004 (image create) through the real `tracer serve` on sockets, with
//! every `X-Requestshook-*` header removed: stand-ins for keystone, glance-api
//! and swift-proxy-server answer what the seed shows and make the nested
//! calls the seed shows (through tracer, while the outer call is in flight),
//! and every stored and stamped caller must be the seed's.
//!
//! Every client here is this test process, which is in no process table, so
//! the callers come from headers, bodies and tokens alone.

mod common;

use common::image_create_replay::{Body, ReplayExchange, IMAGE_CREATE};
use common::Tracer;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use tracer::model::CallerSource;

/// Image bodies are sent this long, not 21 MB (attribution does not read them).
const BINARY_BODY: usize = 256 * 1024;

/// The exchanges made while exchange `i` is in flight and not inside another of them.
fn children(i: usize) -> Vec<usize> {
    let inside = |j: usize, k: usize| {
        let (a, b) = (&IMAGE_CREATE[j], &IMAGE_CREATE[k]);
        b.request_event < a.request_event && a.response_event < b.response_event
    };
    let mut c: Vec<usize> = (0..IMAGE_CREATE.len())
        .filter(|&j| j != i && inside(j, i))
        .filter(|&j| {
            !(0..IMAGE_CREATE.len()).any(|k| k != i && k != j && inside(k, i) && inside(j, k))
        })
        .collect();
    c.sort_by_key(|&j| IMAGE_CREATE[j].request_event);
    c
}

fn top_level() -> Vec<usize> {
    let mut all: Vec<usize> = (0..IMAGE_CREATE.len())
        .filter(|&j| {
            !(0..IMAGE_CREATE.len()).any(|k| {
                let (a, b) = (&IMAGE_CREATE[j], &IMAGE_CREATE[k]);
                b.request_event < a.request_event && a.response_event < b.response_event
            })
        })
        .collect();
    all.sort_by_key(|&j| IMAGE_CREATE[j].request_event);
    all
}

fn wire_body(b: &Body) -> Vec<u8> {
    match b {
        Body::Binary { .. } => {
            let mut v = b.bytes();
            v.truncate(BINARY_BODY);
            v
        }
        _ => b.bytes(),
    }
}

/// Head lines with Content-Length set to the body actually sent.
fn head_lines(headers: &[(&str, &str)], body_len: usize) -> String {
    headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("Content-Length") {
                format!("{k}: {body_len}\r\n")
            } else {
                format!("{k}: {v}\r\n")
            }
        })
        .collect()
}

struct Message {
    head: Vec<(String, String)>,
    first_line: String,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one message head and its Content-Length body; None at EOF.
fn read_message(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    no_body: impl Fn(&str) -> bool,
) -> Option<(Message, Vec<u8>)> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let first_line = lines.next().unwrap().to_string();
    let head: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_string(), v.trim().to_string())
        })
        .collect();
    let msg = Message { head, first_line };
    let len = if no_body(&msg.first_line) {
        0
    } else {
        msg.header("Content-Length")
            .map_or(0, |v| v.parse::<usize>().unwrap())
    };
    buf.drain(..end);
    while buf.len() < len {
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).ok()?;
        assert!(n > 0, "EOF inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..len).collect();
    Some((msg, body))
}

/// Makes exchange `i`'s request through tracer; returns the response head.
fn call(listeners: &HashMap<&'static str, SocketAddr>, i: usize) -> Message {
    let x: &ReplayExchange = &IMAGE_CREATE[i];
    let body = wire_body(&x.request_body);
    let mut s = TcpStream::connect(listeners[x.service]).unwrap();
    let head = format!(
        "{} {} HTTP/1.1\r\n{}\r\n",
        x.method,
        x.target,
        head_lines(x.request_headers, body.len())
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let head_request = x.method == "HEAD";
    let (resp, _) = read_message(&mut s, &mut Vec::new(), |status| {
        head_request || status.contains(" 204 ") || status.contains(" 304 ")
    })
    .expect("a response");
    assert!(
        resp.first_line.contains(&format!(" {} ", x.status)),
        "{}",
        resp.first_line
    );
    resp
}

/// What the stand-ins saw: the stamped caller of each exchange.
type Stamped = Arc<Mutex<BTreeMap<usize, String>>>;

/// A stand-in for `service`: answers the seed's exchanges to it in order,
/// making their nested calls through tracer first.
fn stand_in(
    service: &'static str,
    listeners: Arc<OnceLock<HashMap<&'static str, SocketAddr>>>,
    stamped: Stamped,
) -> SocketAddr {
    let mut queue: Vec<usize> = (0..IMAGE_CREATE.len())
        .filter(|&i| IMAGE_CREATE[i].service == service)
        .collect();
    queue.sort_by_key(|&i| IMAGE_CREATE[i].request_event);
    let queue = Arc::new(Mutex::new(VecDeque::from(queue)));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let (queue, listeners, stamped) = (queue.clone(), listeners.clone(), stamped.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some((req, _body)) = read_message(&mut s, &mut buf, |_| false) {
                    let i = queue
                        .lock()
                        .unwrap()
                        .pop_front()
                        .expect("an exchange for this request");
                    let x = &IMAGE_CREATE[i];
                    assert_eq!(
                        req.first_line,
                        format!("{} {} HTTP/1.1", x.method, x.target)
                    );
                    let from = req
                        .header("X-Requestshook-Request-From")
                        .unwrap_or("")
                        .to_string();
                    stamped.lock().unwrap().insert(i, from);
                    for c in children(i) {
                        call(listeners.get().unwrap(), c);
                    }
                    let body = x.response_body.bytes();
                    let head = format!(
                        "HTTP/1.1 {} {}\r\n{}\r\n",
                        x.status,
                        x.reason,
                        head_lines(x.response_headers, body.len())
                    );
                    if s.write_all(head.as_bytes()).is_err() || s.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn image_create_through_the_proxy_finds_every_caller() {
    let listeners = Arc::new(OnceLock::new());
    let stamped: Stamped = Arc::default();
    let services = ["keystone", "glance-api", "swift-proxy-server"];
    let upstreams: Vec<(&str, String)> = services
        .iter()
        .map(|s| {
            (
                *s,
                format!("http://{}", stand_in(s, listeners.clone(), stamped.clone())),
            )
        })
        .collect();
    let t = Tracer::start(&upstreams, "");
    listeners
        .set(services.iter().map(|s| (*s, t.addr(s))).collect())
        .unwrap();

    for i in top_level() {
        call(listeners.get().unwrap(), i);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored = rt.block_on(async {
        t.flush().await;
        t.exchanges().await
    });
    assert_eq!(stored.len(), IMAGE_CREATE.len(), "{}", t.log());
    let stamped = stamped.lock().unwrap().clone();
    println!("seed 004 image create through tracer serve (sockets), no X-Requestshook-* sent:");
    let mut by_source: BTreeMap<&str, usize> = BTreeMap::new();
    let mut right = 0;
    // Stored in event order, which is the seed's request order.
    let mut order: Vec<usize> = (0..IMAGE_CREATE.len()).collect();
    order.sort_by_key(|&i| IMAGE_CREATE[i].request_event);
    for (ex, &i) in stored.iter().zip(&order) {
        let x = &IMAGE_CREATE[i];
        assert_eq!(
            (ex.method.as_str(), ex.target.as_str(), ex.service.as_str()),
            (x.method, x.target, x.service)
        );
        let ok = ex.caller == x.expected_caller && stamped[&i] == ex.caller;
        right += ok as usize;
        *by_source.entry(ex.caller_source.as_str()).or_default() += ok as usize;
        println!(
            "  ({:>2}) {:<4} {:<19} {:<44} -> {:<18} {:<13} {}",
            x.request_event,
            x.method,
            x.service,
            &x.target[..x.target.len().min(44)],
            ex.caller,
            ex.caller_source.as_str(),
            if ok { "ok" } else { "WRONG" }
        );
    }
    println!(
        "  right: {right}/{} exchanges, by source: {by_source:?}",
        IMAGE_CREATE.len()
    );
    assert_eq!(right, IMAGE_CREATE.len());
    assert!(stored.iter().all(
        |e| e.caller_source != CallerSource::Process && e.caller_source != CallerSource::Header
    ));
}

#[test]
fn a_cli_on_this_host_is_known_by_its_process() {
    let Ok(out) = std::process::Command::new("python3")
        .arg("-c")
        .arg("print(1)")
        .output()
    else {
        eprintln!("python3 not found: skipped");
        return;
    };
    assert!(out.status.success());
    let listeners = Arc::new(OnceLock::new());
    let stamped: Stamped = Arc::default();
    // Its first exchange is keystone's GET /identity/ (1).
    let upstream = stand_in("keystone", listeners.clone(), stamped.clone());
    let t = Tracer::start(&[("keystone", format!("http://{upstream}"))], "");
    listeners
        .set(HashMap::from([("keystone", t.addr("keystone"))]))
        .unwrap();
    // A stand-in for .../bin/openstack whose User-Agent tells nothing.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("openstack");
    std::fs::write(
        &script,
        "import socket, sys\n\
         s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n\
         s.sendall(b'GET /identity/ HTTP/1.1\\r\\nHost: x\\r\\nUser-Agent: python-keystoneclient\\r\\nConnection: close\\r\\n\\r\\n')\n\
         while s.recv(65536): pass\n",
    )
    .unwrap();
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(t.addr("keystone").port().to_string())
        .arg("image")
        .arg("list")
        .status()
        .unwrap();
    assert!(status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored = rt.block_on(async {
        t.flush().await;
        t.exchanges().await
    });
    assert_eq!(stored.len(), 1, "{}", t.log());
    assert_eq!(
        (stored[0].caller.as_str(), stored[0].caller_source),
        ("openstack", CallerSource::Process)
    );
    assert_eq!(
        stamped.lock().unwrap().get(&0).map(String::as_str),
        Some("openstack")
    );
}
