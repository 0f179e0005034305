//! Attribution: who made a request, decided from outside the services.
//!
//! Order of evidence: the request's own `X-Requestshook-Request-From`, then
//! the rest (filled in by the attribution work: rules, peer process, token
//! owners, token validation, User-Agent); `unknown` when nothing tells.

use crate::model::{header_str, CallerSource, Exchange, HeaderField, REQUEST_FROM_HEADER};
use std::net::SocketAddr;

/// What the proxy knows about a request when its head has arrived.
pub struct RequestView<'a> {
    pub service: &'a str,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub method: &'a str,
    pub target: &'a str,
    pub headers: &'a [HeaderField],
}

/// Per-connection facts worth computing once (e.g. the peer's process).
#[derive(Debug, Default)]
pub struct ConnectionCaller {
    pub process: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub caller: String,
    pub source: CallerSource,
}

#[derive(Default)]
pub struct Attributor {}

impl Attributor {
    pub fn new(_config: &crate::config::Config) -> Self {
        Self {}
    }

    /// Called once per accepted connection.
    pub fn connection(
        &self,
        _service: &str,
        _peer: SocketAddr,
        _local: SocketAddr,
    ) -> ConnectionCaller {
        ConnectionCaller::default()
    }

    pub fn decide(&self, _conn: &ConnectionCaller, req: &RequestView<'_>) -> Decision {
        if let Some(from) = header_str(req.headers, REQUEST_FROM_HEADER).filter(|s| !s.is_empty()) {
            return Decision {
                caller: from,
                source: CallerSource::Header,
            };
        }
        Decision {
            caller: "unknown".to_string(),
            source: CallerSource::Unknown,
        }
    }

    /// Learns from a finished exchange (token owners and the like).
    pub fn learn(&self, _exchange: &Exchange) {}
}
