//! A bounded fuzz test over real sockets: mutated request heads and chunked
//! bodies from clients, mutated response heads and chunked bodies from an
//! upstream. Whatever arrives: tracer does not panic, every connection is
//! answered or closed within a bound, and nothing it refused reaches the
//! upstream (every request the upstream got is one a strict parser frames
//! one way only).
//!
//! The mutations are seeded (xorshift), so a failure replays exactly:
//! the failing case prints its seed and bytes.

mod common;

use common::faulty::{self, Ending, Faulty};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tracer::proxy::framing::{check_request_head, request_framing};
use tracer::proxy::head::parse_request;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const BYTES: &[u8] = b"\r\n \t:,+-0x;\x00\x80aZ9\"";
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: ",
    b"Host: b\r\n",
    b"0\r\n\r\n",
    b"GET /x HTTP/1.1\r\n",
    b" HTTP/1.0",
    b"ffffffffffffffffff",
];

/// One mutation of `seed`: flip, insert, delete, duplicate a line, truncate.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        if out.is_empty() {
            out.push(b'G');
        }
        let at = rng.below(out.len());
        match rng.below(5) {
            0 => out[at] = BYTES[rng.below(BYTES.len())],
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                out.splice(at..at, piece.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let start = out[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = out[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(out.len(), |i| at + i + 1);
                let line = out[start..end].to_vec();
                out.splice(end..end, line);
            }
            _ => out.truncate(at),
        }
    }
    out
}

const REQUESTS: &[&[u8]] = &[
    b"GET /v2/images HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n",
    b"POST /v3/auth/tokens HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"auth\": {}}\n",
    b"PUT /v2/images/i/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
];

const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n",
    b"HTTP/1.1 300 MULTIPLE CHOICES\r\nLocation: /v3\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
];

const BOUND: Duration = Duration::from_secs(8);
const EXTRA: &str =
    "[proxy]\nheader_timeout_secs = 1\nbody_idle_timeout_secs = 1\nresponse_timeout_secs = 2\nidle_timeout_secs = 2\n";

/// Every request an upstream received is framed one way only.
fn strictly_framed(raw: &[u8]) -> bool {
    match parse_request(raw, 1 << 20) {
        Ok(Some((head, _))) => {
            check_request_head(head.bare_lf, head.version, &head.headers).is_ok()
                && request_framing(head.version, &head.headers).is_ok()
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_are_answered_or_closed_and_never_smuggled() {
    let upstream = Upstream::start(Arc::new(|_| response("200 OK", &[], b"{}"))).await;
    let t = Tracer::start(&[("glance-api", upstream.url(""))], EXTRA);
    let addr = t.addr("glance-api");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: Vec<(u64, Vec<u8>)> = (0..320)
        .map(|_| {
            let seed = rng.0;
            let base = REQUESTS[rng.below(REQUESTS.len())];
            (seed, mutate(&mut rng, base))
        })
        .collect();
    let mut refused_ids = Vec::new();
    for chunk in cases.chunks(32) {
        let runs: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|(seed, bytes)| {
                tokio::spawn(async move {
                    let seen = faulty::send_and_watch(addr, &bytes, BOUND).await;
                    (seed, bytes, seen)
                })
            })
            .collect();
        for run in runs {
            let (seed, bytes, seen) = run.await.unwrap();
            // Open is fine once answered: a kept-alive connection waits
            // for the next request.
            assert!(
                seen.ending != Ending::Open || seen.bytes.starts_with(b"HTTP/1."),
                "seed {seed:#x}: neither answered nor closed after {BOUND:?}: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            let text = String::from_utf8_lossy(&seen.bytes);
            // tracer's own refusals carry its text body and the stamped id.
            for answer in text.split("HTTP/1.1 ").filter(|a| a.contains("tracer: ")) {
                if let Some(id) = answer
                    .lines()
                    .find_map(|l| l.strip_prefix("X-Requestshook-Request-Id: "))
                {
                    refused_ids.push(id.trim().to_string());
                }
            }
        }
    }
    let received = upstream.received();
    for r in &received {
        assert!(
            strictly_framed(&r.raw),
            "forwarded something two parsers could read differently: {:?}",
            String::from_utf8_lossy(&r.raw)
        );
        let id = r
            .headers
            .iter()
            .find(|(n, _)| n == "X-Requestshook-Request-Id")
            .map(|(_, v)| String::from_utf8_lossy(v).to_string());
        assert!(
            !id.is_some_and(|id| refused_ids.contains(&id)),
            "a refused request reached the upstream: {:?}",
            String::from_utf8_lossy(&r.raw)
        );
    }
    assert!(
        !refused_ids.is_empty() && !received.is_empty(),
        "both kinds happened"
    );
    assert!(!t.log().contains("panicked"), "{}", t.log());
    t.flush().await;
    assert!(
        t.exchanges().await.len() >= refused_ids.len() + received.len(),
        "every refusal and every forwarded request is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_responses_reach_the_client_or_end_the_connection() {
    let cases: Arc<Vec<Vec<u8>>> = Arc::new({
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        (0..200)
            .map(|_| {
                let base = RESPONSES[rng.below(RESPONSES.len())];
                mutate(&mut rng, base)
            })
            .collect()
    });
    let answers = cases.clone();
    let up = Faulty::start(move |mut s| {
        let answers = answers.clone();
        async move {
            let head = faulty::read_head(&mut s).await;
            // The case number is the path: /case/N.
            let text = String::from_utf8_lossy(&head);
            let n: usize = text
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.strip_prefix("/case/"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let _ = s.write_all(&answers[n]).await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let t = Tracer::start(&[("keystone", up.url())], EXTRA);
    let addr = t.addr("keystone");
    for start in (0..cases.len()).step_by(25) {
        let runs: Vec<_> = (start..(start + 25).min(cases.len()))
            .map(|n| {
                tokio::spawn(async move {
                    let request =
                        format!("GET /case/{n} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
                    (
                        n,
                        faulty::send_and_watch(addr, request.as_bytes(), BOUND).await,
                    )
                })
            })
            .collect();
        for run in runs {
            let (n, seen) = run.await.unwrap();
            assert_ne!(
                seen.ending,
                Ending::Open,
                "case {n}: still open: {:?}",
                String::from_utf8_lossy(&cases[n])
            );
        }
    }
    assert!(!t.log().contains("panicked"), "{}", t.log());
    let stored = wait_for_exchanges(&t, cases.len()).await;
    assert_eq!(stored.len(), cases.len(), "every exchange is stored");
}
