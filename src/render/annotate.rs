//! What a section carries besides the exchange itself: the API reference
//! of a request (from the bundled api-ref index, `crate::apiref`), the
//! writer's notes (`notes.rs`) and the lines they highlight. Worked out
//! once per flow, before any page is written, so every page agrees.

use super::body::{self, BodyView};
use super::events::{Event, Side};
use super::notes::{Notes, Step};
use super::placeholders::Placeholders;
use crate::apiref::{self, Api, Operation};
use crate::model::{header_str, Exchange};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The additions of one section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The documented operation of a request section.
    pub reference: Option<&'static Operation>,
    /// The writer's notes on this step, in file order.
    pub notes: Vec<String>,
    /// 1-based lines of the Header block to highlight.
    pub header_lines: Vec<usize>,
    /// 1-based lines of the Body block to highlight.
    pub body_lines: Vec<usize>,
}

/// Every section's additions (by event number - 1) and what of the notes
/// found no place.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    pub by_event: Vec<Annotation>,
    /// One line each: a note that matches no step, a highlight no line.
    pub unmatched: Vec<String>,
}

impl Annotations {
    pub fn of(&self, number: usize) -> Option<&Annotation> {
        self.by_event.get(number.wrapping_sub(1))
    }
}

/// Which API each service speaks: the config's `[[service]] api`, else a
/// guess from the service's name.
pub fn api_of(service: &str, apis: &BTreeMap<String, Api>) -> Option<Api> {
    apis.get(service)
        .copied()
        .or_else(|| Api::guess_from_service(service))
}

/// The documented operation of an exchange's request, if any.
pub fn reference(x: &Exchange, apis: &BTreeMap<String, Api>) -> Option<&'static Operation> {
    let api = api_of(&x.service, apis)?;
    let json = if x.request_body.kept.is_empty() {
        None
    } else {
        let d = body::decode(&x.request_body, &x.request_headers);
        let ct = header_str(&x.request_headers, "content-type").unwrap_or_default();
        body::parse_json(&d.bytes, &ct)
    };
    apiref::find(api, &x.method, &x.target, json.as_ref())
}

/// The step a section is, as notes name it: `POST /v2/images`, `201 /v2/images`.
pub fn step_name(e: &Event<'_>, names: &Placeholders) -> String {
    let x = e.exchange;
    let path = names.substitute(x.path());
    match e.side {
        Side::Request => format!("{} {path}", x.method),
        Side::Response => format!("{} {path}", x.status.unwrap_or(0)),
    }
}

fn matches(step: &Step, e: &Event<'_>, names: &Placeholders) -> bool {
    let x = e.exchange;
    let path_is =
        |path: &str| path == names.substitute(x.path()) || path == x.path() || path == x.target;
    match (step, e.side) {
        (Step::Request { method, path }, Side::Request) => {
            x.method.eq_ignore_ascii_case(method) && path_is(path)
        }
        (Step::Response { status, path }, Side::Response) => {
            x.status == Some(*status) && path_is(path)
        }
        _ => false,
    }
}

pub fn annotate(
    events: &[Event<'_>],
    names: &Placeholders,
    notes: &Notes,
    apis: &BTreeMap<String, Api>,
    redact: bool,
) -> Annotations {
    let mut by_event: Vec<Annotation> = events
        .iter()
        .map(|e| Annotation {
            reference: match e.side {
                Side::Request => reference(e.exchange, apis),
                Side::Response => None,
            },
            ..Default::default()
        })
        .collect();
    let mut unmatched = Vec::new();
    for (i, note) in notes.notes.iter().enumerate() {
        let what = format!("note #{} ({:?}, nth = {})", i + 1, note.step, note.nth);
        let Ok(step) = Step::parse(&note.step) else {
            continue; // Notes::parse refused it already
        };
        let Some(e) = events
            .iter()
            .filter(|e| matches(&step, e, names))
            .nth(note.nth - 1)
        else {
            unmatched.push(format!("{what} matches no step of the flow"));
            continue;
        };
        let a = &mut by_event[e.number - 1];
        if !note.text.trim().is_empty() {
            a.notes.push(note.text.trim_end().to_string());
        }
        let x = e.exchange;
        let (headers, record) = match e.side {
            Side::Request => (&x.request_headers, &x.request_body),
            Side::Response => (&x.response_headers, &x.response_body),
        };
        let mut body_map = None;
        for h in &note.highlight {
            let found: Vec<usize> = if h.starts_with('/') {
                let lines =
                    body_map.get_or_insert_with(|| match body::view(record, headers, redact) {
                        BodyView::Json(text) => pointer_lines(&text),
                        _ => HashMap::new(),
                    });
                lines.get(h.as_str()).copied().into_iter().collect()
            } else {
                headers
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name.eq_ignore_ascii_case(h))
                    .map(|(n, _)| n + 1)
                    .collect()
            };
            if found.is_empty() {
                unmatched.push(format!(
                    "{what}: highlight {h:?} is no line of ({}) {}",
                    e.number,
                    e.title()
                ));
            }
            let target = if h.starts_with('/') {
                &mut a.body_lines
            } else {
                &mut a.header_lines
            };
            target.extend(found);
            target.sort_unstable();
            target.dedup();
        }
    }
    Annotations {
        by_event,
        unmatched,
    }
}

/// The line (1-based) each JSON pointer starts on in `text`, which is
/// `serde_json`'s pretty form: one member or element per line, a
/// container's closing bracket on a line of its own, empty ones inline.
pub fn pointer_lines(text: &str) -> HashMap<String, usize> {
    let mut lines = HashMap::new();
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return lines;
    };
    let mut line = 1;
    lines.insert(String::new(), 1);
    walk(&value, &mut String::new(), &mut line, &mut lines);
    lines
}

fn walk(v: &Value, pointer: &mut String, line: &mut usize, lines: &mut HashMap<String, usize>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (escape_token(k), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    if children.is_empty() {
        return;
    }
    for (token, child) in children {
        *line += 1;
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(&token);
        lines.insert(pointer.clone(), *line);
        walk(child, pointer, line, lines);
        pointer.truncate(len);
    }
    *line += 1; // the closing bracket
}

/// RFC 6901: `~` is `~0`, `/` is `~1`.
fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_land_on_the_lines_serde_json_prints() {
        // The seed 004 token request: its author highlighted 5 9 10 19.
        let body = serde_json::json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"password": "asdf", "name": "admin", "domain": {"id": "default"}}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let text = serde_json::to_string_pretty(&body).unwrap();
        let lines = pointer_lines(&text);
        let at = |p: &str| lines[p];
        assert_eq!(
            [
                at("/auth/identity/methods/0"),
                at("/auth/identity/password/user/password"),
                at("/auth/identity/password/user/name"),
                at("/auth/scope/project/name"),
            ],
            [5, 9, 10, 19]
        );
        for (pointer, n) in &lines {
            let shown = text.lines().nth(n - 1).unwrap();
            let last = pointer.rsplit('/').next().unwrap();
            assert!(
                pointer.is_empty()
                    || shown.contains(&format!("\"{last}\""))
                    || last.parse::<usize>().is_ok(),
                "{pointer} -> line {n}: {shown}"
            );
        }
        let empty = pointer_lines("{\n  \"a\": {},\n  \"b/c\": [],\n  \"d\": 1\n}");
        assert_eq!((empty["/a"], empty["/b~1c"], empty["/d"]), (2, 3, 4));
    }
}
