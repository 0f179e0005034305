//! `--redact`: tokens and passwords shortened to their first 16 characters
//! plus `...`, in every file written.
//!
//! Three layers, because a secret shows up in three kinds of places:
//! header values ([`is_secret_header`], applied where header lines are
//! written), `password` fields of JSON bodies ([`redact_json`], applied where
//! bodies are decoded), and anything else that may repeat a token verbatim
//! (command output, a URL): [`Secrets::scrub`] on the finished text.

use crate::model::{Exchange, RecordedCommand};
use serde_json::Value;

const KEEP: usize = 16;

/// Header names whose values are credentials.
const SECRET_HEADERS: [&str; 3] = ["x-auth-token", "x-subject-token", "x-service-token"];

/// Command-line options whose next argument (or `=value`) is a password.
const SECRET_OPTIONS: [&str; 4] = ["--os-password", "--password", "--os-token", "--token"];

pub fn is_secret_header(name: &str) -> bool {
    SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// The first 16 characters plus `...` (characters, not bytes).
pub fn shorten(value: &str) -> String {
    let prefix: String = value.chars().take(KEEP).collect();
    format!("{prefix}...")
}

fn is_password_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "password" || k.ends_with("_password")
}

/// Shortens every string under a `password` key, at any depth. Returns
/// whether anything changed.
pub fn redact_json(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                if is_password_key(k) {
                    if let Value::String(s) = v {
                        *s = shorten(s);
                        changed = true;
                        continue;
                    }
                }
                changed |= redact_json(v);
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, v| redact_json(v) | c),
        _ => false,
    }
}

/// The command line with the values of password options shortened.
pub fn redact_command(command: &RecordedCommand) -> RecordedCommand {
    let mut argv = Vec::with_capacity(command.argv.len());
    let mut next_is_secret = false;
    for arg in &command.argv {
        if next_is_secret {
            argv.push(shorten(arg));
            next_is_secret = false;
            continue;
        }
        match arg.split_once('=') {
            Some((opt, value)) if SECRET_OPTIONS.contains(&opt) => {
                argv.push(format!("{opt}={}", shorten(value)));
            }
            _ => {
                next_is_secret = SECRET_OPTIONS.contains(&arg.as_str());
                argv.push(arg.clone());
            }
        }
    }
    RecordedCommand {
        argv,
        ..command.clone()
    }
}

/// The token values seen in a flow's headers, to be scrubbed from any text.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn collect(exchanges: &[Exchange]) -> Self {
        let mut values: Vec<String> = exchanges
            .iter()
            .flat_map(|x| x.request_headers.iter().chain(&x.response_headers))
            .filter(|h| is_secret_header(&h.name))
            .map(|h| h.value_str())
            // Only values longer than what is kept: scrubbing a short one
            // would show it whole and could mangle unrelated text.
            .filter(|v| v.chars().count() > KEEP)
            .collect();
        // Longest first, so a token that contains another is replaced whole.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Secrets { values }
    }

    /// Replaces every full occurrence of a token by its shortened form.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), &shorten(v));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderField;
    use crate::render::events::tests::exchange;
    use serde_json::json;

    #[test]
    fn shorten_keeps_sixteen_characters() {
        assert_eq!(
            shorten("gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZ"),
            "gAAAAABjsoJr7kmC..."
        );
        assert_eq!(shorten("asdf"), "asdf...");
        assert_eq!(shorten("ééééééééééééééééé"), "éééééééééééééééé...");
    }

    #[test]
    fn password_fields_at_any_depth() {
        let mut v = json!({"auth": {"identity": {"password": {"user": {"password": "a-very-long-password-123", "name": "admin"}}}},
                           "user": {"original_password": "old-secret-value-xyz"}, "password_expires_at": null});
        assert!(redact_json(&mut v));
        assert_eq!(
            v["auth"]["identity"]["password"]["user"]["password"],
            "a-very-long-pass..."
        );
        assert_eq!(v["auth"]["identity"]["password"]["user"]["name"], "admin");
        assert_eq!(v["user"]["original_password"], "old-secret-value...");
        assert!(v["password_expires_at"].is_null());
    }

    #[test]
    fn command_options() {
        let cmd = RecordedCommand {
            argv: [
                "openstack",
                "--os-password",
                "supersecretpassword!",
                "--os-token=abcdefghijklmnopqrstu",
                "image",
                "list",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            ..Default::default()
        };
        assert_eq!(
            redact_command(&cmd).argv,
            vec![
                "openstack",
                "--os-password",
                "supersecretpassw...",
                "--os-token=abcdefghijklmnop...",
                "image",
                "list"
            ]
        );
    }

    #[test]
    fn scrub_replaces_tokens_everywhere() {
        let mut x = exchange("a", "b", "GET", "/", (1, Some(2)), Some((200, "OK")));
        let token = "gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZmQ6Gxg2bf1";
        x.request_headers
            .push(HeaderField::new("x-auth-token", token));
        x.response_headers
            .push(HeaderField::new("X-Subject-Token", "short"));
        let s = Secrets::collect(&[x]);
        assert_eq!(
            s.scrub(&format!("token {token} and short")),
            "token gAAAAABjsoJr7kmC... and short"
        );
    }
}
