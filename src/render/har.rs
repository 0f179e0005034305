//! flow.har: the flow as an HTTP Archive 1.2, for browser dev tools and HAR
//! readers.
//!
//! Own serde structs rather than a HAR crate: the file needs fields of our
//! own (`_error` for failed exchanges, `_tracer` with the event numbers) and
//! numbers everywhere an importer insists on them (Chrome rejects `null`
//! sizes and timings), which a fixed-schema crate would not let us add.
//!
//! Choices: `time` and the timings are milliseconds with microsecond
//! precision (`send` 0, `wait` request head to response head, `receive`
//! response head to the end); sizes are bytes on the wire (`-1` when there
//! was no response); bodies are decoded (gzip/deflate) and written as text
//! when UTF-8, base64 otherwise; an exchange nobody answered has `status: 0`
//! and its error in `_error`.

use super::body::{self, Decoded};
use super::events::{events, Side};
use super::redact::{percent_decode, Redacted};
use super::text::client_url;
use super::RenderOptions;
use crate::model::{header_str, BodyRecord, Exchange, Flow, HeaderField};
use crate::timefmt;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Har {
    pub log: Log,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub version: String,
    pub creator: Creator,
    pub pages: Vec<serde_json::Value>,
    pub entries: Vec<Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Creator {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub started_date_time: String,
    pub time: f64,
    pub request: Request,
    pub response: Response,
    pub cache: Cache,
    pub timings: Timings,
    /// Chrome's importer files an entry without it by MIME type (a JSON
    /// call under "JS"); every call tracer records is an API call.
    #[serde(rename = "_resourceType")]
    pub resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(rename = "_error", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "_tracer")]
    pub tracer: TracerExt,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub method: String,
    pub url: String,
    pub http_version: String,
    pub cookies: Vec<Cookie>,
    pub headers: Vec<NameValue>,
    pub query_string: Vec<NameValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
    pub headers_size: i64,
    pub body_size: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub status: u16,
    pub status_text: String,
    pub http_version: String,
    pub cookies: Vec<Cookie>,
    pub headers: Vec<NameValue>,
    pub content: Content,
    #[serde(rename = "redirectURL")]
    pub redirect_url: String,
    pub headers_size: i64,
    pub body_size: i64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    pub mime_type: String,
    pub text: String,
    /// HAR 1.2 has no encoding for request bodies: `_encoding` says base64.
    #[serde(rename = "_encoding", skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<i64>,
    pub mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Cache {}

#[derive(Debug, Serialize)]
pub struct Timings {
    pub blocked: f64,
    pub dns: f64,
    pub connect: f64,
    pub send: f64,
    pub wait: f64,
    pub receive: f64,
    pub ssl: f64,
}

/// What tracer knows that HAR has no field for.
#[derive(Debug, Serialize)]
pub struct TracerExt {
    pub caller: String,
    pub service: String,
    pub request_id: String,
    pub request_event: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_event: Option<usize>,
    pub upstream_url: String,
}

/// The HAR document of a flow, as pretty JSON.
pub fn har_json(flow: &Flow, exchanges: &[Exchange], opts: &RenderOptions) -> String {
    // The same redaction as the pages: masked copies, then a scrub of the
    // text for secrets repeated elsewhere.
    let r = Redacted::new(exchanges, flow.command.as_ref(), opts.redact);
    let har = build(flow, &r.exchanges, opts);
    r.scrub(serde_json::to_string_pretty(&har).unwrap_or_default() + "\n")
}

/// The HAR document of exchanges as given (already redacted when asked).
pub fn build(flow: &Flow, exchanges: &[Exchange], opts: &RenderOptions) -> Har {
    let mut numbers: Vec<(usize, Option<usize>)> = vec![(0, None); exchanges.len()];
    for e in events(exchanges) {
        match e.side {
            Side::Request => numbers[e.index].0 = e.number,
            Side::Response => numbers[e.index].1 = Some(e.number),
        }
    }
    let entries = exchanges
        .iter()
        .zip(numbers)
        .map(|(x, n)| entry(x, n, opts))
        .collect();
    Har {
        log: Log {
            version: "1.2".into(),
            creator: Creator {
                name: "tracer".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            pages: Vec::new(),
            entries,
            comment: Some(match &flow.title {
                Some(t) => format!("flow {}: {t}", flow.name),
                None => format!("flow {}", flow.name),
            }),
        },
    }
}

fn ms(micros: i64) -> f64 {
    (micros.max(0) as f64) / 1000.0
}

fn entry(x: &Exchange, (req_n, resp_n): (usize, Option<usize>), opts: &RenderOptions) -> Entry {
    let wait = match x.response_at {
        Some(at) => ms(at - x.started_at),
        None => ms(x.finished_at - x.started_at),
    };
    let receive = x.response_at.map_or(0.0, |at| ms(x.finished_at - at));
    let send = 0.0;
    Entry {
        started_date_time: timefmt::rfc3339(x.started_at),
        // The sum of the timings, as HAR defines it.
        time: send + wait + receive,
        request: request(x, opts),
        response: response(x, opts),
        cache: Cache {},
        timings: Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send,
            wait,
            receive,
            ssl: -1.0,
        },
        resource_type: "fetch",
        comment: None,
        error: x.error.as_ref().map(|e| e.summary()),
        tracer: TracerExt {
            caller: x.caller.clone(),
            service: x.service.clone(),
            request_id: x.request_id.clone(),
            request_event: req_n,
            response_event: resp_n,
            upstream_url: x.upstream_url.clone(),
        },
    }
}

fn name_values(headers: &[HeaderField]) -> Vec<NameValue> {
    headers
        .iter()
        .map(|h| NameValue {
            name: h.name.clone(),
            value: h.value_str(),
        })
        .collect()
}

/// Bytes of a head as it crossed: start line, header lines, blank line.
fn head_size(start_line: &str, headers: &[HeaderField]) -> i64 {
    let lines: usize = headers
        .iter()
        .map(|h| h.name.len() + 2 + h.value.len() + 2)
        .sum();
    (start_line.len() + 2 + lines + 2) as i64
}

fn request(x: &Exchange, opts: &RenderOptions) -> Request {
    let headers = &x.request_headers;
    let post_data = (!x.request_body.is_empty()).then(|| {
        let d = body::export_payload(&x.request_body, headers, opts.redact);
        let (text, encoding) = text_or_base64(&d);
        PostData {
            mime_type: header_str(headers, "content-type").unwrap_or_default(),
            text,
            encoding,
            comment: cut_note(&x.request_body, &d),
        }
    });
    Request {
        method: x.method.clone(),
        url: client_url(x),
        http_version: x.request_version.clone(),
        cookies: request_cookies(headers),
        headers: name_values(headers),
        query_string: query_string(&x.target),
        post_data,
        headers_size: head_size(
            &format!("{} {} {}", x.method, x.target, x.request_version),
            headers,
        ),
        body_size: x.request_body.size as i64,
    }
}

fn response(x: &Exchange, opts: &RenderOptions) -> Response {
    let Some(status) = x.status else {
        return Response {
            status: 0,
            status_text: String::new(),
            http_version: String::new(),
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content {
                size: 0,
                compression: None,
                mime_type: "x-unknown".into(),
                text: None,
                encoding: None,
                comment: None,
            },
            redirect_url: String::new(),
            headers_size: -1,
            body_size: -1,
        };
    };
    let headers = &x.response_headers;
    let reason = x.reason.clone().unwrap_or_default();
    let version = x
        .response_version
        .clone()
        .unwrap_or_else(|| "HTTP/1.1".into());
    let record = &x.response_body;
    let content = if record.is_empty() {
        Content {
            size: 0,
            compression: None,
            mime_type: mime_type(headers),
            text: Some(String::new()),
            encoding: None,
            comment: None,
        }
    } else {
        let d = body::export_payload(record, headers, opts.redact);
        // Decoded size; only known in full when the whole body was kept.
        let size = if d.decoded {
            d.bytes.len() as i64
        } else {
            record.size as i64
        };
        let (text, encoding) = text_or_base64(&d);
        Content {
            size,
            compression: (d.decoded && d.complete).then(|| size - record.size as i64),
            mime_type: mime_type(headers),
            text: Some(text),
            encoding,
            comment: cut_note(record, &d),
        }
    };
    Response {
        status,
        status_text: reason.clone(),
        cookies: response_cookies(headers),
        headers: name_values(headers),
        content,
        redirect_url: header_str(headers, "location").unwrap_or_default(),
        headers_size: head_size(&format!("{version} {status} {reason}"), headers),
        body_size: record.size as i64,
        http_version: version,
    }
}

fn mime_type(headers: &[HeaderField]) -> String {
    header_str(headers, "content-type")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "x-unknown".into())
}

fn text_or_base64(d: &Decoded) -> (String, Option<String>) {
    match std::str::from_utf8(&d.bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (B64.encode(&d.bytes), Some("base64".into())),
    }
}

fn cut_note(record: &BodyRecord, d: &Decoded) -> Option<String> {
    (!d.complete).then(|| {
        format!(
            "tracer kept {} of {} bytes of this body",
            record.kept.len(),
            record.size
        )
    })
}

fn query_string(target: &str) -> Vec<NameValue> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            NameValue {
                name: percent_decode(n),
                value: percent_decode(v),
            }
        })
        .collect()
}

fn request_cookies(headers: &[HeaderField]) -> Vec<Cookie> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .flat_map(|h| {
            h.value_str()
                .split(';')
                .filter_map(|c| {
                    let (n, v) = c.trim().split_once('=')?;
                    Some(Cookie {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn response_cookies(headers: &[HeaderField]) -> Vec<Cookie> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|h| {
            let v = h.value_str();
            let first = v.split(';').next()?;
            let (n, v) = first.trim().split_once('=')?;
            Some(Cookie {
                name: n.to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::events::tests::exchange;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use serde_json::Value;
    use std::io::Write;

    fn flow() -> Flow {
        Flow {
            name: "f".into(),
            ..Default::default()
        }
    }

    fn sample() -> Vec<Exchange> {
        let mut ok = exchange(
            "openstack",
            "glance-api",
            "PUT",
            "/v2/images/x/file?a=b%20c&flag",
            (1, Some(2)),
            Some((204, "No Content")),
        );
        ok.request_headers = vec![
            HeaderField::new("Host", "127.0.0.1:60999"),
            HeaderField::new("Content-Type", "application/octet-stream"),
            HeaderField::new("Cookie", "a=1; b=2"),
        ];
        ok.request_body = BodyRecord {
            kept: vec![0x51, 0x46, 0x49, 0xfb],
            size: 21233664,
            sha256: String::new(),
        };
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(br#"{"a":1}"#).unwrap();
        let gz = gz.finish().unwrap();
        let mut zipped = exchange(
            "openstack",
            "nova",
            "GET",
            "/v2.1/",
            (3, Some(4)),
            Some((200, "OK")),
        );
        zipped.response_headers = vec![
            HeaderField::new("Content-Encoding", "gzip"),
            HeaderField::new("Content-Type", "application/json"),
        ];
        zipped.response_body = BodyRecord {
            size: gz.len() as u64,
            kept: gz,
            sha256: String::new(),
        };
        let mut dead = exchange("openstack", "nova", "GET", "/v2.1/servers", (5, None), None);
        dead.error = Some("upstream unreachable: connection refused".into());
        vec![ok, zipped, dead]
    }

    #[test]
    fn required_fields_are_there_and_numeric() {
        let text = har_json(&flow(), &sample(), &RenderOptions::default());
        let v: Value = serde_json::from_str(&text).unwrap();
        let log = &v["log"];
        assert_eq!(log["version"], "1.2");
        assert_eq!(log["creator"]["name"], "tracer");
        assert_eq!(log["pages"], Value::Array(vec![]));
        let entries = log["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        for e in entries {
            for k in [
                "startedDateTime",
                "time",
                "request",
                "response",
                "cache",
                "timings",
            ] {
                assert!(!e[k].is_null(), "{k} missing in {e}");
            }
            assert!(e["time"].is_number());
            for k in ["send", "wait", "receive"] {
                assert!(e["timings"][k].as_f64().unwrap() >= 0.0);
            }
            for k in [
                "method",
                "url",
                "httpVersion",
                "cookies",
                "headers",
                "queryString",
                "headersSize",
                "bodySize",
            ] {
                assert!(!e["request"][k].is_null(), "request.{k}");
            }
            for k in [
                "status",
                "statusText",
                "httpVersion",
                "cookies",
                "headers",
                "content",
                "redirectURL",
                "headersSize",
                "bodySize",
            ] {
                assert!(!e["response"][k].is_null(), "response.{k}");
            }
            assert!(e["response"]["status"].is_number());
            assert!(e["response"]["content"]["size"].is_number());
            assert!(e["response"]["content"]["mimeType"].is_string());
        }
        let put = &entries[0];
        assert_eq!(
            put["request"]["url"],
            "http://127.0.0.1:60999/v2/images/x/file?a=b%20c&flag"
        );
        assert_eq!(put["request"]["queryString"][0]["value"], "b c");
        assert_eq!(put["request"]["queryString"][1]["name"], "flag");
        assert_eq!(put["request"]["cookies"][1]["name"], "b");
        assert_eq!(put["request"]["postData"]["text"], "UUZJ+w==");
        assert_eq!(put["request"]["postData"]["_encoding"], "base64");
        assert_eq!(put["request"]["bodySize"], 21233664);
        assert_eq!(put["_tracer"]["request_event"], 1);
        assert_eq!(put["_tracer"]["response_event"], 2);

        let zipped = &entries[1];
        assert_eq!(zipped["response"]["content"]["text"], r#"{"a":1}"#);
        assert_eq!(zipped["response"]["content"]["size"], 7);
        let body_size = zipped["response"]["bodySize"].as_i64().unwrap();
        assert_eq!(
            zipped["response"]["content"]["compression"]
                .as_i64()
                .unwrap(),
            7 - body_size
        );

        let dead = &entries[2];
        assert_eq!(dead["response"]["status"], 0);
        assert_eq!(dead["_error"], "upstream unreachable: connection refused");
        assert_eq!(dead["response"]["bodySize"], -1);
    }

    #[test]
    fn head_sizes_count_crlf() {
        let h = vec![HeaderField::new("Host", "a")];
        // "GET / HTTP/1.1\r\n" + "Host: a\r\n" + "\r\n"
        assert_eq!(head_size("GET / HTTP/1.1", &h), 16 + 9 + 2);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%zz%"), "a b c%zz%");
    }
}
