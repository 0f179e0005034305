//! Escaping for every piece of captured or user text that lands outside a
//! code fence: exported pages end up on public doc sites, and a request
//! target, a header, a caller name or a title is whatever a client sent.
//!
//! Each function returns its input unchanged when it holds nothing that
//! needs escaping, so ordinary OpenStack traffic renders byte for byte as
//! before. What each one defends against, in Python-Markdown (with the
//! extensions tracer's mkdocs.yml enables) and mkdocs-material:
//!
//! - [`inline`]: raw HTML (`<img onerror>`), links and images
//!   (`[x](javascript:…)`), `attr_list` attributes (`{: onclick=… }` at the
//!   end of a heading, a table cell or a paragraph), code spans, entities.
//! - [`code_span`]: a backtick inside `` `caller` `` closing the span early.
//! - [`quoted_title`]: admonition titles (`!!! failure "…"`).
//! - [`html_text`]: text that mkdocs/material insert into HTML unescaped
//!   (nav titles, `site_name`, page titles).
//! - [`mermaid_text`]: message text of a sequence diagram.
//! - [`fence_title`]: a `title="…"` in a code fence's info string.

use std::borrow::Cow;

/// The characters Python-Markdown takes a backslash escape for (its
/// `ESCAPED_CHARS`, plus `|` from the tables extension).
const MARKDOWN_ESCAPABLE: &str = "\\`*_{}[]()>#+-.!|";

/// Markdown inline text that renders as exactly `s`, with no HTML, link,
/// image, attribute list or code span made from it. Line breaks become
/// spaces (every caller writes one line).
pub fn inline(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '[', ']', '{', '}', '`', '\\', '\n', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A bare `&` is written as `&amp;` by Markdown itself; only one
            // that starts an entity would show as another character.
            '&' if starts_entity(&s[i..]) => out.push_str("&amp;"),
            '[' | ']' | '{' | '}' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '\\' => {
                // Doubled only where Markdown would read it as an escape
                // (before what it escapes, or before an escape of ours).
                let next = chars.peek().map(|&(_, n)| n);
                if next.is_some_and(|n| MARKDOWN_ESCAPABLE.contains(n)) {
                    out.push_str("\\\\");
                } else {
                    out.push('\\');
                }
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Python-Markdown's entity pattern: `&name;`, `&#123;`, `&#x7b;`.
fn starts_entity(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('&') else {
        return false;
    };
    let body = match rest.find(';') {
        Some(end) => &rest[..end],
        None => return false,
    };
    if let Some(num) = body.strip_prefix('#') {
        match num.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            None => !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()),
        }
    } else {
        !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric())
    }
}

/// Inline text for an ATX heading: [`inline`], and a trailing `#` kept
/// (Markdown strips closing hashes from headings).
pub fn heading(s: &str) -> Cow<'_, str> {
    let escaped = inline(s);
    if escaped.ends_with('#') {
        let mut owned = escaped.into_owned();
        owned.pop();
        owned.push_str("\\#");
        return Cow::Owned(owned);
    }
    escaped
}

/// A code span showing exactly `s`: delimited by one more backtick than
/// the longest run inside, padded with a space when `s` starts or ends
/// with a backtick (Markdown trims the padding). `` `s` `` when `s` has
/// no backtick, as before.
pub fn code_span(s: &str) -> String {
    let s: Cow<'_, str> = if s.contains(['\n', '\r']) {
        Cow::Owned(s.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(s)
    };
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// The longest run of backticks in `s` (0 when there is none).
pub fn longest_backtick_run(s: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// The title of an admonition (`!!! kind "TITLE"`, `??? kind "TITLE"`):
/// [`inline`] text on one line, with `"` as an entity.
pub fn quoted_title(s: &str) -> String {
    inline(s).replace('"', "&quot;")
}

/// Several lines of Markdown text (an admonition's body): each line
/// [`inline`], and a leading `~~~` (which would open a code fence) written
/// with an entity.
pub fn block_lines(s: &str) -> Vec<String> {
    s.split('\n')
        .map(|line| {
            let line = inline(line.trim_end_matches('\r'));
            let lead = line.len() - line.trim_start().len();
            if line[lead..].starts_with('~') {
                format!("{}&#126;{}", &line[..lead], &line[lead + 1..])
            } else {
                line.into_owned()
            }
        })
        .collect()
}

/// Text for a Markdown table cell: [`inline`], and `|` escaped.
pub fn cell(s: &str) -> String {
    inline(s).replace('|', "\\|")
}

/// `s` HTML-escaped, for what mkdocs and mkdocs-material put into pages
/// without escaping it: nav titles, `site_name`, page titles.
pub fn html_text(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'', '\n', '\r']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Message text of a mermaid sequence diagram, as mermaid entity codes
/// where mermaid would read the character: `;` ends a statement, `#`
/// starts an entity, `<`/`>` would be HTML (mermaid sanitises it, which
/// mangles the text), `%%` starts a comment or a directive.
pub fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = '\0';
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '%' if prev == '%' => out.push_str("#37;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
        prev = c;
    }
    out
}

/// `title="…"` for a code fence's info string (the highlighter
/// HTML-escapes the value). Single quotes when the value holds `"` but no
/// `'`; with both, `"` is percent-encoded (a request target cannot hold a
/// raw one legally). Backticks are fine inside.
pub fn fence_title(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    match (s.contains('"'), s.contains('\'')) {
        (false, _) => format!("title=\"{s}\""),
        (true, false) => format!("title='{s}'"),
        (true, true) => format!("title=\"{}\"", s.replace('"', "%22")),
    }
}

/// A YAML double-quoted scalar that says exactly `s`, for mkdocs.yml and
/// front matter: JSON's escapes, plus `\uXXXX` for what YAML refuses raw
/// or reads as a line break (DEL, C1 controls, U+2028, U+2029, U+FFFE/F).
pub fn yaml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}') =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in [
            "GET /v2/images?limit=20&sort_key=name&marker=a42bfade",
            "201 CREATED /identity/v3/auth/tokens",
            "openstack image create --file cirros.img cirros",
            "swift-proxy-server",
            "a_b*c (d) #35 !x + - . |",
        ] {
            assert_eq!(inline(s), s);
            assert_eq!(code_span(s), format!("`{s}`"));
            assert_eq!(quoted_title(s), s);
        }
        assert!(matches!(html_text("Image create"), Cow::Borrowed(_)));
        assert_eq!(
            mermaid_text("GET /v1/AUTH_x/c/a%20b"),
            "GET /v1/AUTH_x/c/a%20b"
        );
        assert_eq!(fence_title("GET /v2/images"), "title=\"GET /v2/images\"");
    }

    #[test]
    fn inline_neutralises_html_links_and_attributes() {
        assert_eq!(
            inline("/v2/images?<svg/onload=alert(1)>"),
            "/v2/images?&lt;svg/onload=alert(1)&gt;"
        );
        assert_eq!(
            inline("[x](javascript:alert(1)) ![i](x)"),
            "\\[x\\](javascript:alert(1)) !\\[i\\](x)"
        );
        assert_eq!(inline("t {: onclick=\"x\" }"), "t \\{: onclick=\"x\" \\}");
        assert_eq!(inline("a `b` c"), "a \\`b\\` c");
        // Entities would show as other characters; a bare & is fine.
        assert_eq!(
            inline("&lt; &#60; &#x3c; & &x"),
            "&amp;lt; &amp;#60; &amp;#x3c; & &x"
        );
        // A backslash stays a backslash.
        assert_eq!(inline(r"a\b \[ \< \\"), r"a\b \\\[ \&lt; \\\");
        assert_eq!(inline("a\nb\r"), "a b ");
        assert_eq!(heading("200 OK #"), "200 OK \\#");
    }

    #[test]
    fn code_spans_outgrow_backticks() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("x` <img> `"), "`` x` <img> ` ``");
        assert_eq!(code_span("``"), "``` `` ```");
        assert_eq!(code_span("a\nb"), "`a b`");
    }

    #[test]
    fn titles_cells_and_blocks() {
        assert_eq!(quoted_title("say \"<b>\""), "say &quot;&lt;b&gt;&quot;");
        assert_eq!(cell("a | <b>"), "a \\| &lt;b&gt;");
        assert_eq!(
            block_lines("one <i>\n~~~ mermaid\n  ~~~\n```"),
            vec![
                "one &lt;i&gt;",
                "&#126;~~ mermaid",
                "  &#126;~~",
                "\\`\\`\\`"
            ]
        );
    }

    #[test]
    fn html_and_mermaid() {
        assert_eq!(
            html_text("</title><b a='1'>&\"\n"),
            "&lt;/title&gt;&lt;b a=&#39;1&#39;&gt;&amp;&quot; "
        );
        assert_eq!(
            mermaid_text("/x<br>;#%%{init}%%"),
            "/x#lt;br#gt;#59;#35;%#37;{init}%#37;"
        );
        assert_eq!(fence_title("200 \"OK\" `x`"), "title='200 \"OK\" `x`'");
        assert_eq!(fence_title("a\"b'c"), "title=\"a%22b'c\"");
    }

    #[test]
    fn yaml_scalars() {
        assert_eq!(yaml_str("tracer flows"), "\"tracer flows\"");
        assert_eq!(
            yaml_str("a\"b\\c\nd\u{7f}\u{85}\u{2028}é"),
            "\"a\\\"b\\\\c\\nd\\u007f\\u0085\\u2028é\""
        );
    }
}
