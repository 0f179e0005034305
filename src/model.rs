//! The data at the centre of tracer: what one exchange and one flow are.
//!
//! Everything else either produces these (the proxy), keeps them (the store)
//! or turns them into text (render). No I/O here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The headers tracer adds to every request and response it forwards.
pub const REQUEST_ID_HEADER: &str = "X-Requestshook-Request-Id";
pub const REQUEST_FROM_HEADER: &str = "X-Requestshook-Request-From";

/// Microseconds since the Unix epoch: the one time unit of the record.
pub type Micros = i64;

/// One header line as it crossed the proxy: the name in its original case,
/// the value as bytes (HTTP allows obs-text, so not always UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: Vec<u8>,
}

impl HeaderField {
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value for display: UTF-8 where it is, Latin-1 otherwise (the
    /// historical charset of HTTP header values), so no byte is lost.
    pub fn value_str(&self) -> String {
        match std::str::from_utf8(&self.value) {
            Ok(s) => s.to_string(),
            Err(_) => self.value.iter().map(|&b| b as char).collect(),
        }
    }
}

/// First value of a header, by case-insensitive name.
pub fn header<'a>(headers: &'a [HeaderField], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

/// First value of a header as text (lossy), by case-insensitive name.
pub fn header_str(headers: &[HeaderField], name: &str) -> Option<String> {
    header(headers, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A message body as it was recorded: the payload (chunked framing removed,
/// content-encoding kept) is counted and hashed in full, but only its first
/// `max_body_bytes` are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyRecord {
    pub kept: Vec<u8>,
    pub size: u64,
    /// Lowercase hex SHA-256 of the full payload.
    pub sha256: String,
}

impl BodyRecord {
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn is_truncated(&self) -> bool {
        (self.kept.len() as u64) < self.size
    }
}

/// How the caller of a request was decided (issue: attribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerSource {
    /// The request carried `X-Requestshook-Request-From`.
    Header,
    /// A `[[caller]]` rule of the config matched.
    Rule,
    /// The process that owns the client socket on this host.
    Process,
    /// The owner of the request's `X-Auth-Token`.
    Token,
    /// A token validation of a call in flight to a service.
    SubjectToken,
    /// The User-Agent defaults.
    UserAgent,
    Unknown,
}

impl CallerSource {
    pub const ALL: [CallerSource; 7] = [
        CallerSource::Header,
        CallerSource::Rule,
        CallerSource::Process,
        CallerSource::Token,
        CallerSource::SubjectToken,
        CallerSource::UserAgent,
        CallerSource::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallerSource::Header => "header",
            CallerSource::Rule => "rule",
            CallerSource::Process => "process",
            CallerSource::Token => "token",
            CallerSource::SubjectToken => "subject-token",
            CallerSource::UserAgent => "user-agent",
            CallerSource::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CallerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request/response pair as it crossed the proxy.
///
/// Header lists are the exact lines that were forwarded: the request as sent
/// upstream and the response as sent back to the client, both with the
/// stamped `X-Requestshook-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Database row id; 0 until the exchange is stored.
    pub id: i64,
    /// The exchange's own identity (UUIDv7, simple form): unique across
    /// daemons and time-ordered, so inserts append to its index.
    pub uuid: String,
    /// `X-Requestshook-Request-Id` as forwarded.
    pub request_id: String,
    /// The `[[service]]` whose listener took the request ("to").
    pub service: String,
    /// Who made the request ("from").
    pub caller: String,
    pub caller_source: CallerSource,
    /// Peer address of the client connection.
    pub client_addr: String,
    /// Absolute URL the request was forwarded to.
    pub upstream_url: String,
    pub method: String,
    /// Request target exactly as the client sent it.
    pub target: String,
    /// "HTTP/1.1" or "HTTP/1.0".
    pub request_version: String,
    pub request_headers: Vec<HeaderField>,
    pub request_body: BodyRecord,
    /// None when no response head came back (refused, reset, timeout, bad request).
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub response_version: Option<String>,
    pub response_headers: Vec<HeaderField>,
    pub response_body: BodyRecord,
    /// Event order: when the request head arrived.
    pub request_seq: i64,
    /// Event order: when the upstream's (or the proxy's own) response head arrived.
    pub response_seq: Option<i64>,
    pub started_at: Micros,
    pub response_at: Option<Micros>,
    pub finished_at: Micros,
    /// What went wrong, if anything; the exchange is stored all the same.
    pub error: Option<ExchangeError>,
    /// Matched an ignore rule: stored but left out of flows unless asked for.
    pub ignored: bool,
}

/// What kind of thing went wrong with an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connection was refused (nobody listens).
    Refused,
    /// The connection was reset (RST).
    Reset,
    /// A deadline passed: connect, head, body idle.
    Timeout,
    /// The connection closed before the message ended (or before any response).
    ClosedEarly,
    /// A message two HTTP parsers could read differently, or not at all.
    BadFraming,
    /// tracer refused the request for what it asks (CONNECT, an absolute-form
    /// target, a head too large).
    Rejected,
    /// A TLS handshake failed.
    Tls,
    /// Any other I/O error.
    Io,
    /// tracer was shutting down before the exchange ended.
    Shutdown,
    /// tracer itself failed (a bug): the exchange is kept all the same.
    Internal,
    /// Recorded before errors had kinds (an older database).
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::ClosedEarly,
        ErrorKind::BadFraming,
        ErrorKind::Rejected,
        ErrorKind::Tls,
        ErrorKind::Io,
        ErrorKind::Shutdown,
        ErrorKind::Internal,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ClosedEarly => "closed-early",
            ErrorKind::BadFraming => "bad-framing",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Internal => "internal",
            ErrorKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of an I/O error, as far as the OS tells.
    pub fn of_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        match e.kind() {
            Io::ConnectionRefused => ErrorKind::Refused,
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe => ErrorKind::Reset,
            Io::TimedOut => ErrorKind::Timeout,
            Io::UnexpectedEof => ErrorKind::ClosedEarly,
            _ => ErrorKind::Io,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which party an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSide {
    Client,
    Upstream,
    Tracer,
}

impl ErrorSide {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSide::Client => "client",
            ErrorSide::Upstream => "upstream",
            ErrorSide::Tracer => "tracer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ErrorSide::Client, ErrorSide::Upstream, ErrorSide::Tracer]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with an exchange: its kind, whose side it came from, and
/// a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeError {
    pub kind: ErrorKind,
    pub side: ErrorSide,
    pub message: String,
}

impl ExchangeError {
    pub fn new(kind: ErrorKind, side: ErrorSide, message: impl Into<String>) -> Self {
        Self {
            kind,
            side,
            message: message.into(),
        }
    }

    /// `no whole response head within 5 s (timeout, upstream)`; an error
    /// recorded before errors had kinds is its message alone.
    pub fn summary(&self) -> String {
        match self.kind {
            ErrorKind::Other => self.message.clone(),
            kind => format!("{} ({kind}, {})", self.message, self.side),
        }
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A bare message (an older record, a test): kind `other`, from tracer.
impl From<&str> for ExchangeError {
    fn from(message: &str) -> Self {
        Self::new(ErrorKind::Other, ErrorSide::Tracer, message)
    }
}

impl From<String> for ExchangeError {
    fn from(message: String) -> Self {
        Self::new(ErrorKind::Other, ErrorSide::Tracer, message)
    }
}

impl Exchange {
    /// The error message, if any.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }

    /// The path part of the target (no query), as shown in titles and diagrams.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    pub fn duration_micros(&self) -> i64 {
        self.finished_at - self.started_at
    }
}

/// A named window of time: every exchange whose request head arrived inside
/// it belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flow {
    pub name: String,
    pub title: Option<String>,
    pub started_at: Micros,
    pub stopped_at: Option<Micros>,
    /// Set by `tracer record`.
    pub command: Option<RecordedCommand>,
}

impl Flow {
    pub fn is_open(&self) -> bool {
        self.stopped_at.is_none()
    }
    pub fn contains(&self, at: Micros) -> bool {
        at >= self.started_at && self.stopped_at.is_none_or(|end| at <= end)
    }
}

/// The command a flow was recorded around, with what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordedCommand {
    pub argv: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_status: Option<i32>,
}

/// A flow with what `flow list` shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSummary {
    pub flow: Flow,
    pub exchanges: i64,
    pub services: Vec<String>,
    /// Exchanges the daemon could not queue for storage during the window.
    pub lost: i64,
}

/// Flow names become directory names of exported sites: kept short.
pub const MAX_FLOW_NAME_LEN: usize = 128;

/// Valid flow names: `[a-z0-9][a-z0-9._-]*`, at most [`MAX_FLOW_NAME_LEN`].
pub fn is_valid_flow_name(name: &str) -> bool {
    if name.len() > MAX_FLOW_NAME_LEN {
        return false;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_names() {
        assert!(is_valid_flow_name("image-create"));
        assert!(is_valid_flow_name("0.v2_x"));
        assert!(!is_valid_flow_name(""));
        assert!(!is_valid_flow_name("-x"));
        assert!(!is_valid_flow_name("Image"));
        assert!(!is_valid_flow_name("a b"));
        assert!(!is_valid_flow_name("../../x"));
        assert!(is_valid_flow_name(&"a".repeat(MAX_FLOW_NAME_LEN)));
        assert!(!is_valid_flow_name(&"a".repeat(MAX_FLOW_NAME_LEN + 1)));
    }

    #[test]
    fn latin1_header_values_are_not_lost() {
        let h = HeaderField::new("X", vec![b'a', 0xe9]);
        assert_eq!(h.value_str(), "a\u{e9}");
    }

    #[test]
    fn flow_window() {
        let f = Flow {
            started_at: 10,
            stopped_at: Some(20),
            ..Default::default()
        };
        assert!(f.contains(10) && f.contains(20) && !f.contains(21) && !f.contains(9));
    }
}
