//! What the templates show, already formatted: plain strings and numbers,
//! so the templates only lay them out (and minijinja escapes every one).

use crate::model::ExchangeError;
use crate::model::{header_str, BodyRecord, CallerSource, Exchange, FlowSummary, HeaderField};
use crate::present::units::{duration, size, status_text, time_ms};
use crate::render::body::{self, BodyView};
use crate::render::events::{status_line, Event, Side};
use crate::render::placeholders::Variable;
use crate::render::text::shell_join;
use crate::timefmt::{rfc3339, short};
use serde::Serialize;

/// A CSS class for a status: `s2`…`s5`, `err` when no response came back.
pub fn status_class(x: &Exchange) -> &'static str {
    match x.status {
        Some(s) if s >= 500 => "s5",
        Some(s) if s >= 400 => "s4",
        Some(s) if s >= 300 => "s3",
        Some(s) if s >= 200 => "s2",
        Some(_) => "s1",
        None => "err",
    }
}

/// How a caller was decided, in words.
pub fn caller_how(source: CallerSource) -> &'static str {
    match source {
        CallerSource::Header => "the request carried X-Requestshook-Request-From",
        CallerSource::Rule => "a [[caller]] rule of the config matched",
        CallerSource::Process => "the process that owns the client socket on this host",
        CallerSource::Token => "the owner of the request's X-Auth-Token",
        CallerSource::SubjectToken => "a token validation of a call in flight to a service",
        CallerSource::UserAgent => "the User-Agent defaults",
        CallerSource::Unknown => "nothing told: the caller is unknown",
    }
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub listen: String,
    pub upstream: String,
}

impl ServiceView {
    pub fn new((name, listen, upstream): &(String, String, String)) -> Self {
        ServiceView {
            name: name.clone(),
            listen: listen.clone(),
            upstream: upstream.clone(),
        }
    }
}

/// A placeholder of the diagram (`{image_id}`) and where its value is from.
#[derive(Debug, Serialize)]
pub struct VariableView {
    pub name: String,
    pub value: String,
    /// The origin's Markdown as (is `code`, text) parts.
    pub origin: Vec<(bool, String)>,
}

impl VariableView {
    pub fn new(v: &Variable) -> Self {
        VariableView {
            name: v.name.clone(),
            value: v.value.clone(),
            origin: code_spans(&v.origin),
        }
    }
}

/// Markdown `code` spans as (is_code, text) parts.
fn code_spans(markdown: &str) -> Vec<(bool, String)> {
    markdown
        .split('`')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| (i % 2 == 1, s.to_string()))
        .collect()
}

#[derive(Debug, Serialize)]
pub struct FlowRow {
    pub name: String,
    pub title: Option<String>,
    pub open: bool,
    pub started: String,
    pub started_iso: String,
    pub stopped: Option<String>,
    pub exchanges: i64,
    pub services: Vec<String>,
    pub lost: i64,
}

impl FlowRow {
    pub fn new(s: &FlowSummary) -> Self {
        let f = &s.flow;
        FlowRow {
            name: f.name.clone(),
            title: f.title.clone(),
            open: f.is_open(),
            started: short(f.started_at),
            started_iso: rfc3339(f.started_at),
            stopped: f.stopped_at.map(short),
            exchanges: s.exchanges,
            services: s.services.clone(),
            lost: s.lost,
        }
    }
}

/// The command a flow was recorded around.
#[derive(Debug, Serialize)]
pub struct CommandView {
    pub line: String,
    pub exit_status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandView {
    pub fn new(c: &crate::model::RecordedCommand) -> Self {
        CommandView {
            line: shell_join(&c.argv),
            exit_status: c.exit_status,
            stdout: String::from_utf8_lossy(&c.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&c.stderr).into_owned(),
        }
    }
}

/// One row of an exchange list.
#[derive(Debug, Serialize)]
pub struct ExchangeRow {
    pub id: i64,
    pub time: String,
    pub time_iso: String,
    pub caller: String,
    pub service: String,
    pub method: String,
    pub target: String,
    pub status: String,
    pub class: &'static str,
    pub duration: String,
    pub request_size: String,
    pub response_size: String,
    pub error: Option<String>,
    pub ignored: bool,
}

impl ExchangeRow {
    pub fn new(x: &Exchange) -> Self {
        ExchangeRow {
            id: x.id,
            time: time_ms(x.started_at),
            time_iso: rfc3339(x.started_at),
            caller: x.caller.clone(),
            service: x.service.clone(),
            method: x.method.clone(),
            target: x.target.clone(),
            status: status_text(x),
            class: status_class(x),
            duration: duration(x.duration_micros()),
            request_size: size(x.request_body.size),
            response_size: size(x.response_body.size),
            error: x.error.as_ref().map(ExchangeError::summary),
            ignored: x.ignored,
        }
    }
}

/// One row of a flow's event table: the N of its pages and diagram.
#[derive(Debug, Serialize)]
pub struct EventRow {
    pub n: usize,
    pub id: i64,
    pub request: bool,
    pub caller: String,
    pub service: String,
    /// `POST` on a request, `201 Created` on a response.
    pub label: String,
    pub target: String,
    pub class: &'static str,
    /// On the response: request head to the end of the response.
    pub duration: Option<String>,
    /// The body of this side.
    pub size: String,
    pub error: Option<String>,
}

impl EventRow {
    pub fn new(e: &Event<'_>) -> Self {
        let x = e.exchange;
        let request = e.side == Side::Request;
        // The error shows on the response the proxy made up (502), else on
        // the request that got none, as the pages place their failure note.
        let error = match (request, x.status) {
            (true, None) | (false, Some(_)) => x.error.as_ref().map(ExchangeError::summary),
            _ => None,
        };
        EventRow {
            n: e.number,
            id: x.id,
            request,
            caller: x.caller.clone(),
            service: x.service.clone(),
            label: if request {
                x.method.clone()
            } else {
                status_line(x)
            },
            target: x.target.clone(),
            class: if request { "req" } else { status_class(x) },
            duration: (!request).then(|| duration(x.duration_micros())),
            size: size(if request {
                x.request_body.size
            } else {
                x.response_body.size
            }),
            error,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HeaderView {
    pub name: String,
    pub value: String,
}

/// A body as the pages show it, and what is known about it.
#[derive(Debug, Serialize)]
pub struct BodyPane {
    /// `none`, `json`, `text` or `binary`.
    pub kind: &'static str,
    pub text: String,
    pub size: u64,
    pub size_text: String,
    pub kept: usize,
    pub truncated: bool,
    pub sha256: String,
    /// The Content-Encoding tracer removed to show it.
    pub decoded_from: Option<String>,
}

impl BodyPane {
    pub fn new(b: &BodyRecord, headers: &[HeaderField]) -> Self {
        let view = body::view(b, headers, false);
        let kind = match view {
            BodyView::None => "none",
            BodyView::Json(_) => "json",
            BodyView::Text(_) => "text",
            BodyView::Binary(_) => "binary",
        };
        let decoded_from = header_str(headers, "content-encoding")
            .filter(|_| !b.kept.is_empty() && body::decode(b, headers).decoded);
        BodyPane {
            kind,
            text: view.text().to_string(),
            size: b.size,
            size_text: size(b.size),
            kept: b.kept.len(),
            truncated: b.is_truncated(),
            sha256: b.sha256.clone(),
            decoded_from,
        }
    }
}

/// One side of an exchange: start line, headers as stored, body.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub start_line: String,
    pub headers: Vec<HeaderView>,
    pub body: BodyPane,
}

impl MessageView {
    pub fn new(start_line: String, headers: &[HeaderField], b: &BodyRecord) -> Self {
        MessageView {
            start_line,
            headers: headers
                .iter()
                .map(|h| HeaderView {
                    name: h.name.clone(),
                    value: h.value_str(),
                })
                .collect(),
            body: BodyPane::new(b, headers),
        }
    }
}

/// The whole exchange page.
#[derive(Debug, Serialize)]
pub struct ExchangeView {
    pub row: ExchangeRow,
    pub uuid: String,
    pub request_id: String,
    pub caller_source: &'static str,
    pub caller_how: &'static str,
    pub client_addr: String,
    pub upstream_url: String,
    pub started_iso: String,
    pub response_after: Option<String>,
    pub request: MessageView,
    pub response: Option<MessageView>,
}

impl ExchangeView {
    pub fn new(x: &Exchange) -> Self {
        let request = MessageView::new(
            format!("{} {} {}", x.method, x.target, x.request_version),
            &x.request_headers,
            &x.request_body,
        );
        let response = x.status.map(|_| {
            MessageView::new(
                format!(
                    "{} {}",
                    x.response_version.as_deref().unwrap_or("HTTP/1.1"),
                    status_line(x)
                ),
                &x.response_headers,
                &x.response_body,
            )
        });
        ExchangeView {
            row: ExchangeRow::new(x),
            uuid: x.uuid.clone(),
            request_id: x.request_id.clone(),
            caller_source: x.caller_source.as_str(),
            caller_how: caller_how(x.caller_source),
            client_addr: x.client_addr.clone(),
            upstream_url: x.upstream_url.clone(),
            started_iso: rfc3339(x.started_at),
            response_after: x.response_at.map(|at| duration(at - x.started_at)),
            request,
            response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn record(bytes: &[u8]) -> BodyRecord {
        BodyRecord {
            kept: bytes.to_vec(),
            size: bytes.len() as u64,
            sha256: "ab".into(),
        }
    }

    #[test]
    fn bodies_show_as_the_pages_show_them() {
        let json = BodyPane::new(&record(br#"{"b":1,"a":[2]}"#), &[]);
        assert_eq!(json.kind, "json");
        assert_eq!(json.text, "{\n  \"b\": 1,\n  \"a\": [\n    2\n  ]\n}");

        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"x\":true}").unwrap();
        let headers = vec![HeaderField::new("Content-Encoding", "gzip")];
        let zipped = BodyPane::new(&record(&gz.finish().unwrap()), &headers);
        assert_eq!(zipped.kind, "json");
        assert_eq!(zipped.decoded_from.as_deref(), Some("gzip"));

        let headers = vec![HeaderField::new("Content-Type", "application/octet-stream")];
        let bin = BodyPane::new(&record(b"QFI\xfb\x00"), &headers);
        assert_eq!(bin.kind, "binary");
        assert_eq!(bin.text, "b'QFI\\xfb\\x00'");

        let none = BodyPane::new(&BodyRecord::default(), &[]);
        assert_eq!((none.kind, none.text.as_str()), ("none", "none"));
    }

    #[test]
    fn origins_keep_their_code_spans() {
        let parts = code_spans("`id` in the body of (12) `201 Created /v2/images`");
        let parts: Vec<(bool, &str)> = parts.iter().map(|(c, s)| (*c, s.as_str())).collect();
        assert_eq!(
            parts,
            vec![
                (true, "id"),
                (false, " in the body of (12) "),
                (true, "201 Created /v2/images")
            ]
        );
    }
}
