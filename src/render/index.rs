//! index.md: the flow's page.
//!
//! ````text
//! # Image create
//!
//! Flow `image-create`: 22 events (11 calls) between openstack, glance-api, keystone, swift-proxy-server.
//!
//! ??? example "openstack image create --file cirros.img cirros"
//!     ``` text
//!     +------------------+------+
//!     ...
//!     ```
//!
//! ## Sequence
//!
//! ``` mermaid
//! sequenceDiagram
//! autonumber
//! openstack->>keystone: GET /identity/
//! ...
//! ```
//!
//! ## Variables
//!
//! | Placeholder | Value | Where it comes from |
//! | --- | --- | --- |
//! | `{image_id}` | `a42bfade-...` | `id` in the body of (12) `201 Created /v2/images` |
//!
//! ## Calls
//!
//! ### (1) GET /identity/
//! ...
//! ````

use super::diagram::diagram;
use super::escape;
use super::events::events;
use super::placeholders::Placeholders;
use super::redact::{redact_command, Redacted};
use super::sections::sections;
use super::text::{code_block, shell_join};
use super::RenderOptions;
use crate::model::{Exchange, Flow, RecordedCommand};
use crate::timefmt;

pub fn index_md(flow: &Flow, exchanges: &[Exchange], opts: &RenderOptions) -> String {
    let r = Redacted::new(exchanges, flow.command.as_ref(), opts.redact);
    let (lines, names) = diagram(&r.exchanges);
    let (body, _) = sections(&r.exchanges, opts);
    index_md_from(flow, &r, opts, &lines, &names, &body)
}

/// index.md from the diagram and sections already rendered (flow_pages
/// renders them once for all the files) of the redacted exchanges.
pub(crate) fn index_md_from(
    flow: &Flow,
    r: &Redacted<'_>,
    opts: &RenderOptions,
    lines: &[String],
    names: &Placeholders,
    body: &str,
) -> String {
    let exchanges: &[Exchange] = &r.exchanges;
    let mut out = String::with_capacity(body.len() + 16 * 1024);
    let title = flow.title.as_deref().unwrap_or(&flow.name);
    out.push_str(&front_matter(title));
    out.push_str(&format!("# {}\n\n", escape::heading(title)));
    out.push_str(&summary(flow, exchanges));
    if opts.har_link {
        out.push_str("Download the flow as an HTTP archive: [flow.har](flow.har).\n");
    }
    out.push('\n');

    if let Some(cmd) = &flow.command {
        let cmd = if opts.redact {
            redact_command(cmd)
        } else {
            cmd.clone()
        };
        recorded_command(&mut out, &cmd);
        out.push('\n');
    }

    if exchanges.is_empty() {
        out.push_str("No exchange was recorded in this flow.\n");
        return r.scrub(out);
    }

    out.push_str("## Sequence\n\n``` mermaid\nsequenceDiagram\nautonumber\n");
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("```\n\n");

    let used = names.used();
    if !used.is_empty() {
        out.push_str(
            "## Variables\n\n| Placeholder | Value | Where it comes from |\n| --- | --- | --- |\n",
        );
        for v in used {
            out.push_str(&format!(
                // Tables leave a `|` inside a code span alone: the origin
                // holds code spans and fixed words only.
                "| {} | {} | {} |\n",
                escape::code_span(&format!("{{{}}}", v.name)),
                escape::code_span(&v.value),
                v.origin
            ));
        }
        out.push('\n');
    }

    out.push_str("## Calls\n\n");
    out.push_str(body);
    r.scrub(out)
}

/// A title that HTML would read (`<`, `&`, quotes) also goes into the
/// page's front matter, HTML-escaped: mkdocs-material writes the page
/// title unescaped, and its `<title>` unescapes a title taken from the
/// heading (`striptags`) but not one from the front matter. Ordinary
/// titles need none.
fn front_matter(title: &str) -> String {
    let html = escape::html_text(title);
    if html == title {
        return String::new();
    }
    format!("---\ntitle: {}\n---\n\n", escape::yaml_str(&html))
}

/// One line saying what the flow holds.
fn summary(flow: &Flow, exchanges: &[Exchange]) -> String {
    let n_events = events(exchanges).len();
    let mut participants: Vec<&str> = Vec::new();
    for x in exchanges {
        for p in [x.caller.as_str(), x.service.as_str()] {
            if !participants.contains(&p) {
                participants.push(p);
            }
        }
    }
    let window = match flow.stopped_at {
        Some(end) => format!(
            "recorded {} to {} UTC",
            timefmt::short(flow.started_at),
            timefmt::short(end)
        ),
        None => format!("open since {} UTC", timefmt::short(flow.started_at)),
    };
    let between = if participants.is_empty() {
        String::new()
    } else {
        format!(
            " between {}",
            participants
                .iter()
                .map(|p| escape::code_span(p))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "Flow {}, {window}: {n_events} events ({} calls){between}.\n",
        escape::code_span(&flow.name),
        exchanges.len()
    )
}

/// The `??? example` block with the command line and what it printed.
fn recorded_command(out: &mut String, cmd: &RecordedCommand) {
    let line = shell_join(&cmd.argv);
    out.push_str(&format!(
        "??? example \"{}\"\n",
        escape::quoted_title(&line)
    ));
    let mut console = strip_ansi(&String::from_utf8_lossy(&cmd.stdout));
    let stderr = strip_ansi(&String::from_utf8_lossy(&cmd.stderr));
    if !stderr.is_empty() {
        if !console.is_empty() && !console.ends_with('\n') {
            console.push('\n');
        }
        console.push_str(&stderr);
    }
    let console = console.replace("\r\n", "\n");
    if console.trim().is_empty() {
        code_block(out, "    ", "text", "(no output)");
    } else {
        code_block(out, "    ", "text", &console);
    }
    match cmd.exit_status {
        Some(0) => {}
        Some(code) => out.push_str(&format!("\n    Exit status {code}.\n")),
        None => out.push_str("\n    The command was ended by a signal.\n"),
    }
}

/// Console output without colour codes (CSI sequences).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderField;
    use crate::render::events::tests::{body, exchange};

    fn flow(command: Option<RecordedCommand>) -> Flow {
        Flow {
            name: "image-create".into(),
            title: Some("Image create".into()),
            started_at: 1_700_000_000_000_000,
            stopped_at: Some(1_700_000_060_000_000),
            command,
        }
    }

    fn exchanges() -> Vec<Exchange> {
        let image = "a42bfade-78ec-4c95-b7b4-272ba265072c";
        let mut create = exchange(
            "openstack",
            "glance-api",
            "POST",
            "/v2/images",
            (1, Some(4)),
            Some((201, "Created")),
        );
        create.request_headers = vec![HeaderField::new(
            "X-Auth-Token",
            "gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1",
        )];
        create.response_body = body(&format!(r#"{{"id":"{image}"}}"#));
        let check = exchange(
            "glance-api",
            "keystone",
            "GET",
            "/identity/v3/auth/tokens",
            (2, Some(3)),
            Some((200, "OK")),
        );
        let upload = exchange(
            "openstack",
            "glance-api",
            "PUT",
            &format!("/v2/images/{image}/file"),
            (5, Some(6)),
            Some((204, "No Content")),
        );
        vec![create, check, upload]
    }

    #[test]
    fn page_with_command_diagram_variables_and_sections() {
        let cmd = RecordedCommand {
            argv: [
                "openstack",
                "image",
                "create",
                "--file",
                "cirros.img",
                "cirros",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            stdout: b"+-------+\n| \x1b[1mid\x1b[0m |\n+-------+\n".to_vec(),
            stderr: Vec::new(),
            exit_status: Some(0),
        };
        let got = index_md(&flow(Some(cmd)), &exchanges(), &RenderOptions::default());
        let head = "# Image create\n\n\
            Flow `image-create`, recorded 2023-11-14 22:13:20 to 2023-11-14 22:14:20 UTC: 6 events (3 calls) between `openstack`, `glance-api`, `keystone`.\n\n\
            ??? example \"openstack image create --file cirros.img cirros\"\n    ``` text\n    +-------+\n    | id |\n    +-------+\n    ```\n\n\
            ## Sequence\n\n``` mermaid\nsequenceDiagram\nautonumber\n\
            openstack->>glance-api: POST /v2/images\nactivate glance-api\n\
            glance-api->>keystone: GET /identity/v3/auth/tokens\nactivate keystone\n\
            keystone-->>glance-api: 200 OK /identity/v3/auth/tokens\ndeactivate keystone\n\
            glance-api-->>openstack: 201 Created /v2/images\ndeactivate glance-api\n\
            openstack->>glance-api: PUT /v2/images/{image_id}/file\nactivate glance-api\n\
            glance-api-->>openstack: 204 No Content /v2/images/{image_id}/file\ndeactivate glance-api\n```\n\n\
            ## Variables\n\n| Placeholder | Value | Where it comes from |\n| --- | --- | --- |\n\
            | `{image_id}` | `a42bfade-78ec-4c95-b7b4-272ba265072c` | `id` in the body of (4) `201 Created /v2/images` |\n\n\
            ## Calls\n\n### (1) POST /v2/images\n`openstack` --> `glance-api`\n";
        assert!(got.starts_with(head), "{got}");
        // Sections keep the real values.
        assert!(got.contains("### (5) PUT /v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c/file\n"));
        assert!(got.contains("X-Auth-Token: gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1\n"));
    }

    #[test]
    fn failed_command_redacted_and_har_link() {
        let cmd = RecordedCommand {
            argv: [
                "openstack",
                "--os-password",
                "my \"secret\" passphrase",
                "image",
                "list",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            stdout: Vec::new(),
            stderr: b"Failed to contact the endpoint\n".to_vec(),
            exit_status: Some(1),
        };
        let opts = RenderOptions {
            redact: true,
            har_link: true,
            ..Default::default()
        };
        let got = index_md(&flow(Some(cmd)), &exchanges(), &opts);
        assert!(
            got.contains("??? example \"openstack --os-password '***' image list\"\n"),
            "{got}"
        );
        assert!(!got.contains("passphrase"), "{got}");
        assert!(
            got.contains(
                "    ``` text\n    Failed to contact the endpoint\n    ```\n\n    Exit status 1.\n"
            ),
            "{got}"
        );
        assert!(got.contains("[flow.har](flow.har)"));
        assert!(got.contains("X-Auth-Token: gAAAAABj***\n"), "{got}");
        assert!(!got.contains("gAAAAABjrkD9cqBlaLtF1_FlWZfHjo2u7cJvLXX1"));
    }

    #[test]
    fn empty_flow() {
        let got = index_md(&flow(None), &[], &RenderOptions::default());
        assert!(
            got.ends_with("No exchange was recorded in this flow.\n"),
            "{got}"
        );
        assert!(!got.contains("mermaid"));
    }

    #[test]
    fn ansi() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
    }
}
