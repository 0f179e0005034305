//! How long a 110-event flow takes to render (55 exchanges, 4 KiB JSON
//! bodies both ways): printed, not asserted (shared CI machines vary).
//! `cargo test --test render_perf -- --nocapture` shows the numbers.

use std::time::Instant;
use tracer::model::{BodyRecord, CallerSource, Exchange, Flow, HeaderField};
use tracer::render::{self, RenderOptions};

fn json_4k(i: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"image\":{{\"id\":\"{i:08x}-78ec-4c95-b7b4-272ba265072c\",\"tags\":[],\"props\":{{"
    );
    let mut k = 0;
    while s.len() < 4000 {
        s.push_str(&format!(
            "\"key_{k}\":{{\"name\":\"value number {k}\",\"size\":{},\"ok\":true}},",
            k * 1024
        ));
        k += 1;
    }
    s.pop();
    s.push_str("}}}");
    s.into_bytes()
}

fn flow_of(n: usize) -> Vec<Exchange> {
    (0..n)
        .map(|i| {
            let body = json_4k(i);
            let seq = (i as i64) * 10;
            Exchange {
                id: i as i64,
                uuid: format!("{i:032x}"),
                request_id: format!("{i:032x}"),
                service: if i % 2 == 0 { "glance-api" } else { "keystone" }.into(),
                caller: "openstack".into(),
                caller_source: CallerSource::Header,
                client_addr: "127.0.0.1:1".into(),
                upstream_url: format!("http://127.0.0.1:9292/v2/images/{i}"),
                method: "POST".into(),
                target: format!("/v2/images?page={i}"),
                request_version: "HTTP/1.1".into(),
                request_headers: vec![
                    HeaderField::new("Host", "127.0.0.1:19292"),
                    HeaderField::new("Content-Type", "application/json"),
                    HeaderField::new("X-Auth-Token", "gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZmQ6Gxg2bf1_CUvVe7-B8uwnwX_H6qep9RcIII4Dc0MFae"),
                ],
                request_body: BodyRecord {
                    size: body.len() as u64,
                    kept: body.clone(),
                    sha256: String::new(),
                },
                status: Some(201),
                reason: Some("Created".into()),
                response_version: Some("HTTP/1.1".into()),
                response_headers: vec![HeaderField::new("Content-Type", "application/json")],
                response_body: BodyRecord {
                    size: body.len() as u64,
                    kept: body,
                    sha256: String::new(),
                },
                request_seq: seq,
                response_seq: Some(seq + 5),
                started_at: 1_700_000_000_000_000 + seq,
                response_at: Some(1_700_000_000_000_000 + seq + 5),
                finished_at: 1_700_000_000_000_000 + seq + 6,
                error: None,
                ignored: false,
            }
        })
        .collect()
}

#[test]
fn render_110_events() {
    let xs = flow_of(55);
    let flow = Flow {
        name: "perf".into(),
        ..Default::default()
    };
    for redact in [false, true] {
        let opts = RenderOptions {
            redact,
            har_link: true,
            ..Default::default()
        };
        let t = Instant::now();
        let pages = render::flow_pages(&flow, &xs, &opts);
        let har = render::har::har_json(&flow, &xs, &opts);
        let took = t.elapsed();
        assert_eq!(pages.body_md.matches("\n### (").count() + 1, 110);
        let bytes = pages.body_md.len()
            + pages.index_md.len()
            + pages.log_md.len()
            + pages.diagram_md.len()
            + har.len();
        println!(
            "render_perf: 110 events, redact={redact}: all pages + HAR ({} KiB) in {:.1} ms",
            bytes / 1024,
            took.as_secs_f64() * 1000.0
        );
    }
}
