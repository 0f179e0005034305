//! `--redact`: passwords masked entirely (`***`), tokens and secrets cut
//! to their first 8 characters plus `***` (`gAAAAABj***`), in every file
//! written (pages, HAR, the recorded command).
//!
//! A secret shows up in four kinds of places, each handled where it is
//! structured:
//! - header values (`X-Auth-Token`, `X-Subject-Token`, `X-Service-Token`,
//!   `Authorization`) and query parameters (`password=`, `token=`):
//!   [`Redacted::new`] masks them in copies of the exchanges before
//!   anything is rendered, so every page and the HAR see the same;
//! - JSON body fields ([`redact_json`], applied where bodies are decoded):
//!   `password`/`*_password`/`adminPass`, `token.id` of token
//!   authentication, `secret`/`*_secret` (application credentials);
//! - command-line options ([`redact_command`]): `--*password`, `--*token`,
//!   `--*secret`;
//! - anything else that repeats one of those values verbatim (command
//!   output, an error message, a URL in a body): [`Secrets::scrub`] on the
//!   finished text. Only values of at least [`SCRUB_MIN`] characters are
//!   scrubbed as free text: a short password such as `secret` is also an
//!   ordinary word of the pages.

use crate::model::{Exchange, HeaderField, RecordedCommand};
use serde_json::Value;
use std::borrow::Cow;

/// What stands for a secret, or for the rest of one.
pub const MASK: &str = "***";
/// How many characters of a token are kept.
pub const TOKEN_PREFIX: usize = 8;
/// A token shorter than this is masked whole: a prefix would be most of it.
const MIN_TOKEN_FOR_PREFIX: usize = 3 * TOKEN_PREFIX;
/// Values shorter than this are not scrubbed from free text.
pub const SCRUB_MIN: usize = 12;

/// Two kinds of secret, two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Masked entirely: no prefix, no length.
    Password,
    /// A short prefix stays, so two tokens of a flow can be told apart.
    Token,
}

/// What a secret of this kind is written as.
pub fn mask(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Password => MASK.to_string(),
        Kind::Token if value.chars().count() >= MIN_TOKEN_FOR_PREFIX => {
            let prefix: String = value.chars().take(TOKEN_PREFIX).collect();
            format!("{prefix}{MASK}")
        }
        Kind::Token => MASK.to_string(),
    }
}

/// Header names whose values are tokens.
const TOKEN_HEADERS: [&str; 3] = ["x-auth-token", "x-subject-token", "x-service-token"];

pub fn is_secret_header(name: &str) -> bool {
    TOKEN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s))
        || name.eq_ignore_ascii_case("authorization")
}

/// A header value as `--redact` shows it, when the header is a secret.
/// `Authorization` keeps its scheme: `Basic ***` (a password), `Bearer
/// abcdefgh***`.
pub fn header_value(name: &str, value: &str) -> Option<String> {
    if TOKEN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
        return Some(mask(Kind::Token, value));
    }
    if !name.eq_ignore_ascii_case("authorization") {
        return None;
    }
    Some(match value.split_once(' ') {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("bearer") => {
            format!("{scheme} {}", mask(Kind::Token, cred.trim()))
        }
        Some((scheme, _)) => format!("{scheme} {MASK}"),
        None => MASK.to_string(),
    })
}

/// The secret in a header value (the credentials of `Authorization`).
fn header_secret(name: &str, value: &str) -> Option<(Kind, String)> {
    if TOKEN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
        return Some((Kind::Token, value.to_string()));
    }
    if !name.eq_ignore_ascii_case("authorization") {
        return None;
    }
    let (scheme, cred) = value.split_once(' ')?;
    let kind = if scheme.eq_ignore_ascii_case("bearer") {
        Kind::Token
    } else {
        Kind::Password
    };
    Some((kind, cred.trim().to_string()))
}

/// The kind of a JSON field or query parameter by its name; `parent` is
/// the key of the object holding it (`token` for `{"token": {"id": …}}`).
fn key_kind(key: &str, parent: Option<&str>) -> Option<Kind> {
    let k = key.to_ascii_lowercase();
    if k == "password" || k.ends_with("_password") || k == "adminpass" {
        return Some(Kind::Password);
    }
    let token_id = k == "id" && parent.is_some_and(|p| p.eq_ignore_ascii_case("token"));
    if token_id
        || k == "token"
        || k.ends_with("_token")
        || k == "secret"
        || k.ends_with("_secret")
        || k == "temp_url_sig"
    {
        return Some(Kind::Token);
    }
    None
}

/// Masks every secret string field, at any depth. Returns whether
/// anything changed.
pub fn redact_json(value: &mut Value) -> bool {
    redact_json_in(value, None)
}

fn redact_json_in(value: &mut Value, parent: Option<&str>) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                if let (Some(kind), Value::String(s)) = (key_kind(k, parent), &mut *v) {
                    *s = mask(kind, s);
                    changed = true;
                    continue;
                }
                changed |= redact_json_in(v, Some(k));
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, v| redact_json_in(v, parent) | c),
        _ => false,
    }
}

/// The secret string fields of a JSON value, unmasked (for [`Secrets`]).
fn json_secrets(value: &Value, parent: Option<&str>, out: &mut Vec<(Kind, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (key_kind(k, parent), v) {
                    (Some(kind), Value::String(s)) => out.push((kind, s.clone())),
                    _ => json_secrets(v, Some(k), out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| json_secrets(v, parent, out)),
        _ => {}
    }
}

/// The kind of a command-line option's value by the option's name.
fn option_kind(option: &str) -> Option<Kind> {
    let name = option.strip_prefix("--")?.to_ascii_lowercase();
    if name.starts_with("no-") {
        return None;
    }
    if name.ends_with("password") {
        Some(Kind::Password)
    } else if name.ends_with("token") || name.ends_with("secret") {
        Some(Kind::Token)
    } else {
        None
    }
}

/// The secret values of a command line, with their kinds.
fn argv_secrets(argv: &[String]) -> Vec<(Kind, String)> {
    let mut found = Vec::new();
    let mut pending: Option<Kind> = None;
    for arg in argv {
        if let Some(kind) = pending.take() {
            found.push((kind, arg.clone()));
            continue;
        }
        match arg.split_once('=') {
            Some((opt, value)) if arg.starts_with("--") => {
                if let Some(kind) = option_kind(opt) {
                    found.push((kind, value.to_string()));
                }
            }
            _ => pending = option_kind(arg),
        }
    }
    found
}

/// The command line with the values of secret options masked.
pub fn redact_command(command: &RecordedCommand) -> RecordedCommand {
    let mut argv = Vec::with_capacity(command.argv.len());
    let mut pending: Option<Kind> = None;
    for arg in &command.argv {
        if let Some(kind) = pending.take() {
            argv.push(mask(kind, arg));
            continue;
        }
        match arg.split_once('=') {
            Some((opt, value)) if arg.starts_with("--") => match option_kind(opt) {
                Some(kind) => argv.push(format!("{opt}={}", mask(kind, value))),
                None => argv.push(arg.clone()),
            },
            _ => {
                pending = option_kind(arg);
                argv.push(arg.clone());
            }
        }
    }
    RecordedCommand {
        argv,
        ..command.clone()
    }
}

/// A target or URL with the values of secret query parameters masked
/// (`?password=***`); unchanged when it has none.
pub fn query(target: &str) -> Cow<'_, str> {
    let Some((path, q)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let mut changed = false;
    let pairs: Vec<String> = q
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => match key_kind(&percent_decode(k), None) {
                Some(kind) => {
                    changed = true;
                    format!("{k}={}", mask(kind, v))
                }
                None => pair.to_string(),
            },
            None => pair.to_string(),
        })
        .collect();
    if changed {
        Cow::Owned(format!("{path}?{}", pairs.join("&")))
    } else {
        Cow::Borrowed(target)
    }
}

/// A form body (`application/x-www-form-urlencoded`) with the values of
/// secret fields masked, like a query string.
pub fn form(body: &str) -> Option<String> {
    let q = format!("?{body}");
    match query(&q) {
        Cow::Owned(masked) => Some(masked[1..].to_string()),
        Cow::Borrowed(_) => None,
    }
}

pub fn is_form(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The secret query values of a target, unmasked and still encoded as
/// sent (that is how they appear in text).
fn query_secrets(target: &str, out: &mut Vec<(Kind, String)>) {
    let Some((_, q)) = target.split_once('?') else {
        return;
    };
    for pair in q.split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            if let Some(kind) = key_kind(&percent_decode(k), None) {
                out.push((kind, v.to_string()));
                let decoded = percent_decode(v);
                if decoded != v {
                    out.push((kind, decoded));
                }
            }
        }
    }
}

/// `%XX` and `+` decoded, as a query string means them.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mask_headers(headers: &[HeaderField]) -> Vec<HeaderField> {
    headers
        .iter()
        .map(|h| match header_value(&h.name, &h.value_str()) {
            Some(v) => HeaderField::new(h.name.clone(), v),
            None => h.clone(),
        })
        .collect()
}

/// The exchanges as pages show them, and what is scrubbed from the text.
pub struct Redacted<'a> {
    pub exchanges: Cow<'a, [Exchange]>,
    secrets: Option<Secrets>,
}

impl<'a> Redacted<'a> {
    /// Without `on`, the exchanges as they are. With it, copies whose
    /// secret headers and query values are masked; the secrets of the
    /// originals (and of `command`) are kept for [`Redacted::scrub`].
    pub fn new(exchanges: &'a [Exchange], command: Option<&RecordedCommand>, on: bool) -> Self {
        if !on {
            return Redacted {
                exchanges: Cow::Borrowed(exchanges),
                secrets: None,
            };
        }
        let secrets = Secrets::collect(exchanges, command);
        let masked = exchanges
            .iter()
            .map(|x| Exchange {
                target: query(&x.target).into_owned(),
                upstream_url: query(&x.upstream_url).into_owned(),
                request_headers: mask_headers(&x.request_headers),
                response_headers: mask_headers(&x.response_headers),
                ..x.clone()
            })
            .collect::<Vec<_>>();
        Redacted {
            exchanges: Cow::Owned(masked),
            secrets: Some(secrets),
        }
    }

    /// The finished text with every known secret value replaced.
    pub fn scrub(&self, text: String) -> String {
        match &self.secrets {
            Some(s) => s.scrub(&text),
            None => text,
        }
    }
}

/// The secret values seen anywhere in a flow, to be scrubbed from any text.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// (what to find, what to write), longest first.
    pairs: Vec<(String, String)>,
}

impl Secrets {
    pub fn collect(exchanges: &[Exchange], command: Option<&RecordedCommand>) -> Self {
        let mut found: Vec<(Kind, String)> = Vec::new();
        for x in exchanges {
            for h in x.request_headers.iter().chain(&x.response_headers) {
                found.extend(header_secret(&h.name, &h.value_str()));
            }
            query_secrets(&x.target, &mut found);
            for (record, headers) in [
                (&x.request_body, &x.request_headers),
                (&x.response_body, &x.response_headers),
            ] {
                if record.kept.is_empty() {
                    continue;
                }
                let d = super::body::decode(record, headers);
                let ct = crate::model::header_str(headers, "content-type").unwrap_or_default();
                if let Some(v) = super::body::parse_json(&d.bytes, &ct) {
                    json_secrets(&v, None, &mut found);
                } else if is_form(&ct) {
                    query_secrets(
                        &format!("?{}", String::from_utf8_lossy(&d.bytes)),
                        &mut found,
                    );
                }
            }
        }
        if let Some(cmd) = command {
            found.extend(argv_secrets(&cmd.argv));
        }
        let mut pairs = Vec::new();
        for (kind, value) in found {
            if value.chars().count() < SCRUB_MIN {
                continue;
            }
            let replacement = mask(kind, &value);
            // As JSON writes it too (a quote or backslash in a password).
            let json = serde_json::to_string(&value).unwrap_or_default();
            let json = json.trim_matches('"');
            if json != value {
                pairs.push((json.to_string(), replacement.clone()));
            }
            pairs.push((value, replacement));
        }
        // Longest first, so a secret that contains another is replaced whole.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
        pairs.dedup_by(|a, b| a.0 == b.0);
        Secrets { pairs }
    }

    /// Replaces every full occurrence of a secret.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = Cow::Borrowed(text);
        for (find, replace) in &self.pairs {
            if out.contains(find.as_str()) {
                out = Cow::Owned(out.replace(find.as_str(), replace));
            }
        }
        out.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::events::tests::{body, exchange};
    use serde_json::json;

    const TOKEN: &str = "gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZmQ6Gxg2bf1";

    #[test]
    fn passwords_vanish_tokens_keep_a_prefix() {
        assert_eq!(mask(Kind::Password, "asdf"), "***");
        assert_eq!(mask(Kind::Password, TOKEN), "***");
        assert_eq!(mask(Kind::Token, TOKEN), "gAAAAABj***");
        // Too short for a prefix to hide much.
        assert_eq!(mask(Kind::Token, "0123456789abcdef"), "***");
        assert_eq!(mask(Kind::Token, &"é".repeat(30)), "éééééééé***");
    }

    #[test]
    fn headers() {
        assert_eq!(header_value("X-Auth-Token", TOKEN).unwrap(), "gAAAAABj***");
        assert_eq!(
            header_value("authorization", "Basic YWRtaW46c2VjcmV0").unwrap(),
            "Basic ***"
        );
        assert_eq!(
            header_value("Authorization", &format!("Bearer {TOKEN}")).unwrap(),
            "Bearer gAAAAABj***"
        );
        assert_eq!(header_value("Content-Type", "x"), None);
    }

    #[test]
    fn json_fields_at_any_depth() {
        let mut v = json!({
            "auth": {"identity": {"methods": ["password", "token"],
                "password": {"user": {"password": "asdf", "name": "admin"}},
                "token": {"id": TOKEN},
                "application_credential": {"id": "423f19a4ac1e4f48bbb4180756e6eb6c", "secret": "rEaqvJka48mpv_Mcvv2lbKgpTRCkhy7ikJp8HVkNZqu1Cp-X8E1PSJCGebEnXOF7KpUlr0O8Z_lqKjcsaTRUWg"}}},
            "user": {"original_password": "old-secret-value-xyz", "password_expires_at": null},
            "server": {"adminPass": "hQ4aZ3z", "id": "d1f2"},
            "token": {"methods": ["password"], "user": {"id": "u1"}},
        });
        assert!(redact_json(&mut v));
        let identity = &v["auth"]["identity"];
        assert_eq!(identity["password"]["user"]["password"], "***");
        assert_eq!(identity["password"]["user"]["name"], "admin");
        assert_eq!(identity["methods"], json!(["password", "token"]));
        assert_eq!(identity["token"]["id"], "gAAAAABj***");
        assert_eq!(identity["application_credential"]["secret"], "rEaqvJka***");
        assert_eq!(
            identity["application_credential"]["id"],
            "423f19a4ac1e4f48bbb4180756e6eb6c"
        );
        assert_eq!(v["user"]["original_password"], "***");
        assert!(v["user"]["password_expires_at"].is_null());
        assert_eq!(v["server"]["adminPass"], "***");
        assert_eq!(v["server"]["id"], "d1f2");
        // A token's user id is no secret.
        assert_eq!(v["token"]["user"]["id"], "u1");
        assert!(!redact_json(&mut json!({"name": "x"})));
    }

    #[test]
    fn command_options() {
        let argv: Vec<String> = [
            "openstack",
            "--os-password",
            "asdf",
            &format!("--os-token={TOKEN}"),
            "--os-application-credential-secret",
            "short",
            "--password-prompt",
            "--no-password",
            "image",
            "list",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cmd = RecordedCommand {
            argv: argv.clone(),
            ..Default::default()
        };
        assert_eq!(
            redact_command(&cmd).argv,
            vec![
                "openstack",
                "--os-password",
                "***",
                "--os-token=gAAAAABj***",
                "--os-application-credential-secret",
                "***",
                "--password-prompt",
                "--no-password",
                "image",
                "list"
            ]
        );
        assert_eq!(
            argv_secrets(&argv),
            vec![
                (Kind::Password, "asdf".to_string()),
                (Kind::Token, TOKEN.to_string()),
                (Kind::Token, "short".to_string())
            ]
        );
    }

    #[test]
    fn query_values() {
        assert_eq!(
            query("/v3/x?name=a&password=asdf&os_token=abc&Password%5F=y"),
            "/v3/x?name=a&password=***&os_token=***&Password%5F=y"
        );
        assert_eq!(query("/v2/images?limit=2"), "/v2/images?limit=2");
        assert!(matches!(query("/v2/images"), Cow::Borrowed(_)));
        assert_eq!(
            query("http://h/o?temp_url_sig=da39a3ee5e6b4b0d3255bfef95601890afd80709&temp_url_expires=1"),
            "http://h/o?temp_url_sig=da39a3ee***&temp_url_expires=1"
        );
    }

    #[test]
    fn form_bodies() {
        assert_eq!(
            form("grant_type=password&username=u&password=asdf").unwrap(),
            "grant_type=password&username=u&password=***"
        );
        assert_eq!(form("a=b"), None);
        assert!(is_form("Application/X-WWW-Form-Urlencoded; charset=utf-8"));
    }

    #[test]
    fn scrub_replaces_secrets_seen_anywhere() {
        let mut x = exchange(
            "a",
            "b",
            "POST",
            "/?password=long-password-1",
            (1, Some(2)),
            Some((200, "OK")),
        );
        x.request_headers
            .push(HeaderField::new("x-auth-token", TOKEN));
        x.response_headers
            .push(HeaderField::new("X-Subject-Token", "short"));
        x.request_body =
            body(r#"{"auth":{"identity":{"password":{"user":{"password":"pa\"ss-word-long"}}}}}"#);
        let cmd = RecordedCommand {
            argv: vec!["--os-password".into(), "argv-password-42".into()],
            ..Default::default()
        };
        let s = Secrets::collect(&[x.clone()], Some(&cmd));
        assert_eq!(
            s.scrub(&format!(
                "token {TOKEN} and short; long-password-1, pa\"ss-word-long, pa\\\"ss-word-long, argv-password-42"
            )),
            "token gAAAAABj*** and short; ***, ***, ***, ***"
        );

        let r = Redacted::new(std::slice::from_ref(&x), None, true);
        assert_eq!(r.exchanges[0].target, "/?password=***");
        assert_eq!(
            r.exchanges[0].request_headers.last().unwrap().value,
            b"gAAAAABj***"
        );
        assert_eq!(
            r.exchanges[0].response_headers.last().unwrap().value,
            b"***"
        );
        let off = Redacted::new(std::slice::from_ref(&x), None, false);
        assert!(matches!(off.exchanges, Cow::Borrowed(_)));
        assert_eq!(off.scrub(TOKEN.to_string()), TOKEN);
    }
}
