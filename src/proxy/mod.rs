//! The proxy: one listener per service, HTTP/1.1 framing owned by tracer so
//! that what is recorded is exactly what crossed the wire.
//!
//! hyper would forward header case with `preserve_header_case`, but its case
//! map is private (hyperium/hyper#2695), so heads are read off the byte
//! stream with httparse and forwarded as the bytes that arrived.
//!
//! The pieces, in the order a request meets them (docs/LIFECYCLE.md):
//! `listener` (accept, workers) → `connection` (heads, deadlines) →
//! `request` (admit, attribute, stamp, retry) → `forward` (both bodies at
//! once) → `answer` (what the client sees when it fails); `exchange` holds
//! the record under construction and its guard, `framing` and `head` the
//! HTTP/1.1 rules, `body` the relay, `io` the byte plumbing.

use crate::attribution::Attributor;
use crate::capture::{CaptureQueue, EventClock};
use crate::config::{Config, UpstreamErrors};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod answer;
mod body;
mod connection;
mod exchange;
mod forward;
pub mod framing;
pub mod head;
mod io;
mod listener;
mod request;
mod tls;
mod upstream;

pub use exchange::{new_request_id, Finisher, Pending, Record};
pub use framing::Framing;
pub use listener::{Listening, Proxy};
use upstream::Connector;

/// The bounds every exchange lives within.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: u64,
    pub max_head: usize,
    /// The upstream's whole response head, once the request is sent.
    pub response_timeout: Duration,
    /// A client connection with no request under way.
    pub idle_timeout: Duration,
    /// A request head, from its first byte.
    pub header_timeout: Duration,
    /// A body (either way, either side) that moves no byte.
    pub body_idle: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        let p = &config.proxy;
        Limits {
            max_body: config.storage.max_body_bytes,
            max_head: p.max_head_bytes,
            response_timeout: Duration::from_secs(p.response_timeout_secs),
            idle_timeout: Duration::from_secs(p.idle_timeout_secs),
            header_timeout: Duration::from_secs(p.header_timeout_secs),
            body_idle: Duration::from_secs(p.body_idle_timeout_secs),
        }
    }
}

/// What every connection of every service shares.
pub struct Shared {
    pub clock: EventClock,
    pub finisher: Finisher,
    pub limits: Limits,
    pub upstream_errors: UpstreamErrors,
    /// Stop taking new requests (SIGTERM).
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn new(config: &Config, queue: CaptureQueue, attributor: Arc<Attributor>) -> Self {
        Shared {
            clock: EventClock::new(),
            finisher: Finisher {
                queue,
                attributor,
                abort: CancellationToken::new(),
            },
            limits: Limits::from_config(config),
            upstream_errors: config.proxy.upstream_errors,
            shutdown: CancellationToken::new(),
        }
    }
}

/// One `[[service]]`: its name ("to" of its exchanges) and where it forwards.
pub struct Service {
    pub name: String,
    pub connector: Connector,
    pub shared: Arc<Shared>,
}
