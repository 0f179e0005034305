//! Seed 004 (image create, 22 events) replayed through the attribution calls
//! in event order, the way the proxy makes them, with every
//! `X-Requestshook-*` header removed and no process information: every
//! caller must come out right from headers, bodies and tokens alone.

mod common;

use common::replay::Score;
use common::seeds;
use std::collections::{BTreeSet, HashMap};
use tracer::attribution::{Attributor, ConnectionCaller, Decision, InFlight, Keep, RequestView};
use tracer::config::Config;
use tracer::model::{header, CallerSource, Exchange, HeaderField};

/// The seed's exchanges in request order, every `X-Requestshook-*` header
/// removed; `caller` is the caller the seed names.
fn seed_calls() -> Vec<Exchange> {
    let mut calls = seeds::exchanges(&seeds::parse(&seeds::read_seed(seeds::IMAGE_CREATE)));
    for x in &mut calls {
        x.request_headers.retain(|h| !seeds::is_stamp(&h.name));
        x.response_headers.retain(|h| !seeds::is_stamp(&h.name));
    }
    calls
}

/// The seed's events in order: (event number, exchange, whether it is the request).
fn events(calls: &[Exchange]) -> Vec<(i64, usize, bool)> {
    let mut events: Vec<(i64, usize, bool)> = calls
        .iter()
        .enumerate()
        .flat_map(|(i, x)| {
            [
                (x.request_seq, i, true),
                (x.response_seq.unwrap(), i, false),
            ]
        })
        .collect();
    events.sort();
    events
}

/// What the proxy would do for each event; returns the decisions in request order.
fn replay(a: &Attributor, calls: &[Exchange], read_bodies: bool) -> Vec<Decision> {
    let conn = ConnectionCaller::default();
    let peer = "127.0.0.1:45000".parse().unwrap();
    let local = "127.0.0.1:15000".parse().unwrap();
    let mut decided: HashMap<usize, Decision> = HashMap::new();
    let mut flights: HashMap<usize, InFlight> = HashMap::new();
    for (_, i, request) in events(calls) {
        let x = &calls[i];
        if request {
            let headers = &x.request_headers;
            assert!(!headers.iter().any(|h| seeds::is_stamp(&h.name)));
            let view = RequestView {
                service: &x.service,
                peer,
                local,
                method: &x.method,
                target: &x.target,
                headers,
            };
            // The proxy reads the body first only when asked, for a
            // Content-Length within the limit and no Expect: 100-continue.
            let body = &x.request_body;
            let body = match (read_bodies, a.wants_body(&view), content_length(headers)) {
                (true, Some(max), Some(len))
                    if len <= max as u64 && header(headers, "Expect").is_none() =>
                {
                    assert_eq!(body.kept.len() as u64, body.size, "small body");
                    Some(body.kept.as_slice())
                }
                _ => None,
            };
            decided.insert(i, a.decide(&conn, &view, body));
            flights.insert(i, a.in_flight(&x.service, headers));
        } else {
            let ex = exchange(x, &decided[&i]);
            // The response is streamed, then the exchange is finished.
            drop(flights.remove(&i));
            a.learn(&ex);
            assert_eq!(a.keep(&ex), Keep::Store);
        }
    }
    assert!(flights.is_empty());
    (0..calls.len())
        .map(|i| decided.remove(&i).unwrap())
        .collect()
}

fn content_length(headers: &[HeaderField]) -> Option<u64> {
    header(headers, "Content-Length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

/// The exchange as the proxy would hand it over: the decided caller,
/// stamped headers, the bodies as the seed keeps them (JSON whole, the
/// image's first bytes).
fn exchange(x: &Exchange, d: &Decision) -> Exchange {
    let stamp = |h: &mut Vec<HeaderField>| {
        h.push(HeaderField::new(
            "X-Requestshook-Request-Id",
            x.request_id.as_str(),
        ));
        h.push(HeaderField::new(
            "X-Requestshook-Request-From",
            d.caller.as_str(),
        ));
    };
    let mut ex = x.clone();
    ex.caller = d.caller.clone();
    ex.caller_source = d.source;
    stamp(&mut ex.request_headers);
    stamp(&mut ex.response_headers);
    ex
}

/// The decisions against the seed's callers, printed.
fn score(title: &str, calls: &[Exchange], decisions: &[Decision]) -> Score {
    let mut score = Score::default();
    for (x, d) in calls.iter().zip(decisions) {
        score.add(x, &d.caller, d.source, None);
    }
    score.print(title);
    score
}

const SOURCES: [(&str, usize); 3] = [("subject-token", 2), ("token", 7), ("user-agent", 2)];

#[test]
fn replay_data_matches_the_seed() {
    let calls = seed_calls();
    assert_eq!(calls.len(), 11);
    let numbers: Vec<i64> = events(&calls).iter().map(|(n, _, _)| *n).collect();
    assert_eq!(numbers, (1..=22).collect::<Vec<_>>());
    for x in &calls {
        // JSON bodies are byte for byte what Content-Length says.
        if let Some(len) = content_length(&x.request_headers) {
            assert_eq!(len, x.request_body.size, "({})", x.request_seq);
        }
        if let Some(len) = content_length(&x.response_headers) {
            assert_eq!(len, x.response_body.size, "({:?})", x.response_seq);
        }
    }
    let callers: BTreeSet<&str> = calls.iter().map(|x| x.caller.as_str()).collect();
    assert_eq!(
        callers.into_iter().collect::<Vec<_>>(),
        ["glance-api", "openstack", "swift-proxy-server"]
    );
}

#[test]
fn image_create_callers_from_headers_bodies_and_tokens() {
    // The real clock: keystone's 2022 expiry times are read relative to the
    // issue time it reports, so a replay years later still works.
    let calls = seed_calls();
    let a = Attributor::new(&Config::default());
    let decisions = replay(&a, &calls, true);
    let first = score(
        "seed 004 image create, no process information:",
        &calls,
        &decisions,
    );
    first.assert_all_right();
    first.assert_sources(&SOURCES);
    // The two validations are the ones the in-flight calls explain.
    let validations: Vec<(&str, CallerSource)> = calls
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
    let again = replay(&a, &calls, true);
    let again = score("the same flow again, tokens known:", &calls, &again);
    again.assert_all_right();
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
    let calls = seed_calls();
    let decisions = replay(&a, &calls, true);
    let title = "seed 004 image create, sample config + example rules:";
    score(title, &calls, &decisions).assert_all_right();
}

#[test]
fn image_create_without_request_bodies() {
    // A proxy that never reads request bodies first does not learn whom
    // glance's swift-store login (UA "uwsgi keystoneauth1") is for; a
    // library's login while glance serves the upload is glance's all the same.
    let a = Attributor::new(&Config::default());
    let calls = seed_calls();
    let decisions = replay(&a, &calls, false);
    let title = "seed 004 image create, request bodies not read:";
    let score = score(title, &calls, &decisions);
    score.assert_all_right();
    let login = calls.iter().position(|x| x.request_seq == 14).unwrap();
    assert_eq!(
        decisions[login].source,
        CallerSource::UserAgent,
        "(14) by the open call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_learned_survive_a_restart_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tracer.db", dir.path().display());
    let store = tracer::store::open(&url).await.unwrap();
    let a = Attributor::load(&Config::default(), store.clone()).await;
    let calls = seed_calls();
    let decisions = tokio::task::block_in_place(|| replay(&a, &calls, true));
    let title = "seed 004 image create, tokens kept in SQLite:";
    score(title, &calls, &decisions).assert_all_right();
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
    // Only hashes: no learned token is in the database files in clear
    // (here the CLI's own, from its login (3)/(4)), its hash is.
    let login = calls
        .iter()
        .find(|x| x.method == "POST" && x.caller == "openstack")
        .unwrap();
    let token = header(&login.response_headers, "X-Subject-Token")
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
    let put = calls
        .iter()
        .find(|x| x.method == "PUT" && x.service == "swift-proxy-server")
        .unwrap();
    let view = RequestView {
        service: &put.service,
        peer: "127.0.0.1:45000".parse().unwrap(),
        local: "127.0.0.1:15000".parse().unwrap(),
        method: &put.method,
        target: &put.target,
        headers: &put.request_headers,
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
