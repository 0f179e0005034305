//! A recorded body as the pages show it: `none`, pretty JSON (two spaces,
//! the sender's key order and number text), text, or the first 32 bytes the
//! way Python writes `bytes` (`b'QFI\xfb\x00...'...`), as the seeds do.
//! Compressed bodies are shown decoded.

use crate::model::{header_str, BodyRecord, HeaderField};
use serde_json::Value;
use std::io::Read;

/// How many bytes of a binary body are shown.
pub const BINARY_PREFIX: usize = 32;

/// Decoding stops here: a page is no place for a decompression bomb.
const MAX_DECODED: u64 = 16 << 20;

/// A body with its Content-Encoding removed, as far as the kept bytes allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The whole payload is here (nothing cut by `max_body_bytes`, nothing
    /// left undecoded).
    pub complete: bool,
    /// A Content-Encoding was removed.
    pub decoded: bool,
}

/// Removes gzip/deflate (in the reverse of the order they were applied).
/// An encoding tracer cannot undo (br, zstd) or a corrupt stream leaves the
/// bytes as recorded.
pub fn decode(body: &BodyRecord, headers: &[HeaderField]) -> Decoded {
    let raw = Decoded {
        bytes: body.kept.clone(),
        complete: !body.is_truncated(),
        decoded: false,
    };
    let Some(encoding) = header_str(headers, "content-encoding") else {
        return raw;
    };
    let codings: Vec<String> = encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() || body.kept.is_empty() {
        return raw;
    }
    let mut bytes = body.kept.clone();
    let mut complete = raw.complete;
    for coding in codings.iter().rev() {
        let (out, whole) = match coding.as_str() {
            "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(&bytes[..])),
            // "deflate" is zlib-wrapped by the RFC, raw by some servers.
            "deflate" => match inflate(flate2::read::ZlibDecoder::new(&bytes[..])) {
                (out, true) => (out, true),
                (out, false) if !out.is_empty() => (out, false),
                _ => inflate(flate2::read::DeflateDecoder::new(&bytes[..])),
            },
            _ => return raw,
        };
        if out.is_empty() && !whole {
            return raw;
        }
        bytes = out;
        complete &= whole;
    }
    Decoded {
        bytes,
        complete,
        decoded: true,
    }
}

/// Reads a decoder to its end; on an error (a truncated stream) keeps what
/// came out before it.
fn inflate(reader: impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut limited = reader.take(MAX_DECODED + 1);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
    if out.len() as u64 > MAX_DECODED {
        out.truncate(MAX_DECODED as usize);
        return (out, false);
    }
    (out, true)
}

/// What a body section shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyView {
    None,
    Json(String),
    Text(String),
    Binary(String),
}

impl BodyView {
    pub fn text(&self) -> &str {
        match self {
            BodyView::None => "none",
            BodyView::Json(s) | BodyView::Text(s) | BodyView::Binary(s) => s,
        }
    }

    /// The fence language: `json` as the seeds write it for JSON, `none`
    /// and binary alike; `text` for plain text, which a JSON highlighter
    /// would paint as errors.
    pub fn lang(&self) -> &'static str {
        match self {
            BodyView::Text(_) => "text",
            _ => "json",
        }
    }
}

/// The body as body.md, index.md and log.md show it.
pub fn view(body: &BodyRecord, headers: &[HeaderField], redact: bool) -> BodyView {
    if body.size == 0 && body.kept.is_empty() {
        return BodyView::None;
    }
    let d = decode(body, headers);
    let content_type = header_str(headers, "content-type").unwrap_or_default();
    let declared_binary = is_binary_type(&content_type);
    if !declared_binary && d.complete {
        if let Some(mut value) = parse_json(&d.bytes, &content_type) {
            if redact {
                super::redact::redact_json(&mut value);
            }
            return BodyView::Json(pretty_json(&value));
        }
    }
    if !declared_binary {
        if let Some(text) = as_text(&d.bytes, d.complete) {
            let mut text = text.replace("\r\n", "\n");
            if redact && super::redact::is_form(&content_type) {
                if let Some(masked) = super::redact::form(&text) {
                    text = masked;
                }
            }
            if !d.complete {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&truncation_note(body, &d));
            }
            return BodyView::Text(text);
        }
    }
    let shown = &d.bytes[..d.bytes.len().min(BINARY_PREFIX)];
    let more = d.bytes.len() > BINARY_PREFIX || !d.complete;
    let mut s = python_bytes_repr(shown);
    if more {
        s.push_str("...");
    }
    BodyView::Binary(s)
}

fn truncation_note(body: &BodyRecord, d: &Decoded) -> String {
    if body.is_truncated() {
        format!(
            "[tracer: body cut, {} of {} bytes kept]",
            body.kept.len(),
            body.size
        )
    } else if d.decoded {
        "[tracer: the compressed body could not be decoded to its end]".to_string()
    } else {
        "[tracer: body incomplete]".to_string()
    }
}

/// Types whose payload is never meant to be read as text.
fn is_binary_type(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t == "application/octet-stream"
        || t.starts_with("image/")
        || t.starts_with("audio/")
        || t.starts_with("video/")
        || matches!(
            t.as_str(),
            "application/gzip" | "application/x-tar" | "application/zip"
        )
}

/// Parses JSON when the body looks like it (or says it is), keeping key
/// order and number text (serde_json `preserve_order`, `arbitrary_precision`).
pub fn parse_json(bytes: &[u8], content_type: &str) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let looks_like = trimmed.starts_with('{') || trimmed.starts_with('[');
    if !looks_like && !content_type.to_ascii_lowercase().contains("json") {
        return None;
    }
    serde_json::from_str(trimmed).ok()
}

/// Two-space indent, `"key": value`, `[]`/`{}` for empty ones, non-ASCII
/// kept as UTF-8: Python's `json.dumps(indent=2, ensure_ascii=False)`.
pub fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The bytes as text when they are UTF-8 without control characters other
/// than the usual whitespace (and ESC, for coloured console output). A
/// cut-off body may end inside a character.
fn as_text(bytes: &[u8], complete: bool) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) if !complete && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let clean = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{0c}' | '\u{1b}'));
    clean.then(|| text.to_string())
}

/// Python's `repr(bytes)`: `b'...'`, or `b"..."` when the bytes hold a `'`
/// and no `"`; `\t \n \r \\` and the quote escaped, other bytes outside
/// printable ASCII as `\xhh`.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut s = String::with_capacity(bytes.len() * 4 + 3);
    s.push('b');
    s.push(quote as char);
    for &b in bytes {
        match b {
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            _ if b == quote => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote as char);
    s
}

/// The payload as the HAR file carries it: decoded, with secret fields
/// masked when redacting (JSON re-serialised compactly only then).
pub fn export_payload(body: &BodyRecord, headers: &[HeaderField], redact: bool) -> Decoded {
    let mut d = decode(body, headers);
    if redact && d.complete {
        let content_type = header_str(headers, "content-type").unwrap_or_default();
        if let Some(mut value) = parse_json(&d.bytes, &content_type) {
            if super::redact::redact_json(&mut value) {
                d.bytes = serde_json::to_vec(&value).unwrap_or_default();
            }
        } else if super::redact::is_form(&content_type) {
            if let Some(masked) = super::redact::form(&String::from_utf8_lossy(&d.bytes)) {
                d.bytes = masked.into_bytes();
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn record(bytes: &[u8]) -> BodyRecord {
        BodyRecord {
            kept: bytes.to_vec(),
            size: bytes.len() as u64,
            sha256: String::new(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
        pairs
            .iter()
            .map(|(n, v)| HeaderField::new(*n, *v))
            .collect()
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(view(&BodyRecord::default(), &[], false), BodyView::None);
        assert_eq!(BodyView::None.text(), "none");
    }

    #[test]
    fn json_keeps_key_order_and_number_text() {
        // Number text as sent (serde_json `arbitrary_precision`), except
        // that it writes an exponent's `E` as `e`.
        let body = record(br#"{"z":1,"a":{"big":123456789012345678901234567890,"f":1.10,"e":1E+2},"l":[],"o":{},"s":"caf\u00e9 \u001b","u":"\u00e9t\u00e9"}"#);
        let v = view(
            &body,
            &headers(&[("Content-Type", "application/json")]),
            false,
        );
        assert_eq!(
            v.text(),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"big\": 123456789012345678901234567890,\n    \"f\": 1.10,\n    \"e\": 1e+2\n  },\n  \"l\": [],\n  \"o\": {},\n  \"s\": \"café \\u001b\",\n  \"u\": \"été\"\n}"
        );
        assert_eq!(v.lang(), "json");
    }

    #[test]
    fn binary_like_python() {
        let mut qcow = b"QFI\xfb\x00\x00\x00\x03".to_vec();
        qcow.resize(4096, 0);
        qcow[23] = 0x10;
        qcow[28] = 0x07;
        let body = BodyRecord {
            kept: qcow,
            size: 21233664,
            sha256: String::new(),
        };
        let v = view(
            &body,
            &headers(&[("Content-Type", "application/octet-stream")]),
            false,
        );
        assert_eq!(
            v.text(),
            r"b'QFI\xfb\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x07\x00\x00\x00'..."
        );
        assert_eq!(python_bytes_repr(b"it's"), r#"b"it's""#);
        assert_eq!(
            python_bytes_repr(b"'\"\\\t\n\r\x7f"),
            r#"b'\'"\\\t\n\r\x7f'"#
        );
        // Short binary: no ellipsis.
        assert_eq!(
            view(&record(b"\x00\x01"), &[], false).text(),
            r"b'\x00\x01'"
        );
    }

    #[test]
    fn text_and_truncation() {
        let v = view(
            &record(b"hello\r\nworld\n"),
            &headers(&[("Content-Type", "text/plain")]),
            false,
        );
        assert_eq!(v, BodyView::Text("hello\nworld\n".into()));
        let cut = BodyRecord {
            kept: "{\"a\": \"caf\u{e9}".as_bytes()[..11].to_vec(),
            size: 100,
            sha256: String::new(),
        };
        assert_eq!(
            view(&cut, &[], false).text(),
            "{\"a\": \"caf\n[tracer: body cut, 11 of 100 bytes kept]"
        );
    }

    #[test]
    fn gzip_and_deflate_are_decoded() {
        let json = br#"{"b":2,"a":1}"#;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(json).unwrap();
        let gz = gz.finish().unwrap();
        let h = headers(&[
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/json"),
        ]);
        assert_eq!(
            view(&record(&gz), &h, false).text(),
            "{\n  \"b\": 2,\n  \"a\": 1\n}"
        );

        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"plain text").unwrap();
        let z = z.finish().unwrap();
        let h = headers(&[("Content-Encoding", "deflate")]);
        assert_eq!(view(&record(&z), &h, false).text(), "plain text");

        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(b"raw deflate").unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(view(&record(&raw), &h, false).text(), "raw deflate");

        // Corrupt gzip: shown as the recorded bytes.
        let h = headers(&[("Content-Encoding", "gzip")]);
        assert_eq!(
            view(&record(b"\x00\xffnot gzip"), &h, false).text(),
            r"b'\x00\xffnot gzip'"
        );
        // Unknown coding: left alone.
        let h = headers(&[("Content-Encoding", "br")]);
        assert!(!decode(&record(b"abc"), &h).decoded);
    }

    #[test]
    fn redacted_passwords_in_view_and_export() {
        let body = record(
            br#"{"auth":{"password":{"user":{"name":"admin","password":"0123456789abcdefXYZ"}}}}"#,
        );
        let v = view(&body, &[], true);
        assert!(v.text().contains("\"password\": \"***\""), "{}", v.text());
        let e = export_payload(&body, &[], true);
        assert_eq!(
            String::from_utf8(e.bytes).unwrap(),
            r#"{"auth":{"password":{"user":{"name":"admin","password":"***"}}}}"#
        );
        // Untouched without --redact, byte for byte.
        assert_eq!(export_payload(&body, &[], false).bytes, body.kept);
    }
}
