//! How header lists are written as JSON, in the database and in `--json`
//! output alike: an array of `[name, value]` pairs in the order they crossed
//! the proxy, duplicates kept. A value that is not UTF-8 becomes
//! `{"b64": "..."}` so that no byte is lost.

use crate::model::HeaderField;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

/// The JSON form of one header value.
pub fn header_value_json(value: &[u8]) -> Value {
    match std::str::from_utf8(value) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "b64": B64.encode(value) }),
    }
}

pub fn headers_to_json(headers: &[HeaderField]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!([h.name, header_value_json(&h.value)]))
            .collect(),
    )
}

pub fn headers_to_text(headers: &[HeaderField]) -> String {
    let mut out = String::new();
    write_headers_text(&mut out, headers);
    out
}

/// Writes the same text as `headers_to_json(..).to_string()` into `out`
/// (cleared first) without building JSON values: the writer does this twice
/// per stored exchange.
pub fn write_headers_text(out: &mut String, headers: &[HeaderField]) {
    out.clear();
    out.push('[');
    for (i, h) in headers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        write_json_str(out, &h.name);
        out.push(',');
        match std::str::from_utf8(&h.value) {
            Ok(s) => write_json_str(out, s),
            Err(_) => {
                out.push_str(r#"{"b64":""#);
                B64.encode_string(&h.value, out);
                out.push_str(r#""}"#);
            }
        }
        out.push(']');
    }
    out.push(']');
}

/// Bytes that JSON strings must escape: control characters, `"` and `\`.
const fn needs_escape() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}
static NEEDS_ESCAPE: [bool; 256] = needs_escape();

fn write_json_str(out: &mut String, s: &str) {
    // Header text rarely needs escaping: copy it straight when it does not.
    if s.bytes().any(|b| NEEDS_ESCAPE[usize::from(b)]) {
        // serde_json's escaping of a &str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

pub fn headers_from_text(text: &str) -> Result<Vec<HeaderField>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Array(pairs) = value else {
        return Err("header list is not a JSON array".into());
    };
    pairs
        .into_iter()
        .map(|pair| match pair {
            Value::Array(mut p) if p.len() == 2 => {
                let value = p.pop().unwrap_or(Value::Null);
                let name = p.pop().unwrap_or(Value::Null);
                let Value::String(name) = name else {
                    return Err("header name is not a string".into());
                };
                Ok(HeaderField::new(name, header_value_from_json(value)?))
            }
            _ => Err("header is not a [name, value] pair".into()),
        })
        .collect()
}

fn header_value_from_json(value: Value) -> Result<Vec<u8>, String> {
    match value {
        Value::String(s) => Ok(s.into_bytes()),
        Value::Object(mut o) => match o.remove("b64") {
            Some(Value::String(b)) => B64.decode(b).map_err(|e| e.to_string()),
            _ => Err("header value object has no \"b64\" string".into()),
        },
        _ => Err("header value is neither a string nor {\"b64\": ...}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_case_order_duplicates_and_bytes() {
        let headers = vec![
            HeaderField::new("Host", "127.0.0.1:5000"),
            HeaderField::new("X-Dup", "1"),
            HeaderField::new("x-dup", "2"),
            HeaderField::new("X-Latin1", vec![b'c', b'a', b'f', 0xe9]),
            HeaderField::new("X-Empty", ""),
            HeaderField::new("X-Escapes", "a\"b\\c\td\u{7f}é"),
        ];
        let text = headers_to_text(&headers);
        assert_eq!(text, headers_to_json(&headers).to_string());
        assert!(
            text.contains(r#"["X-Latin1",{"b64":"Y2Fm6Q=="}]"#),
            "{text}"
        );
        assert_eq!(headers_from_text(&text).unwrap(), headers);
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(headers_from_text("{}").is_err());
        assert!(headers_from_text("[[1, \"x\"]]").is_err());
        assert!(headers_from_text("[[\"a\", {\"b64\": \"!!\"}]]").is_err());
        assert!(headers_from_text("nope").is_err());
    }
}
