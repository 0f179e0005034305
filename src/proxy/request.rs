//! One request on a connection: admitted (or refused), attributed, stamped,
//! forwarded (retried once on a fresh upstream connection where that is
//! safe), and ended with what the client should see.

use super::answer::{fail, refuse, Failure, Refusal};
use super::connection::{Conn, Next, UpstreamConn};
use super::exchange::{push_lines, Record};
use super::forward::forward;
use super::framing::{check_request_head, closes_after, expects_continue, request_framing};
use super::head::RequestHead;
use super::{Framing, Service};
use crate::attribution::RequestView;
use crate::model::{ErrorKind, ErrorSide, ExchangeError};
use bytes::Bytes;

pub(super) async fn serve_request(svc: &Service, conn: &mut Conn, head: RequestHead) -> Next {
    let shared = &svc.shared;
    let mut ex = shared.finisher.begin(Record::new(
        &svc.name,
        conn.peer_text.clone(),
        Some(&head),
        shared.clock.next(),
        shared.limits.max_body,
    ));
    let framing = match admit(&head) {
        Ok(framing) => framing,
        Err(refusal) => return refuse(svc, conn, &mut ex, refusal).await,
    };
    let pre_read = match read_ahead(svc, conn, &head, framing).await {
        Ok(body) => body,
        Err(failure) => return fail(svc, conn, &mut ex, failure).await,
    };
    if let Some(body) = &pre_read {
        ex.req_body.feed(body);
    }

    let caller_facts = conn.caller().await;
    let view = view(svc, conn, &head);
    let decision = shared
        .finisher
        .attributor
        .decide(&caller_facts, &view, pre_read.as_deref());
    let stamps = ex.stamp_request(decision.caller, decision.source);
    let _in_flight = shared
        .finisher
        .attributor
        .in_flight(&svc.name, &head.headers);

    ex.ex.upstream_url = svc.connector.upstream.url_for(&head.target);
    let (forwarded_head, rest) = forwarded_head(svc, &head, &stamps, pre_read.as_deref(), framing);
    let request_closes = closes_after(head.version, &head.headers);
    if let Err(failure) = ensure_upstream(svc, conn).await {
        return fail(svc, conn, &mut ex, failure).await;
    }
    match forward(svc, conn, &mut ex, &forwarded_head, rest, &head.method).await {
        Ok(response_closes) => {
            ex.settle();
            if request_closes || response_closes {
                conn.upstream = None;
                Next::Close
            } else {
                Next::KeepAlive
            }
        }
        Err(failure) => {
            conn.upstream = None;
            fail(svc, conn, &mut ex, failure).await
        }
    }
}

/// The head as it goes upstream: the client's header lines as they came,
/// the upstream's path prefix, the stamps; with a body read ahead, that
/// body too (then nothing is left to relay).
fn forwarded_head(
    svc: &Service,
    head: &RequestHead,
    stamps: &[crate::model::HeaderField],
    pre_read: Option<&[u8]>,
    framing: Framing,
) -> (Vec<u8>, Framing) {
    let mut out = Vec::with_capacity(head.raw_header_lines.len() + 256);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(svc.connector.upstream.prefix_for(&head.target).as_bytes());
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(if head.version == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    out.extend_from_slice(&head.raw_header_lines);
    push_lines(&mut out, stamps);
    out.extend_from_slice(b"\r\n");
    match pre_read {
        Some(body) => {
            out.extend_from_slice(body);
            (out, Framing::None)
        }
        None => (out, framing),
    }
}

/// A kept-alive upstream connection that closed while idle is replaced
/// before anything is sent on it, as a client checks its own. tracer never
/// sends a request twice: an upstream that fails once the request is on
/// its way is the client's to see (mirrored) and to retry by its own rules,
/// exactly as without tracer.
async fn ensure_upstream(svc: &Service, conn: &mut Conn) -> Result<(), Failure> {
    if let Some(up) = conn.upstream.as_mut() {
        if !up.r.is_stale().await {
            return Ok(());
        }
    }
    conn.upstream = None;
    let stream = svc
        .connector
        .connect()
        .await
        .map_err(|e| Failure::new(e.kind(), ErrorSide::Upstream, e.to_string()))?;
    conn.upstream = Some(UpstreamConn::new(stream, svc.shared.limits.body_idle));
    Ok(())
}

fn view<'a>(svc: &'a Service, conn: &Conn, head: &'a RequestHead) -> RequestView<'a> {
    RequestView {
        service: &svc.name,
        peer: conn.peer,
        local: conn.local,
        method: &head.method,
        target: &head.target,
        headers: &head.headers,
    }
}

/// What tracer refuses to forward: a reverse proxy is not an open proxy,
/// and a request two parsers could frame differently is not forwarded at all.
fn admit(head: &RequestHead) -> Result<Framing, Refusal> {
    let client = |kind, message: String| ExchangeError::new(kind, ErrorSide::Client, message);
    if head.method.eq_ignore_ascii_case("CONNECT") {
        return Err(Refusal {
            status: 405,
            reason: "Method Not Allowed",
            error: client(
                ErrorKind::Rejected,
                "CONNECT is not served: tracer is a reverse proxy".into(),
            ),
        });
    }
    if !(head.target.starts_with('/') || head.target == "*") {
        return Err(Refusal {
            status: 400,
            reason: "Bad Request",
            error: client(
                ErrorKind::Rejected,
                "only origin-form targets (/path) are served: tracer is a reverse proxy, not an open proxy".into(),
            ),
        });
    }
    check_request_head(head.bare_lf, head.version, &head.headers)
        .and_then(|()| request_framing(head.version, &head.headers))
        .map_err(|e| {
            let (status, reason) = e.status();
            Refusal {
                status,
                reason,
                error: client(ErrorKind::BadFraming, e.to_string()),
            }
        })
}

/// Attribution may want a small body first (a token request names its
/// user): read it whole before forwarding.
async fn read_ahead(
    svc: &Service,
    conn: &mut Conn,
    head: &RequestHead,
    framing: Framing,
) -> Result<Option<Bytes>, Failure> {
    let Framing::Length(n) = framing else {
        return Ok(None);
    };
    let limit = svc
        .shared
        .finisher
        .attributor
        .wants_body(&view(svc, conn, head));
    if limit.is_none_or(|limit| n > limit as u64) || expects_continue(&head.headers) {
        return Ok(None);
    }
    let idle = svc.shared.limits.body_idle;
    while (conn.client_r.buf.len() as u64) < n {
        let failure = match conn.client_r.read_more_within(idle).await {
            Ok(k) if k > 0 => continue,
            Ok(_) => Failure::new(
                ErrorKind::ClosedEarly,
                ErrorSide::Client,
                "client closed the connection during the request body",
            ),
            Err(e) => Failure::new(
                ErrorKind::of_io(&e),
                ErrorSide::Client,
                format!("client connection failed during the request body: {e}"),
            ),
        };
        return Err(failure);
    }
    Ok(Some(conn.client_r.buf.split_to(n as usize).freeze()))
}
