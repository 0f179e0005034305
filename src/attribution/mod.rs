//! Attribution: who made a request, decided from outside the services.
//!
//! Order of evidence: the request's own `X-Requestshook-Request-From`, then
//! the rest (filled in by the attribution work: rules, peer process, token
//! owners, token validation, User-Agent); `unknown` when nothing tells.
//! (Skeleton: the interface the proxy calls is fixed here.)

use crate::model::{header_str, CallerSource, Exchange, HeaderField, REQUEST_FROM_HEADER};
use std::net::SocketAddr;

/// What the proxy knows about a request when its head has arrived.
pub struct RequestView<'a> {
    pub service: &'a str,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub method: &'a str,
    pub target: &'a str,
    /// The headers as the client sent them (before stamping).
    pub headers: &'a [HeaderField],
}

/// Per-connection facts worth computing once (e.g. the peer's process).
#[derive(Debug, Default, Clone)]
pub struct ConnectionCaller {
    pub process: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub caller: String,
    pub source: CallerSource,
}

/// What ignore rules say about a finished exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Store,
    /// Store, marked ignored (left out of flows, lists and exports unless --all).
    StoreIgnored,
    /// Do not store at all (`drop = true`).
    Drop,
}

/// Held by the proxy while an exchange is in flight; dropping it ends it.
pub struct InFlight {
    _private: (),
}

#[derive(Default)]
pub struct Attributor {}

impl Attributor {
    pub fn new(_config: &crate::config::Config) -> Self {
        Self {}
    }

    /// The attributor of a running daemon: config plus what the store remembers.
    pub async fn load(config: &crate::config::Config, _store: crate::store::SharedStore) -> Self {
        Self::new(config)
    }

    /// Called once per accepted connection, on a blocking thread (it may read /proc).
    pub fn connection(
        &self,
        _service: &str,
        _peer: SocketAddr,
        _local: SocketAddr,
    ) -> ConnectionCaller {
        ConnectionCaller::default()
    }

    /// If the caller can be told from the request body, how many bytes of it the
    /// proxy should read before forwarding (only asked for bodies with a known,
    /// small Content-Length and no `Expect: 100-continue`).
    pub fn wants_body(&self, _req: &RequestView<'_>) -> Option<usize> {
        None
    }

    /// Decides the caller of a request whose head (and maybe body) has arrived.
    pub fn decide(
        &self,
        _conn: &ConnectionCaller,
        req: &RequestView<'_>,
        _body: Option<&[u8]>,
    ) -> Decision {
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

    /// Marks a request as in flight to `service` (for token-validation attribution).
    pub fn in_flight(&self, _service: &str, _headers: &[HeaderField]) -> InFlight {
        InFlight { _private: () }
    }

    /// Learns from a finished exchange (token owners and the like).
    pub fn learn(&self, _exchange: &Exchange) {}

    /// What the ignore rules say about a finished exchange.
    pub fn keep(&self, _exchange: &Exchange) -> Keep {
        Keep::Store
    }
}
