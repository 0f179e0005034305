//! The TOML config file (SPEC "Config file"): what tracer listens on, where it
//! forwards, where it stores. Unknown keys are errors that name the key.

use crate::attribution::Rules;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_DB_URL: &str = "sqlite://tracer.db";
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8799";
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub export: ExportConfig,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
    /// `[[caller]]`: who made a request, when the user knows better than the defaults.
    #[serde(default, rename = "caller")]
    pub callers: Vec<CallerRuleConfig>,
    #[serde(default)]
    pub attribution: AttributionConfig,
    /// `[[ignore]]`: noise filters in the shape of requestshook's should_not_hook.json.
    #[serde(default, rename = "ignore")]
    pub ignores: Vec<IgnoreRuleConfig>,
    /// `[ignore_placeholders] name = "regex"`: `{name}` in `[[ignore]].urls`.
    #[serde(default)]
    pub ignore_placeholders: BTreeMap<String, String>,
    /// The attribution and ignore sections above, compiled when the config
    /// is parsed (the built-in tables for a config that has none).
    #[serde(skip)]
    pub rules: CompiledRules,
}

/// Compiled attribution rules, shared.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules(Option<Arc<Rules>>);

impl CompiledRules {
    pub fn get(&self) -> Arc<Rules> {
        self.0.clone().unwrap_or_else(Rules::builtin)
    }
}

/// `[[caller]]`: every condition given must hold; the first rule that matches wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerRuleConfig {
    /// The caller to stamp.
    pub name: String,
    /// Regex searched in the request's User-Agent.
    pub user_agent: Option<String>,
    /// The client's address: `10.0.0.5`, `10.0.0.0/24`, `::1`.
    pub source: Option<String>,
    /// The `[[service]]` whose listener took the request.
    pub listener: Option<String>,
}

/// `[attribution]`: how tracer works a caller out when the request does not say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionConfig {
    /// Look up the process that owns the client socket (peers on this host).
    #[serde(default = "default_true")]
    pub peer_process: bool,
    /// The name of the CLI: the caller of requests made with the token of a
    /// user that is not a service user (and what the built-in tables call `openstack`).
    #[serde(default = "default_user_caller")]
    pub default_user_caller: String,
    /// Keystone user name -> the service that uses it (added to, or replacing, the defaults).
    #[serde(default)]
    pub service_users: BTreeMap<String, String>,
    /// `[[attribution.process]]`: command lines -> callers, tried before the built-in table.
    #[serde(default)]
    pub process: Vec<ProcessRuleConfig>,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        Self {
            peer_process: true,
            default_user_caller: default_user_caller(),
            service_users: BTreeMap::new(),
            process: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessRuleConfig {
    pub name: String,
    /// Regex searched in the process's command line (arguments joined by spaces).
    pub cmdline: String,
}

/// `[[ignore]]`: every condition given must hold (`from`/`to`/`method` compare
/// case-insensitively, `urls` are regexes searched in the path, any may match).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRuleConfig {
    pub from: Option<String>,
    pub to: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub urls: Vec<String>,
    /// Do not store matching exchanges at all (default: store them, marked ignored).
    #[serde(default)]
    pub drop: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "default_db_url")]
    pub url: String,
    /// Bytes of each body kept; the rest is counted and hashed, not stored.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Captured exchanges waiting for the writer, at most.
    #[serde(default = "default_queue_exchanges")]
    pub queue_exchanges: usize,
    /// Body bytes waiting for the writer, at most.
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: default_db_url(),
            max_body_bytes: default_max_body_bytes(),
            queue_exchanges: default_queue_exchanges(),
            queue_bytes: default_queue_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen", deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

/// Timeouts and trust for the forwarding side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Seconds to wait for the upstream's TCP (and TLS) handshake.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds the upstream has for its whole response head once the request is sent.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// Seconds an idle client connection is kept open between requests.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Seconds a client has for a whole request head once its first byte is in.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a body may move no byte, either way, before the exchange ends.
    #[serde(default = "default_body_idle_timeout")]
    pub body_idle_timeout_secs: u64,
    /// What a client sees when its upstream fails: `mirror` (the same
    /// failure: closed or reset without a response) or `explain` (502/504
    /// with a short text body).
    #[serde(default)]
    pub upstream_errors: UpstreamErrors,
    /// Seconds SIGTERM waits for exchanges in flight before closing them.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Largest request or response head accepted, in bytes.
    #[serde(default = "default_max_head_bytes")]
    pub max_head_bytes: usize,
    /// Extra PEM CA bundle trusted for https upstreams, besides the system roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: default_connect_timeout(),
            response_timeout_secs: default_response_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            header_timeout_secs: default_header_timeout(),
            body_idle_timeout_secs: default_body_idle_timeout(),
            upstream_errors: UpstreamErrors::default(),
            shutdown_grace_secs: default_shutdown_grace(),
            max_head_bytes: default_max_head_bytes(),
            ca_file: None,
        }
    }
}

/// `[export]`: how pages are written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The title of each step's API reference admonition (`"API 참조"`).
    pub reference_title: Option<String>,
}

/// `[proxy] upstream_errors`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamErrors {
    /// tracer stays invisible: the client sees the upstream's own failure.
    #[default]
    Mirror,
    /// tracer answers 502 or 504 itself, saying what happened (for curl).
    Explain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    #[serde(deserialize_with = "upstream_url")]
    pub upstream: Upstream,
    /// The OpenStack API it serves (`image`, `compute`, ...), for the API
    /// references of its requests; guessed from the name when absent.
    #[serde(default, deserialize_with = "api_name")]
    pub api: Option<crate::apiref::Api>,
    /// PEM certificate chain and key: serve this listener over TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_user_caller() -> String {
    "openstack".to_string()
}
fn default_db_url() -> String {
    DEFAULT_DB_URL.to_string()
}
fn default_max_body_bytes() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
/// About two seconds of the highest rate measured on 2 cores (benches/): a
/// writer held up that long (a checkpoint's fsync, a busy disk) loses nothing.
/// A queued small exchange takes about 1 KiB, bodies are bounded apart.
fn default_queue_exchanges() -> usize {
    65_536
}
fn default_queue_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_admin_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN
        .parse()
        .expect("the default admin address is an address")
}

fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse_listen(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn api_name<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::apiref::Api>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{name:?} is not an API tracer knows (one of: {})",
            crate::apiref::Api::ALL.map(|a| a.as_str()).join(", ")
        ))
    })
}

fn upstream_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Upstream, D::Error> {
    Upstream::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_response_timeout() -> u64 {
    600
}
fn default_idle_timeout() -> u64 {
    120
}
/// nginx's `client_header_timeout` is 60 s; a head arrives in one packet.
fn default_header_timeout() -> u64 {
    30
}
/// As nginx's `proxy_read_timeout`/`send_timeout`.
fn default_body_idle_timeout() -> u64 {
    60
}
fn default_shutdown_grace() -> u64 {
    10
}
fn default_max_head_bytes() -> usize {
    64 * 1024
}

/// Where the config comes from: `--config`, else `$TRACER_CONFIG`, else
/// `./tracer.toml` if present, else built-in defaults (None).
pub fn resolve_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("TRACER_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("tracer.toml");
    local.is_file().then_some(local)
}

impl Config {
    /// What the config says about pages (`[export]`, `[[service]] api`).
    pub fn page_settings(&self) -> crate::export::PageSettings {
        crate::export::PageSettings {
            reference_title: self.export.reference_title.clone(),
            apis: Arc::new(
                self.services
                    .iter()
                    .filter_map(|s| Some((s.name.clone(), s.api?)))
                    .collect(),
            ),
        }
    }

    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::parse(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?
            }
        };
        Ok(config)
    }

    /// Parses TOML text into typed values, checks it, and compiles its
    /// rules: a `Config` is always a valid one. The message is one line
    /// naming the key, position or rule at fault.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid(message) => message,
            other => other.to_string(),
        })?;
        config.rules = CompiledRules(Some(Arc::new(Rules::compile(&config)?)));
        Ok(config)
    }

    /// The checks that span several keys (what types alone cannot say).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.storage.url.starts_with("sqlite:") || self.storage.url.starts_with("postgres")) {
            return Err(ConfigError::Invalid(format!(
                "[storage].url {:?} must start with sqlite:// or postgres://",
                crate::store::redact_url(&self.storage.url)
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if s.name.is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[service]] has an empty name".into(),
                ));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "service {:?} is defined twice",
                    s.name
                )));
            }
            if s.tls_cert.is_some() != s.tls_key.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "service {:?}: tls_cert and tls_key go together",
                    s.name
                )));
            }
        }
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8080"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where a service's requests go: `http[s]://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" or "/identity").
    pub prefix: String,
}

impl Upstream {
    pub fn parse(s: &str) -> Result<Upstream, String> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(format!("{s:?} must start with http:// or https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains('?') || path.contains('#') {
            return Err(format!("{s:?}: a query or fragment is not allowed"));
        }
        let default_port = if scheme == Scheme::Https { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| format!("{s:?} has no valid host[:port]"))?;
        Ok(Upstream {
            scheme,
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The request target to send upstream for a target the client sent:
    /// the rule the proxy writes straight into the forwarded head, spelled
    /// out for the tests.
    #[cfg(test)]
    fn join(&self, target: &str) -> String {
        let mut path = String::with_capacity(self.prefix.len() + target.len());
        path.push_str(self.prefix_for(target));
        path.push_str(target);
        path
    }

    /// What goes in front of `target` upstream: the URL's path prefix, for
    /// origin-form targets.
    pub fn prefix_for(&self, target: &str) -> &str {
        if target.starts_with('/') {
            &self.prefix
        } else {
            ""
        }
    }

    fn write_authority(&self, out: &mut String) {
        use std::fmt::Write as _;
        let default = if self.scheme == Scheme::Https {
            443
        } else {
            80
        };
        if self.host.contains(':') {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        if self.port != default {
            // Writing to a String cannot fail.
            let _ = write!(out, ":{}", self.port);
        }
    }

    /// The absolute URL a target is forwarded to (once per exchange).
    pub fn url_for(&self, target: &str) -> String {
        let scheme = if self.scheme == Scheme::Https {
            "https://"
        } else {
            "http://"
        };
        let mut url = String::with_capacity(
            scheme.len() + self.host.len() + 8 + self.prefix.len() + target.len(),
        );
        url.push_str(scheme);
        self.write_authority(&mut url);
        url.push_str(self.prefix_for(target));
        url.push_str(target);
        url
    }
}

/// The upstream as it is written in the config: `http://127.0.0.1/identity`.
impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut url = String::from(if self.scheme == Scheme::Https {
            "https://"
        } else {
            "http://"
        });
        self.write_authority(&mut url);
        url.push_str(&self.prefix);
        f.write_str(&url)
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_string(), port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_sample_parses() {
        let c = Config::parse(
            r#"
[storage]
url = "sqlite://tracer.db"
max_body_bytes = 1048576
[admin]
listen = "127.0.0.1:8799"
[[service]]
name = "keystone"
listen = "0.0.0.0:15000"
upstream = "http://127.0.0.1:80/identity"
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.services.len(), 1);
        assert_eq!(c.storage.max_body_bytes, 1048576);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[storage]\nurll = \"x\"\n").unwrap_err();
        assert!(err.contains("urll"), "{err}");
        assert!(!err.contains('\n'));
        let err = Config::parse(
            "[[service]]\nname=\"a\"\nlisten=\"127.0.0.1:1\"\nupstream=\"http://x\"\nport=1\n",
        )
        .unwrap_err();
        assert!(err.contains("port"), "{err}");
        // Values are typed as they are read: the key and the reason, one line.
        let err = Config::parse("[[service]]\nname=\"a\"\nlisten=\"1\"\nupstream=\"http://x\"\n")
            .unwrap_err();
        assert!(
            err.contains("listen") && err.contains("not an address"),
            "{err}"
        );
        let err = Config::parse(
            "[[service]]\nname=\"a\"\nlisten=\"127.0.0.1:1\"\nupstream=\"ftp://x\"\n",
        )
        .unwrap_err();
        assert!(err.contains("upstream") && err.contains("http://"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn upstream_prefix_joins() {
        let u = Upstream::parse("http://127.0.0.1:80/identity/").unwrap();
        assert_eq!(u.prefix, "/identity");
        assert_eq!(u.join("/v3/auth/tokens"), "/identity/v3/auth/tokens");
        assert_eq!(u.join("/"), "/identity/");
        assert_eq!(u.join("*"), "*");
        assert_eq!(u.url_for("/v3"), "http://127.0.0.1/identity/v3");
        let u = Upstream::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("::1", 8443, "")
        );
        assert_eq!(u.join("/x?y=1"), "/x?y=1");
        assert!(Upstream::parse("ftp://x").is_err());
        assert!(Upstream::parse("http://").is_err());
        assert!(Upstream::parse("http://h:notaport").is_err());
    }

    #[test]
    fn duplicate_service_names_are_refused() {
        let err = Config::parse(
            "[[service]]\nname=\"a\"\nlisten=\"127.0.0.1:1\"\nupstream=\"http://x\"\n[[service]]\nname=\"a\"\nlisten=\"127.0.0.1:2\"\nupstream=\"http://y\"\n",
        )
        .unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }
}

#[cfg(test)]
mod sample_config {
    #[test]
    fn the_shipped_sample_config_is_valid() {
        let c = super::Config::parse(include_str!("../config/tracer.toml")).unwrap();
        c.validate().unwrap();
        assert!(c.services.iter().any(|s| s.name == "keystone"));
    }
}
