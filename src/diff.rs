//! `tracer diff A B`: two recordings of the same command compared call by
//! call. Pure: from two flows' exchanges to a [`FlowDiff`]; `render::diff`
//! writes it for a terminal or as a page.
//!
//! Calls are matched by what they are — caller, service, method, path with
//! the pages' `{placeholders}` — in order (a longest common subsequence),
//! so an added or removed call shows as just that. In matched calls, what
//! tells recordings apart without meaning anything is put aside: ids,
//! tokens, times and transaction ids become placeholders before values are
//! compared, and header values are not compared (their names are).

use crate::model::{Exchange, HeaderField, REQUEST_FROM_HEADER, REQUEST_ID_HEADER};
use crate::render::body;
use crate::render::events::{events, request_numbers};
use crate::render::placeholders::Placeholders;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// One call of a flow, as the diff names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The number of its request section on the flow's pages.
    pub number: usize,
    pub caller: String,
    pub service: String,
    pub method: String,
    /// The path with placeholders (`/v2/images/{image_id}/file`).
    pub path: String,
}

impl Call {
    /// `(5) openstack -> glance-api POST /v2/images`
    pub fn label(&self) -> String {
        format!(
            "({}) {} -> {} {} {}",
            self.number, self.caller, self.service, self.method, self.path
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Request,
    Response,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Request => "request",
            Part::Response => "response",
        }
    }
}

/// One difference inside a matched call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Status {
        a: Option<u16>,
        b: Option<u16>,
    },
    HeaderAdded {
        part: Part,
        name: String,
    },
    HeaderRemoved {
        part: Part,
        name: String,
    },
    FieldAdded {
        part: Part,
        pointer: String,
        value: String,
    },
    FieldRemoved {
        part: Part,
        pointer: String,
        value: String,
    },
    FieldChanged {
        part: Part,
        pointer: String,
        a: String,
        b: String,
    },
    /// A body that is not JSON differs (its text, ids aside).
    BodyDiffers {
        part: Part,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Added(Call),
    Removed(Call),
    Changed {
        a: Call,
        b: Call,
        changes: Vec<Change>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDiff {
    pub a_calls: usize,
    pub b_calls: usize,
    /// Calls matched without a difference.
    pub same: usize,
    pub entries: Vec<Entry>,
}

impl FlowDiff {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A flow's calls in request order, with what is needed to compare them.
struct Side<'a> {
    calls: Vec<(Call, &'a Exchange)>,
    names: Placeholders,
}

fn side(exchanges: &[Exchange]) -> Side<'_> {
    let evs = events(exchanges);
    let names = Placeholders::find(&evs);
    let numbers = request_numbers(&evs, exchanges.len());
    let mut order: Vec<usize> = (0..exchanges.len()).collect();
    order.sort_by_key(|&i| numbers[i]);
    let calls = order
        .into_iter()
        .map(|i| {
            let x = &exchanges[i];
            let call = Call {
                number: numbers[i],
                caller: x.caller.clone(),
                service: x.service.clone(),
                method: x.method.clone(),
                path: normalize(&names.substitute(x.path()), &names),
            };
            (call, x)
        })
        .collect();
    Side { calls, names }
}

fn same_call(a: &Call, b: &Call) -> bool {
    (&a.caller, &a.service, &a.method, &a.path) == (&b.caller, &b.service, &b.method, &b.path)
}

pub fn diff(a: &[Exchange], b: &[Exchange]) -> FlowDiff {
    let (a, b) = (side(a), side(b));
    let (n, m) = (a.calls.len(), b.calls.len());
    // lcs[i][j]: the longest common run of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if same_call(&a.calls[i].0, &b.calls[j].0) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut entries = Vec::new();
    let mut same = 0;
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && same_call(&a.calls[i].0, &b.calls[j].0) {
            let changes = compare(a.calls[i].1, &a.names, b.calls[j].1, &b.names);
            if changes.is_empty() {
                same += 1;
            } else {
                entries.push(Entry::Changed {
                    a: a.calls[i].0.clone(),
                    b: b.calls[j].0.clone(),
                    changes,
                });
            }
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            entries.push(Entry::Added(b.calls[j].0.clone()));
            j += 1;
        } else {
            entries.push(Entry::Removed(a.calls[i].0.clone()));
            i += 1;
        }
    }
    FlowDiff {
        a_calls: n,
        b_calls: m,
        same,
        entries,
    }
}

fn compare(a: &Exchange, an: &Placeholders, b: &Exchange, bn: &Placeholders) -> Vec<Change> {
    let mut changes = Vec::new();
    if a.status != b.status {
        changes.push(Change::Status {
            a: a.status,
            b: b.status,
        });
    }
    for (part, ah, bh, abody, bbody) in [
        (
            Part::Request,
            &a.request_headers,
            &b.request_headers,
            &a.request_body,
            &b.request_body,
        ),
        (
            Part::Response,
            &a.response_headers,
            &b.response_headers,
            &a.response_body,
            &b.response_body,
        ),
    ] {
        let (names_a, names_b) = (header_names(ah), header_names(bh));
        for name in names_b.iter().filter(|n| !names_a.contains(n)) {
            changes.push(Change::HeaderAdded {
                part,
                name: name.clone(),
            });
        }
        for name in names_a.iter().filter(|n| !names_b.contains(n)) {
            changes.push(Change::HeaderRemoved {
                part,
                name: name.clone(),
            });
        }
        let va = body::view(abody, ah, false);
        let vb = body::view(bbody, bh, false);
        match (json_fields(va.text(), an), json_fields(vb.text(), bn)) {
            (Some(fa), Some(fb)) => fields(part, &fa, &fb, &mut changes),
            _ => {
                if normalize(va.text(), an) != normalize(vb.text(), bn) {
                    changes.push(Change::BodyDiffers { part });
                }
            }
        }
    }
    changes
}

/// Header names, lowercased, without tracer's own stamps.
fn header_names(headers: &[HeaderField]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .filter(|h| {
            !h.name.eq_ignore_ascii_case(REQUEST_ID_HEADER)
                && !h.name.eq_ignore_ascii_case(REQUEST_FROM_HEADER)
        })
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn fields(
    part: Part,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
    out: &mut Vec<Change>,
) {
    for (pointer, vb) in b {
        match a.get(pointer) {
            None => out.push(Change::FieldAdded {
                part,
                pointer: pointer.clone(),
                value: vb.clone(),
            }),
            Some(va) if va != vb => out.push(Change::FieldChanged {
                part,
                pointer: pointer.clone(),
                a: va.clone(),
                b: vb.clone(),
            }),
            Some(_) => {}
        }
    }
    for (pointer, va) in a {
        if !b.contains_key(pointer) {
            out.push(Change::FieldRemoved {
                part,
                pointer: pointer.clone(),
                value: va.clone(),
            });
        }
    }
}

/// Every leaf of a JSON body by pointer, keys and values normalized.
fn json_fields(text: &str, names: &Placeholders) -> Option<BTreeMap<String, String>> {
    let value: Value = serde_json::from_str(text).ok()?;
    let mut out = BTreeMap::new();
    leaves(&value, &mut String::new(), names, &mut out);
    Some(out)
}

/// Whether a field holds an identifier by its name (`id`, `image_id`,
/// `audit_ids`): its value is one, whatever it looks like.
fn is_id_field(pointer: &str) -> bool {
    let name = pointer
        .rsplit('/')
        .find(|t| t.parse::<usize>().is_err())
        .unwrap_or("")
        .to_ascii_lowercase();
    name == "id" || name == "ids" || name.ends_with("_id") || name.ends_with("_ids")
}

fn leaves(
    v: &Value,
    pointer: &mut String,
    names: &Placeholders,
    out: &mut BTreeMap<String, String>,
) {
    let mut child = |token: &str, v: &Value, pointer: &mut String| {
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(
            &normalize(token, names)
                .replace('~', "~0")
                .replace('/', "~1"),
        );
        leaves(v, pointer, names, out);
        pointer.truncate(len);
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                child(k, v, pointer);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                child(&i.to_string(), v, pointer);
            }
        }
        Value::String(_) if is_id_field(pointer) => {
            out.insert(pointer.clone(), "{id}".into());
        }
        Value::String(s) => {
            out.insert(pointer.clone(), format!("{:?}", normalize(s, names)));
        }
        other => {
            out.insert(pointer.clone(), other.to_string());
        }
    }
}

static VOLATILE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Fernet tokens.
        (r"gAAAAA[A-Za-z0-9_=-]{20,}", "{token}"),
        (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "{uuid}"),
        // Swift transaction ids.
        (r"\btx[0-9a-f]{21}-[0-9a-f]{10}\b", "{txid}"),
        (r"[0-9a-fA-F]{32,}", "{hex}"),
        (
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?",
            "{time}",
        ),
        (
            r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT",
            "{time}",
        ),
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).expect("the volatile patterns compile"), with))
    .collect()
});

/// A value with what differs between recordings of the same command put
/// aside: the flow's named ids first (as the pages name them), then any
/// other id, token, transaction id or time.
pub fn normalize(s: &str, names: &Placeholders) -> String {
    let mut out = s.to_string();
    for v in names.all() {
        if v.value.len() >= 8 && out.contains(&v.value) {
            out = out.replace(&v.value, &format!("{{{}}}", v.name));
        }
    }
    for (re, with) in VOLATILE.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *with).into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::events::tests::{body, exchange};

    fn flow(image: &str, token: &str, extra: bool) -> Vec<Exchange> {
        let mut auth = exchange(
            "openstack",
            "keystone",
            "POST",
            "/v3/auth/tokens",
            (1, Some(2)),
            Some((201, "CREATED")),
        );
        auth.response_headers = vec![
            HeaderField::new("X-Subject-Token", token),
            HeaderField::new("Content-Type", "application/json"),
        ];
        auth.response_body = body(&format!(
            r#"{{"token": {{"expires_at": "2026-12-02T10:0{}:00.000000Z", "methods": ["password"], "audit_ids": ["{}"]}}}}"#,
            image.len() % 10,
            &token[20..40]
        ));
        let mut create = exchange(
            "openstack",
            "glance-api",
            "POST",
            "/v2/images",
            (3, Some(4)),
            Some((201, "Created")),
        );
        create.response_headers = vec![HeaderField::new("Content-Type", "application/json")];
        create.response_body = body(&format!(
            r#"{{"id": "{image}", "status": "queued", "file": "/v2/images/{image}/file"}}"#
        ));
        let upload = exchange(
            "openstack",
            "glance-api",
            "PUT",
            &format!("/v2/images/{image}/file"),
            (5, Some(6)),
            Some((204, "No Content")),
        );
        let mut all = vec![auth, create, upload];
        if extra {
            all.push(exchange(
                "openstack",
                "glance-api",
                "GET",
                &format!("/v2/images/{image}"),
                (7, Some(8)),
                Some((200, "OK")),
            ));
        }
        all
    }

    #[test]
    fn ids_tokens_and_times_are_no_difference() {
        let a = flow(
            "a42bfade-78ec-4c95-b7b4-272ba265072c",
            "gAAAAABjrkD9cqBlaLtF1_aaaaaaaaaaaaaaaaaaa",
            false,
        );
        let b = flow(
            "0b9e21c7-1111-4c95-b7b4-272ba2650000",
            "gAAAAABjxxxxxxxxxxxxx_bbbbbbbbbbbbbbbbbbb",
            false,
        );
        let d = diff(&a, &b);
        assert_eq!(d.entries, []);
        assert_eq!((d.a_calls, d.b_calls, d.same), (3, 3, 3));
    }

    #[test]
    fn an_extra_call_is_exactly_that() {
        let a = flow(
            "a42bfade-78ec-4c95-b7b4-272ba265072c",
            "gAAAAABjrkD9cqBlaLtF1_aaaaaaaaaaaaaaaaaaa",
            false,
        );
        let b = flow(
            "0b9e21c7-1111-4c95-b7b4-272ba2650000",
            "gAAAAABjxxxxxxxxxxxxx_bbbbbbbbbbbbbbbbbbb",
            true,
        );
        let d = diff(&a, &b);
        assert_eq!(d.entries.len(), 1, "{:?}", d.entries);
        let Entry::Added(call) = &d.entries[0] else {
            panic!("{:?}", d.entries)
        };
        assert_eq!(
            call.label(),
            "(7) openstack -> glance-api GET /v2/images/{image_id}"
        );
        // And the other way round.
        assert!(matches!(diff(&b, &a).entries[..], [Entry::Removed(_)]));
    }

    #[test]
    fn statuses_headers_and_fields_that_differ_are_named() {
        let a = flow(
            "a42bfade-78ec-4c95-b7b4-272ba265072c",
            "gAAAAABjrkD9cqBlaLtF1_aaaaaaaaaaaaaaaaaaa",
            false,
        );
        let mut b = a.clone();
        b[1].status = Some(202);
        b[1].response_headers.push(HeaderField::new("X-New", "1"));
        b[1].response_body = body(
            r#"{"id": "a42bfade-78ec-4c95-b7b4-272ba265072c", "status": "active", "size": 3}"#,
        );
        let d = diff(&a, &b);
        let [Entry::Changed { changes, .. }] = &d.entries[..] else {
            panic!("{:?}", d.entries)
        };
        assert_eq!(
            changes,
            &[
                Change::Status {
                    a: Some(201),
                    b: Some(202)
                },
                Change::HeaderAdded {
                    part: Part::Response,
                    name: "x-new".into()
                },
                Change::FieldAdded {
                    part: Part::Response,
                    pointer: "/size".into(),
                    value: "3".into()
                },
                Change::FieldChanged {
                    part: Part::Response,
                    pointer: "/status".into(),
                    a: "\"queued\"".into(),
                    b: "\"active\"".into()
                },
                Change::FieldRemoved {
                    part: Part::Response,
                    pointer: "/file".into(),
                    value: "\"/v2/images/{image_id}/file\"".into()
                },
            ]
        );
    }
}
