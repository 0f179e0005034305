//! One client connection, from accept to close (see docs/LIFECYCLE.md).
//!
//! Requests are read one after another (keep-alive, pipelining) and each is
//! forwarded on the connection's own upstream connection, which lives and
//! dies with it: the upstream sees the same sequence of requests the client
//! sent, and connection semantics (`Connection: close`, HTTP/1.0) pass
//! through unchanged.

use super::body::{relay, BodyError};
use super::exchange::{push_lines, response_stamps, Record};
use super::head::{
    closes_after, expects_continue, parse_request, parse_response, request_framing,
    response_framing, Framing, HeadError, RequestHead,
};
use super::io::{ReadHalf, Reader, Stream, WriteHalf, Writer};
use super::Service;
use crate::attribution::{ConnectionCaller, Keep, RequestView};
use bytes::Buf;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type In = Reader<ReadHalf>;
type Out = Writer<WriteHalf>;

struct UpstreamConn {
    r: In,
    w: Out,
}

impl UpstreamConn {
    fn new(stream: Stream) -> Self {
        let (r, w) = stream.split();
        Self {
            r: Reader::new(r),
            w: Writer::new(w),
        }
    }
}

struct Conn {
    peer: SocketAddr,
    /// `peer` as text, for every exchange of the connection.
    peer_text: String,
    local: SocketAddr,
    client_r: In,
    client_w: Out,
    upstream: Option<UpstreamConn>,
    caller_lookup: Option<JoinHandle<ConnectionCaller>>,
    caller: Option<Arc<ConnectionCaller>>,
    /// This connection's own tokens under the daemon's: waiting on them takes
    /// the connection's lock, not one all connections share.
    shutdown: CancellationToken,
    abort: CancellationToken,
}

impl Conn {
    /// The per-connection attribution facts, looked up once (started at accept).
    async fn caller(&mut self) -> Arc<ConnectionCaller> {
        if self.caller.is_none() {
            let found = match self.caller_lookup.take() {
                Some(lookup) => lookup.await.unwrap_or_default(),
                None => ConnectionCaller::default(),
            };
            self.caller = Some(Arc::new(found));
        }
        self.caller.get_or_insert_default().clone()
    }
}

enum Next {
    KeepAlive,
    Close,
}

/// Serves one accepted connection until it closes.
pub async fn handle(stream: Stream, peer: SocketAddr, local: SocketAddr, svc: &Service) {
    let shared = &svc.shared;
    let attributor = shared.attributor.clone();
    let name = svc.name.clone();
    let caller_lookup =
        tokio::task::spawn_blocking(move || attributor.connection(&name, peer, local));
    let (r, w) = stream.split();
    let mut conn = Conn {
        peer,
        peer_text: peer.to_string(),
        local,
        client_r: Reader::new(r),
        client_w: Writer::new(w),
        upstream: None,
        caller_lookup: Some(caller_lookup),
        caller: None,
        shutdown: shared.shutdown.child_token(),
        abort: shared.abort.child_token(),
    };
    loop {
        let idle = conn.client_r.buf.is_empty();
        let head = tokio::select! {
            biased;
            head = read_request_head(&mut conn.client_r, shared.max_head) => head,
            _ = tokio::time::sleep(shared.idle_timeout), if idle => break,
            _ = conn.shutdown.cancelled(), if idle => break,
        };
        let next = match head {
            Ok(None) => break,
            Ok(Some((head, len))) => {
                conn.client_r.buf.advance(len);
                serve_request(svc, &mut conn, head).await
            }
            Err(err) => refuse_malformed(svc, &mut conn, err).await,
        };
        if matches!(next, Next::Close) {
            break;
        }
    }
    conn.client_w.shutdown().await;
    if let Some(mut up) = conn.upstream.take() {
        up.w.shutdown().await;
    }
}

/// Reads until a whole request head is buffered. Ok(None): closed while idle.
async fn read_request_head(
    r: &mut In,
    max: usize,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    loop {
        if !r.buf.is_empty() {
            if let Some(found) = parse_request(&r.buf, max)? {
                return Ok(Some(found));
            }
        }
        match r.read_more().await {
            Ok(0) | Err(_) if r.buf.iter().all(|b| b.is_ascii_whitespace()) => return Ok(None),
            Ok(0) | Err(_) => {
                return Err(HeadError::Malformed {
                    what: "request",
                    detail: "connection closed in the middle of the head".into(),
                })
            }
            Ok(_) => {}
        }
    }
}

/// Hands a finished exchange to attribution and the store.
fn finish(svc: &Service, rec: Record) {
    let (mut ex, _answered) = rec.finish();
    let attributor = &svc.shared.attributor;
    attributor.learn(&ex);
    match attributor.keep(&ex) {
        Keep::Drop => {}
        keep => {
            ex.ignored = keep == Keep::StoreIgnored;
            svc.shared.queue.submit(ex);
        }
    }
}

/// Answers the client with the proxy's own response, records it, closes.
async fn answer_and_close(
    svc: &Service,
    conn: &mut Conn,
    mut rec: Record,
    status: u16,
    reason: &str,
    message: &str,
) -> Next {
    let wire = rec.own_response(status, reason, message, svc.shared.clock.next());
    rec.resp.ticket = Some(svc.shared.queue.answered());
    rec.fail(message);
    if let Err(e) = async {
        conn.client_w.put(&wire).await?;
        conn.client_w.flush().await
    }
    .await
    {
        rec.fail(format!("{message}; and the client was gone: {e}"));
    }
    finish(svc, rec);
    Next::Close
}

async fn refuse_malformed(svc: &Service, conn: &mut Conn, err: HeadError) -> Next {
    let seq = svc.shared.clock.next();
    let mut rec = Record::new(
        &svc.name,
        conn.peer_text.clone(),
        None,
        seq,
        svc.shared.max_body,
    );
    // Keep what can be read of the request line, for the record.
    let first_line = conn.client_r.buf[..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let mut words = first_line.split(|&b| b == b' ');
    rec.ex.method = lossy_prefix(words.next().unwrap_or_default(), 32);
    rec.ex.target = lossy_prefix(words.next().unwrap_or_default(), 2048);
    let (status, reason) = match err {
        HeadError::TooLarge(_) => (431, "Request Header Fields Too Large"),
        HeadError::Malformed { .. } => (400, "Bad Request"),
    };
    answer_and_close(svc, conn, rec, status, reason, &err.to_string()).await
}

fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)])
        .trim()
        .to_string()
}

async fn serve_request(svc: &Service, conn: &mut Conn, head: RequestHead) -> Next {
    let shared = &svc.shared;
    let mut rec = Record::new(
        &svc.name,
        conn.peer_text.clone(),
        Some(&head),
        shared.clock.next(),
        shared.max_body,
    );

    // tracer is a reverse proxy, not an open one.
    if head.method.eq_ignore_ascii_case("CONNECT") {
        return answer_and_close(
            svc,
            conn,
            rec,
            405,
            "Method Not Allowed",
            "CONNECT is not served: tracer is a reverse proxy",
        )
        .await;
    }
    if !(head.target.starts_with('/') || head.target == "*") {
        return answer_and_close(svc, conn, rec, 400, "Bad Request",
            "only origin-form targets (/path) are served: tracer is a reverse proxy, not an open proxy").await;
    }
    let framing = match request_framing(&head.headers) {
        Ok(f) => f,
        Err(e) => return answer_and_close(svc, conn, rec, 400, "Bad Request", &e).await,
    };

    // Attribution may want a small body first (e.g. a token request names its user).
    let (peer, local) = (conn.peer, conn.local);
    let caller_facts = conn.caller().await;
    let view = RequestView {
        service: &svc.name,
        peer,
        local,
        method: &head.method,
        target: &head.target,
        headers: &head.headers,
    };
    let mut pre_read = None;
    if let (Framing::Length(n), Some(limit)) = (framing, shared.attributor.wants_body(&view)) {
        if n <= limit as u64 && !expects_continue(&head.headers) {
            while (conn.client_r.buf.len() as u64) < n {
                if !matches!(conn.client_r.read_more().await, Ok(k) if k > 0) {
                    rec.fail("client closed the connection during the request body");
                    finish(svc, rec);
                    return Next::Close;
                }
            }
            let body = conn.client_r.buf.split_to(n as usize).freeze();
            rec.req_body.feed(&body);
            pre_read = Some(body);
        }
    }
    let decision = shared
        .attributor
        .decide(&caller_facts, &view, pre_read.as_deref());
    let stamps = rec.stamp_request(decision.caller, decision.source);
    let _in_flight = shared.attributor.in_flight(&svc.name, &head.headers);

    let upstream = &svc.connector.upstream;
    rec.ex.upstream_url = upstream.url_for(&head.target);
    let mut forwarded_head = Vec::with_capacity(head.raw_header_lines.len() + 256);
    forwarded_head.extend_from_slice(head.method.as_bytes());
    forwarded_head.push(b' ');
    forwarded_head.extend_from_slice(upstream.prefix_for(&head.target).as_bytes());
    forwarded_head.extend_from_slice(head.target.as_bytes());
    forwarded_head.extend_from_slice(if head.version == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    forwarded_head.extend_from_slice(&head.raw_header_lines);
    push_lines(&mut forwarded_head, &stamps);
    forwarded_head.extend_from_slice(b"\r\n");
    if let Some(body) = &pre_read {
        forwarded_head.extend_from_slice(body);
    }
    let rest = if pre_read.is_some() {
        Framing::None
    } else {
        framing
    };
    // Only a request we hold whole can be sent again on a fresh connection.
    let replayable = rest == Framing::None;
    let request_closes = closes_after(head.version, &head.headers);

    for attempt in 1..=2 {
        let reused = match conn.upstream.as_mut() {
            Some(up) => !up.r.is_stale().await,
            None => false,
        };
        if !reused {
            conn.upstream = None;
            match svc.connector.connect().await {
                Ok(stream) => conn.upstream = Some(UpstreamConn::new(stream)),
                Err(e) => {
                    let (status, reason) = if e.is_timeout() {
                        (504, "Gateway Timeout")
                    } else {
                        (502, "Bad Gateway")
                    };
                    let message = format!("upstream of {}: {e}", svc.name);
                    return answer_and_close(svc, conn, rec, status, reason, &message).await;
                }
            }
        }
        match forward(svc, conn, &mut rec, &forwarded_head, rest, &head.method).await {
            Forwarded::Complete { response_closes } => {
                let keep = !request_closes && !response_closes;
                if !keep {
                    conn.upstream = None;
                }
                finish(svc, rec);
                return if keep { Next::KeepAlive } else { Next::Close };
            }
            Forwarded::NoResponse(why) if reused && replayable && attempt == 1 => {
                // A kept-alive upstream connection closed under us: try a fresh one.
                tracing::debug!(service = %svc.name, "retrying on a new upstream connection: {why}");
                conn.upstream = None;
                rec.resp.any_bytes = false;
            }
            Forwarded::NoResponse(why) => {
                conn.upstream = None;
                let message = format!("upstream of {}: {why}", svc.name);
                return answer_and_close(svc, conn, rec, 502, "Bad Gateway", &message).await;
            }
            Forwarded::TimedOut => {
                conn.upstream = None;
                let message = format!(
                    "upstream of {} sent no response within {} s",
                    svc.name,
                    shared.response_timeout.as_secs()
                );
                return answer_and_close(svc, conn, rec, 504, "Gateway Timeout", &message).await;
            }
            Forwarded::Broken(why) => {
                conn.upstream = None;
                rec.fail(why);
                finish(svc, rec);
                return Next::Close;
            }
        }
    }
    unreachable!("the second attempt never retries")
}

/// How forwarding one request ended.
enum Forwarded {
    /// The response went to the client in full.
    Complete {
        response_closes: bool,
    },
    /// Nothing came back and nothing was sent to the client: a 502 can still be sent.
    NoResponse(String),
    TimedOut,
    /// Something failed after the client saw part of the response (or the
    /// client went away): the connection can only be closed.
    Broken(String),
}

#[derive(Debug)]
enum ResponseError {
    /// Before any response byte arrived.
    NoResponse(String),
    TimedOut,
    BadHead(HeadError),
    UpstreamBody(BodyError),
    ClientGone(std::io::Error),
}

/// Sends the request upstream and the response back, both bodies streaming at once.
async fn forward(
    svc: &Service,
    conn: &mut Conn,
    rec: &mut Record,
    forwarded_head: &[u8],
    body: Framing,
    method: &str,
) -> Forwarded {
    let shared = &svc.shared;
    let abort = conn.abort.clone();
    let Conn {
        client_r,
        client_w,
        upstream,
        ..
    } = conn;
    let Some(up) = upstream.as_mut() else {
        return Forwarded::NoResponse("no upstream connection".into());
    };
    if let Err(e) = up.w.put(forwarded_head).await {
        return Forwarded::NoResponse(format!("cannot send the request: {e}"));
    }
    let request_sent = AtomicBool::new(false);
    let Record {
        ex, req_body, resp, ..
    } = rec;
    let (request_result, response_result, aborted) = {
        let request = relay(body, client_r, &mut up.w, req_body);
        let response = async {
            let head = loop {
                match parse_response(&up.r.buf, shared.max_head) {
                    Ok(Some((head, len)))
                        if (100..200).contains(&head.status) && head.status != 101 =>
                    {
                        // Interim (100 Continue …): straight through, not recorded as the answer.
                        let raw = up.r.buf.split_to(len);
                        client_w
                            .put(&raw)
                            .await
                            .map_err(ResponseError::ClientGone)?;
                        client_w.flush().await.map_err(ResponseError::ClientGone)?;
                        continue;
                    }
                    Ok(Some((head, len))) => {
                        up.r.buf.advance(len);
                        break head;
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ResponseError::BadHead(e)),
                }
                // The response timeout runs once the request has been sent in full.
                loop {
                    match tokio::time::timeout(shared.response_timeout, up.r.read_more()).await {
                        Ok(Ok(0)) if !resp.any_bytes => {
                            return Err(ResponseError::NoResponse(
                                "closed the connection without a response".into(),
                            ))
                        }
                        Ok(Ok(0)) => {
                            return Err(ResponseError::BadHead(HeadError::Malformed {
                                what: "response",
                                detail: "connection closed in the middle of the head".into(),
                            }))
                        }
                        Ok(Ok(_)) => {
                            resp.any_bytes = true;
                            break;
                        }
                        Ok(Err(e)) if !resp.any_bytes => {
                            return Err(ResponseError::NoResponse(e.to_string()))
                        }
                        Ok(Err(e)) => return Err(ResponseError::UpstreamBody(BodyError::Read(e))),
                        Err(_) if request_sent.load(Ordering::Acquire) => {
                            return Err(ResponseError::TimedOut)
                        }
                        Err(_) => continue,
                    }
                }
            };
            resp.seq = Some(shared.clock.next());
            resp.at = Some(crate::timefmt::now_micros());
            resp.framing = response_framing(method, head.status, &head.headers);
            resp.stamps = response_stamps(&head.headers, &ex.request_id, &ex.caller);
            let mut out = Vec::with_capacity(head.raw_without_end.len() + 160);
            out.extend_from_slice(&head.raw_without_end);
            push_lines(&mut out, &resp.stamps);
            out.extend_from_slice(b"\r\n");
            let closes = closes_after(head.version, &head.headers) || head.status == 101;
            resp.head = Some(head);
            resp.forwarded = true;
            resp.ticket = Some(shared.queue.answered());
            client_w
                .put(&out)
                .await
                .map_err(ResponseError::ClientGone)?;
            let framing = if resp.head.as_ref().is_some_and(|h| h.status == 101) {
                Framing::None
            } else {
                resp.framing
            };
            relay(framing, &mut up.r, client_w, &mut resp.body)
                .await
                .map_err(|e| match e {
                    BodyError::Write(io) => ResponseError::ClientGone(io),
                    other => ResponseError::UpstreamBody(other),
                })?;
            Ok(closes || framing == Framing::UntilClose)
        };
        tokio::pin!(request, response);
        let mut request_result: Option<Result<(), BodyError>> = None;
        let mut response_result = None;
        let aborted = loop {
            tokio::select! {
                r = &mut request, if request_result.is_none() => {
                    request_sent.store(true, Ordering::Release);
                    let client_gone = matches!(&r, Err(e) if e.is_source_side());
                    request_result = Some(r);
                    if client_gone || response_result.is_some() {
                        break false;
                    }
                }
                r = &mut response, if response_result.is_none() => {
                    response_result = Some(r);
                    break false;
                }
                _ = abort.cancelled() => break true,
            }
        };
        (request_result, response_result, aborted)
    };

    if aborted {
        return Forwarded::Broken("tracer shut down before the exchange finished".into());
    }
    match (request_result, response_result) {
        (Some(Err(e)), _) if e.is_source_side() => Forwarded::Broken(format!(
            "client closed the connection during the request body: {e}"
        )),
        (request, Some(Ok(response_closes))) => match request {
            Some(Ok(())) => Forwarded::Complete { response_closes },
            Some(Err(e)) => {
                ex.error = Some(format!("upstream stopped reading the request body: {e}"));
                Forwarded::Complete {
                    response_closes: true,
                }
            }
            // Answered before the request body was read (e.g. 413, 401 to Expect):
            // the rest of the body is abandoned, so the connection cannot be reused.
            None => Forwarded::Complete {
                response_closes: true,
            },
        },
        (_, Some(Err(e))) => match e {
            ResponseError::NoResponse(why) => Forwarded::NoResponse(why),
            ResponseError::TimedOut => Forwarded::TimedOut,
            ResponseError::BadHead(e) if !resp.forwarded => {
                Forwarded::NoResponse(format!("sent a bad response: {e}"))
            }
            ResponseError::BadHead(e) => Forwarded::Broken(e.to_string()),
            ResponseError::UpstreamBody(e) => {
                Forwarded::Broken(format!("upstream failed during the response body: {e}"))
            }
            ResponseError::ClientGone(e) => Forwarded::Broken(format!(
                "client closed the connection during the response: {e}"
            )),
        },
        (_, None) => Forwarded::Broken("the exchange ended without a response".into()),
    }
}
