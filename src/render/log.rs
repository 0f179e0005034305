//! log.md: the plain log form, one entry per event.
//!
//! ````text
//! ### (openstack) REQ >>> (keystone) : GET http://182.161.114.101/identity/
//! ``` text
//! Host: 182.161.114.101
//! Accept: application/json
//!
//! none
//! ```
//!
//! ### (openstack) RESP <<< (keystone) : 300 MULTIPLE CHOICES GET http://182.161.114.101/identity/
//! ``` text
//! Content-Type: application/json
//!
//! {
//!   "versions": ...
//! }
//! ```
//! ````
//!
//! Headers, a blank line, the body (shown as in body.md), inside a plain
//! fence so that nothing in a body is read as Markdown. A request that got
//! no response is followed by a `FAIL` entry with the error.

use super::body;
use super::escape::{heading, inline};
use super::events::{events, status_line, Side};
use super::redact::Redacted;
use super::text::{client_url, code_block, header_lines};
use super::RenderOptions;
use crate::model::Exchange;

pub fn log_md(exchanges: &[Exchange], opts: &RenderOptions) -> String {
    let r = Redacted::new(exchanges, None, opts.redact);
    r.scrub(entries(&r.exchanges, opts))
}

/// The entries of exchanges already redacted.
pub(crate) fn entries(exchanges: &[Exchange], opts: &RenderOptions) -> String {
    let mut out = String::with_capacity(exchanges.len() * 8192);
    for e in events(exchanges) {
        let x = e.exchange;
        // Everything in a heading is what a client or upstream sent.
        let who = |dir: &str| format!("({}) {dir} ({}) :", inline(&x.caller), inline(&x.service));
        let url = client_url(x);
        let (head, headers, record) = match e.side {
            Side::Request => (
                format!("{} {} {}", who("REQ >>>"), inline(&x.method), heading(&url)),
                &x.request_headers,
                &x.request_body,
            ),
            Side::Response => (
                format!(
                    "{} {} {} {}",
                    who("RESP <<<"),
                    inline(&status_line(x)),
                    inline(&x.method),
                    heading(&url)
                ),
                &x.response_headers,
                &x.response_body,
            ),
        };
        out.push_str("### ");
        out.push_str(&head);
        out.push('\n');
        let mut content = header_lines(headers);
        content.push('\n');
        content.push_str(body::view(record, headers, opts.redact).text());
        code_block(&mut out, "", "text", &content);
        out.push('\n');
        if e.side == Side::Request && x.status.is_none() {
            if let Some(error) = &x.error {
                out.push_str(&format!(
                    "### {} {} {}\n",
                    who("FAIL <<<"),
                    inline(&x.method),
                    heading(&url)
                ));
                code_block(&mut out, "", "text", &error.summary());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BodyRecord, HeaderField};
    use crate::render::events::tests::exchange;

    #[test]
    fn entries_in_event_order() {
        let mut x = exchange(
            "openstack",
            "keystone",
            "GET",
            "/identity/?a=1",
            (1, Some(2)),
            Some((300, "MULTIPLE CHOICES")),
        );
        x.request_headers = vec![HeaderField::new("Host", "182.161.114.101")];
        x.response_headers = vec![HeaderField::new("Content-Type", "application/json")];
        x.response_body = BodyRecord {
            kept: br#"{"versions":{}}"#.to_vec(),
            size: 15,
            sha256: String::new(),
        };
        let mut dead = exchange("openstack", "nova", "GET", "/v2.1/", (3, None), None);
        dead.error = Some("upstream unreachable: connection refused".into());
        let got = log_md(&[x, dead], &RenderOptions::default());
        let want = "### (openstack) REQ >>> (keystone) : GET http://182.161.114.101/identity/?a=1\n\
                    ``` text\nHost: 182.161.114.101\n\nnone\n```\n\n\
                    ### (openstack) RESP <<< (keystone) : 300 MULTIPLE CHOICES GET http://182.161.114.101/identity/?a=1\n\
                    ``` text\nContent-Type: application/json\n\n{\n  \"versions\": {}\n}\n```\n\n\
                    ### (openstack) REQ >>> (nova) : GET http://127.0.0.1:9000/v2.1/\n\
                    ``` text\n\nnone\n```\n\n\
                    ### (openstack) FAIL <<< (nova) : GET http://127.0.0.1:9000/v2.1/\n\
                    ``` text\nupstream unreachable: connection refused\n```\n\n";
        assert_eq!(got, want);
    }
}
