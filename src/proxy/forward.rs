//! One attempt at forwarding a request: the head goes up, then the request
//! body and the response run at once (an upstream may answer before it has
//! read the body: 413, or `100 Continue`). While the response comes, the
//! client is watched: if it goes away, so does the exchange, at once.
//!
//! Deadlines: the response head must arrive whole within the response
//! timeout once the request is sent; bodies may not stall for longer than
//! the body idle timeout in either direction (`super::body`, `super::io`).

use super::answer::Failure;
use super::body::{relay, BodyError, Rules};
use super::connection::{Conn, In, Out};
use super::exchange::{push_lines, response_stamps, Record, ResponseRecord};
use super::framing::{closes_after, response_framing};
use super::head::{parse_response, HeadError, ResponseHead};
use super::{Framing, Limits, Service, Shared};
use crate::model::{ErrorKind, ErrorSide, ExchangeError};
use bytes::Buf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How the request side ended, when it ended first.
enum RequestEnd {
    /// The body relay failed.
    Body(BodyError),
    /// The body was sent, then the client closed (None) or failed.
    ClientLeft(Option<std::io::Error>),
}

#[derive(Debug)]
enum ResponseError {
    /// The upstream closed (None) or failed before any byte of a response.
    NoResponse(Option<std::io::Error>),
    TimedOut(Duration),
    BadHead(HeadError),
    UpstreamBody(BodyError),
    ClientGone(std::io::Error),
}

/// Sends the request upstream and the response back. Ok: whether the
/// connection closes after this response.
pub(super) async fn forward(
    svc: &Service,
    conn: &mut Conn,
    rec: &mut Record,
    forwarded_head: &[u8],
    body: Framing,
    method: &str,
) -> Result<bool, Failure> {
    let shared = &svc.shared;
    let abort = conn.abort.clone();
    let Conn {
        client_r,
        client_w,
        upstream,
        ..
    } = conn;
    let up = upstream
        .as_mut()
        .expect("forward has an upstream connection");
    if let Err(e) = up.w.put(forwarded_head).await {
        return Err(Failure::new(
            ErrorKind::of_io(&e),
            ErrorSide::Upstream,
            format!("cannot send the request: {e}"),
        ));
    }
    let Record {
        ex, req_body, resp, ..
    } = rec;
    let sent = Notify::new();
    let body_sent = AtomicBool::new(false);
    let stamps = (ex.request_id.as_str(), ex.caller.as_str());

    let (ended, upstream_stopped_reading) = {
        let request = async {
            let relayed = relay(
                body,
                client_r,
                &mut up.w,
                req_body,
                rules(true, &shared.limits),
            )
            .await;
            sent.notify_one();
            if let Err(e) = relayed {
                return RequestEnd::Body(e);
            }
            body_sent.store(true, Ordering::Relaxed);
            RequestEnd::ClientLeft(watch_client(client_r, shared.limits.max_head).await)
        };
        // A request without a body to relay is sent with its head.
        let waits_for = (body != Framing::None).then_some(&sent);
        let response = respond(
            shared, &mut up.r, client_w, resp, waits_for, method, &stamps,
        );
        tokio::pin!(request, response);
        let mut upstream_stopped_reading = None;
        let ended = loop {
            // The response first: once it is done nothing else is polled.
            tokio::select! {
                biased;
                r = &mut response => break Ended::Response(r),
                end = &mut request, if upstream_stopped_reading.is_none() => match end {
                    RequestEnd::Body(BodyError::Write(e)) => {
                        // The upstream stopped reading the body: it may still answer (413).
                        upstream_stopped_reading = Some(e);
                    }
                    end => break Ended::Request(end),
                },
                _ = abort.cancelled() => break Ended::Aborted,
            }
        };
        (ended, upstream_stopped_reading)
    };

    let failure = |kind, side, message: String| Failure {
        error: ExchangeError::new(kind, side, message),
        response_started: resp.forwarded,
    };
    match ended {
        Ended::Response(Ok(closes)) => {
            if let Some(e) = upstream_stopped_reading {
                ex.error = Some(ExchangeError::new(
                    ErrorKind::of_io(&e),
                    ErrorSide::Upstream,
                    format!("upstream stopped reading the request body: {e}"),
                ));
                return Ok(true);
            }
            // Answered before the request body was read in full (413, or a
            // 401 to Expect): the rest of the body is abandoned, so the
            // connection cannot be reused.
            Ok(closes || !body_sent.load(Ordering::Relaxed))
        }
        Ended::Response(Err(e)) => {
            let (kind, side, message) = response_failure(e);
            Err(failure(kind, side, message))
        }
        Ended::Request(RequestEnd::Body(e)) => Err(failure(
            e.kind(),
            ErrorSide::Client,
            request_body_failure(&e),
        )),
        Ended::Request(RequestEnd::ClientLeft(e)) => Err(failure(
            e.as_ref().map_or(ErrorKind::ClosedEarly, ErrorKind::of_io),
            ErrorSide::Client,
            match e {
                None => "client closed the connection before the response ended".into(),
                Some(e) => format!("client connection failed before the response ended: {e}"),
            },
        )),
        Ended::Aborted => Err(failure(
            ErrorKind::Shutdown,
            ErrorSide::Tracer,
            "tracer shut down before the exchange finished".into(),
        )),
    }
}

fn rules(strict: bool, limits: &Limits) -> Rules {
    Rules {
        strict,
        idle: limits.body_idle,
    }
}

/// The response: its head (stamped, numbered, counted as answered), then
/// its body. Ok: whether the connection closes after it.
async fn respond(
    shared: &Shared,
    up: &mut In,
    client_w: &mut Out,
    resp: &mut ResponseRecord,
    sent: Option<&Notify>,
    method: &str,
    (request_id, caller): &(&str, &str),
) -> Result<bool, ResponseError> {
    let head = read_head(up, client_w, &shared.limits, sent, &mut resp.any_bytes).await?;
    resp.seq = Some(shared.clock.next());
    resp.at = Some(crate::timefmt::now_micros());
    resp.framing = response_framing(method, head.status, &head.headers);
    resp.stamps = response_stamps(&head.headers, request_id, caller);
    let mut out = Vec::with_capacity(head.raw_without_end.len() + 160);
    out.extend_from_slice(&head.raw_without_end);
    push_lines(&mut out, &resp.stamps);
    out.extend_from_slice(b"\r\n");
    let switching = head.status == 101;
    let closes = closes_after(head.version, &head.headers) || switching;
    resp.head = Some(head);
    resp.forwarded = true;
    resp.ticket = Some(shared.finisher.queue.answered());
    client_w
        .put(&out)
        .await
        .map_err(ResponseError::ClientGone)?;
    // Upgrades are not tunnelled: the connection ends after the head.
    let framing = if switching {
        Framing::None
    } else {
        resp.framing
    };
    relay(
        framing,
        up,
        client_w,
        &mut resp.body,
        rules(false, &shared.limits),
    )
    .await
    .map_err(|e| match e {
        BodyError::Write(io) => ResponseError::ClientGone(io),
        other => ResponseError::UpstreamBody(other),
    })?;
    Ok(closes || framing == Framing::UntilClose)
}

fn response_failure(e: ResponseError) -> (ErrorKind, ErrorSide, String) {
    use ErrorSide::{Client, Upstream};
    match e {
        ResponseError::NoResponse(None) => (
            ErrorKind::ClosedEarly,
            Upstream,
            "closed the connection without a response".into(),
        ),
        ResponseError::NoResponse(Some(e)) => (
            ErrorKind::of_io(&e),
            Upstream,
            format!("connection failed before a response: {e}"),
        ),
        ResponseError::TimedOut(after) => (
            ErrorKind::Timeout,
            Upstream,
            format!("no whole response head within {} s", after.as_secs()),
        ),
        ResponseError::BadHead(e) => (
            ErrorKind::BadFraming,
            Upstream,
            format!("sent a bad response head: {e}"),
        ),
        ResponseError::UpstreamBody(e) => (
            e.kind(),
            Upstream,
            format!("failed during the response body: {e}"),
        ),
        ResponseError::ClientGone(e) => (
            ErrorKind::of_io(&e),
            Client,
            format!("client connection failed during the response: {e}"),
        ),
    }
}

enum Ended {
    Response(Result<bool, ResponseError>),
    Request(RequestEnd),
    Aborted,
}

fn request_body_failure(e: &BodyError) -> String {
    match e {
        BodyError::SourceClosed => "client closed the connection during the request body".into(),
        BodyError::BadChunk(why) => format!("bad chunked encoding in the request body: {why}"),
        BodyError::Read(io) => format!("client connection failed during the request body: {io}"),
        BodyError::Write(io) => format!("upstream stopped reading the request body: {io}"),
    }
}

/// Reads the response head, passing interim responses (`100 Continue`)
/// straight to the client. The deadline starts when the request is sent
/// (`sent` says when its body is; None: it was sent with its head) and
/// bounds the whole head, however slowly it comes.
async fn read_head(
    up: &mut In,
    client_w: &mut Out,
    limits: &Limits,
    sent: Option<&Notify>,
    any_bytes: &mut bool,
) -> Result<ResponseHead, ResponseError> {
    let mut deadline = sent
        .is_none()
        .then(|| Instant::now() + limits.response_timeout);
    loop {
        match parse_response(&up.buf, limits.max_head) {
            Ok(Some((head, len))) if (100..200).contains(&head.status) && head.status != 101 => {
                let raw = up.buf.split_to(len);
                client_w
                    .put(&raw)
                    .await
                    .map_err(ResponseError::ClientGone)?;
                client_w.flush().await.map_err(ResponseError::ClientGone)?;
                continue;
            }
            Ok(Some((head, len))) => {
                up.buf.advance(len);
                return Ok(head);
            }
            Ok(None) => {}
            Err(e) => return Err(ResponseError::BadHead(e)),
        }
        let read = tokio::select! {
            biased;
            read = up.read_more() => read,
            _ = async { sent?.notified().await; Some(()) }, if deadline.is_none() => {
                deadline = Some(Instant::now() + limits.response_timeout);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                return Err(ResponseError::TimedOut(limits.response_timeout));
            }
        };
        match read {
            Ok(0) if !*any_bytes => return Err(ResponseError::NoResponse(None)),
            Ok(0) => {
                return Err(ResponseError::BadHead(HeadError::Malformed {
                    what: "response",
                    detail: "connection closed in the middle of the head".into(),
                }))
            }
            Ok(_) => *any_bytes = true,
            Err(e) if !*any_bytes => return Err(ResponseError::NoResponse(Some(e))),
            Err(e) => return Err(ResponseError::UpstreamBody(BodyError::Read(e))),
        }
    }
}

/// Waits for the client to go away while the response comes, keeping what
/// it sends meanwhile (pipelined requests) up to `cap` bytes; past that it
/// is not read until the response is over.
async fn watch_client(r: &mut In, cap: usize) -> Option<std::io::Error> {
    loop {
        if r.buf.len() >= cap {
            return std::future::pending().await;
        }
        match r.read_more().await {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
}
