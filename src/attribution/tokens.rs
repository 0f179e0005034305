//! Keystone tokens: who owns which (learned from keystone's answers), and
//! which tokens are in flight to which service right now.
//!
//! Tokens are credentials: they are only ever kept as their SHA-256.

use crate::model::{header, header_str, Exchange, HeaderField, Micros};
use crate::store::TokenOwner;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub(crate) const AUTH_TOKEN: &str = "X-Auth-Token";
pub(crate) const SUBJECT_TOKEN: &str = "X-Subject-Token";
/// The calling service's own token beside the user's (nova's `[service_user]`).
pub(crate) const SERVICE_TOKEN: &str = "X-Service-Token";

/// Whether a service name is keystone's (calls to it pass no work on).
pub(crate) fn is_keystone(service: &str) -> bool {
    service.eq_ignore_ascii_case("keystone")
}

/// SHA-256 of a token (surrounding blanks ignored).
pub(crate) type TokenKey = [u8; 32];

pub(crate) fn token_key(token: &[u8]) -> TokenKey {
    Sha256::digest(token.trim_ascii()).into()
}

pub(crate) fn header_token(headers: &[HeaderField], name: &str) -> Option<TokenKey> {
    header(headers, name)
        .filter(|v| !v.trim_ascii().is_empty())
        .map(token_key)
}

/// `.../v3/auth/tokens`, with any prefix (`/identity`) and query.
pub(crate) fn is_auth_tokens(target: &str) -> bool {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    path.trim_end_matches('/').ends_with("/v3/auth/tokens")
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub user: Arc<str>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// On tracer's clock (keystone's clock offset removed).
    pub expires_at: Option<Micros>,
}

/// Learned token owners.
#[derive(Default)]
pub(crate) struct TokenBook {
    owners: RwLock<HashMap<TokenKey, Owner>>,
    /// user id -> name, for auth requests that name the user by id.
    user_names: RwLock<HashMap<String, Arc<str>>>,
    inserts: AtomicU64,
    /// tracer's clock minus keystone's, last measured (µs).
    skew: AtomicI64,
}

/// Upper bound on remembered tokens; expired ones go first.
const MAX_TOKENS: usize = 100_000;

impl TokenBook {
    /// The user a live token belongs to.
    pub fn owner(&self, key: &TokenKey, now: Micros) -> Option<Arc<str>> {
        let owners = self.owners.read().unwrap_or_else(|e| e.into_inner());
        owners
            .get(key)
            .filter(|o| o.expires_at.is_none_or(|e| e > now))
            .map(|o| o.user.clone())
    }

    pub fn user_name(&self, user_id: &str) -> Option<Arc<str>> {
        let names = self.user_names.read().unwrap_or_else(|e| e.into_inner());
        names.get(user_id).cloned()
    }

    /// Remembers an owner; false if it was already known the same way.
    pub fn insert(&self, key: TokenKey, owner: Owner, now: Micros) -> bool {
        if let Some(id) = &owner.user_id {
            let mut names = self.user_names.write().unwrap_or_else(|e| e.into_inner());
            if names.get(id.as_str()) != Some(&owner.user) {
                names.insert(id.clone(), owner.user.clone());
            }
        }
        let mut owners = self.owners.write().unwrap_or_else(|e| e.into_inner());
        if owners.get(&key) == Some(&owner) {
            return false;
        }
        owners.insert(key, owner);
        // Sweep expired tokens now and then, and keep the map bounded.
        if self.inserts.fetch_add(1, Ordering::Relaxed) % 256 == 255 || owners.len() > MAX_TOKENS {
            owners.retain(|_, o| o.expires_at.is_none_or(|e| e > now));
            while owners.len() > MAX_TOKENS {
                let Some(k) = owners.keys().next().copied() else {
                    break;
                };
                owners.remove(&k);
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.owners.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A token loaded from the database.
    pub fn insert_persisted(&self, t: &TokenOwner, now: Micros) {
        let Some(key) = hex::decode(&t.token_sha256)
            .ok()
            .and_then(|v| TokenKey::try_from(v).ok())
        else {
            return;
        };
        self.insert(
            key,
            Owner {
                user: t.user_name.as_str().into(),
                user_id: t.user_id.clone(),
                project_id: t.project_id.clone(),
                expires_at: t.expires_at,
            },
            now,
        );
    }

    /// Learns the owner of the token keystone issued or validated in `ex`.
    /// Returns what to persist.
    pub fn learn(&self, ex: &Exchange, now: Micros) -> Option<TokenOwner> {
        if !matches!(ex.status, Some(200 | 201)) || !is_auth_tokens(&ex.target) {
            return None;
        }
        let token = header(&ex.response_headers, SUBJECT_TOKEN)?;
        if token.trim_ascii().is_empty() {
            return None;
        }
        let body = decoded_body(&ex.response_headers, &ex.response_body.kept)?;
        let doc: TokenDoc = serde_json::from_slice(&body).ok()?;
        let t = doc.token;
        let user = t.user?;
        let name = user.name.filter(|n| !n.is_empty())?;

        // Keystone's clock may differ from ours (or the exchange is a replay):
        // measure the offset from its Date header, or from issued_at of a
        // token it has just issued, and keep the last measure for the rest.
        let keystone_now = header_str(&ex.response_headers, "Date")
            .and_then(|d| parse_http_date(&d))
            .or_else(|| {
                ex.method
                    .eq_ignore_ascii_case("POST")
                    .then(|| t.issued_at.as_deref().and_then(parse_rfc3339))
                    .flatten()
            });
        let skew = match keystone_now {
            Some(k) => {
                let s = now - k;
                self.skew.store(s, Ordering::Relaxed);
                s
            }
            None => self.skew.load(Ordering::Relaxed),
        };
        let expires_at = t
            .expires_at
            .as_deref()
            .and_then(parse_rfc3339)
            .map(|e| e + skew);
        if expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        let key = token_key(token);
        let owner = Owner {
            user: name.as_str().into(),
            user_id: user.id,
            project_id: t.project.and_then(|p| p.id),
            expires_at,
        };
        let persisted = TokenOwner {
            token_sha256: hex::encode(key),
            user_name: name,
            user_id: owner.user_id.clone(),
            project_id: owner.project_id.clone(),
            expires_at,
        };
        self.insert(key, owner, now).then_some(persisted)
    }
}

#[derive(Deserialize)]
struct TokenDoc {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    user: Option<Named>,
    project: Option<Named>,
    expires_at: Option<String>,
    issued_at: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    id: Option<String>,
    name: Option<String>,
}

/// What a `POST /v3/auth/tokens` body says about who is authenticating.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthSubject {
    UserName(String),
    UserId(String),
    /// Re-scoping an existing token.
    Token(TokenKey),
}

pub(crate) fn auth_subject(body: &[u8]) -> Option<AuthSubject> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let identity = v.get("auth")?.get("identity")?;
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter_map(|m| m.as_str()).collect())
        .unwrap_or_default();
    let tried = |m: &str| methods.is_empty() || methods.contains(&m);
    if tried("password") {
        if let Some(user) = identity.get("password").and_then(|p| p.get("user")) {
            if let Some(n) = text(user.get("name")) {
                return Some(AuthSubject::UserName(n));
            }
            if let Some(id) = text(user.get("id")) {
                return Some(AuthSubject::UserId(id));
            }
        }
    }
    if tried("application_credential") {
        if let Some(user) = identity
            .get("application_credential")
            .and_then(|a| a.get("user"))
        {
            if let Some(n) = text(user.get("name")) {
                return Some(AuthSubject::UserName(n));
            }
            if let Some(id) = text(user.get("id")) {
                return Some(AuthSubject::UserId(id));
            }
        }
    }
    if tried("token") {
        if let Some(id) = text(identity.get("token").and_then(|t| t.get("id"))) {
            return Some(AuthSubject::Token(token_key(id.as_bytes())));
        }
    }
    None
}

/// The body as JSON text: gzip/deflate undone (inspection only).
fn decoded_body<'a>(headers: &[HeaderField], body: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
    let encoding = header_str(headers, "Content-Encoding").unwrap_or_default();
    let encoding = encoding.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    match encoding.as_str() {
        "" | "identity" => return Some(body.into()),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body)
            .take(16 << 20)
            .read_to_end(&mut out)
            .ok()?,
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(16 << 20)
            .read_to_end(&mut out)
            .ok()?,
        _ => return None,
    };
    Some(out.into())
}

fn parse_rfc3339(s: &str) -> Option<Micros> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1000) as Micros)
}

/// `Fri, 30 Dec 2022 01:38:09 GMT` (RFC 9110 IMF-fixdate).
fn parse_http_date(s: &str) -> Option<Micros> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1000) as Micros)
}

/// One request in flight: its id and the service it goes to.
type Flight = (u64, Arc<str>);

/// Tokens of the requests being forwarded right now, and to which service.
#[derive(Default)]
pub(crate) struct FlightBook {
    next: AtomicU64,
    map: Mutex<HashMap<TokenKey, Vec<Flight>>>,
}

impl FlightBook {
    pub fn start(&self, key: TokenKey, service: &str) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().push((id, service.into()));
        id
    }

    pub fn end(&self, key: &TokenKey, id: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = map.get_mut(key) {
            v.retain(|(i, _)| *i != id);
            if v.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Services (other than `except`) that a request carrying this token is
    /// in flight to, the most recently started last.
    pub fn services(&self, key: &TokenKey, except: &str) -> Vec<Arc<str>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .map(|v| {
                v.iter()
                    .filter(|(_, s)| &**s != except)
                    .map(|(_, s)| s.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.lock().unwrap().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BodyRecord, CallerSource};

    fn exchange(
        method: &str,
        target: &str,
        status: u16,
        response_headers: Vec<HeaderField>,
        response_body: &[u8],
    ) -> Exchange {
        Exchange {
            id: 0,
            uuid: String::new(),
            request_id: String::new(),
            service: "keystone".into(),
            caller: "openstack".into(),
            caller_source: CallerSource::UserAgent,
            client_addr: "127.0.0.1:40000".into(),
            upstream_url: format!("http://127.0.0.1:5000{target}"),
            method: method.into(),
            target: target.into(),
            request_version: "HTTP/1.1".into(),
            request_headers: vec![],
            request_body: BodyRecord::default(),
            status: Some(status),
            reason: Some("CREATED".into()),
            response_version: Some("HTTP/1.1".into()),
            response_headers,
            response_body: BodyRecord {
                kept: response_body.to_vec(),
                size: response_body.len() as u64,
                sha256: String::new(),
            },
            request_seq: 1,
            response_seq: Some(2),
            started_at: 0,
            response_at: None,
            finished_at: 0,
            error: None,
            ignored: false,
        }
    }

    const ISSUED: &str = r#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"}, "id": "e65d5173dc4c4883a9f3a7252d6c007c", "name": "glance", "password_expires_at": null}, "audit_ids": ["20tUnWnaQ6ScGFzUNIjAlQ"], "expires_at": "2022-12-30T04:38:05.000000Z", "issued_at": "2022-12-30T01:38:05.000000Z", "project": {"domain": {"id": "default", "name": "Default"}, "id": "7c4cda7e4807414bbdfcb22b535a9802", "name": "service"}, "is_domain": false, "roles": [{"id": "8305567cb70b4087babffa9c7e9a185f", "name": "service"}], "catalog": []}}"#;

    fn at(s: &str) -> Micros {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn learns_owner_from_keystone_answer() {
        let book = TokenBook::default();
        let now = at("2022-12-30T01:38:06Z");
        let ex = exchange(
            "POST",
            "/identity/v3/auth/tokens",
            201,
            vec![
                HeaderField::new("Content-Type", "application/json"),
                HeaderField::new("X-Subject-Token", "gAAAAABjrkD9tCni"),
            ],
            ISSUED.as_bytes(),
        );
        let p = book.learn(&ex, now).unwrap();
        assert_eq!(p.user_name, "glance");
        assert_eq!(
            p.project_id.as_deref(),
            Some("7c4cda7e4807414bbdfcb22b535a9802")
        );
        assert_eq!(
            p.token_sha256,
            hex::encode(Sha256::digest(b"gAAAAABjrkD9tCni"))
        );
        assert!(!p.token_sha256.contains("gAAAA"));
        // issued_at was 1 s before our clock: the expiry moves by that second.
        assert_eq!(p.expires_at, Some(at("2022-12-30T04:38:06Z")));
        let o = book.owner(&token_key(b"gAAAAABjrkD9tCni"), now).unwrap();
        assert_eq!(&*o, "glance");
        assert_eq!(
            book.user_name("e65d5173dc4c4883a9f3a7252d6c007c")
                .as_deref(),
            Some("glance")
        );
        // Learned again: nothing new to persist.
        assert!(book.learn(&ex, now).is_none());
        // Expired: gone.
        assert!(book
            .owner(&token_key(b"gAAAAABjrkD9tCni"), at("2022-12-30T04:38:07Z"))
            .is_none());
    }

    #[test]
    fn keystone_clock_offset_comes_from_date_header() {
        let book = TokenBook::default();
        // Our clock is three years after keystone's (a replay): the token still lives 3 h.
        let now = at("2025-12-30T01:38:05Z");
        let ex = exchange(
            "GET",
            "/v3/auth/tokens",
            200,
            vec![
                HeaderField::new("Date", "Fri, 30 Dec 2022 01:38:05 GMT"),
                HeaderField::new("X-Subject-Token", "tok"),
            ],
            ISSUED.as_bytes(),
        );
        let p = book.learn(&ex, now).unwrap();
        assert_eq!(p.expires_at, Some(at("2025-12-30T04:38:05Z")));
    }

    #[test]
    fn expired_or_foreign_answers_teach_nothing() {
        let book = TokenBook::default();
        let later = at("2022-12-30T05:00:00Z");
        let mut ex = exchange(
            "GET",
            "/v3/auth/tokens",
            200,
            vec![HeaderField::new("X-Subject-Token", "tok")],
            ISSUED.as_bytes(),
        );
        // No Date and no POST: keystone's expiry taken as is, and it has passed.
        assert!(book.learn(&ex, later).is_none());
        ex.status = Some(401);
        assert!(book.learn(&ex, at("2022-12-30T02:00:00Z")).is_none());
        ex.status = Some(200);
        ex.target = "/v2/images".into();
        assert!(book.learn(&ex, at("2022-12-30T02:00:00Z")).is_none());
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn gzip_answers_are_read() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(ISSUED.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let book = TokenBook::default();
        let ex = exchange(
            "POST",
            "/v3/auth/tokens?nocatalog",
            201,
            vec![
                HeaderField::new("Content-Encoding", "gzip"),
                HeaderField::new("x-subject-token", "tok"),
            ],
            &body,
        );
        assert!(book.learn(&ex, at("2022-12-30T01:38:05Z")).is_some());
    }

    #[test]
    fn auth_bodies_name_the_user() {
        let pw = br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "asdf", "name": "glance-swift", "domain": {"id": "default"}}}}, "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}}"#;
        assert_eq!(
            auth_subject(pw),
            Some(AuthSubject::UserName("glance-swift".into()))
        );
        let id = br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "abc", "password": "x"}}}}}"#;
        assert_eq!(auth_subject(id), Some(AuthSubject::UserId("abc".into())));
        let tok = br#"{"auth": {"identity": {"methods": ["token"], "token": {"id": "gAAAA1"}}}}"#;
        assert_eq!(
            auth_subject(tok),
            Some(AuthSubject::Token(token_key(b"gAAAA1")))
        );
        assert_eq!(auth_subject(b"not json"), None);
        assert_eq!(auth_subject(br#"{"auth": {}}"#), None);
    }

    #[test]
    fn flights_come_and_go() {
        let f = FlightBook::default();
        let k = token_key(b"user");
        let a = f.start(k, "glance-api");
        let b = f.start(k, "swift-proxy-server");
        assert_eq!(
            f.services(&k, "keystone")
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            ["glance-api", "swift-proxy-server"]
        );
        assert_eq!(f.services(&k, "glance-api").len(), 1);
        f.end(&k, a);
        f.end(&k, b);
        assert!(f.is_empty());
    }

    #[test]
    fn paths() {
        assert!(is_auth_tokens("/identity/v3/auth/tokens"));
        assert!(is_auth_tokens("/v3/auth/tokens?nocatalog"));
        assert!(is_auth_tokens("http://h/identity/v3/auth/tokens/"));
        assert!(!is_auth_tokens("/v3/auth/tokens/OS-PKI/revoked"));
        assert!(!is_auth_tokens("/v2/images"));
        assert_eq!(
            parse_http_date("Fri, 30 Dec 2022 01:38:09 GMT"),
            Some(at("2022-12-30T01:38:09Z"))
        );
    }
}
