//! diagram.md: the mermaid `sequenceDiagram` lines of a flow.
//!
//! ```text
//! openstack->>glance-api: POST /v2/images
//! activate glance-api
//! glance-api->>keystone: GET /identity/v3/auth/tokens
//! activate keystone
//! keystone-->>glance-api: 200 OK /identity/v3/auth/tokens
//! deactivate keystone
//! glance-api-->>openstack: 201 Created /v2/images
//! deactivate glance-api
//! ```
//!
//! One message per event, in event order, so mermaid's `autonumber` gives
//! each arrow the number of its section. A service is active from its
//! request to its response: a call made while serving another sits inside
//! the caller's activation bar. A request that got no response is a `-x`
//! arrow. Paths leave out the query and show named IDs as placeholders.

use super::escape::mermaid_text;
use super::events::{events, has_response, status_line, Side};
use super::placeholders::Placeholders;
use super::RenderOptions;
use crate::model::Exchange;

/// The lines, and the placeholders they used (for the variables table).
pub fn diagram(exchanges: &[Exchange]) -> (Vec<String>, Placeholders) {
    let events = events(exchanges);
    let mut names = Placeholders::find(&events);
    let mut lines = Vec::with_capacity(events.len() * 2);
    for e in &events {
        let x = e.exchange;
        let caller = participant(&x.caller);
        let service = participant(&x.service);
        let path = names.apply(x.path());
        match e.side {
            Side::Request if has_response(x) => {
                let text = mermaid_text(&format!("{} {path}", x.method));
                lines.push(format!("{caller}->>{service}: {text}"));
                lines.push(format!("activate {service}"));
            }
            Side::Request => {
                let text = mermaid_text(&format!("{} {path}", x.method));
                lines.push(format!("{caller}-x{service}: {text}"));
            }
            Side::Response => {
                let text = mermaid_text(&format!("{} {path}", status_line(x)));
                lines.push(format!("{service}-->>{caller}: {text}"));
                lines.push(format!("deactivate {service}"));
            }
        }
    }
    (lines, names)
}

/// The whole diagram.md: the lines, one per line, nothing around them
/// (index.md puts them in a mermaid block).
pub fn diagram_md(exchanges: &[Exchange], opts: &RenderOptions) -> String {
    let r = super::redact::Redacted::new(exchanges, None, opts.redact);
    r.scrub(lines_md(&diagram(&r.exchanges).0))
}

pub(crate) fn lines_md(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// A participant name mermaid parses as one actor: characters that end an
/// actor or start an arrow in its grammar become `_`.
pub fn participant(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // `-x`/`--`/`->` inside a name would read as an arrow.
    let cleaned = cleaned.replace("-x", "_x").replace("--", "__");
    let cleaned = cleaned.trim_matches('-').to_string();
    if cleaned.is_empty() || is_keyword(&cleaned) {
        format!("{cleaned}_")
    } else {
        cleaned
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "end"
            | "loop"
            | "alt"
            | "else"
            | "opt"
            | "par"
            | "and"
            | "rect"
            | "note"
            | "critical"
            | "break"
            | "box"
            | "participant"
            | "actor"
            | "activate"
            | "deactivate"
            | "autonumber"
            | "title"
            | "create"
            | "destroy"
            | "links"
            | "link"
            | "properties"
            | "details"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::events::tests::exchange;

    #[test]
    fn nested_calls_are_inside_activation() {
        let xs = vec![
            exchange(
                "openstack",
                "glance-api",
                "POST",
                "/v2/images?x=1",
                (1, Some(4)),
                Some((201, "Created")),
            ),
            exchange(
                "glance-api",
                "keystone",
                "GET",
                "/identity/v3/auth/tokens",
                (2, Some(3)),
                Some((200, "OK")),
            ),
            exchange(
                "openstack",
                "swift-proxy-server",
                "HEAD",
                "/v1/x#y;z",
                (5, None),
                None,
            ),
        ];
        let got = diagram_md(&xs, &RenderOptions::default());
        assert_eq!(
            got,
            "openstack->>glance-api: POST /v2/images\n\
             activate glance-api\n\
             glance-api->>keystone: GET /identity/v3/auth/tokens\n\
             activate keystone\n\
             keystone-->>glance-api: 200 OK /identity/v3/auth/tokens\n\
             deactivate keystone\n\
             glance-api-->>openstack: 201 Created /v2/images\n\
             deactivate glance-api\n\
             openstack-xswift-proxy-server: HEAD /v1/x#35;y#59;z\n"
        );
        assert_eq!(diagram_md(&[], &RenderOptions::default()), "");
    }

    #[test]
    fn participant_names_stay_single_actors() {
        assert_eq!(participant("swift-proxy-server"), "swift-proxy-server");
        assert_eq!(participant("nova-xvpvnc"), "nova_xvpvnc");
        assert_eq!(participant("10.0.0.5:4242"), "10.0.0.5_4242");
        assert_eq!(participant("end"), "end_");
        assert_eq!(participant(""), "_");
        assert_eq!(participant("a b;c"), "a_b_c");
    }
}
