//! Small Markdown helpers shared by the page writers.

use crate::model::{Exchange, HeaderField};

/// The backtick fence for a code block holding `content`: three, as the
/// seeds write it, unless the content itself has a run of three or more
/// (a body quoting Markdown), which would close the block early.
pub fn fence_for(content: &str) -> String {
    "`".repeat(3.max(super::escape::longest_backtick_run(content) + 1))
}

/// A fenced code block, every line (fences included) indented by `indent`.
/// `info` is what follows the opening fence (`http title="..." linenums="1"`).
pub fn code_block(out: &mut String, indent: &str, info: &str, content: &str) {
    let fence = fence_for(content);
    out.push_str(indent);
    out.push_str(&fence);
    out.push(' ');
    out.push_str(info);
    out.push('\n');
    for line in content.lines() {
        if line.is_empty() {
            // No trailing blanks on empty lines.
            out.push_str(indent.trim_end());
        } else {
            out.push_str(indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str(indent);
    out.push_str(&fence);
    out.push('\n');
}

/// One header line as it crossed the proxy (`Accept: ` for an empty
/// value). Secrets are masked before rendering ([`super::redact::Redacted`]).
pub fn header_line(h: &HeaderField) -> String {
    format!("{}: {}", h.name, h.value_str())
}

pub fn header_lines(headers: &[HeaderField]) -> String {
    let mut s = String::new();
    for h in headers {
        s.push_str(&header_line(h));
        s.push('\n');
    }
    s
}

/// The URL the client addressed: `http://` + its Host header + the target;
/// the upstream URL when the request had no Host.
pub fn client_url(x: &Exchange) -> String {
    if x.target.starts_with("http://") || x.target.starts_with("https://") {
        return x.target.clone();
    }
    match crate::model::header_str(&x.request_headers, "host") {
        Some(host) if !host.is_empty() => format!("http://{host}{}", x.target),
        _ => x.upstream_url.clone(),
    }
}

/// A command line as a shell would take it back.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@' | '%')
                });
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_grow_past_backticks_in_content() {
        assert_eq!(fence_for("{}"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }

    #[test]
    fn code_block_indents_and_keeps_empty_lines_clean() {
        let mut s = String::new();
        code_block(&mut s, "    ", "text", "a\n\nb\n");
        assert_eq!(s, "    ``` text\n    a\n\n    b\n    ```\n");
    }

    #[test]
    fn shell_join_quotes_only_when_needed() {
        let argv: Vec<String> = ["openstack", "image", "create", "--file", "my img", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            shell_join(&argv),
            r"openstack image create --file 'my img' 'it'\''s'"
        );
    }
}
