//! A compute flow of the real lab (`openstack server create --wait`: nova
//! 34, neutron 29, placement 16, glance 33, keystone 30; nested and
//! concurrent calls) re-enacted through the real `tracer serve` on
//! loopback sockets: stand-ins answer as nova-api, neutron-server,
//! placement-api, glance-api and keystone answered in the recording
//! (tests/data/lab/server-create.jsonl), and each caller sends its
//! recorded requests from an address of its own (127.0.0.11 nova-api,
//! 127.0.0.12 nova-compute, ...: one host per service, as in a multi-node
//! devstack), event by event in the order tracer saw them in the lab.
//! Nothing carries `X-Requestshook-*` and tracer reads no process table:
//! it must name the callers from the requests alone.

mod common;

use common::replay::{lab_events, LabEvent as Ev, Score};
use common::Tracer;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracer::model::{CallerSource, Exchange};

const SERVER_CREATE: &str = include_str!("data/lab/server-create.jsonl");
const SERVER_DELETE: &str = include_str!("data/lab/server-delete.jsonl");

/// The loopback address each caller sends from.
fn address_of(caller: &str) -> IpAddr {
    let last = match caller {
        "openstack" => 10,
        "nova-api" => 11,
        "nova-compute" => 12,
        "nova-scheduler" => 13,
        "nova-conductor" => 14,
        "neutron-server" => 15,
        "glance-api" => 16,
        "placement-api" => 17,
        other => panic!("no address for caller {other}"),
    };
    IpAddr::from([127, 0, 0, last])
}

/// HTTP/1.1 bytes of one side: the recorded headers less the framing ones,
/// a Content-Length for the body.
fn wire(start: &str, headers: &[(String, String)], body: &[u8], with_length: bool) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if lower == "content-length" || lower == "transfer-encoding" {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if with_length {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one request (head, Content-Length body) from a connection; None at its end.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let length = req
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
            while buf.len() < n + length {
                fill(stream, buf).await?;
            }
            buf.drain(..n + length);
            return Some(());
        }
        fill(stream, buf).await?;
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 64 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// A stand-in holding an exchange: its id, and where the word to answer comes.
type Arrival = (u64, oneshot::Sender<()>);

/// Who answers which exchange: the stand-in takes the exchange the
/// conductor said is on its way, and answers when told.
#[derive(Default)]
struct Stage {
    /// Exchange ids on their way to each service, in order.
    coming: Mutex<HashMap<String, Vec<u64>>>,
    /// The stand-in tells the conductor it holds an exchange: its id and
    /// where to send the word to answer.
    arrived: Mutex<Option<mpsc::UnboundedSender<Arrival>>>,
}

async fn stand_in(
    name: String,
    listener: TcpListener,
    stage: Arc<Stage>,
    answers: Arc<HashMap<u64, Vec<u8>>>,
) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let (stage, answers, name) = (stage.clone(), answers.clone(), name.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while read_request(&mut stream, &mut buf).await.is_some() {
                let xid = {
                    let mut coming = stage.coming.lock().unwrap();
                    let queue = coming.get_mut(&name).expect("a service of the flow");
                    assert!(
                        !queue.is_empty(),
                        "{name} got a request the flow does not show"
                    );
                    queue.remove(0)
                };
                let (tx, rx) = oneshot::channel();
                let arrived = stage.arrived.lock().unwrap().clone().unwrap();
                arrived.send((xid, tx)).unwrap();
                if rx.await.is_err() || stream.write_all(&answers[&xid]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The flow's events replayed through tracer; the stored exchanges, in request order.
async fn reenact(flow: &str, config: &str) -> (Vec<Ev>, Vec<Exchange>) {
    let events = lab_events(flow);
    let requests: HashMap<u64, Ev> = events
        .iter()
        .filter(|e| e.ev == "req")
        .map(|e| (e.xid, e.clone()))
        .collect();
    let mut answers = HashMap::new();
    for e in events.iter().filter(|e| e.ev == "resp_head") {
        let req = &requests[&e.xid];
        let end = events
            .iter()
            .find(|x| x.ev == "resp_end" && x.xid == e.xid)
            .unwrap();
        let body = end.body.clone().unwrap_or_default().into_bytes();
        let bodiless = e.status == Some(204) || req.method.as_deref() == Some("HEAD");
        let start = format!(
            "HTTP/1.1 {} {}",
            e.status.unwrap(),
            e.reason.as_deref().unwrap_or("")
        );
        answers.insert(
            e.xid,
            wire(
                start.trim_end(),
                e.headers.as_deref().unwrap(),
                if bodiless { &[] } else { &body },
                !bodiless,
            ),
        );
    }
    let answers = Arc::new(answers);

    let stage = Arc::new(Stage::default());
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    *stage.arrived.lock().unwrap() = Some(arrived_tx);
    let mut services: Vec<String> = requests
        .values()
        .map(|e| e.service.clone().unwrap())
        .collect();
    services.sort();
    services.dedup();
    let mut upstreams = Vec::new();
    for name in &services {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        upstreams.push((
            name.as_str(),
            format!("http://{}", listener.local_addr().unwrap()),
        ));
        tokio::spawn(stand_in(
            name.clone(),
            listener,
            stage.clone(),
            answers.clone(),
        ));
    }
    let tracer = Tracer::start(
        &upstreams,
        &format!("[attribution]\npeer_process = false\n{config}"),
    );

    let mut to_answer: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
    let mut responses: HashMap<u64, oneshot::Receiver<()>> = HashMap::new();
    for e in &events {
        match e.ev.as_str() {
            "req" => {
                let service = e.service.clone().unwrap();
                stage
                    .coming
                    .lock()
                    .unwrap()
                    .entry(service.clone())
                    .or_default()
                    .push(e.xid);
                let caller = e.expected.as_deref().unwrap();
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(address_of(caller), 0)).unwrap();
                let mut stream = socket.connect(tracer.addr(&service)).await.unwrap();
                let body = e.body.clone().unwrap_or_default().into_bytes();
                let start = format!(
                    "{} {} HTTP/1.1",
                    e.method.as_deref().unwrap(),
                    e.target.as_deref().unwrap()
                );
                let with_length = !body.is_empty()
                    || e.headers
                        .as_deref()
                        .unwrap()
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
                stream
                    .write_all(&wire(
                        &start,
                        e.headers.as_deref().unwrap(),
                        &body,
                        with_length,
                    ))
                    .await
                    .unwrap();
                // Wait until tracer has decided and forwarded it.
                let (xid, tx) = tokio::time::timeout(Duration::from_secs(20), arrived.recv())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "exchange {} never reached {service}: {}",
                            e.xid,
                            tracer.log()
                        )
                    })
                    .unwrap();
                assert_eq!(
                    xid, e.xid,
                    "the stand-in got the exchange the flow sends next"
                );
                to_answer.insert(xid, tx);
                let (done_tx, done_rx) = oneshot::channel();
                responses.insert(e.xid, done_rx);
                let method = e.method.clone().unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    common::try_read_response(&mut stream, &mut buf, &method)
                        .await
                        .unwrap();
                    let _ = done_tx.send(());
                });
            }
            "resp_head" => {
                to_answer.remove(&e.xid).unwrap().send(()).unwrap();
                tokio::time::timeout(Duration::from_secs(20), responses.remove(&e.xid).unwrap())
                    .await
                    .unwrap()
                    .unwrap();
                // tracer finishes the exchange (learns, ends its flight) once it has relayed it
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            _ => {}
        }
    }
    tracer.flush().await;
    let mut stored = tracer.exchanges().await;
    stored.sort_by_key(|x| x.request_seq);
    let sent: Vec<Ev> = events.into_iter().filter(|e| e.ev == "req").collect();
    assert_eq!(stored.len(), sent.len(), "one stored exchange per request");
    for (x, e) in stored.iter().zip(&sent) {
        assert_eq!(
            (x.method.as_str(), x.target.as_str()),
            (e.method.as_deref().unwrap(), e.target.as_deref().unwrap())
        );
    }
    (sent, stored)
}

fn score(title: &str, sent: &[Ev], stored: &[Exchange]) -> Score {
    let mut score = Score::default();
    for (e, x) in sent.iter().zip(stored) {
        let mut truth = x.clone();
        truth.caller = e.expected.clone().unwrap();
        score.add(&truth, &x.caller, x.caller_source, None);
    }
    score.print(title);
    score
}

#[track_caller]
fn at_least_nine_in_ten(title: &str, sent: &[Ev], stored: &[Exchange]) {
    let (right, total) = (score(title, sent, stored).right(), sent.len());
    assert!(
        right * 10 >= total * 9,
        "{right}/{total} right: fewer than 90%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_create_reenacted_without_stamps_or_processes() {
    let (sent, stored) = reenact(SERVER_CREATE, "").await;
    let concurrent = sent.iter().zip(&stored).any(|(e, x)| {
        e.expected.as_deref() == Some("nova-compute")
            && stored.iter().any(|c| {
                c.caller == "openstack"
                    && c.request_seq < x.response_seq.unwrap()
                    && x.request_seq < c.response_seq.unwrap()
            })
    });
    assert!(concurrent, "a nova-compute call overlaps a CLI call");
    at_least_nine_in_ten(
        "server create re-enacted, callers from the requests alone:",
        &sent,
        &stored,
    );
    assert!(!stored
        .iter()
        .any(|x| x.caller_source == CallerSource::Process));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_delete_reenacted_without_stamps_or_processes() {
    let (sent, stored) = reenact(SERVER_DELETE, "").await;
    at_least_nine_in_ten(
        "server delete re-enacted, callers from the requests alone:",
        &sent,
        &stored,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_node_named_by_its_address() {
    // The compute node is another host: a [[caller]] rule by its address names it.
    let rule = "[[caller]]\nname = \"nova-compute\"\nsource = \"127.0.0.12\"\n";
    let (sent, stored) = reenact(SERVER_CREATE, rule).await;
    for (e, x) in sent.iter().zip(&stored) {
        let from_compute = e.expected.as_deref() == Some("nova-compute");
        assert_eq!(
            x.caller_source == CallerSource::Rule,
            from_compute,
            "{} {}: the rule matches exactly the calls from 127.0.0.12",
            x.method,
            x.target
        );
        if from_compute {
            assert_eq!(x.caller, "nova-compute");
            assert!(
                x.client_addr.starts_with("127.0.0.12:"),
                "{}",
                x.client_addr
            );
        }
    }
    score(
        "server create, nova-compute by its address:",
        &sent,
        &stored,
    );
}
