//! `tracer diff`: a [`FlowDiff`] for a terminal, or as a page that builds
//! with `mkdocs build --strict`.

use super::escape;
use crate::diff::{Change, Entry, FlowDiff};

fn change_text(c: &Change) -> String {
    match c {
        Change::Status { a, b } => format!("status {} -> {}", status(*a), status(*b)),
        Change::HeaderAdded { part, name } => format!("{} header added: {name}", part.as_str()),
        Change::HeaderRemoved { part, name } => {
            format!("{} header removed: {name}", part.as_str())
        }
        Change::FieldAdded {
            part,
            pointer,
            value,
        } => format!("{} body field added: {pointer} = {value}", part.as_str()),
        Change::FieldRemoved {
            part,
            pointer,
            value,
        } => format!(
            "{} body field removed: {pointer} (was {value})",
            part.as_str()
        ),
        Change::FieldChanged {
            part,
            pointer,
            a,
            b,
        } => {
            format!(
                "{} body field changed: {pointer}: {a} -> {b}",
                part.as_str()
            )
        }
        Change::BodyDiffers { part } => format!("{} body differs", part.as_str()),
    }
}

fn status(s: Option<u16>) -> String {
    s.map_or("none".into(), |s| s.to_string())
}

fn counts(d: &FlowDiff) -> (usize, usize, usize) {
    let mut n = (0, 0, 0);
    for e in &d.entries {
        match e {
            Entry::Added(_) => n.0 += 1,
            Entry::Removed(_) => n.1 += 1,
            Entry::Changed { .. } => n.2 += 1,
        }
    }
    n
}

/// For a terminal: `+` a call only B has, `-` one only A has, `~` a call
/// both have, with what differs under it.
pub fn text(a: &str, b: &str, d: &FlowDiff) -> String {
    let mut out = format!(
        "--- {a} ({} calls)\n+++ {b} ({} calls)\n",
        d.a_calls, d.b_calls
    );
    if d.is_empty() {
        out.push_str(&format!(
            "no differences: {} calls alike (ids, tokens and times aside)\n",
            d.same
        ));
        return out;
    }
    for e in &d.entries {
        match e {
            Entry::Added(c) => out.push_str(&format!("+ {}\n", c.label())),
            Entry::Removed(c) => out.push_str(&format!("- {}\n", c.label())),
            Entry::Changed { a, b, changes } => {
                out.push_str(&format!("~ {} / ({})\n", a.label(), b.number));
                for c in changes {
                    out.push_str(&format!("    {}\n", change_text(c)));
                }
            }
        }
    }
    let (added, removed, changed) = counts(d);
    out.push_str(&format!(
        "{added} added, {removed} removed, {changed} changed, {} alike\n",
        d.same
    ));
    out
}

/// The same as a Markdown page; every captured value escaped.
pub fn page(a: &str, b: &str, d: &FlowDiff) -> String {
    let (added, removed, changed) = counts(d);
    let mut out = format!("# {} → {}\n\n", escape::heading(a), escape::heading(b));
    out.push_str(&format!(
        "{} has {} calls, {} has {}: {added} added, {removed} removed, {changed} changed, {} alike \
         (ids, tokens and times put aside).\n",
        escape::code_span(a),
        d.a_calls,
        escape::code_span(b),
        d.b_calls,
        d.same
    ));
    if d.is_empty() {
        out.push_str("\nNo differences.\n");
        return out;
    }
    out.push_str("\n| | call | in A | in B | what differs |\n| --- | --- | --- | --- | --- |\n");
    for e in &d.entries {
        let (mark, c, na, nb, what) = match e {
            Entry::Added(c) => (
                "+",
                c,
                String::new(),
                format!("({})", c.number),
                "only in B".to_string(),
            ),
            Entry::Removed(c) => (
                "-",
                c,
                format!("({})", c.number),
                String::new(),
                "only in A".to_string(),
            ),
            Entry::Changed { a, b, changes } => (
                "~",
                a,
                format!("({})", a.number),
                format!("({})", b.number),
                changes
                    .iter()
                    .map(|c| escape::code_span(&change_text(c)))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            ),
        };
        let call = format!(
            "{} → {} {}",
            escape::code_span(&c.caller),
            escape::code_span(&c.service),
            escape::code_span(&format!("{} {}", c.method, c.path))
        );
        out.push_str(&format!(
            "| {mark} | {} | {na} | {nb} | {} |\n",
            escape::cell(&call),
            escape::cell(&what)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Call, Part};

    fn call(n: usize, path: &str) -> Call {
        Call {
            number: n,
            caller: "openstack".into(),
            service: "glance-api".into(),
            method: "GET".into(),
            path: path.into(),
        }
    }

    #[test]
    fn both_forms_name_every_difference() {
        let d = FlowDiff {
            a_calls: 2,
            b_calls: 2,
            same: 1,
            entries: vec![
                Entry::Added(call(7, "/v2/images/{image_id}")),
                Entry::Changed {
                    a: call(3, "/v2/images"),
                    b: call(5, "/v2/images"),
                    changes: vec![Change::FieldAdded {
                        part: Part::Response,
                        pointer: "/a|b".into(),
                        value: "\"<script>\"".into(),
                    }],
                },
            ],
        };
        let t = text("one", "two", &d);
        assert!(
            t.contains("+ (7) openstack -> glance-api GET /v2/images/{image_id}\n"),
            "{t}"
        );
        assert!(t.contains("~ (3) openstack -> glance-api GET /v2/images / (5)\n    response body field added: /a|b = \"<script>\"\n"), "{t}");
        let p = page("one", "two", &d);
        assert!(!p.contains("<script>"), "{p}");
        assert!(p.contains("| + |"), "{p}");
        let none = FlowDiff {
            a_calls: 3,
            b_calls: 3,
            same: 3,
            entries: vec![],
        };
        assert!(text("a", "b", &none).contains("no differences: 3 calls alike"));
    }
}
