//! What the client gets when an exchange does not go through: tracer's own
//! short answer (a refused request, or an upstream failure with
//! `[proxy] upstream_errors = "explain"`), or, by default, the upstream's
//! failure mirrored: the connection closed, or reset, without a response,
//! as the client would have seen it without tracer in between. Clients'
//! own retry logic then works as it does without tracer.

use super::connection::{Conn, Next};
use super::exchange::{Pending, Record};
use super::head::HeadError;
use super::Service;
use crate::config::UpstreamErrors;
use crate::model::{ErrorKind, ErrorSide, ExchangeError};
use std::time::Duration;

/// A request tracer does not forward, with the status it answers.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub error: ExchangeError,
}

/// Why no request head could be read.
#[derive(Debug)]
pub(super) enum HeadRefusal {
    Malformed(HeadError),
    TimedOut(Duration),
    ClosedMidHead,
    /// The grace period of a shutdown ended while a head was coming in.
    Aborted,
}

/// How forwarding failed, and what of it the client has already seen.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub error: ExchangeError,
    /// The response head went to the client: only closing is left.
    pub response_started: bool,
}

impl Failure {
    pub fn new(kind: ErrorKind, side: ErrorSide, message: impl Into<String>) -> Self {
        Self {
            error: ExchangeError::new(kind, side, message),
            response_started: false,
        }
    }

    /// What the client is shown.
    fn ending(&self, mode: UpstreamErrors) -> Ending {
        let e = &self.error;
        if self.response_started {
            return if e.side == ErrorSide::Upstream && e.kind == ErrorKind::Reset {
                Ending::Reset
            } else {
                Ending::Close
            };
        }
        match (e.side, e.kind) {
            (ErrorSide::Client, ErrorKind::BadFraming) => Ending::Answer(400, "Bad Request"),
            (ErrorSide::Client, ErrorKind::Timeout) => Ending::Answer(408, "Request Timeout"),
            (ErrorSide::Client, _) => Ending::Close,
            (_, kind) => match mode {
                UpstreamErrors::Mirror if matches!(kind, ErrorKind::Reset | ErrorKind::Refused) => {
                    Ending::Reset
                }
                UpstreamErrors::Mirror => Ending::Close,
                UpstreamErrors::Explain if kind == ErrorKind::Timeout => {
                    Ending::Answer(504, "Gateway Timeout")
                }
                UpstreamErrors::Explain => Ending::Answer(502, "Bad Gateway"),
            },
        }
    }
}

enum Ending {
    Answer(u16, &'static str),
    Close,
    Reset,
}

/// Ends a request that failed: records why, then answers, closes or resets.
pub(super) async fn fail(
    svc: &Service,
    conn: &mut Conn,
    ex: &mut Pending<'_>,
    failure: Failure,
) -> Next {
    let ending = failure.ending(svc.shared.upstream_errors);
    let message = match failure.error.side {
        ErrorSide::Upstream => format!("upstream of {}: {}", svc.name, failure.error.message),
        _ => failure.error.message.clone(),
    };
    ex.fail(failure.error);
    match ending {
        Ending::Answer(status, reason) => answer(svc, conn, ex, status, reason, &message).await,
        Ending::Close => Next::Close,
        Ending::Reset => Next::Reset,
    }
}

/// Refuses a request before anything of it is forwarded.
pub(super) async fn refuse(
    svc: &Service,
    conn: &mut Conn,
    ex: &mut Pending<'_>,
    refusal: Refusal,
) -> Next {
    let message = refusal.error.message.clone();
    ex.fail(refusal.error);
    answer(svc, conn, ex, refusal.status, refusal.reason, &message).await
}

/// A head that could not be read: stored with what its first line says.
pub(super) async fn refuse_head(svc: &Service, conn: &mut Conn, why: HeadRefusal) -> Next {
    let shared = &svc.shared;
    let mut rec = Record::new(
        &svc.name,
        conn.peer_text.clone(),
        None,
        shared.clock.next(),
        shared.limits.max_body,
    );
    let first_line = conn.client_r.buf[..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let mut words = first_line.split(|&b| b == b' ');
    rec.ex.method = lossy_prefix(words.next().unwrap_or_default(), 32);
    rec.ex.target = lossy_prefix(words.next().unwrap_or_default(), 2048);
    let mut ex = shared.finisher.begin(rec);
    let client = |kind, message: String| ExchangeError::new(kind, ErrorSide::Client, message);
    let refusal = match why {
        HeadRefusal::Malformed(e @ HeadError::TooLarge(_)) => Refusal {
            status: 431,
            reason: "Request Header Fields Too Large",
            error: client(ErrorKind::Rejected, e.to_string()),
        },
        HeadRefusal::Malformed(e) => Refusal {
            status: 400,
            reason: "Bad Request",
            error: client(ErrorKind::BadFraming, e.to_string()),
        },
        HeadRefusal::TimedOut(after) => Refusal {
            status: 408,
            reason: "Request Timeout",
            error: client(
                ErrorKind::Timeout,
                format!(
                    "the request head did not arrive whole within {} s",
                    after.as_secs()
                ),
            ),
        },
        HeadRefusal::ClosedMidHead => {
            ex.fail(client(
                ErrorKind::ClosedEarly,
                "connection closed in the middle of the request head".into(),
            ));
            return Next::Close;
        }
        HeadRefusal::Aborted => {
            ex.fail(ExchangeError::new(
                ErrorKind::Shutdown,
                ErrorSide::Tracer,
                "tracer shut down while the request head was arriving",
            ));
            return Next::Close;
        }
    };
    refuse(svc, conn, &mut ex, refusal).await
}

fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)])
        .trim()
        .to_string()
}

/// Answers with tracer's own short text response, recorded as the
/// response the client got; the connection then closes.
async fn answer(
    svc: &Service,
    conn: &mut Conn,
    ex: &mut Pending<'_>,
    status: u16,
    reason: &str,
    message: &str,
) -> Next {
    let shared = &svc.shared;
    let wire = ex.own_response(status, reason, message, shared.clock.next());
    ex.resp.ticket = Some(shared.finisher.queue.answered());
    let sent = async {
        conn.client_w.put(&wire).await?;
        conn.client_w.flush().await
    }
    .await;
    if let Err(e) = sent {
        tracing::debug!(service = %svc.name, "could not answer {status}: the client was gone: {e}");
    }
    Next::CloseAfterAnswer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: ErrorKind, side: ErrorSide, started: bool) -> Failure {
        Failure {
            response_started: started,
            ..Failure::new(kind, side, "x")
        }
    }

    fn shown(f: &Failure, mode: UpstreamErrors) -> String {
        match f.ending(mode) {
            Ending::Answer(status, _) => status.to_string(),
            Ending::Close => "close".into(),
            Ending::Reset => "reset".into(),
        }
    }

    #[test]
    fn upstream_failures_are_mirrored_unless_explained() {
        use ErrorKind::*;
        let up = ErrorSide::Upstream;
        for (kind, mirror, explain) in [
            (ClosedEarly, "close", "502"),
            (Reset, "reset", "502"),
            (Refused, "reset", "502"),
            (Timeout, "close", "504"),
            (BadFraming, "close", "502"),
            (Tls, "close", "502"),
        ] {
            let f = failure(kind, up, false);
            assert_eq!(shown(&f, UpstreamErrors::Mirror), mirror, "{kind}");
            assert_eq!(shown(&f, UpstreamErrors::Explain), explain, "{kind}");
        }
        // Once the response is under way, only the connection can tell.
        assert_eq!(
            shown(&failure(Reset, up, true), UpstreamErrors::Explain),
            "reset"
        );
        assert_eq!(
            shown(&failure(ClosedEarly, up, true), UpstreamErrors::Explain),
            "close"
        );
        // The client's own faults are answered in either mode.
        let client = ErrorSide::Client;
        assert_eq!(
            shown(&failure(BadFraming, client, false), UpstreamErrors::Mirror),
            "400"
        );
        assert_eq!(
            shown(&failure(Timeout, client, false), UpstreamErrors::Mirror),
            "408"
        );
        assert_eq!(
            shown(
                &failure(ClosedEarly, client, false),
                UpstreamErrors::Explain
            ),
            "close"
        );
    }
}
