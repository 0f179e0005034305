//! Seed 004 (image create, 22 events) replayed through the attribution calls
//! in event order, the way the proxy makes them, with every
//! `X-Requestshook-*` header removed and no process information: every
//! caller must come out right from headers, bodies and tokens alone.

mod common;

use common::image_create_replay::{image_create_events, Event, ReplayExchange, IMAGE_CREATE};
use std::collections::{BTreeMap, HashMap};
use tracer::attribution::{Attributor, ConnectionCaller, Decision, InFlight, Keep, RequestView};
use tracer::config::Config;
use tracer::model::{header, BodyRecord, CallerSource, Exchange, HeaderField};

/// What the proxy would do for each event; returns the decisions in request order.
fn replay(a: &Attributor, read_bodies: bool) -> Vec<Decision> {
    let conn = ConnectionCaller::default();
    let peer = "127.0.0.1:45000".parse().unwrap();
    let local = "127.0.0.1:15000".parse().unwrap();
    let mut decided: HashMap<usize, Decision> = HashMap::new();
    let mut flights: HashMap<usize, InFlight> = HashMap::new();
    let mut order = Vec::new();
    for (_, event) in image_create_events() {
        match event {
            Event::Request(i) => {
                let x = &IMAGE_CREATE[i];
                let headers = x.request_header_fields();
                assert!(!headers
                    .iter()
                    .any(|h| h.name.to_ascii_lowercase().starts_with("x-requestshook")));
                let view = RequestView {
                    service: x.service,
                    peer,
                    local,
                    method: x.method,
                    target: x.target,
                    headers: &headers,
                };
                // The proxy reads the body first only when asked, for a
                // Content-Length within the limit and no Expect: 100-continue.
                let body = x.request_body.bytes_if_small();
                let body = match (read_bodies, a.wants_body(&view), content_length(&headers)) {
                    (true, Some(max), Some(len))
                        if len <= max as u64 && header(&headers, "Expect").is_none() =>
                    {
                        Some(body.expect("small body"))
                    }
                    _ => None,
                };
                let d = a.decide(&conn, &view, body.as_deref());
                flights.insert(i, a.in_flight(x.service, &headers));
                decided.insert(i, d);
                order.push(i);
            }
            Event::Response(i) => {
                let d = &decided[&i];
                let ex = exchange(&IMAGE_CREATE[i], d);
                // The response is streamed, then the exchange is finished.
                drop(flights.remove(&i));
                a.learn(&ex);
                assert_eq!(a.keep(&ex), Keep::Store);
            }
        }
    }
    assert!(flights.is_empty());
    order
        .into_iter()
        .map(|i| decided.remove(&i).unwrap())
        .collect()
}

fn content_length(headers: &[HeaderField]) -> Option<u64> {
    header(headers, "Content-Length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

trait SmallBody {
    fn bytes_if_small(&self) -> Option<Vec<u8>>;
}

impl SmallBody for common::image_create_replay::Body {
    fn bytes_if_small(&self) -> Option<Vec<u8>> {
        (self.len() <= 1 << 20).then(|| self.bytes())
    }
}

/// The exchange as the proxy would hand it over: stamped headers, bodies kept
/// up to the default 1 MiB.
fn exchange(x: &ReplayExchange, d: &Decision) -> Exchange {
    let stamp = |mut h: Vec<HeaderField>| {
        h.push(HeaderField::new(
            "X-Requestshook-Request-Id",
            "0123456789abcdef0123456789abcdef",
        ));
        h.push(HeaderField::new(
            "X-Requestshook-Request-From",
            d.caller.as_str(),
        ));
        h
    };
    let body = |b: &common::image_create_replay::Body| BodyRecord {
        kept: b.prefix(1 << 20),
        size: b.len(),
        sha256: String::new(),
    };
    Exchange {
        id: 0,
        uuid: String::new(),
        request_id: "0123456789abcdef0123456789abcdef".into(),
        service: x.service.into(),
        caller: d.caller.clone(),
        caller_source: d.source,
        client_addr: "127.0.0.1:45000".into(),
        upstream_url: format!("http://127.0.0.1:80{}", x.target),
        method: x.method.into(),
        target: x.target.into(),
        request_version: "HTTP/1.1".into(),
        request_headers: stamp(x.request_header_fields()),
        request_body: body(&x.request_body),
        status: Some(x.status),
        reason: Some(x.reason.into()),
        response_version: Some("HTTP/1.1".into()),
        response_headers: stamp(x.response_header_fields()),
        response_body: body(&x.response_body),
        request_seq: x.request_event as i64,
        response_seq: Some(x.response_event as i64),
        started_at: 0,
        response_at: None,
        finished_at: 0,
        error: None,
        ignored: false,
    }
}

/// Prints the per-exchange table and the share right by source.
fn report(title: &str, decisions: &[Decision]) -> (usize, BTreeMap<&'static str, usize>) {
    println!("{title}");
    let mut right = 0;
    let mut by_source = BTreeMap::new();
    for (x, d) in IMAGE_CREATE.iter().zip(decisions) {
        let ok = d.caller == x.expected_caller;
        right += ok as usize;
        if ok {
            *by_source.entry(d.source.as_str()).or_insert(0) += 1;
        }
        println!(
            "  ({:>2})/({:>2}) {:<4} {:<55} -> {:<18} {:<14} {}",
            x.request_event,
            x.response_event,
            x.method,
            format!("{} {}", x.service, &x.target[..x.target.len().min(40)]),
            d.caller,
            d.source.as_str(),
            if ok { "ok" } else { "WRONG" }
        );
    }
    println!(
        "  right: {right}/{} exchanges ({} of 22 events), by source: {by_source:?}",
        IMAGE_CREATE.len(),
        right * 2
    );
    (right, by_source)
}

#[test]
fn replay_data_matches_the_seed() {
    assert_eq!(IMAGE_CREATE.len(), 11);
    assert_eq!(image_create_events().len(), 22);
    let numbers: Vec<u32> = image_create_events().iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=22).collect::<Vec<_>>());
    for x in IMAGE_CREATE {
        // JSON bodies are byte for byte what Content-Length says.
        let req: Vec<HeaderField> = x.request_header_fields();
        if let Some(len) = content_length(&req) {
            assert_eq!(len, x.request_body.len(), "({})", x.request_event);
        }
        let resp = x.response_header_fields();
        if let Some(len) = content_length(&resp) {
            assert_eq!(len, x.response_body.len(), "({})", x.response_event);
        }
    }
    let callers: std::collections::BTreeSet<&str> =
        IMAGE_CREATE.iter().map(|x| x.expected_caller).collect();
    assert_eq!(
        callers.into_iter().collect::<Vec<_>>(),
        ["glance-api", "openstack", "swift-proxy-server"]
    );
}

#[test]
fn image_create_callers_from_headers_bodies_and_tokens() {
    // The real clock: keystone's 2022 expiry times are read relative to the
    // issue time it reports, so a replay years later still works.
    let a = Attributor::new(&Config::default());
    let decisions = replay(&a, true);
    let (right, by_source) = report("seed 004 image create, no process information:", &decisions);
    assert_eq!(right, IMAGE_CREATE.len());
    let want: BTreeMap<&str, usize> = [("subject-token", 2), ("token", 7), ("user-agent", 2)]
        .into_iter()
        .collect();
    assert_eq!(by_source, want);
    // The two validations are the ones the in-flight calls explain.
    let validations: Vec<(&str, CallerSource)> = IMAGE_CREATE
        .iter()
        .zip(&decisions)
        .filter(|(x, _)| x.method == "GET" && x.target.ends_with("/v3/auth/tokens"))
        .map(|(_, d)| (d.caller.as_str(), d.source))
        .collect();
    assert_eq!(
        validations,
        [
            ("glance-api", CallerSource::SubjectToken),
            ("swift-proxy-server", CallerSource::SubjectToken)
        ]
    );
    assert_eq!(a.known_tokens(), 3);

    // Run again on the same attributor (tokens known from the first run).
    let again = replay(&a, true);
    let (right, _) = report("the same flow again, tokens known:", &again);
    assert_eq!(right, IMAGE_CREATE.len());
}

#[test]
fn image_create_with_the_sample_config_and_example_rules() {
    // The shipped service names and the example rules change nothing here,
    // and no ignore rule hides any of the 22 events.
    let text = format!(
        "{}\n{}",
        include_str!("../config/tracer.toml"),
        include_str!("../config/tracer.example-rules.toml")
    );
    let config = Config::parse(&text).unwrap();
    config.validate().unwrap();
    let a = Attributor::new(&config);
    let (right, _) = report(
        "seed 004 image create, sample config + example rules:",
        &replay(&a, true),
    );
    assert_eq!(right, IMAGE_CREATE.len());
}

#[test]
fn image_create_without_request_bodies() {
    // A proxy that never reads request bodies first loses only what the
    // body alone tells: glance's swift-store login (UA "uwsgi keystoneauth1").
    let a = Attributor::new(&Config::default());
    let decisions = replay(&a, false);
    let (right, _) = report(
        "seed 004 image create, request bodies not read:",
        &decisions,
    );
    assert_eq!(right, IMAGE_CREATE.len() - 1);
    let wrong: Vec<u32> = IMAGE_CREATE
        .iter()
        .zip(&decisions)
        .filter(|(x, d)| d.caller != x.expected_caller)
        .map(|(x, _)| x.request_event)
        .collect();
    assert_eq!(wrong, [14]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_learned_survive_a_restart_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tracer.db", dir.path().display());
    let store = tracer::store::open(&url).await.unwrap();
    let a = Attributor::load(&Config::default(), store.clone()).await;
    let decisions = tokio::task::block_in_place(|| replay(&a, true));
    assert!(decisions
        .iter()
        .zip(IMAGE_CREATE)
        .all(|(d, x)| d.caller == x.expected_caller));
    drop(a);
    // The writer task stores in the background: wait for it (bounded).
    let now = tracer::timefmt::now_micros();
    let mut live = Vec::new();
    for _ in 0..200 {
        live = store.live_tokens(now).await.unwrap();
        if live.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut users: Vec<&str> = live.iter().map(|t| t.user_name.as_str()).collect();
    users.sort();
    assert_eq!(users, ["admin", "glance", "glance-swift"]);
    // Only hashes: no learned token is in the database files in clear.
    let token = header(&IMAGE_CREATE[1].response_header_fields(), "X-Subject-Token")
        .unwrap()
        .to_vec();
    let hash = sha256_hex(&token);
    let mut hashes = 0;
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let raw = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!raw.windows(token.len()).any(|w| w == token.as_slice()));
        hashes += raw
            .windows(hash.len())
            .filter(|w| *w == hash.as_bytes())
            .count();
    }
    assert!(hashes >= 1, "the token's hash is stored");

    // A restarted daemon knows glance's swift token at once.
    let b = Attributor::load(&Config::default(), tracer::store::open(&url).await.unwrap()).await;
    assert_eq!(b.known_tokens(), 3);
    let put = &IMAGE_CREATE[10];
    assert_eq!(put.method, "PUT");
    let headers = put.request_header_fields();
    let view = RequestView {
        service: put.service,
        peer: "127.0.0.1:45000".parse().unwrap(),
        local: "127.0.0.1:15000".parse().unwrap(),
        method: put.method,
        target: put.target,
        headers: &headers,
    };
    let d = b.decide(&ConnectionCaller::default(), &view, None);
    assert_eq!(
        (d.caller.as_str(), d.source),
        ("glance-api", CallerSource::Token)
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
