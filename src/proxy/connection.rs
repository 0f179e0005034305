//! One client connection, from accept to close (see docs/LIFECYCLE.md).
//!
//! Requests are read one after another (keep-alive, pipelining) and each is
//! served by [`super::request`] on the connection's own upstream
//! connection, which lives and dies with it: the upstream sees the same
//! sequence of requests the client sent, and connection semantics
//! (`Connection: close`, HTTP/1.0) pass through unchanged. Every phase has
//! a deadline: the idle wait between requests, the head once its first
//! byte is in, the bodies while they stream (`super::body`), the response
//! head (`super::forward`).

use super::answer::{refuse_head, HeadRefusal};
use super::head::{parse_request, RequestHead};
use super::io::{ReadHalf, Reader, Socket, Stream, WriteHalf, Writer};
use super::request::serve_request;
use super::Service;
use crate::attribution::ConnectionCaller;
use bytes::Buf;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(super) type In = Reader<ReadHalf>;
pub(super) type Out = Writer<WriteHalf>;

/// After tracer answered a request itself and closes, how long it keeps
/// reading (and dropping) what the client still sends, so that closing
/// with unread bytes does not reset the connection before the client has
/// read the answer (nginx's lingering close).
const LINGER: Duration = Duration::from_secs(2);
/// Bytes read and dropped during that time, at most.
const LINGER_BYTES: usize = 1 << 20;

pub(super) struct UpstreamConn {
    pub r: In,
    pub w: Out,
}

impl UpstreamConn {
    pub fn new(stream: Stream, idle: Duration) -> Self {
        let (r, w) = stream.split();
        Self {
            r: Reader::new(r),
            w: Writer::new(w, idle),
        }
    }
}

pub(super) struct Conn {
    pub peer: SocketAddr,
    /// `peer` as text, for every exchange of the connection.
    pub peer_text: String,
    pub local: SocketAddr,
    pub client_r: In,
    pub client_w: Out,
    /// The client's socket, to reset it where the upstream reset ours.
    client_socket: Option<Socket>,
    pub upstream: Option<UpstreamConn>,
    caller_lookup: Option<JoinHandle<ConnectionCaller>>,
    caller: Option<Arc<ConnectionCaller>>,
    /// This connection's own tokens under the daemon's: waiting on them takes
    /// the connection's lock, not one all connections share.
    pub shutdown: CancellationToken,
    pub abort: CancellationToken,
}

impl Conn {
    /// The per-connection attribution facts, looked up once (started at accept).
    pub async fn caller(&mut self) -> Arc<ConnectionCaller> {
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

/// What the connection does once a request is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    KeepAlive,
    /// Close (FIN).
    Close,
    /// tracer answered the request itself: close, lingering.
    CloseAfterAnswer,
    /// Reset (RST), mirroring an upstream that reset or refused.
    Reset,
}

/// Serves one accepted connection until it closes.
pub async fn handle(stream: Stream, peer: SocketAddr, local: SocketAddr, svc: &Service) {
    let shared = &svc.shared;
    let attributor = shared.finisher.attributor.clone();
    let name = svc.name.clone();
    let caller_lookup =
        tokio::task::spawn_blocking(move || attributor.connection(&name, peer, local));
    let client_socket = stream.socket();
    let (r, w) = stream.split();
    let mut conn = Conn {
        peer,
        peer_text: peer.to_string(),
        local,
        client_r: Reader::new(r),
        client_w: Writer::new(w, shared.limits.body_idle),
        client_socket,
        upstream: None,
        caller_lookup: Some(caller_lookup),
        caller: None,
        shutdown: shared.shutdown.child_token(),
        abort: shared.finisher.abort.child_token(),
    };
    let ending = loop {
        let next = match read_next_head(&mut conn, svc).await {
            NextHead::Closed => break Next::Close,
            NextHead::Head(head) => serve_request(svc, &mut conn, head).await,
            NextHead::Refused(why) => refuse_head(svc, &mut conn, why).await,
        };
        if next != Next::KeepAlive {
            break next;
        }
    };
    close(conn, ending).await;
}

async fn close(mut conn: Conn, ending: Next) {
    // The upstream connection goes first: nothing more will be sent on it.
    if let Some(mut up) = conn.upstream.take() {
        if ending == Next::Reset {
            drop(up);
        } else {
            up.w.shutdown().await;
        }
    }
    match ending {
        Next::Reset => {
            if let Some(socket) = &conn.client_socket {
                socket.reset_on_close();
            }
            conn.client_w.into_inner().abandon();
        }
        Next::CloseAfterAnswer => {
            conn.client_w.shutdown().await;
            linger(&mut conn).await;
        }
        Next::Close | Next::KeepAlive => conn.client_w.shutdown().await,
    }
}

/// Reads and drops what the client still sends, for a bounded time.
async fn linger(conn: &mut Conn) {
    let deadline = Instant::now() + LINGER;
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        conn.client_r.buf.clear();
        let read = tokio::select! {
            read = conn.client_r.read_more() => read,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = conn.abort.cancelled() => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

enum NextHead {
    Head(RequestHead),
    /// Closed while idle (or idle for too long, or shutting down while idle).
    Closed,
    Refused(HeadRefusal),
}

/// Blank lines between requests do not start one (RFC 9112 §2.2).
fn is_blank(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Waits for the next request head: while nothing is buffered, up to the
/// idle timeout (or until shutdown); once a byte of a head is in, the
/// whole head must arrive within the header timeout, however slowly it
/// drips (a kept-alive or pipelined connection included).
async fn read_next_head(conn: &mut Conn, svc: &Service) -> NextHead {
    let limits = &svc.shared.limits;
    let mut deadline: Option<Instant> = None;
    loop {
        if !conn.client_r.buf.is_empty() {
            match parse_request(&conn.client_r.buf, limits.max_head) {
                Ok(Some((head, len))) => {
                    conn.client_r.buf.advance(len);
                    return NextHead::Head(head);
                }
                Ok(None) => {}
                Err(e) => return NextHead::Refused(HeadRefusal::Malformed(e)),
            }
            if deadline.is_none() && !is_blank(&conn.client_r.buf) {
                deadline = Some(Instant::now() + limits.header_timeout);
            }
        }
        let waiting_for_head = deadline.is_some();
        let read = tokio::select! {
            biased;
            read = conn.client_r.read_more() => read,
            _ = tokio::time::sleep(limits.idle_timeout), if !waiting_for_head => {
                return NextHead::Closed
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if waiting_for_head => {
                return NextHead::Refused(HeadRefusal::TimedOut(limits.header_timeout))
            }
            _ = conn.shutdown.cancelled(), if !waiting_for_head => return NextHead::Closed,
            _ = conn.abort.cancelled() => {
                return if waiting_for_head {
                    NextHead::Refused(HeadRefusal::Aborted)
                } else {
                    NextHead::Closed
                }
            }
        };
        match read {
            Ok(0) | Err(_) if is_blank(&conn.client_r.buf) => return NextHead::Closed,
            Ok(0) | Err(_) => return NextHead::Refused(HeadRefusal::ClosedMidHead),
            Ok(_) => {}
        }
    }
}
