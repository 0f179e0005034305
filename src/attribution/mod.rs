//! Attribution: who made a request, decided from outside the services.
//!
//! Order of evidence (docs/attribution.md says why):
//! 1. `header`: the request's own `X-Requestshook-Request-From`;
//! 2. `rule`: the first `[[caller]]` rule of the config that matches;
//! 3. `process`: the process on this host that owns the client socket,
//!    when its command line is in the process table;
//! 4. `subject-token`: a keystone token validation whose `X-Subject-Token`
//!    is the token of a call in flight to service S right now: S validates it;
//! 5. `token`: the user a `POST /v3/auth/tokens` body names, or the owner of
//!    the request's `X-Auth-Token`: service users map to their service; a
//!    user's token in flight to another service S right now is S passing it
//!    on; else the CLI (unless the User-Agent names another client);
//! 6. `user-agent`: the built-in User-Agent defaults;
//! 7. `unknown`.

mod process;
mod rules;
mod sockdiag;
mod tokens;

pub use rules::{Rules, DEFAULT_PLACEHOLDERS, DEFAULT_SERVICE_USERS};

use crate::model::{
    header, header_str, CallerSource, Exchange, HeaderField, Micros, REQUEST_FROM_HEADER,
};
use crate::store::{SharedStore, TokenOwner};
use process::PeerLookup;
use std::net::SocketAddr;
use std::sync::Arc;
use tokens::{FlightBook, TokenBook, TokenKey, AUTH_TOKEN, SUBJECT_TOKEN};

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

/// Per-connection facts worth computing once (the peer's process).
#[derive(Debug, Default, Clone)]
pub struct ConnectionCaller {
    /// The caller the peer process's command line maps to.
    pub process: Option<String>,
    /// The peer process, when it runs on this host and could be found.
    pub pid: Option<u32>,
    /// Its program name (`openstack`, `uwsgi`, `apache2`, ...), for logs.
    pub program: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub caller: String,
    pub source: CallerSource,
}

impl Decision {
    fn new(caller: impl Into<String>, source: CallerSource) -> Self {
        Self {
            caller: caller.into(),
            source,
        }
    }
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
    slot: Option<(Arc<FlightBook>, TokenKey, u64)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((book, key, id)) = self.slot.take() {
            book.end(&key, id);
        }
    }
}

type Clock = Arc<dyn Fn() -> Micros + Send + Sync>;

/// Requests that carry these came through another proxy: the socket's owner
/// is that proxy, not the caller.
const FORWARDED_HEADERS: [&str; 3] = ["X-Forwarded-For", "Forwarded", "Via"];

/// Bytes of a `POST /v3/auth/tokens` body read before forwarding (they are
/// a few hundred bytes).
const AUTH_BODY_MAX: usize = 64 * 1024;

pub struct Attributor {
    rules: Arc<Rules>,
    tokens: TokenBook,
    flights: Arc<FlightBook>,
    peers: PeerLookup,
    clock: Clock,
    /// Learned tokens to the store (a task owns the other end).
    persist: Option<tokio::sync::mpsc::UnboundedSender<TokenOwner>>,
}

impl Default for Attributor {
    fn default() -> Self {
        Self::new(&crate::config::Config::default())
    }
}

impl Attributor {
    /// With the rules the config was parsed with (compiled once, then).
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            rules: config.rules.get(),
            tokens: TokenBook::default(),
            flights: Arc::default(),
            peers: PeerLookup::default(),
            clock: Arc::new(crate::timefmt::now_micros),
            persist: None,
        }
    }

    /// Like `new`, and keeps learned token owners in `store`: loads the live
    /// ones now, and from then on writes every new one from a background task
    /// (needs a Tokio runtime). A store that fails only costs the memory.
    pub async fn load(config: &crate::config::Config, store: SharedStore) -> Self {
        let mut a = Self::new(config);
        let now = (a.clock)();
        match store.live_tokens(now).await {
            Ok(list) => {
                for t in &list {
                    a.tokens.insert_persisted(t, now);
                }
                tracing::debug!("attribution: {} live token owners loaded", list.len());
            }
            Err(e) => tracing::warn!("attribution: cannot load known tokens: {e}"),
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TokenOwner>();
        tokio::spawn(async move {
            let mut warned = false;
            while let Some(t) = rx.recv().await {
                if let Err(e) = store.put_token(&t).await {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!("attribution: cannot store a learned token owner: {e}");
                    }
                }
            }
        });
        a.persist = Some(tx);
        a
    }

    /// Replaces the clock (tests and replays of old captures).
    pub fn with_clock(mut self, clock: impl Fn() -> Micros + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The compiled rules (for tools that explain decisions).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Token owners currently known.
    pub fn known_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Called once per accepted connection, on a blocking thread (it may read /proc).
    pub fn connection(
        &self,
        service: &str,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> ConnectionCaller {
        if !self.rules.peer_process || !self.peers.is_local(peer.ip(), local.ip()) {
            return ConnectionCaller::default();
        }
        let Some(p) = self.peers.find(peer, local, |argv| {
            self.rules.process_caller(argv).is_some()
        }) else {
            return ConnectionCaller::default();
        };
        let conn = ConnectionCaller {
            process: self.rules.process_caller(&p.argv),
            pid: Some(p.pid),
            program: rules::program_name(&p.argv),
        };
        tracing::debug!(
            service,
            %peer,
            pid = p.pid,
            program = conn.program.as_deref().unwrap_or("?"),
            caller = conn.process.as_deref().unwrap_or("-"),
            "peer process"
        );
        conn
    }

    /// If the caller can be told from the request body, how many bytes of it the
    /// proxy should read before forwarding (only asked for bodies with a known,
    /// small Content-Length and no `Expect: 100-continue`).
    pub fn wants_body(&self, req: &RequestView<'_>) -> Option<usize> {
        (req.method.eq_ignore_ascii_case("POST")
            && tokens::is_auth_tokens(req.target)
            && !has_value(req.headers, REQUEST_FROM_HEADER))
        .then_some(AUTH_BODY_MAX)
    }

    /// Decides the caller of a request whose head (and maybe body) has arrived.
    pub fn decide(
        &self,
        conn: &ConnectionCaller,
        req: &RequestView<'_>,
        body: Option<&[u8]>,
    ) -> Decision {
        if let Some(from) = header_str(req.headers, REQUEST_FROM_HEADER)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            return Decision::new(from, CallerSource::Header);
        }
        let ua = header_str(req.headers, "User-Agent");
        if let Some(name) = self
            .rules
            .caller_rule(req.service, req.peer.ip(), ua.as_deref())
        {
            return Decision::new(name, CallerSource::Rule);
        }
        if let Some(p) = &conn.process {
            if !FORWARDED_HEADERS.iter().any(|h| has_value(req.headers, h)) {
                return Decision::new(p.as_str(), CallerSource::Process);
            }
        }
        let now = (self.clock)();
        let auth_key = tokens::header_token(req.headers, AUTH_TOKEN);
        let auth_tokens = tokens::is_auth_tokens(req.target);
        let ua_default = || ua.as_deref().and_then(|u| self.rules.user_agent_default(u));

        if auth_tokens
            && (req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD"))
        {
            if let Some(d) = self.validation(req, auth_key, now) {
                return d;
            }
        }
        if auth_tokens && req.method.eq_ignore_ascii_case("POST") {
            let user = body.and_then(tokens::auth_subject).and_then(|s| match s {
                tokens::AuthSubject::UserName(n) => Some(Arc::<str>::from(n)),
                tokens::AuthSubject::UserId(id) => self.tokens.user_name(&id),
                tokens::AuthSubject::Token(k) => self.tokens.owner(&k, now),
            });
            if let Some(user) = user {
                return self.by_user(&user, ua_default());
            }
        }
        if let Some(key) = auth_key {
            if let Some(user) = self.tokens.owner(&key, now) {
                if let Some(s) = self.rules.service_user(&user) {
                    return Decision::new(s, CallerSource::Token);
                }
                // A user's token that is in flight to another service right
                // now: that service is passing its caller's token on.
                if let Some(s) = self.flights.services(&key, req.service).last() {
                    return Decision::new(&**s, CallerSource::Token);
                }
                return self.by_user(&user, ua_default());
            }
        }
        if let Some(c) = ua_default() {
            return Decision::new(c, CallerSource::UserAgent);
        }
        Decision::new("unknown", CallerSource::Unknown)
    }

    /// `GET`/`HEAD /v3/auth/tokens`: the service that received the call whose
    /// token (`X-Subject-Token`) is being validated.
    fn validation(
        &self,
        req: &RequestView<'_>,
        auth_key: Option<TokenKey>,
        now: Micros,
    ) -> Option<Decision> {
        let subject = tokens::header_token(req.headers, SUBJECT_TOKEN)?;
        let candidates = self.flights.services(&subject, req.service);
        let last = candidates.last()?;
        // Several calls with that token in flight: the validator's own token
        // tells which service it is, else the latest call is the one waiting.
        let validator = auth_key
            .and_then(|k| self.tokens.owner(&k, now))
            .and_then(|user| self.rules.service_user(&user).map(str::to_string))
            .filter(|v| candidates.iter().any(|c| **c == **v));
        Some(Decision::new(
            validator.unwrap_or_else(|| last.to_string()),
            CallerSource::SubjectToken,
        ))
    }

    /// The caller of a request made as keystone user `user`.
    fn by_user(&self, user: &str, ua_default: Option<String>) -> Decision {
        if let Some(s) = self.rules.service_user(user) {
            return Decision::new(s, CallerSource::Token);
        }
        // A person's token says "a client"; a User-Agent may say which.
        match ua_default.filter(|c| *c != self.rules.default_user_caller) {
            Some(c) => Decision::new(c, CallerSource::UserAgent),
            None => Decision::new(self.rules.default_user_caller.as_str(), CallerSource::Token),
        }
    }

    /// Marks a request as in flight to `service` (for token-validation attribution).
    pub fn in_flight(&self, service: &str, headers: &[HeaderField]) -> InFlight {
        InFlight {
            slot: tokens::header_token(headers, AUTH_TOKEN).map(|key| {
                let id = self.flights.start(key, service);
                (self.flights.clone(), key, id)
            }),
        }
    }

    /// Learns from a finished exchange (token owners).
    pub fn learn(&self, exchange: &Exchange) {
        if !tokens::is_auth_tokens(&exchange.target) {
            return;
        }
        if let Some(owner) = self.tokens.learn(exchange, (self.clock)()) {
            tracing::debug!(user = %owner.user_name, "attribution: learned a token owner");
            if let Some(tx) = &self.persist {
                let _ = tx.send(owner);
            }
        }
    }

    /// What the ignore rules say about a finished exchange: ignored if any
    /// rule matches, dropped if a matching rule says `drop = true`.
    pub fn keep(&self, exchange: &Exchange) -> Keep {
        if self.rules.ignores.is_empty() {
            return Keep::Store;
        }
        let upstream_path = exchange
            .upstream_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        let paths = [exchange.target.as_str(), upstream_path];
        let mut keep = Keep::Store;
        for rule in &self.rules.ignores {
            if rule.matches(
                &exchange.caller,
                &exchange.service,
                &exchange.method,
                &paths,
            ) {
                if rule.drop {
                    return Keep::Drop;
                }
                keep = Keep::StoreIgnored;
            }
        }
        keep
    }
}

fn has_value(headers: &[HeaderField], name: &str) -> bool {
    header(headers, name).is_some_and(|v| !v.trim_ascii().is_empty())
}

#[cfg(test)]
mod tests;
