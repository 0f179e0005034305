//! Reading the seed pages (tests/data/seeds, copies of shared/seeds): the
//! sections of a body.md, the exchanges behind them, and a comparison of
//! two pages section by section.
//!
//! Only the structure counts: `### (N) title`, the caller line, the lines
//! of the Header and Body fences. Prose, admonitions and `hl_lines` that
//! were added to the seeds by hand are skipped.

use std::path::PathBuf;
use tracer::model::{BodyRecord, CallerSource, Exchange, HeaderField};

pub const IMAGE_CREATE: &str = "004_8aa6fe5c7c1e8a6e.txt";
pub const IMAGE_SHOW: &str = "002_332ffbd57cfcc25a.txt";

pub fn seed_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/seeds")
        .join(name)
}

pub fn read_seed(name: &str) -> String {
    std::fs::read_to_string(seed_path(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Request { method: String },
    Response { status: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub number: usize,
    /// After `### (N) `.
    pub title: String,
    pub kind: Kind,
    pub path: String,
    pub caller: String,
    pub service: String,
    /// The `title="..."` of the Header and Body fences.
    pub header_title: String,
    pub body_title: String,
    /// The language of the Body fence.
    pub body_lang: String,
    pub header_lines: Vec<String>,
    pub body_lines: Vec<String>,
}

/// The sections of a body.md (or of a seed).
pub fn parse(text: &str) -> Vec<Section> {
    let lines: Vec<&str> = text.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("### ("))
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        out.push(parse_section(&lines[start..end]));
    }
    out
}

fn parse_section(lines: &[&str]) -> Section {
    let head = lines[0].strip_prefix("### (").expect("section heading");
    let (number, title) = head.split_once(") ").expect("(N) title");
    let number: usize = number.parse().expect("section number");
    let title = title.to_string();

    let caller_line = lines[1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .expect("caller line");
    let (caller, service, request) = parse_caller_line(caller_line);

    let (kind, path) = if request {
        let (method, path) = title.split_once(' ').expect("METHOD PATH");
        (
            Kind::Request {
                method: method.to_string(),
            },
            path.to_string(),
        )
    } else {
        let (status, rest) = title.split_once(' ').expect("STATUS ...");
        let slash = rest.find(" /").map(|i| i + 1).unwrap_or(0);
        let (reason, path) = rest.split_at(slash);
        (
            Kind::Response {
                status: status.parse().expect("status"),
                reason: reason.trim_end().to_string(),
            },
            path.to_string(),
        )
    };

    let (header_title, _, header_lines) = tab(lines, "=== \"Header\"");
    let (body_title, body_lang, body_lines) = tab(lines, "=== \"Body\"");
    Section {
        number,
        title,
        kind,
        path,
        caller,
        service,
        header_title,
        body_title,
        body_lang,
        header_lines,
        body_lines,
    }
}

/// `` `a` --> `b` `` → (a, b, true); `` `a` <-- `b` `` → (a, b, false).
fn parse_caller_line(line: &str) -> (String, String, bool) {
    let parts: Vec<&str> = line.split('`').collect();
    assert!(parts.len() >= 4, "caller line {line:?}");
    let arrow = parts[2].trim();
    let request = match arrow {
        "-->" => true,
        "<--" => false,
        _ => panic!("caller line {line:?}"),
    };
    (parts[1].to_string(), parts[3].to_string(), request)
}

/// The fence under a tab: its title, language and lines (indent removed).
fn tab(lines: &[&str], label: &str) -> (String, String, Vec<String>) {
    let at = lines
        .iter()
        .position(|l| l.trim_end() == label)
        .unwrap_or_else(|| panic!("no {label} in section {:?}", lines[0]));
    let open = lines[at + 1];
    let info = open.trim_start().trim_start_matches('`');
    let lang = info.split_whitespace().next().unwrap_or("").to_string();
    let title = info
        .split_once("title=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(t, _)| t.to_string())
        .unwrap_or_default();
    let fence: String = open
        .trim_start()
        .chars()
        .take_while(|&c| c == '`')
        .collect();
    let close = format!("    {fence}");
    let mut content = Vec::new();
    for l in &lines[at + 2..] {
        if l.trim_end() == close {
            return (title, lang, content);
        }
        content.push(l.strip_prefix("    ").unwrap_or(l.trim_start()).to_string());
    }
    panic!("unclosed fence under {label} in {:?}", lines[0]);
}

/// Whether a header line (or name) is one of the `X-Requestshook-*` stamps
/// that requestshook, and now tracer, adds to every message.
pub fn is_stamp(header: &str) -> bool {
    header
        .get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case("x-requestshook-"))
}

/// Parses `Name: value` header lines (`Accept: ` has an empty value).
pub fn header_fields(lines: &[String]) -> Vec<HeaderField> {
    lines
        .iter()
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            HeaderField::new(n, v.strip_prefix(' ').unwrap_or(v))
        })
        .collect()
}

/// The payload a body fence stands for: nothing for `none`, the JSON
/// without its indentation, the bytes of a `b'...'` literal.
pub fn payload(lines: &[String], headers: &[HeaderField]) -> BodyRecord {
    let text = lines.join("\n");
    if text == "none" {
        return BodyRecord::default();
    }
    if let Some(repr) = text.strip_prefix('b') {
        let (literal, more) = match repr.strip_suffix("...") {
            Some(l) => (l, true),
            None => (repr, false),
        };
        let kept = python_bytes(literal);
        let size = if more {
            tracer::model::header_str(headers, "content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(kept.len() as u64 + 1)
        } else {
            kept.len() as u64
        };
        return BodyRecord {
            kept,
            size,
            sha256: String::new(),
        };
    }
    let bytes = if text.starts_with('{') || text.starts_with('[') {
        minify_json(&text).into_bytes()
    } else {
        text.into_bytes()
    };
    BodyRecord {
        size: bytes.len() as u64,
        kept: bytes,
        sha256: String::new(),
    }
}

/// The JSON as Python's `json.dumps` sends it by default (`", "` and
/// `": "` between tokens, nothing else), which is what the services of the
/// seeds sent: its length is the seed's Content-Length. Written without
/// serde_json, so the pretty-printer under test has to rebuild the seed's
/// layout by itself.
pub fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == ',' || c == ':' {
            out.push(c);
            out.push(' ');
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The whole payload as it crossed the wire, for a stand-in upstream or
/// client: the kept bytes, a cut binary body padded with zeros to its
/// Content-Length.
pub fn wire_body(section: &Section) -> Vec<u8> {
    let headers = header_fields(&section.header_lines);
    let record = payload(&section.body_lines, &headers);
    let mut bytes = record.kept;
    bytes.resize(record.size as usize, 0);
    bytes
}

/// The bytes of a Python bytes literal body (`'QFI\xfb...'`, quotes included).
pub fn python_bytes(literal: &str) -> Vec<u8> {
    let inner = &literal[1..literal.len() - 1];
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                }
                b't' => {
                    out.push(b'\t');
                    i += 2;
                }
                other => {
                    out.push(other);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The exchanges a seed shows: request and response sections paired by
/// their `X-Requestshook-Request-Id`, event numbers as sequence numbers.
pub fn exchanges(sections: &[Section]) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    let rid = |s: &Section| {
        s.header_lines
            .iter()
            .find_map(|l| l.strip_prefix("X-Requestshook-Request-Id: "))
            .unwrap_or_else(|| panic!("section ({}) has no request id", s.number))
            .to_string()
    };
    for s in sections {
        let headers = header_fields(&s.header_lines);
        let body = payload(&s.body_lines, &headers);
        let seq = s.number as i64;
        let at = 1_672_642_000_000_000 + seq * 1000;
        match &s.kind {
            Kind::Request { method } => {
                let host = tracer::model::header_str(&headers, "host").unwrap_or_default();
                out.push(Exchange {
                    id: 0,
                    uuid: format!("{:032x}", s.number),
                    request_id: rid(s),
                    service: s.service.clone(),
                    caller: s.caller.clone(),
                    caller_source: CallerSource::Header,
                    client_addr: "127.0.0.1:50000".into(),
                    upstream_url: format!("http://{host}{}", s.path),
                    method: method.clone(),
                    target: s.path.clone(),
                    request_version: "HTTP/1.1".into(),
                    request_headers: headers,
                    request_body: body,
                    status: None,
                    reason: None,
                    response_version: None,
                    response_headers: Vec::new(),
                    response_body: BodyRecord::default(),
                    request_seq: seq,
                    response_seq: None,
                    started_at: at,
                    response_at: None,
                    finished_at: at,
                    error: None,
                    ignored: false,
                });
            }
            Kind::Response { status, reason } => {
                let id = rid(s);
                let x = out
                    .iter_mut()
                    .find(|x| x.request_id == id)
                    .unwrap_or_else(|| panic!("response ({}) before its request", s.number));
                x.status = Some(*status);
                x.reason = Some(reason.clone());
                x.response_version = Some("HTTP/1.1".into());
                x.response_headers = headers;
                x.response_body = body;
                x.response_seq = Some(seq);
                x.response_at = Some(at);
                x.finished_at = at + 500;
            }
        }
    }
    out
}

/// Every difference between a rendered page and a seed, section by
/// section (empty when they agree).
pub fn differences(rendered: &[Section], seed: &[Section]) -> Vec<String> {
    let mut diffs = Vec::new();
    if rendered.len() != seed.len() {
        diffs.push(format!(
            "{} sections rendered, {} in the seed",
            rendered.len(),
            seed.len()
        ));
    }
    for (r, s) in rendered.iter().zip(seed) {
        let n = s.number;
        let mut check = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
            let (g, w) = (format!("{got:?}"), format!("{want:?}"));
            if g != w {
                diffs.push(format!("({n}) {what}: rendered {g}, seed {w}"));
            }
        };
        check("number", &r.number, &s.number);
        check("title", &r.title, &s.title);
        check("caller", &r.caller, &s.caller);
        check("service", &r.service, &s.service);
        check("kind", &r.kind, &s.kind);
        check("header fence title", &r.header_title, &s.header_title);
        check("body fence title", &r.body_title, &s.body_title);
        check("body fence language", &r.body_lang, &s.body_lang);
        let longest = r.header_lines.len().max(s.header_lines.len());
        for i in 0..longest {
            check(
                &format!("header line {}", i + 1),
                &r.header_lines.get(i),
                &s.header_lines.get(i),
            );
        }
        let longest = r.body_lines.len().max(s.body_lines.len());
        for i in 0..longest {
            check(
                &format!("body line {}", i + 1),
                &r.body_lines.get(i),
                &s.body_lines.get(i),
            );
        }
    }
    diffs
}
