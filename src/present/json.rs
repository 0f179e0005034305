//! Every JSON object the CLI prints, in one place (documented field by field
//! in docs/cli-json.md: scripts rely on these names).

use crate::model::{BodyRecord, Exchange, FlowSummary, Micros};
use crate::store::codec::headers_to_json;
use crate::timefmt::rfc3339;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

fn millis(micros: i64) -> f64 {
    micros as f64 / 1000.0
}

fn time(at: Option<Micros>) -> Value {
    at.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// One line of `tracer list --json`.
pub fn exchange_summary(ex: &Exchange) -> Value {
    json!({
        "id": ex.id,
        "uuid": ex.uuid,
        "request_id": ex.request_id,
        "time": rfc3339(ex.started_at),
        "started_at_us": ex.started_at,
        "caller": ex.caller,
        "caller_source": ex.caller_source.as_str(),
        "service": ex.service,
        "method": ex.method,
        "target": ex.target,
        "status": ex.status,
        "reason": ex.reason,
        "duration_ms": millis(ex.duration_micros()),
        "request_body_size": ex.request_body.size,
        "response_body_size": ex.response_body.size,
        "error": ex.error_message(),
        "error_kind": ex.error.as_ref().map(|e| e.kind.as_str()),
        "error_side": ex.error.as_ref().map(|e| e.side.as_str()),
        "ignored": ex.ignored,
    })
}

/// A kept body: text when it is UTF-8, base64 otherwise.
pub fn body(b: &BodyRecord) -> Value {
    let (encoding, data) = match std::str::from_utf8(&b.kept) {
        Ok(s) => ("utf8", s.to_string()),
        Err(_) => ("base64", B64.encode(&b.kept)),
    };
    json!({
        "size": b.size,
        "sha256": b.sha256,
        "truncated": b.is_truncated(),
        "encoding": encoding,
        "data": data,
    })
}

/// `tracer show --json`: everything that was recorded.
pub fn exchange_full(ex: &Exchange) -> Value {
    json!({
        "id": ex.id,
        "uuid": ex.uuid,
        "request_id": ex.request_id,
        "service": ex.service,
        "caller": ex.caller,
        "caller_source": ex.caller_source.as_str(),
        "client_addr": ex.client_addr,
        "upstream_url": ex.upstream_url,
        "error": ex.error_message(),
        "error_kind": ex.error.as_ref().map(|e| e.kind.as_str()),
        "error_side": ex.error.as_ref().map(|e| e.side.as_str()),
        "ignored": ex.ignored,
        "request": {
            "method": ex.method,
            "target": ex.target,
            "version": ex.request_version,
            "headers": headers_to_json(&ex.request_headers),
            "body": body(&ex.request_body),
        },
        "response": {
            "status": ex.status,
            "reason": ex.reason,
            "version": ex.response_version,
            "headers": headers_to_json(&ex.response_headers),
            "body": body(&ex.response_body),
        },
        "timing": {
            "started_at": rfc3339(ex.started_at),
            "response_at": time(ex.response_at),
            "finished_at": rfc3339(ex.finished_at),
            "started_at_us": ex.started_at,
            "response_at_us": ex.response_at,
            "finished_at_us": ex.finished_at,
            "duration_ms": millis(ex.duration_micros()),
            "request_seq": ex.request_seq,
            "response_seq": ex.response_seq,
        },
    })
}

/// One line of `tracer flow list --json`.
pub fn flow_summary(s: &FlowSummary) -> Value {
    let f = &s.flow;
    let command = f.command.as_ref().map_or(Value::Null, |c| {
        json!({
            "argv": c.argv,
            "exit_status": c.exit_status,
            "stdout_size": c.stdout.len(),
            "stderr_size": c.stderr.len(),
        })
    });
    json!({
        "name": f.name,
        "title": f.title,
        "open": f.is_open(),
        "started_at": rfc3339(f.started_at),
        "stopped_at": time(f.stopped_at),
        "started_at_us": f.started_at,
        "stopped_at_us": f.stopped_at,
        "exchanges": s.exchanges,
        "services": s.services,
        "lost": s.lost,
        "command": command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_text_or_base64() {
        let text = BodyRecord {
            kept: b"{\"a\":1}".to_vec(),
            size: 20,
            sha256: "x".into(),
        };
        let v = body(&text);
        assert_eq!(v["encoding"], "utf8");
        assert_eq!(v["data"], "{\"a\":1}");
        assert_eq!(v["truncated"], true);
        let bin = BodyRecord {
            kept: vec![0xff, 0x00],
            size: 2,
            sha256: "y".into(),
        };
        let v = body(&bin);
        assert_eq!(v["encoding"], "base64");
        assert_eq!(v["data"], "/wA=");
        assert_eq!(v["truncated"], false);
    }
}
