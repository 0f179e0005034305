//! body.md: one section per event, in exactly the seeds' shape.
//!
//! ````text
//! ### (5) POST /v2/images
//! `openstack` --> `glance-api`
//!
//! === "Header"
//!     ``` http title="POST /v2/images" linenums="1"
//!     Host: 127.0.0.1:60999
//!     ```
//!
//! === "Body"
//!     ``` json title="POST /v2/images" linenums="1"
//!     {
//!       "name": "cirros-0.6.1-x86_64-disk"
//!     }
//!     ```
//! ````
//!
//! Sections are separated by two blank lines, as in the seeds. An exchange
//! that failed carries a `!!! failure` note under its caller line (on the
//! response section when the proxy answered itself, else on the request).

use super::annotate::{annotate, Annotation};
use super::body;
use super::escape;
use super::events::{events, Event, Side};
use super::placeholders::Placeholders;
use super::redact::Redacted;
use super::text::{code_block, header_lines};
use super::RenderOptions;
use crate::model::Exchange;

/// The whole body.md.
pub fn body_md(exchanges: &[Exchange], opts: &RenderOptions) -> String {
    let r = Redacted::new(exchanges, None, opts.redact);
    r.scrub(sections(&r.exchanges, opts).0)
}

/// All sections of exchanges already redacted, unscrubbed (index.md embeds
/// them and scrubs once), and the notes that found no section.
pub(crate) fn sections(exchanges: &[Exchange], opts: &RenderOptions) -> (String, Vec<String>) {
    let events = events(exchanges);
    let names = Placeholders::find(&events);
    let annotations = annotate(&events, &names, &opts.notes, &opts.apis, opts.redact);
    let mut out = String::with_capacity(exchanges.len() * 8192);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        let none = Annotation::default();
        let a = annotations.of(event.number).unwrap_or(&none);
        section(&mut out, event, a, opts);
    }
    (out, annotations.unmatched)
}

/// One event's section.
pub fn section(out: &mut String, event: &Event<'_>, a: &Annotation, opts: &RenderOptions) {
    let x = event.exchange;
    let title = event.title();
    let (arrow, headers, record) = match event.side {
        Side::Request => ("-->", &x.request_headers, &x.request_body),
        Side::Response => ("<--", &x.response_headers, &x.response_body),
    };
    out.push_str(&format!(
        "### ({}) {}\n",
        event.number,
        escape::heading(&title)
    ));
    out.push_str(&format!(
        "{} {} {}\n\n",
        escape::code_span(&x.caller),
        arrow,
        escape::code_span(&x.service)
    ));

    if let Some(op) = a.reference {
        // The seed's shape: the admonition, its link indented under it.
        out.push_str(&format!(
            "!!! reference \"{}\"\n    [{}]({})\n\n",
            escape::quoted_title(&opts.reference_title),
            escape::inline(&op.title),
            op.url
        ));
    }
    for note in &a.notes {
        // The writer's own Markdown, as written.
        out.push_str(note);
        out.push_str("\n\n");
    }
    if let Some(note) = failure_note(event) {
        out.push_str(&note);
        out.push('\n');
    }

    let t = escape::fence_title(&title);
    out.push_str("=== \"Header\"\n");
    code_block(
        out,
        "    ",
        &format!("http {t} linenums=\"1\"{}", hl_lines(&a.header_lines)),
        &header_lines(headers),
    );
    out.push('\n');

    let view = body::view(record, headers, opts.redact);
    out.push_str("=== \"Body\"\n");
    code_block(
        out,
        "    ",
        &format!(
            "{} {t} linenums=\"1\"{}",
            view.lang(),
            hl_lines(&a.body_lines)
        ),
        view.text(),
    );
}

/// ` hl_lines="5 9 10"`, or nothing.
fn hl_lines(lines: &[usize]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let list: Vec<String> = lines.iter().map(usize::to_string).collect();
    format!(" hl_lines=\"{}\"", list.join(" "))
}

/// The `!!! failure` admonition for an exchange that went wrong, on the
/// section where the failure shows: the response when there is one.
fn failure_note(event: &Event<'_>) -> Option<String> {
    let x = event.exchange;
    let error = x.error.as_ref()?.summary();
    let on_this_side = match event.side {
        Side::Request => x.status.is_none(),
        Side::Response => true,
    };
    if !on_this_side {
        return None;
    }
    let title = if x.status.is_none() {
        "No response"
    } else {
        "Exchange failed"
    };
    // The error may quote what an upstream sent: Markdown text, escaped.
    Some(format!(
        "!!! failure \"{title}\"\n    {}\n",
        escape::block_lines(&error).join("\n    ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderField;
    use crate::render::events::tests::{body, exchange};

    #[test]
    fn request_and_response_sections_in_seed_shape() {
        let mut x = exchange(
            "openstack",
            "glance-api",
            "POST",
            "/v2/images",
            (1, Some(2)),
            Some((201, "Created")),
        );
        x.request_headers = vec![
            HeaderField::new("Host", "127.0.0.1:60999"),
            HeaderField::new("Accept", ""),
            HeaderField::new("Content-Type", "application/json"),
        ];
        x.request_body = body(r#"{"name": "cirros-0.6.1-x86_64-disk"}"#);
        x.response_headers = vec![HeaderField::new("Content-Length", "0")];
        let got = body_md(&[x], &RenderOptions::default());
        let want = r#"### (1) POST /v2/images
`openstack` --> `glance-api`

!!! reference "API reference"
    [Create image](https://docs.openstack.org/api-ref/image/v2/index.html?expanded=create-image-detail#create-image)

=== "Header"
    ``` http title="POST /v2/images" linenums="1"
    Host: 127.0.0.1:60999
    Accept: 
    Content-Type: application/json
    ```

=== "Body"
    ``` json title="POST /v2/images" linenums="1"
    {
      "name": "cirros-0.6.1-x86_64-disk"
    }
    ```


### (2) 201 Created /v2/images
`openstack` <-- `glance-api`

=== "Header"
    ``` http title="201 Created /v2/images" linenums="1"
    Content-Length: 0
    ```

=== "Body"
    ``` json title="201 Created /v2/images" linenums="1"
    none
    ```
"#;
        assert_eq!(got, want);
    }

    #[test]
    fn failures_are_noted_where_they_show() {
        let mut refused = exchange(
            "openstack",
            "nova",
            "GET",
            "/v2.1/servers?limit=1",
            (1, None),
            None,
        );
        refused.error = Some("upstream unreachable: connection refused".into());
        let mut gateway = exchange(
            "openstack",
            "nova",
            "GET",
            "/v2.1/flavors",
            (2, Some(3)),
            Some((502, "Bad Gateway")),
        );
        gateway.error = Some("upstream timed out".into());
        gateway.response_body = body("tracer: upstream timed out\n");
        gateway.response_headers = vec![HeaderField::new("Content-Type", "text/plain")];
        let got = body_md(&[refused, gateway], &RenderOptions::default());
        assert!(got.contains("### (1) GET /v2.1/servers?limit=1\n`openstack` --> `nova`\n\n!!! reference \"API reference\"\n    [List Servers](https://docs.openstack.org/api-ref/compute/?expanded=list-servers-detail#list-servers)\n\n!!! failure \"No response\"\n    upstream unreachable: connection refused\n\n=== \"Header\""), "{got}");
        assert!(got.contains("### (3) 502 Bad Gateway /v2.1/flavors\n`openstack` <-- `nova`\n\n!!! failure \"Exchange failed\"\n    upstream timed out\n\n"), "{got}");
        assert!(got.contains("    ``` text title=\"502 Bad Gateway /v2.1/flavors\" linenums=\"1\"\n    tracer: upstream timed out\n    ```"), "{got}");
        // The request of the 502 carries no note.
        assert_eq!(got.matches("!!! failure").count(), 2);
    }

    #[test]
    fn redaction_covers_headers_and_passwords() {
        let token = "gAAAAABjsoJr7kmCgtOnnBLFPFUIe4__8XDcHmZmQ6Gxg2bf1_CUvVe7";
        let mut x = exchange(
            "openstack",
            "keystone",
            "POST",
            "/v3/auth/tokens",
            (1, Some(2)),
            Some((201, "CREATED")),
        );
        x.request_body = body(
            r#"{"auth":{"identity":{"password":{"user":{"password":"secretsecretsecret42"}}}}}"#,
        );
        x.response_headers = vec![HeaderField::new("X-Subject-Token", token)];
        x.response_body = body(&format!(r#"{{"echo":"{token}"}}"#));
        let got = body_md(
            &[x],
            &RenderOptions {
                redact: true,
                ..Default::default()
            },
        );
        assert!(got.contains("X-Subject-Token: gAAAAABj***\n"), "{got}");
        assert!(got.contains("\"password\": \"***\""), "{got}");
        assert!(got.contains("\"echo\": \"gAAAAABj***\""), "{got}");
        assert!(!got.contains(token));
        assert!(!got.contains("secretsecretsecret42"));
    }
}
