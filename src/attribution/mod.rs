//! Attribution: who made a request, decided from outside the services.
//!
//! Order of evidence (docs/attribution.md says why):
//! 1. `header`: the request's own `X-Requestshook-Request-From`;
//! 2. `rule`: the first `[[caller]]` rule of the config that matches;
//! 3. `process`: the process on this host that owns the client socket,
//!    when its command line is in the process table;
//! 4. `subject-token`: a keystone token validation whose `X-Subject-Token`
//!    is the token of a call in flight to service S right now: S validates it;
//! 5. `user-agent`: a User-Agent that names a service program
//!    (`nova-compute keystoneauth1/…`), whatever token it carries;
//! 6. `token`: the user a `POST /v3/auth/tokens` body names (a service user
//!    logging in while another service serves a call is that service), the
//!    caller a service-user token was issued to, the service whose own token
//!    is the `X-Service-Token`, or the owner of the `X-Auth-Token`: service
//!    users map to their service; a user's token in flight to another
//!    service S right now is S passing it on; a user's token that no call
//!    has open, sent by a library, is the work its last service accepted
//!    (nova-compute building what nova-api answered); else the CLI (unless
//!    the User-Agent names another client);
//! 7. `user-agent`: the built-in User-Agent defaults; an OpenStack library's
//!    User-Agent with nothing else known is the service of the latest open call;
//! 8. `unknown`.

mod holders;
mod process;
mod rules;
mod sockdiag;
mod tokens;

pub use rules::{Rules, DEFAULT_PLACEHOLDERS, DEFAULT_SERVICE_USERS, DEFAULT_WORKERS};

use crate::model::{
    header, header_str, CallerSource, Exchange, HeaderField, Micros, REQUEST_FROM_HEADER,
};
use crate::store::{SharedStore, TokenOwner};
use holders::{Bounded, OpenCalls};
use process::PeerLookup;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokens::{FlightBook, TokenBook, TokenKey, AUTH_TOKEN, SERVICE_TOKEN, SUBJECT_TOKEN};

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
    /// Which rule of the order decided, finer than `source` (not stored:
    /// for logs and for the shares docs/attribution.md gives per rule).
    pub rule: &'static str,
}

impl Decision {
    fn by(rule: &'static str, caller: impl Into<String>, source: CallerSource) -> Self {
        Self {
            caller: caller.into(),
            source,
            rule,
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
    flights: Arc<FlightBook>,
    open: Arc<OpenCalls>,
    id: u64,
    /// Its `X-Auth-Token` and `X-Service-Token`, as registered in `flights`.
    tokens: Vec<(TokenKey, u64)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        for (key, id) in self.tokens.drain(..) {
            self.flights.end(&key, id);
        }
        self.open.end(self.id);
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
    open: Arc<OpenCalls>,
    next_call: AtomicU64,
    /// Service-user tokens -> the caller holding them (it logged in for
    /// them, or was first seen with them on firm evidence): each service
    /// process keeps its own token, though several share the user.
    held: Bounded<Arc<str>>,
    /// Person tokens -> the last service a call carrying them went to.
    last_service: Bounded<Arc<str>>,
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
            open: Arc::default(),
            next_call: AtomicU64::new(0),
            held: Bounded::default(),
            last_service: Bounded::default(),
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
            return Decision::by("header", from, CallerSource::Header);
        }
        let ua = header_str(req.headers, "User-Agent");
        if let Some(name) = self
            .rules
            .caller_rule(req.service, req.peer.ip(), ua.as_deref())
        {
            return Decision::by("rule", name, CallerSource::Rule);
        }
        if let Some(p) = &conn.process {
            if !FORWARDED_HEADERS.iter().any(|h| has_value(req.headers, h)) {
                return Decision::by("process", p.as_str(), CallerSource::Process);
            }
        }
        let now = (self.clock)();
        let auth_key = tokens::header_token(req.headers, AUTH_TOKEN);
        let service_key = tokens::header_token(req.headers, SERVICE_TOKEN);
        let auth_tokens = tokens::is_auth_tokens(req.target);
        let ua_default = || ua.as_deref().and_then(|u| self.rules.user_agent_default(u));

        if auth_tokens
            && (req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD"))
        {
            if let Some(d) = self.validation(req, auth_key, now) {
                return d;
            }
        }
        if let Some(program) = ua.as_deref().and_then(|u| self.rules.user_agent_program(u)) {
            let d = Decision::by("program-user-agent", program, CallerSource::UserAgent);
            self.hold(&d, [auth_key, service_key], now);
            return d;
        }
        if auth_tokens && req.method.eq_ignore_ascii_case("POST") {
            let user = body.and_then(tokens::auth_subject).and_then(|s| match s {
                tokens::AuthSubject::UserName(n) => Some(Arc::<str>::from(n)),
                tokens::AuthSubject::UserId(id) => self.tokens.user_name(&id),
                tokens::AuthSubject::Token(k) => self.tokens.owner(&k, now),
            });
            if let Some(user) = user {
                return self.login(&user, req.service, ua_default());
            }
        }
        if let Some(d) = self.by_tokens(req.service, auth_key, service_key, now, ua_default) {
            return d;
        }
        if let Some(c) = ua_default() {
            return Decision::by("user-agent", c, CallerSource::UserAgent);
        }
        // An OpenStack library with no token tracer knows (a service's
        // version discovery): the service serving the latest open call.
        if ua.as_deref().is_some_and(is_library_user_agent) {
            if let Some(s) = self.open.latest(req.service) {
                return Decision::by("open-call", &*s, CallerSource::UserAgent);
            }
        }
        Decision::by("unknown", "unknown", CallerSource::Unknown)
    }

    /// Who sends a request carrying these tokens, as far as tokens tell.
    fn by_tokens(
        &self,
        service: &str,
        auth_key: Option<TokenKey>,
        service_key: Option<TokenKey>,
        now: Micros,
        ua_default: impl Fn() -> Option<String>,
    ) -> Option<Decision> {
        for key in [service_key, auth_key].into_iter().flatten() {
            if let Some(c) = self.held.get(&key) {
                return Some(Decision::by("held-token", &*c, CallerSource::Token));
            }
        }
        let person = |k: &TokenKey| {
            self.tokens
                .owner(k, now)
                .filter(|u| self.rules.service_user(u).is_none())
        };
        // X-Service-Token is the calling service's own token (nova's [service_user]).
        if let Some(s) = service_key
            .and_then(|k| self.tokens.owner(&k, now))
            .and_then(|u| self.rules.service_user(&u).map(str::to_string))
        {
            let mut caller = s.clone();
            if let Some(k) = auth_key.filter(|k| person(k).is_some()) {
                let flights = self.flights.services(&k, service);
                if self.flights.services(&k, "").is_empty() {
                    // The user's call was answered: its work goes on elsewhere.
                    caller = self.rules.worker(&s).to_string();
                } else if !flights.iter().any(|f| **f == *s) {
                    caller = flights.last().map(|f| f.to_string()).unwrap_or(s);
                }
            } else if !self.open.is_open(&s) {
                // With a service user's token (nova's [neutron] admin calls):
                // the API serves no call, so its worker is at work.
                caller = self.rules.worker(&s).to_string();
            }
            let d = Decision::by("service-token", caller, CallerSource::Token);
            self.hold(&d, [service_key, auth_key], now);
            return Some(d);
        }
        let key = auth_key?;
        let user = self.tokens.owner(&key, now)?;
        if let Some(s) = self.rules.service_user(&user) {
            return Some(Decision::by("service-user", s, CallerSource::Token));
        }
        // A user's token that is in flight to another service right
        // now: that service is passing its caller's token on.
        if let Some(s) = self.flights.services(&key, service).last() {
            return Some(Decision::by("passed-on", &**s, CallerSource::Token));
        }
        // No call of that user is open and a library (no client the
        // User-Agent names) sends it: the work its last service accepted.
        let ua = ua_default();
        if ua.is_none() && self.flights.services(&key, "").is_empty() {
            if let Some(s) = self.last_service.get(&key) {
                return Some(Decision::by(
                    "worker",
                    self.rules.worker(&s),
                    CallerSource::Token,
                ));
            }
        }
        Some(self.by_user(&user, ua))
    }

    /// A `POST /v3/auth/tokens` as keystone user `user`. Services log in
    /// as other services' users (nova as `neutron` for its admin calls,
    /// neutron as `nova` for its notifications): a service user logging
    /// in while its own service serves no call is the service that does.
    fn login(&self, user: &str, target: &str, ua_default: Option<String>) -> Decision {
        let Some(own) = self.rules.service_user(user) else {
            return self.by_user(user, ua_default);
        };
        if self.open.is_open(own) {
            return Decision::by("login", own, CallerSource::Token);
        }
        match self.open.latest(target) {
            Some(s) => Decision::by("login", &*s, CallerSource::Token),
            None => Decision::by("login", own, CallerSource::Token),
        }
    }

    /// Remembers that the caller decided holds the service-user tokens it sent.
    fn hold(&self, d: &Decision, keys: [Option<TokenKey>; 2], now: Micros) {
        for key in keys.into_iter().flatten() {
            let service_user = self
                .tokens
                .owner(&key, now)
                .is_some_and(|u| self.rules.service_user(&u).is_some());
            if service_user {
                self.held.remember(key, d.caller.as_str().into());
            }
        }
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
        Some(Decision::by(
            "validation",
            validator.unwrap_or_else(|| last.to_string()),
            CallerSource::SubjectToken,
        ))
    }

    /// The caller of a request made as keystone user `user`.
    fn by_user(&self, user: &str, ua_default: Option<String>) -> Decision {
        if let Some(s) = self.rules.service_user(user) {
            return Decision::by("service-user", s, CallerSource::Token);
        }
        // A person's token says "a client"; a User-Agent may say which.
        match ua_default.filter(|c| *c != self.rules.default_user_caller) {
            Some(c) => Decision::by("client-user-agent", c, CallerSource::UserAgent),
            None => Decision::by(
                "person",
                self.rules.default_user_caller.as_str(),
                CallerSource::Token,
            ),
        }
    }

    /// Marks a request as in flight to `service` (its tokens, for
    /// token-validation attribution, and the call itself, for the calls
    /// its service makes meanwhile).
    pub fn in_flight(&self, service: &str, headers: &[HeaderField]) -> InFlight {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.open.start(id, service);
        let auth = tokens::header_token(headers, AUTH_TOKEN);
        if let Some(key) = auth {
            if !tokens::is_keystone(service) {
                self.last_service.insert(key, service.into());
            }
        }
        let tokens = [auth, tokens::header_token(headers, SERVICE_TOKEN)]
            .into_iter()
            .flatten()
            .map(|key| (key, self.flights.start(key, service)))
            .collect();
        InFlight {
            flights: self.flights.clone(),
            open: self.open.clone(),
            id,
            tokens,
        }
    }

    /// Learns from a finished exchange (token owners).
    pub fn learn(&self, exchange: &Exchange) {
        if !tokens::is_auth_tokens(&exchange.target) {
            return;
        }
        let now = (self.clock)();
        if let Some(owner) = self.tokens.learn(exchange, now) {
            tracing::debug!(user = %owner.user_name, "attribution: learned a token owner");
            if let Some(tx) = &self.persist {
                let _ = tx.send(owner);
            }
        }
        // A service user's new token is held by whoever logged in for it.
        if exchange.method.eq_ignore_ascii_case("POST")
            && exchange.status == Some(201)
            && exchange.caller_source != CallerSource::Unknown
        {
            if let Some(key) = tokens::header_token(&exchange.response_headers, SUBJECT_TOKEN) {
                if self
                    .tokens
                    .owner(&key, now)
                    .is_some_and(|u| self.rules.service_user(&u).is_some())
                {
                    self.held.insert(key, exchange.caller.as_str().into());
                }
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

/// The User-Agent of an OpenStack client library (not of a program that names itself).
fn is_library_user_agent(ua: &str) -> bool {
    ua.contains("keystoneauth1/") || ua.starts_with("python-") || ua.starts_with("uwsgi ")
}

fn has_value(headers: &[HeaderField], name: &str) -> bool {
    header(headers, name).is_some_and(|v| !v.trim_ascii().is_empty())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compute;
