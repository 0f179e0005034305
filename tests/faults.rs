//! The unhappy path, over real sockets: upstreams that close, reset,
//! refuse, drip or stall, and clients that send what two parsers could read
//! differently or nothing at all. For each: what the client sees (the
//! upstream's own failure, mirrored), what is stored (with its typed
//! error), and that nothing refused reaches the upstream. docs/LIFECYCLE.md
//! has the table these tests prove.

mod common;

use common::faulty::{self, Ending, Faulty, Unaccepting};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracer::model::{ErrorKind, ErrorSide, Exchange};

const GET: &[u8] = b"GET /v3/users HTTP/1.1\r\nHost: h\r\n\r\n";
const BOUND: Duration = Duration::from_secs(15);

fn kind_side(ex: &Exchange) -> (ErrorKind, ErrorSide) {
    let e = ex
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error on {ex:?}"));
    (e.kind, e.side)
}

async fn only_exchange(t: &Tracer) -> Exchange {
    let stored = wait_for_exchanges(t, 1).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    stored.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_upstream_that_closes_is_mirrored_as_a_close() {
    let up = Faulty::start(faulty::close_after_request).await;
    let t = Tracer::start(&[("keystone", up.url())], "");
    let seen = faulty::send_and_watch(t.addr("keystone"), GET, BOUND).await;
    assert_eq!(
        (seen.bytes.as_slice(), &seen.ending),
        (&b""[..], &Ending::Closed),
        "no response, a close: {:?}",
        String::from_utf8_lossy(&seen.bytes)
    );
    let ex = only_exchange(&t).await;
    assert_eq!(ex.status, None);
    assert_eq!(
        kind_side(&ex),
        (ErrorKind::ClosedEarly, ErrorSide::Upstream)
    );
    let log = t.log();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("closed the connection without a response")
            && l.contains("path=/v3/users")),
        "one WARN line: {log}"
    );
}

#[tokio::test]
async fn an_upstream_reset_is_mirrored_as_a_reset() {
    let up = Faulty::start(faulty::reset_after_request).await;
    let t = Tracer::start(&[("keystone", up.url())], "");
    let seen = faulty::send_and_watch(t.addr("keystone"), GET, BOUND).await;
    assert_eq!((seen.bytes.len(), seen.ending), (0, Ending::Reset));
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Reset, ErrorSide::Upstream));
}

#[tokio::test]
async fn a_refused_connect_is_mirrored_as_a_reset() {
    let dead = format!("http://127.0.0.1:{}", faulty::dead_port());
    let t = Tracer::start(&[("nova-api", dead)], "");
    let seen = faulty::send_and_watch(t.addr("nova-api"), GET, BOUND).await;
    assert_eq!((seen.bytes.len(), seen.ending), (0, Ending::Reset));
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Refused, ErrorSide::Upstream));
    assert!(t.log().contains("WARN"), "{}", t.log());
}

#[tokio::test]
async fn a_connect_timeout_is_mirrored_as_a_close() {
    let up = Unaccepting::start();
    let t = Tracer::start(
        &[("neutron", format!("http://{}", up.addr))],
        "[proxy]\nconnect_timeout_secs = 1\n",
    );
    let began = Instant::now();
    let seen = faulty::send_and_watch(t.addr("neutron"), GET, BOUND).await;
    assert_eq!((seen.bytes.len(), seen.ending), (0, Ending::Closed));
    assert!(began.elapsed() < Duration::from_secs(10));
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Timeout, ErrorSide::Upstream));
}

#[tokio::test]
async fn explain_answers_what_happened() {
    let up = Faulty::start(faulty::close_after_request).await;
    let t = Tracer::start(
        &[("keystone", up.url())],
        "[proxy]\nupstream_errors = \"explain\"\n",
    );
    let seen = faulty::send_and_watch(t.addr("keystone"), GET, BOUND).await;
    let text = String::from_utf8_lossy(&seen.bytes);
    assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
    assert!(
        text.ends_with("tracer: upstream of keystone: closed the connection without a response\n"),
        "{text}"
    );
    let ex = only_exchange(&t).await;
    assert_eq!(ex.status, Some(502));
    assert_eq!(
        kind_side(&ex),
        (ErrorKind::ClosedEarly, ErrorSide::Upstream)
    );
}

/// The response timeout bounds the whole head: an upstream dripping one
/// byte every 300 ms does not keep the exchange going past it.
#[tokio::test]
async fn a_dripping_head_ends_at_the_response_timeout() {
    let up = Faulty::start(|s| {
        faulty::drip(
            s,
            b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            Duration::from_millis(300),
        )
    })
    .await;
    let t = Tracer::start(
        &[("glance-api", up.url())],
        "[proxy]\nresponse_timeout_secs = 2\n",
    );
    let began = Instant::now();
    let seen = faulty::send_and_watch(t.addr("glance-api"), GET, BOUND).await;
    let took = began.elapsed();
    assert_eq!((seen.bytes.len(), seen.ending), (0, Ending::Closed));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Timeout, ErrorSide::Upstream));
}

/// The repro of issue 10: head and 100 of 1000 bytes, then nothing; the
/// client reads the head and goes. Flushes answer at once, the exchange is
/// stored, and tracer lets go of both sockets.
#[tokio::test]
async fn a_stalled_exchange_does_not_block_flushes() {
    let upstream_closed = Arc::new(tokio::sync::Notify::new());
    let closed = upstream_closed.clone();
    let up = Faulty::start(move |s| {
        let closed = closed.clone();
        faulty::send_then_stall(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
            closed,
        )
    })
    .await;
    let t = Tracer::start(&[("swift", up.url())], "");
    {
        let mut client = TcpStream::connect(t.addr("swift")).await.unwrap();
        client.write_all(GET).await.unwrap();
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut b = [0u8; 1024];
            let n = client.read(&mut b).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&b[..n]);
        }
    } // the client goes
    tokio::time::timeout(Duration::from_secs(5), upstream_closed.notified())
        .await
        .expect("tracer closed its upstream connection when the client left");
    for _ in 0..3 {
        let began = Instant::now();
        t.flush().await;
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
    }
    let ex = only_exchange(&t).await;
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.response_body.size, 100);
    assert_eq!(kind_side(&ex).1, ErrorSide::Client);
}

/// A response body that stops moving ends after the body idle timeout,
/// also while the client waits.
#[tokio::test]
async fn a_stalled_response_body_ends_at_the_idle_timeout() {
    let closed = Arc::new(tokio::sync::Notify::new());
    let c = closed.clone();
    let up = Faulty::start(move |s| {
        faulty::send_then_stall(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this",
            c.clone(),
        )
    })
    .await;
    let t = Tracer::start(
        &[("swift", up.url())],
        "[proxy]\nbody_idle_timeout_secs = 1\n",
    );
    let began = Instant::now();
    let seen = faulty::send_and_watch(t.addr("swift"), GET, BOUND).await;
    assert_eq!(seen.ending, Ending::Closed);
    assert!(String::from_utf8_lossy(&seen.bytes).ends_with("only this"));
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Timeout, ErrorSide::Upstream));
}

/// A request body that stops coming: 408, nothing whole forwarded.
#[tokio::test]
async fn a_stalled_request_body_ends_at_the_idle_timeout() {
    let upstream = Upstream::start(Arc::new(|_| response("201 Created", &[], b""))).await;
    let t = Tracer::start(
        &[("glance-api", upstream.url(""))],
        "[proxy]\nbody_idle_timeout_secs = 1\n",
    );
    let seen = faulty::send_and_watch(
        t.addr("glance-api"),
        b"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789",
        BOUND,
    )
    .await;
    let text = String::from_utf8_lossy(&seen.bytes);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    let ex = only_exchange(&t).await;
    assert_eq!(kind_side(&ex), (ErrorKind::Timeout, ErrorSide::Client));
    assert_eq!(ex.request_body.size, 10);
    assert!(upstream.received().is_empty());
}

/// A partial head on a kept-alive connection, dripping one byte a second:
/// closed (408) at the header timeout, and SIGTERM is quick.
#[tokio::test]
async fn a_dripping_request_head_ends_at_the_header_timeout() {
    let upstream = Upstream::start(Arc::new(|_| response("200 OK", &[], b"{}"))).await;
    let mut t = Tracer::start(
        &[("keystone", upstream.url(""))],
        "[proxy]\nheader_timeout_secs = 2\n",
    );
    let mut s = TcpStream::connect(t.addr("keystone")).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nG")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        let mut seen = Vec::new();
        for b in b"ET /second HTTP/1.1\r\nHost: x\r\n\r\n" {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut seen)).await;
        seen
    });
    let began = Instant::now();
    let seen = dripping.await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("HTTP/1.1 408 Request Timeout\r\n"), "{text}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    let stored = wait_for_exchanges(&t, 2).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        kind_side(&stored[1]),
        (ErrorKind::Timeout, ErrorSide::Client)
    );
    assert_eq!(
        upstream.received().len(),
        1,
        "only the whole request went on"
    );

    // A head dripping while SIGTERM comes: the stop does not wait for it.
    let mut s = TcpStream::connect(t.addr("keystone")).await.unwrap();
    s.write_all(b"GET /third HTTP/1.1\r\n").await.unwrap();
    let began = Instant::now();
    let status = t.terminate();
    assert!(status.success());
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

/// Requests two parsers could frame differently: refused with 400 (501 for
/// an unknown coding), nothing forwarded, stored with the reason.
#[tokio::test]
async fn ambiguous_framing_is_refused_and_not_forwarded() {
    let upstream = Upstream::start(Arc::new(|_| response("200 OK", &[], b"{}"))).await;
    let t = Tracer::start(&[("glance-api", upstream.url(""))], "");
    let body = "x".repeat(38);
    let with_length = |value: &str| {
        format!("POST /v2/images HTTP/1.1\r\nHost: h\r\nContent-Length: {value}\r\n\r\n{body}")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (with_length("+38"), "400", "Content-Length"),
        (with_length("38, 38"), "400", "Content-Length"),
        (with_length(",38"), "400", "Content-Length"),
        (with_length("5,"), "400", "Content-Length"),
        (
            "POST /v2/images HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n".to_string(),
            "400",
            "Content-Length",
        ),
        (
            format!("POST /v2/images HTTP/1.1\r\nHost: h\r\nX-A: a\nContent-Length: 38\r\n\r\n{body}"),
            "400",
            "bare LF",
        ),
        (
            "POST /v2/images HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            "400",
            "HTTP/1.0",
        ),
        (
            "POST /v2/images HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n".into(),
            "501",
            "coding",
        ),
        (
            "POST /v2/images HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc".into(),
            "400",
            "more than one Content-Length",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(),
            "400",
            "Host",
        ),
    ];
    for (request, status, reason) in &cases {
        let seen = faulty::send_and_watch(t.addr("glance-api"), request.as_bytes(), BOUND).await;
        let text = String::from_utf8_lossy(&seen.bytes);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")) && text.contains(reason),
            "{request:?} -> {text}"
        );
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    assert_eq!(
        *upstream.connections.lock().unwrap(),
        0,
        "refused before any upstream connection"
    );
    let stored = wait_for_exchanges(&t, cases.len()).await;
    assert_eq!(stored.len(), cases.len());
    for ex in &stored {
        assert_eq!(
            kind_side(ex),
            (ErrorKind::BadFraming, ErrorSide::Client),
            "{ex:?}"
        );
    }
}

/// Bad chunk framing in a request body: 400 while no response byte has
/// gone, the upstream connection closed, the true error stored.
#[tokio::test]
async fn bad_chunks_in_a_request_body_are_refused() {
    let upstream = Upstream::start(Arc::new(|_| response("201 Created", &[], b""))).await;
    let t = Tracer::start(&[("glance-api", upstream.url(""))], "");
    let bad = ["zz", "-1", "0x10", " 5", "", "10000000000000000", "5 x"];
    for size in bad {
        let request = format!(
            "PUT /v2/images/i/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{size}\r\nhello\r\n0\r\n\r\n"
        );
        let seen = faulty::send_and_watch(t.addr("glance-api"), request.as_bytes(), BOUND).await;
        let text = String::from_utf8_lossy(&seen.bytes);
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\n")
                && text.contains("bad chunked encoding"),
            "{size:?} -> {text}"
        );
    }
    let smuggle = b"PUT /v2/images/i/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n";
    let seen = faulty::send_and_watch(t.addr("glance-api"), smuggle, BOUND).await;
    assert!(
        seen.bytes.starts_with(b"HTTP/1.1 400 "),
        "{:?}",
        String::from_utf8_lossy(&seen.bytes)
    );
    assert!(
        upstream.received().is_empty(),
        "no whole request reached the upstream"
    );
    let stored = wait_for_exchanges(&t, bad.len() + 1).await;
    assert_eq!(stored.len(), bad.len() + 1);
    for ex in &stored {
        assert_eq!(kind_side(ex), (ErrorKind::BadFraming, ErrorSide::Client));
        assert!(
            ex.error_message().unwrap().contains("chunked"),
            "the true error: {:?}",
            ex.error
        );
        assert_eq!(ex.status, Some(400));
    }
}

/// An upstream that drops the first request of each path, as keystone on
/// SQLite did under Tempest's load; then answers (204 to DELETE, else 200).
async fn drops_first_of_each_path(
    mut s: TcpStream,
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
) {
    loop {
        let head = faulty::read_head(&mut s).await;
        if head.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut words = text.split(' ');
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        // Bodies here are small and sent with the head (urllib3 sends them at once).
        if let Some(n) = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            let have = head.len() - (text.find("\r\n\r\n").unwrap() + 4);
            let mut rest = vec![0u8; n.saturating_sub(have)];
            if s.read_exact(&mut rest).await.is_err() {
                return;
            }
        }
        if seen.lock().unwrap().insert(path) {
            return; // dropped: closed without a response
        }
        let answer: &[u8] = match method.as_str() {
            "DELETE" => b"HTTP/1.1 204 No Content\r\n\r\n",
            "HEAD" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        };
        if s.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// The same client library, the same failing upstream: the same outcome
/// with tracer in between as without it (its own retries still work).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_library_sees_the_same_outcome_through_tracer() {
    let Some(python) = tools::python() else {
        return;
    };
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let s = seen.clone();
    let up = Faulty::start(move |stream| drops_first_of_each_path(stream, s.clone())).await;
    let t = Tracer::start(&[("keystone", up.url())], "");
    let run = |base: String| {
        let out = std::process::Command::new(&python)
            .arg(tools::root().join("tests/python/client_retries.py"))
            .arg(base)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let direct = run(format!("{}/direct", up.url()));
    let traced = run(format!("http://{}/traced", t.addr("keystone")));
    assert_eq!(traced, direct, "through tracer vs direct");
    // The idempotent ones were retried and went through; the others were not.
    assert_eq!(direct["DELETE"], 204);
    assert_eq!(direct["GET"], 200);
    assert!(direct["POST"].is_string(), "{direct}");
    // Every attempt that reached the upstream through tracer is stored: the
    // client's own retries are requests of their own.
    t.flush().await;
    let stored = t.exchanges().await;
    let dropped = stored
        .iter()
        .filter(|x| x.status.is_none())
        .map(kind_side)
        .collect::<Vec<_>>();
    assert_eq!(dropped.len(), 6, "{stored:#?}");
    assert!(dropped
        .iter()
        .all(|&k| k == (ErrorKind::ClosedEarly, ErrorSide::Upstream)));
}
