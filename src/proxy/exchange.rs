//! One exchange under construction: created when a request head arrives,
//! filled in as the request and response pass, and finished by its guard
//! ([`Pending`]) when it goes out of scope, whatever happened: answered,
//! refused, upstream failure, client gone, a panic, a future cancelled at
//! shutdown. No path calls "finish" by hand, so none can forget to.

use super::head::{version_str, RequestHead, ResponseHead};
use super::Framing;
use crate::attribution::{Attributor, Keep};
use crate::capture::{BodyCapture, CaptureQueue};
use crate::model::{
    header, CallerSource, ErrorKind, ErrorSide, Exchange, ExchangeError, HeaderField,
    REQUEST_FROM_HEADER, REQUEST_ID_HEADER,
};
use crate::timefmt::now_micros;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A fresh request id: UUIDv4 as 32 lowercase hex digits.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The response side as it arrives.
pub struct ResponseRecord {
    pub head: Option<ResponseHead>,
    pub stamps: Vec<HeaderField>,
    pub framing: Framing,
    pub seq: Option<i64>,
    pub at: Option<i64>,
    pub body: BodyCapture,
    /// The head was written to the client: from here on only closing is possible.
    pub forwarded: bool,
    /// Any byte came back from the upstream for this request.
    pub any_bytes: bool,
    /// Held from the first response byte to the client until the exchange is queued.
    pub ticket: Option<crate::capture::AnswerTicket>,
}

pub struct Record {
    pub ex: Exchange,
    pub req_body: BodyCapture,
    pub resp: ResponseRecord,
    /// A response the proxy made itself (status, reason, headers, body).
    own_response: Option<(u16, String, Vec<HeaderField>, Vec<u8>)>,
    /// The proxy reached an outcome (answered, or failed with a reason).
    settled: bool,
}

impl Record {
    pub fn new(
        service: &str,
        client_addr: String,
        head: Option<&RequestHead>,
        request_seq: i64,
        max_body: u64,
    ) -> Self {
        let started_at = now_micros();
        let (method, target, version) = match head {
            Some(h) => (h.method.clone(), h.target.clone(), version_str(h.version)),
            None => (String::new(), String::new(), String::new()),
        };
        Record {
            ex: Exchange {
                id: 0,
                // Time-ordered, so the database appends to its uuid index.
                uuid: uuid::Uuid::now_v7().simple().to_string(),
                request_id: String::new(),
                service: service.to_string(),
                caller: "unknown".to_string(),
                caller_source: CallerSource::Unknown,
                client_addr,
                upstream_url: String::new(),
                method,
                target,
                request_version: version,
                request_headers: head.map(|h| h.headers.clone()).unwrap_or_default(),
                request_body: Default::default(),
                status: None,
                reason: None,
                response_version: None,
                response_headers: Vec::new(),
                response_body: Default::default(),
                request_seq,
                response_seq: None,
                started_at,
                response_at: None,
                finished_at: started_at,
                error: None,
                ignored: false,
            },
            req_body: BodyCapture::new(max_body),
            resp: ResponseRecord {
                head: None,
                stamps: Vec::new(),
                framing: Framing::None,
                seq: None,
                at: None,
                body: BodyCapture::new(max_body),
                forwarded: false,
                any_bytes: false,
                ticket: None,
            },
            own_response: None,
            settled: false,
        }
    }

    /// Sets the request id and caller, and returns the stamp lines to add to
    /// the forwarded request (only those the client did not send itself).
    pub fn stamp_request(&mut self, caller: String, source: CallerSource) -> Vec<HeaderField> {
        let headers = &self.ex.request_headers;
        let mut stamps = Vec::new();
        self.ex.request_id = match header(headers, REQUEST_ID_HEADER) {
            Some(id) => String::from_utf8_lossy(id).into_owned(),
            None => {
                let id = new_request_id();
                stamps.push(HeaderField::new(REQUEST_ID_HEADER, id.clone()));
                id
            }
        };
        if header(headers, REQUEST_FROM_HEADER).is_none() {
            stamps.push(HeaderField::new(REQUEST_FROM_HEADER, caller.clone()));
        }
        self.ex.caller = caller;
        self.ex.caller_source = source;
        self.ex.request_headers.extend(stamps.iter().cloned());
        stamps
    }

    /// The stamp lines to add to a response that lacks them.
    pub fn response_stamps(&self, response_headers: &[HeaderField]) -> Vec<HeaderField> {
        response_stamps(response_headers, &self.ex.request_id, &self.ex.caller)
    }

    /// Builds the proxy's own short text response (400, 502, 504 …) and
    /// records it as the response the client got.
    pub fn own_response(&mut self, status: u16, reason: &str, message: &str, seq: i64) -> Vec<u8> {
        if self.ex.request_id.is_empty() {
            self.stamp_request(self.ex.caller.clone(), self.ex.caller_source);
        }
        let body = format!("tracer: {message}\n").into_bytes();
        let mut headers = vec![
            HeaderField::new("Content-Type", "text/plain; charset=utf-8"),
            HeaderField::new("Content-Length", body.len().to_string()),
            HeaderField::new("Connection", "close"),
        ];
        headers.extend(self.response_stamps(&headers));
        let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
        push_lines(&mut out, &headers);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        self.resp.seq = Some(seq);
        self.resp.at = Some(now_micros());
        self.own_response = Some((status, reason.to_string(), headers, body));
        out
    }

    /// Records what went wrong; the first error is the one kept.
    pub fn fail(&mut self, error: ExchangeError) {
        if self.ex.error.is_none() {
            self.ex.error = Some(error);
        }
        self.settled = true;
    }

    /// The exchange went through: nothing more to record.
    pub fn settle(&mut self) {
        self.settled = true;
    }

    /// The finished exchange, as it goes to the store, and the ticket to
    /// drop once it is queued.
    pub fn finish(self) -> (Exchange, Option<crate::capture::AnswerTicket>) {
        let mut ex = self.ex;
        ex.request_body = self.req_body.finish();
        ex.finished_at = now_micros();
        ex.response_seq = self.resp.seq;
        ex.response_at = self.resp.at;
        if let Some((status, reason, headers, body)) = self.own_response {
            ex.status = Some(status);
            ex.reason = Some(reason);
            ex.response_version = Some("HTTP/1.1".into());
            ex.response_headers = headers;
            let mut capture = BodyCapture::new(u64::MAX);
            capture.feed(&body);
            ex.response_body = capture.finish();
        } else if let Some(head) = self.resp.head {
            ex.status = Some(head.status);
            ex.reason = Some(head.reason);
            ex.response_version = Some(version_str(head.version));
            ex.response_headers = head.headers;
            ex.response_headers.extend(self.resp.stamps);
            ex.response_body = self.resp.body.finish();
        }
        (ex, self.resp.ticket)
    }
}

/// What finishing an exchange needs: attribution learns from it, the
/// ignore rules judge it, the capture queue takes it.
pub struct Finisher {
    pub queue: CaptureQueue,
    pub attributor: Arc<Attributor>,
    /// Cancelled when the grace period of a shutdown is over.
    pub abort: CancellationToken,
}

impl Finisher {
    /// Starts guarding a record: it is finished when the guard is dropped.
    pub fn begin(&self, rec: Record) -> Pending<'_> {
        Pending {
            rec: Some(rec),
            finisher: self,
        }
    }

    fn finish(&self, rec: Record) {
        let (mut ex, _answered) = rec.finish();
        log_failure(&ex);
        self.attributor.learn(&ex);
        match self.attributor.keep(&ex) {
            Keep::Drop => {}
            keep => {
                ex.ignored = keep == Keep::StoreIgnored;
                self.queue.submit(ex);
            }
        }
        // `_answered` is dropped here, after the exchange is queued: a flush
        // waiting for it then finds it in the queue.
    }
}

/// One log line per failed exchange: upstream faults and refused requests
/// are warnings, a client that went away is not. The path is logged
/// without its query, which may carry secrets.
fn log_failure(ex: &Exchange) {
    let Some(e) = &ex.error else { return };
    let path = ex.path();
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                service = %ex.service,
                method = %ex.method,
                path = %path,
                request_id = %ex.request_id,
                kind = %e.kind,
                side = %e.side,
                status = ex.status.unwrap_or(0),
                "{}",
                e.message
            )
        };
    }
    match (e.side, e.kind) {
        (_, ErrorKind::Internal) => line!(error),
        (ErrorSide::Upstream, _) | (ErrorSide::Client, ErrorKind::BadFraming) => line!(warn),
        (ErrorSide::Client, ErrorKind::Rejected | ErrorKind::Timeout) => line!(warn),
        (ErrorSide::Tracer, _) => line!(info),
        (ErrorSide::Client, _) => line!(debug),
    }
}

/// An exchange in flight. Dropping it finishes the exchange and hands it
/// to the store; one that ends without an outcome (a panic, a future
/// dropped at shutdown) is stored with an error saying so.
pub struct Pending<'f> {
    rec: Option<Record>,
    finisher: &'f Finisher,
}

impl Deref for Pending<'_> {
    type Target = Record;
    fn deref(&self) -> &Record {
        self.rec
            .as_ref()
            .expect("a pending record is there until dropped")
    }
}

impl DerefMut for Pending<'_> {
    fn deref_mut(&mut self) -> &mut Record {
        self.rec
            .as_mut()
            .expect("a pending record is there until dropped")
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let Some(mut rec) = self.rec.take() else {
            return;
        };
        if !rec.settled {
            let (kind, message) = if std::thread::panicking() {
                (
                    ErrorKind::Internal,
                    "tracer failed while serving this exchange (a panic, see the log)",
                )
            } else if self.finisher.abort.is_cancelled() {
                (
                    ErrorKind::Shutdown,
                    "tracer shut down before the exchange finished",
                )
            } else {
                (
                    ErrorKind::Internal,
                    "the exchange ended without an outcome (a bug in tracer)",
                )
            };
            rec.fail(ExchangeError::new(kind, ErrorSide::Tracer, message));
        }
        self.finisher.finish(rec);
    }
}

/// The stamp lines a response lacks: the request's id and caller.
pub fn response_stamps(
    headers: &[HeaderField],
    request_id: &str,
    caller: &str,
) -> Vec<HeaderField> {
    let mut stamps = Vec::new();
    if header(headers, REQUEST_ID_HEADER).is_none() {
        stamps.push(HeaderField::new(REQUEST_ID_HEADER, request_id));
    }
    if header(headers, REQUEST_FROM_HEADER).is_none() {
        stamps.push(HeaderField::new(REQUEST_FROM_HEADER, caller));
    }
    stamps
}

/// Appends `Name: value\r\n` lines.
pub fn push_lines(out: &mut Vec<u8>, headers: &[HeaderField]) {
    for h in headers {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            target: "/".into(),
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| HeaderField::new(*n, v.as_bytes()))
                .collect(),
            raw_header_lines: Vec::new(),
            bare_lf: false,
        }
    }

    #[test]
    fn stamps_are_added_only_when_missing() {
        let mut r = Record::new("keystone", "c".into(), Some(&head(&[("Host", "h")])), 1, 10);
        let stamps = r.stamp_request("openstack".into(), CallerSource::UserAgent);
        assert_eq!(stamps.len(), 2);
        assert_eq!(stamps[0].name, REQUEST_ID_HEADER);
        let id = stamps[0].value_str();
        assert_eq!(id.len(), 32);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(r.ex.request_headers.len(), 3);

        let mut r = Record::new(
            "keystone",
            "c".into(),
            Some(&head(&[
                ("x-requestshook-request-id", "abc"),
                ("X-Requestshook-Request-From", "nova-api"),
            ])),
            1,
            10,
        );
        assert!(r
            .stamp_request("nova-api".into(), CallerSource::Header)
            .is_empty());
        assert_eq!(r.ex.request_id, "abc");
    }

    #[test]
    fn own_response_is_recorded_as_sent() {
        let mut r = Record::new("glance-api", "c".into(), Some(&head(&[])), 1, 10);
        r.stamp_request("openstack".into(), CallerSource::Unknown);
        let wire = r.own_response(502, "Bad Gateway", "upstream refused", 2);
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(text.ends_with("\r\n\r\ntracer: upstream refused\n"));
        let (ex, _) = r.finish();
        assert_eq!((ex.status, ex.response_seq), (Some(502), Some(2)));
        assert_eq!(ex.response_headers.len(), 5);
        assert_eq!(ex.response_body.kept, b"tracer: upstream refused\n");
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;
    use crate::capture::CaptureQueue;
    use crate::store::{ExchangeFilter, SharedStore};
    use std::time::Duration;

    async fn setup() -> (tempfile::TempDir, SharedStore, Arc<Finisher>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 100, u64::MAX);
        let finisher = Arc::new(Finisher {
            queue,
            attributor: Arc::new(Attributor::default()),
            abort: CancellationToken::new(),
        });
        (dir, store, finisher)
    }

    fn record(target: &str) -> Record {
        let mut r = Record::new("glance-api", "127.0.0.1:1".into(), None, 1, 100);
        r.ex.method = "GET".into();
        r.ex.target = target.into();
        r
    }

    async fn stored(store: &SharedStore, finisher: &Finisher) -> Vec<Exchange> {
        assert!(finisher.queue.flush(Duration::from_secs(5)).await.stored);
        store
            .list_exchanges(&ExchangeFilter::default())
            .await
            .unwrap()
    }

    fn kind(ex: &Exchange) -> ErrorKind {
        ex.error.as_ref().unwrap().kind
    }

    #[tokio::test]
    async fn a_panic_mid_exchange_still_stores_it() {
        let (_dir, store, finisher) = setup().await;
        let f = finisher.clone();
        let task = tokio::spawn(async move {
            let _pending = f.begin(record("/panics"));
            panic!("a bug in the middle of an exchange");
        });
        assert!(task.await.unwrap_err().is_panic());
        let all = stored(&store, &finisher).await;
        assert_eq!(all.len(), 1);
        assert_eq!(kind(&all[0]), ErrorKind::Internal);
        assert!(all[0].error_message().unwrap().contains("panic"));
    }

    #[tokio::test]
    async fn a_cancelled_exchange_still_stores_it() {
        let (_dir, store, finisher) = setup().await;
        let spawn_stuck = |target: &'static str| {
            let f = finisher.clone();
            tokio::spawn(async move {
                let _pending = f.begin(record(target));
                std::future::pending::<()>().await;
            })
        };
        // Dropped outside any shutdown: a bug, said so.
        let stuck = spawn_stuck("/dropped");
        tokio::task::yield_now().await;
        stuck.abort();
        let _ = stuck.await;
        // Dropped once the grace period is over: a shutdown, said so.
        let stuck = spawn_stuck("/at-shutdown");
        tokio::task::yield_now().await;
        finisher.abort.cancel();
        stuck.abort();
        let _ = stuck.await;
        let all = stored(&store, &finisher).await;
        let kinds: Vec<_> = all.iter().map(|x| (x.target.as_str(), kind(x))).collect();
        assert_eq!(
            kinds,
            [
                ("/dropped", ErrorKind::Internal),
                ("/at-shutdown", ErrorKind::Shutdown)
            ]
        );
    }

    #[tokio::test]
    async fn a_settled_exchange_carries_no_invented_error() {
        let (_dir, store, finisher) = setup().await;
        let mut pending = finisher.begin(record("/fine"));
        pending.settle();
        drop(pending);
        let all = stored(&store, &finisher).await;
        assert_eq!(all[0].error, None);
    }
}
