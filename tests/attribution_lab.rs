//! Real lab traffic (keystone 30, glance 33 with swift as its store, swift
//! 2.38, trove 26, openstackclient 10.5; nothing patched) replayed through
//! the attribution calls in the order the proxy saw the events.
//!
//! `tests/data/lab/*.jsonl` was captured in front of the lab's services with
//! the process that owned each client socket; the expected caller is that
//! process (CLI -> openstack, glance's uwsgi -> glance-api, ...). Each flow is
//! replayed with no process information (headers, bodies, tokens only) and
//! with the process the lab saw, on a fresh attributor and all flows in a
//! row on one attributor.

mod common;

use common::replay::{lab_events, LabEvent as Ev};
use std::collections::{BTreeMap, HashMap};
use tracer::attribution::{Attributor, ConnectionCaller, Decision, InFlight, Keep, RequestView};
use tracer::config::Config;
use tracer::model::{header, BodyRecord, Exchange, HeaderField};

const FLOWS: [(&str, &str); 10] = [
    ("image-create", include_str!("data/lab/image-create.jsonl")),
    ("image-list", include_str!("data/lab/image-list.jsonl")),
    ("image-show", include_str!("data/lab/image-show.jsonl")),
    ("image-save", include_str!("data/lab/image-save.jsonl")),
    ("image-set", include_str!("data/lab/image-set.jsonl")),
    ("image-delete", include_str!("data/lab/image-delete.jsonl")),
    (
        "container-create",
        include_str!("data/lab/container-create.jsonl"),
    ),
    (
        "object-create",
        include_str!("data/lab/object-create.jsonl"),
    ),
    ("object-list", include_str!("data/lab/object-list.jsonl")),
    (
        "database-instance-list",
        include_str!("data/lab/database-instance-list.jsonl"),
    ),
];

/// Recorded by tests/e2e through tracer (tests/e2e/tools/replay_data.py): the
/// keystone user calls and the compute/network flows of nova 34, neutron 29
/// and placement 16, the truth being the caller tracer named from the peer process.
const COMPUTE_FLOWS: [(&str, &str); 12] = [
    ("user-create", include_str!("data/lab/user-create.jsonl")),
    ("user-list", include_str!("data/lab/user-list.jsonl")),
    ("flavor-list", include_str!("data/lab/flavor-list.jsonl")),
    (
        "network-create",
        include_str!("data/lab/network-create.jsonl"),
    ),
    (
        "subnet-create",
        include_str!("data/lab/subnet-create.jsonl"),
    ),
    ("network-list", include_str!("data/lab/network-list.jsonl")),
    (
        "security-group-list",
        include_str!("data/lab/security-group-list.jsonl"),
    ),
    (
        "server-create",
        include_str!("data/lab/server-create.jsonl"),
    ),
    ("server-list", include_str!("data/lab/server-list.jsonl")),
    ("server-show", include_str!("data/lab/server-show.jsonl")),
    ("port-list", include_str!("data/lab/port-list.jsonl")),
    (
        "server-delete",
        include_str!("data/lab/server-delete.jsonl"),
    ),
];

fn fields(pairs: &[(String, String)]) -> Vec<HeaderField> {
    pairs
        .iter()
        .map(|(k, v)| HeaderField::new(k.as_str(), v.as_str()))
        .collect()
}

fn record(text: &Option<String>, len: Option<u64>) -> BodyRecord {
    let kept = text.clone().unwrap_or_default().into_bytes();
    BodyRecord {
        size: len.unwrap_or(kept.len() as u64),
        kept,
        sha256: String::new(),
    }
}

struct Pending {
    req: Ev,
    decision: Decision,
    flight: InFlight,
    resp: Option<Ev>,
}

/// One row of the result: (xid, expected, decision).
type Row = (u64, String, Decision);

fn replay(a: &Attributor, text: &str, with_process: bool) -> Vec<Row> {
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut rows = Vec::new();
    for ev in lab_events(text) {
        match ev.ev.as_str() {
            "req" => {
                let headers = fields(ev.headers.as_deref().unwrap());
                // The process table on the command line the lab saw (what
                // `connection` finds in /proc).
                let conn = match (&ev.cmdline, with_process) {
                    _ if !with_process => ConnectionCaller::default(),
                    (None, _) => ConnectionCaller {
                        process: ev.process.clone(),
                        ..Default::default()
                    },
                    (Some(cmd), _) => ConnectionCaller {
                        process: a.rules().process_caller(
                            &cmd.split_whitespace()
                                .map(str::to_string)
                                .collect::<Vec<_>>(),
                        ),
                        ..Default::default()
                    },
                };
                let view = RequestView {
                    service: ev.service.as_deref().unwrap(),
                    peer: "127.0.0.1:50000".parse().unwrap(),
                    local: "127.0.0.1:15000".parse().unwrap(),
                    method: ev.method.as_deref().unwrap(),
                    target: ev.target.as_deref().unwrap(),
                    headers: &headers,
                };
                let length = header(&headers, "Content-Length")
                    .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
                let body = match (a.wants_body(&view), length, &ev.body) {
                    (Some(max), Some(n), Some(b))
                        if n <= max as u64 && header(&headers, "Expect").is_none() =>
                    {
                        Some(b.as_bytes())
                    }
                    _ => None,
                };
                let decision = a.decide(&conn, &view, body);
                let flight = a.in_flight(view.service, &headers);
                rows.push((ev.xid, ev.expected.clone().unwrap(), decision.clone()));
                pending.insert(
                    ev.xid,
                    Pending {
                        req: ev,
                        decision,
                        flight,
                        resp: None,
                    },
                );
            }
            "resp_head" => {
                let xid = ev.xid;
                pending.get_mut(&xid).unwrap().resp = Some(ev);
            }
            "resp_end" => {
                let p = pending.remove(&ev.xid).unwrap();
                let resp = p.resp.unwrap();
                let req = p.req;
                let ex = Exchange {
                    id: 0,
                    uuid: String::new(),
                    request_id: String::new(),
                    service: req.service.clone().unwrap(),
                    caller: p.decision.caller.clone(),
                    caller_source: p.decision.source,
                    client_addr: "127.0.0.1:50000".into(),
                    upstream_url: format!(
                        "http://127.0.0.1:5000{}",
                        req.target.as_deref().unwrap()
                    ),
                    method: req.method.clone().unwrap(),
                    target: req.target.clone().unwrap(),
                    request_version: "HTTP/1.1".into(),
                    request_headers: fields(req.headers.as_deref().unwrap()),
                    request_body: record(&req.body, req.body_len),
                    status: resp.status,
                    reason: resp.reason.clone(),
                    response_version: Some("HTTP/1.1".into()),
                    response_headers: fields(resp.headers.as_deref().unwrap()),
                    response_body: record(&ev.body, ev.body_len),
                    request_seq: 0,
                    response_seq: None,
                    started_at: 0,
                    response_at: None,
                    finished_at: 0,
                    error: None,
                    ignored: false,
                };
                drop(p.flight);
                a.learn(&ex);
                assert_eq!(a.keep(&ex), Keep::Store);
            }
            other => panic!("unknown event {other}"),
        }
    }
    assert!(pending.is_empty());
    rows
}

/// Prints the flow's share right and by source; returns (right, total).
fn report(
    flow: &str,
    rows: &[Row],
    by_rule: &mut BTreeMap<&'static str, (usize, usize)>,
) -> (usize, usize) {
    let right = rows.iter().filter(|(_, want, d)| *want == d.caller).count();
    let mut by_source: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, want, d) in rows {
        let rule = by_rule.entry(d.rule).or_default();
        rule.1 += 1;
        if *want == d.caller {
            rule.0 += 1;
            *by_source.entry(d.source.as_str()).or_insert(0) += 1;
        }
    }
    println!(
        "  {flow:<24} {right:>2}/{:<2} right  {by_source:?}",
        rows.len()
    );
    for (xid, want, d) in rows.iter().filter(|(_, want, d)| *want != d.caller) {
        println!(
            "    WRONG xid {xid}: want {want}, got {} ({}, {})",
            d.caller, d.source, d.rule
        );
    }
    (right, rows.len())
}

fn run(
    title: &str,
    flows: &[(&str, &str)],
    with_process: bool,
    one_attributor: bool,
) -> (usize, usize) {
    println!("{title}");
    let shared = Attributor::new(&Config::default());
    let (mut right, mut total) = (0, 0);
    let mut by_rule = BTreeMap::new();
    for (flow, text) in flows {
        let fresh;
        let a = if one_attributor {
            &shared
        } else {
            fresh = Attributor::new(&Config::default());
            &fresh
        };
        let (r, t) = report(flow, &replay(a, text, with_process), &mut by_rule);
        right += r;
        total += t;
    }
    println!("  all flows: {right}/{total}");
    let rules: Vec<String> = by_rule
        .iter()
        .map(|(rule, (r, t))| format!("{rule} {r}/{t}"))
        .collect();
    println!("  decided by rule (right/decided): {}", rules.join(", "));
    (right, total)
}

#[test]
fn lab_flows_without_process_information() {
    let (right, total) = run(
        "lab flows, each on a fresh attributor, no process information:",
        &FLOWS,
        false,
        false,
    );
    assert_eq!(total, 73);
    assert_eq!(right, total);
    let (right, total) = run(
        "lab flows in a row on one attributor, no process information:",
        &FLOWS,
        false,
        true,
    );
    assert_eq!(right, total);
}

#[test]
fn lab_flows_with_the_peer_process() {
    for flows in [&FLOWS[..], &COMPUTE_FLOWS[..]] {
        let (right, total) = run(
            "lab flows, each on a fresh attributor, with the peer process:",
            flows,
            true,
            false,
        );
        assert_eq!(right, total);
    }
}

#[test]
fn compute_flows_without_process_information() {
    // As tracer runs: one attributor for the whole suite, in the suite's order.
    let (right, total) = run(
        "compute flows in a row on one attributor, no process information:",
        &COMPUTE_FLOWS,
        false,
        true,
    );
    assert_eq!(total, 156);
    assert_eq!(right, total);
    // Each flow alone: nothing learned before it (the services' tokens are new to tracer).
    let (right, total) = run(
        "compute flows, each on a fresh attributor, no process information:",
        &COMPUTE_FLOWS,
        false,
        false,
    );
    assert!(right * 10 >= total * 9, "{right}/{total}");
}
