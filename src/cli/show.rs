//! `tracer show ID`: one exchange in full, for a terminal or as JSON.

use super::out;
use crate::apiref::{Api, Operation};
use crate::model::{header_str, BodyRecord, Exchange, HeaderField};
use crate::present::json;
use crate::present::units::{duration, size};
use crate::store::Store;
use crate::timefmt::rfc3339;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;

/// Binary bodies are shown as a hex dump of this many bytes at most.
const HEX_PREVIEW: usize = 512;
/// A compressed body is shown decoded up to this size.
const MAX_DECODED: u64 = 16 * 1024 * 1024;

pub async fn run(
    store: &dyn Store,
    key: &str,
    as_json: bool,
    apis: &BTreeMap<String, Api>,
) -> anyhow::Result<()> {
    let Some(ex) = store.get_exchange(key).await? else {
        anyhow::bail!("no exchange with id, uuid or request id {key:?} (see `tracer list`)");
    };
    let operation = crate::render::annotate::reference(&ex, apis);
    if as_json {
        let mut v = json::exchange_full(&ex);
        v["operation"] = operation.map_or(serde_json::Value::Null, |op| {
            serde_json::json!({"title": op.title, "url": op.url, "api": op.api.as_str(),
                "method": op.method, "path": op.path})
        });
        out::line(v)?;
    } else {
        out::text(render(&ex, operation))?;
    }
    Ok(())
}

pub fn render(ex: &Exchange, operation: Option<&Operation>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "exchange {}  uuid {}", ex.id, ex.uuid);
    let _ = writeln!(out, "request id  {}", ex.request_id);
    let _ = writeln!(
        out,
        "caller      {} (decided by: {})",
        ex.caller, ex.caller_source
    );
    let _ = writeln!(
        out,
        "service     {} (client {})",
        ex.service, ex.client_addr
    );
    let _ = writeln!(out, "upstream    {}", ex.upstream_url);
    if let Some(op) = operation {
        let _ = writeln!(
            out,
            "operation   {} ({} {}) {}",
            op.title, op.method, op.path, op.url
        );
    }
    let mut timing = format!("started {}", rfc3339(ex.started_at));
    if let Some(at) = ex.response_at {
        let _ = write!(
            timing,
            ", response head after {}",
            duration(at - ex.started_at)
        );
    }
    let _ = write!(timing, ", done after {}", duration(ex.duration_micros()));
    let _ = writeln!(out, "time        {timing}");
    if let Some(e) = &ex.error {
        let _ = writeln!(out, "error       {}", escape(&e.summary()));
    }
    if ex.ignored {
        let _ = writeln!(out, "ignored     yes (matched an ignore rule)");
    }

    let _ = writeln!(
        out,
        "\n>>> {} {} {}",
        ex.method,
        escape(&ex.target),
        ex.request_version
    );
    headers(&mut out, &ex.request_headers);
    body(&mut out, &ex.request_body, &ex.request_headers);

    match ex.status {
        Some(status) => {
            let _ = writeln!(
                out,
                "\n<<< {} {} {}",
                ex.response_version.as_deref().unwrap_or("HTTP/1.1"),
                status,
                escape(ex.reason.as_deref().unwrap_or(""))
            );
            headers(&mut out, &ex.response_headers);
            body(&mut out, &ex.response_body, &ex.response_headers);
        }
        None => {
            let _ = writeln!(out, "\n<<< no response");
        }
    }
    out
}

fn headers(out: &mut String, headers: &[HeaderField]) {
    for h in headers {
        let _ = writeln!(out, "{}: {}", h.name, escape(&h.value_str()));
    }
}

fn body(out: &mut String, body: &BodyRecord, headers: &[HeaderField]) {
    out.push('\n');
    if body.is_empty() {
        out.push_str("(no body)\n");
        return;
    }
    let decoded = decode(body, headers);
    let (bytes, note) = match &decoded {
        Some((bytes, coding)) => (bytes.as_slice(), format!(", shown {coding}-decoded")),
        None => (body.kept.as_slice(), String::new()),
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            out.push_str(&escape(text));
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        Err(_) => hex_dump(out, bytes),
    }
    let kept = if body.is_truncated() {
        format!(", first {} kept", body.kept.len())
    } else {
        String::new()
    };
    let total = if body.size < 1024 {
        format!("{} bytes", body.size)
    } else {
        format!("{} ({} bytes)", size(body.size), body.size)
    };
    let _ = writeln!(out, "[{total}{kept}{note}, sha256 {}]", body.sha256);
}

/// A gzip or deflate body shown as what it says, when all of it was kept.
fn decode(body: &BodyRecord, headers: &[HeaderField]) -> Option<(Vec<u8>, &'static str)> {
    if body.is_truncated() {
        return None;
    }
    let coding = header_str(headers, "content-encoding")?
        .trim()
        .to_ascii_lowercase();
    let mut decoded = Vec::new();
    let read = match coding.as_str() {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body.kept[..])
            .take(MAX_DECODED)
            .read_to_end(&mut decoded),
        "deflate" => flate2::read::ZlibDecoder::new(&body.kept[..])
            .take(MAX_DECODED)
            .read_to_end(&mut decoded),
        _ => return None,
    };
    read.ok()?;
    Some((
        decoded,
        if coding == "deflate" {
            "deflate"
        } else {
            "gzip"
        },
    ))
}

fn hex_dump(out: &mut String, bytes: &[u8]) {
    for (i, line) in bytes.chunks(16).take(HEX_PREVIEW / 16).enumerate() {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = line
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "{:08x}  {:<47}  |{ascii}|", i * 16, hex.join(" "));
    }
    if bytes.len() > HEX_PREVIEW {
        let _ = writeln!(out, "… ({} more bytes kept)", bytes.len() - HEX_PREVIEW);
    }
}

/// Control characters (an ESC from a response could drive the terminal)
/// are written as escapes; newlines and tabs stay.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' && c != '\r' {
                c.escape_default().to_string()
            } else if c == '\r' {
                String::new()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(escape("a\x1b[2Jb\r\nc\td"), "a\\u{1b}[2Jb\nc\td");
    }

    #[test]
    fn gzip_bodies_are_shown_decoded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"ok\": true}").unwrap();
        let kept = gz.finish().unwrap();
        let body = BodyRecord {
            size: kept.len() as u64,
            kept,
            sha256: "h".into(),
        };
        let headers = [HeaderField::new("Content-Encoding", "gzip")];
        let mut out = String::new();
        super::body(&mut out, &body, &headers);
        assert!(out.contains("{\"ok\": true}\n"), "{out}");
        assert!(out.contains("gzip-decoded"), "{out}");
    }

    #[test]
    fn binary_bodies_are_hex_dumped() {
        let body = BodyRecord {
            kept: vec![0x51, 0x46, 0x49, 0xfb, 0x00],
            size: 100,
            sha256: "h".into(),
        };
        let mut out = String::new();
        super::body(&mut out, &body, &[]);
        assert!(out.starts_with("\n00000000  51 46 49 fb 00"), "{out}");
        assert!(out.contains("|QFI..|"), "{out}");
        assert!(out.contains("first 5 kept"), "{out}");
    }
}
