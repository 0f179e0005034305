//! A request against the operations of one API: the service's own prefixes
//! taken off, the path matched template by template (a `{param}` is one
//! segment; literal segments beat params), and where one method and
//! template has several operations, the body compared with the request
//! examples the api-ref shows for each.

use super::Api;
use serde_json::Value;

/// What matching needs of one operation.
pub(super) struct Entry {
    method: String,
    title: String,
    template: Template,
    examples: Vec<Value>,
}

impl Entry {
    pub(super) fn new(
        api: Api,
        method: &str,
        path: &str,
        title: &str,
        examples: Vec<Value>,
    ) -> Entry {
        Entry {
            method: method.to_string(),
            title: title.to_string(),
            template: Template::parse(api, path),
            examples,
        }
    }
}

/// The index in `entries` of the operation the request is, if exactly one.
pub(super) fn find(
    api: Api,
    entries: &[Entry],
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> Option<usize> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments = request_segments(api, path);
    let query: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k))
        .filter(|k| !k.is_empty())
        .collect();
    let fits: Vec<(usize, Rank)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.method.eq_ignore_ascii_case(method))
        .filter_map(|(i, e)| Some((i, e.template.rank(&segments, &query)?)))
        .collect();
    let top = fits.iter().map(|(_, rank)| rank).max()?;
    let mut best: Vec<usize> = fits
        .iter()
        .filter(|(_, rank)| rank == top)
        .map(|&(i, _)| i)
        .collect();
    if best.len() > 1 {
        let tied = best.clone();
        best = by_body(entries, best, body);
        if best.len() != 1 {
            best = decided_by_meaning(entries, &tied, body)
                .into_iter()
                .collect();
        }
    }
    match best[..] {
        [one] => Some(one),
        _ => None,
    }
}

/// The candidates whose request examples look like the body. Signatures
/// of the body are tried in turn, each keeping the candidates with an
/// example of the same signature, until one is left; if the body fits no
/// example at all, none is left.
fn by_body(entries: &[Entry], mut candidates: Vec<usize>, body: Option<&Value>) -> Vec<usize> {
    if candidates.iter().all(|&i| entries[i].examples.is_empty()) {
        return candidates;
    }
    let Some(body) = body.filter(|b| b.is_object()) else {
        // No body: only an operation that shows none can be it.
        candidates.retain(|&i| entries[i].examples.is_empty());
        return candidates;
    };
    let mut narrowed = false;
    for signature in [top_keys, auth_methods, inner_keys] {
        let Some(wanted) = signature(body) else {
            continue;
        };
        let fits: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                entries[i]
                    .examples
                    .iter()
                    .any(|e| signature(e).as_ref() == Some(&wanted))
            })
            .collect();
        if fits.len() == 1 {
            return fits;
        }
        if !fits.is_empty() {
            candidates = fits;
            narrowed = true;
        }
    }
    if narrowed {
        candidates
    } else {
        Vec::new()
    }
}

/// Ties the examples cannot break, decided by what the API reference says
/// the fields mean. Nova's `POST /servers` is "Create Multiple Servers"
/// when it asks for more than one server (`min_count`/`max_count` over 1,
/// or a reservation id back), else "Create Server": the CLI always sends
/// `min_count: 1, max_count: 1`, which neither example shows.
fn decided_by_meaning(entries: &[Entry], tied: &[usize], body: Option<&Value>) -> Option<usize> {
    let title = |wanted: &str| tied.iter().copied().find(|&i| entries[i].title == wanted);
    let server = body?.get("server")?;
    let many = |key: &str| {
        server.get(key).is_some_and(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .is_some_and(|n| n > 1)
        })
    };
    let reservation = server.get("return_reservation_id").is_some_and(|v| {
        v == &Value::Bool(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
    });
    if many("min_count") || many("max_count") || reservation {
        title("Create Multiple Servers")
    } else {
        title("Create Server")
    }
}

/// The body's keys: an action's name (`{"os-start": null}`, cinder's
/// `{"os-extend": {...}}`), neutron's `network` against bulk `networks`.
fn top_keys(body: &Value) -> Option<Vec<String>> {
    let mut keys: Vec<String> = body.as_object()?.keys().cloned().collect();
    keys.sort();
    Some(keys)
}

/// Keystone's `auth`: its methods and the kind of scope (none, explicitly
/// `unscoped`, a trust, or a project / domain / system).
fn auth_methods(body: &Value) -> Option<Vec<String>> {
    let auth = body.get("auth")?;
    let methods = auth.pointer("/identity/methods")?.as_array()?;
    let mut out: Vec<String> = methods
        .iter()
        .map(|m| format!("method {}", m.as_str().unwrap_or("?")))
        .collect();
    out.sort();
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => "none",
        Some(Value::String(s)) if s == "unscoped" => "unscoped",
        Some(s) if s.get("OS-TRUST:trust").is_some() => "trust",
        Some(_) => "scoped",
    };
    out.push(format!("scope {scope}"));
    Some(out)
}

/// The keys one level down, null values marked: trove's instance `PUT`s
/// (`{"instance": {"name": ...}}`, `{"instance": {"configuration": null}}`)
/// and its `resize` of a flavor or of a volume.
fn inner_keys(body: &Value) -> Option<Vec<String>> {
    let mark = |key: String, value: &Value| if value.is_null() { key + "=null" } else { key };
    let mut keys = Vec::new();
    for (key, value) in body.as_object()? {
        keys.push(mark(key.clone(), value));
        if let Some(inner) = value.as_object() {
            keys.extend(inner.iter().map(|(k, v)| mark(format!("{key}.{k}"), v)));
        }
    }
    keys.sort();
    Some(keys)
}

/// A path template, with the prefixes [`normalize`] takes off.
struct Template {
    segments: Vec<Segment>,
    /// Query parameters the template names (`?{usage}=True`): required.
    query: Vec<String>,
    /// Swift's `{object}` at the end: object names may hold `/`.
    greedy_tail: bool,
}

enum Segment {
    Literal(String),
    Param,
}

/// How well a template fits: literal segments from the left first (so
/// `/volumes/detail` beats `/volumes/{volume_id}`), then named query
/// parameters.
type Rank = (Vec<bool>, usize);

impl Template {
    fn parse(api: Api, path: &str) -> Template {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut raw = split_template(path);
        normalize(api, &mut raw, |s| s.starts_with('{'));
        let greedy_tail = api == Api::ObjectStore && raw.last().is_some_and(|s| s == "{object}");
        let segments = raw
            .into_iter()
            .map(|s| {
                if s.starts_with('{') {
                    Segment::Param
                } else {
                    Segment::Literal(s)
                }
            })
            .collect();
        let query = query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .map(|k| k.trim_matches(|c| c == '{' || c == '}').to_string())
            .filter(|k| !k.is_empty())
            .collect();
        Template {
            segments,
            query,
            greedy_tail,
        }
    }

    fn rank(&self, path: &[String], query: &[&str]) -> Option<Rank> {
        let n = self.segments.len();
        let fits_len = path.len() == n || self.greedy_tail && path.len() > n;
        if !fits_len || !self.query.iter().all(|q| query.contains(&q.as_str())) {
            return None;
        }
        let mut literals = Vec::with_capacity(n);
        for (segment, part) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(l) if l == part => literals.push(true),
                Segment::Literal(_) => return None,
                Segment::Param => literals.push(false),
            }
        }
        Some((literals, self.query.len()))
    }
}

/// A template's segments: `/` inside `{...}` (neutron's
/// `{tap_service_id/name}`) does not split.
fn split_template(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("never empty").push(c);
    }
    out.retain(|s| !s.is_empty());
    out
}

fn request_segments(api: Api, path: &str) -> Vec<String> {
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    normalize(api, &mut segments, looks_like_project_id);
    segments
}

/// Takes off what the api-ref's paths do not write, on a request's
/// segments and a template's alike: devstack's mount point (`/identity`,
/// `/compute`, ...), nova's version (`/v2.1`: its paths have none) and the
/// project id nova's legacy URLs carry after it. A cinder path without the
/// project id (optional since 3.67) gets a stand-in for it. `is_project`
/// tells a project id segment (in a template, any param).
fn normalize(api: Api, segments: &mut Vec<String>, is_project: impl Fn(&str) -> bool) {
    let mount = match api {
        Api::Identity => "identity",
        Api::Image => "image",
        Api::Compute => "compute",
        Api::Network => "networking",
        Api::Placement => "placement",
        Api::BlockStorage => "volume",
        Api::ObjectStore | Api::Database => "",
    };
    if segments.first().is_some_and(|s| s == mount) {
        segments.remove(0);
    }
    let first = |segments: &[String]| segments.first().cloned().unwrap_or_default();
    match api {
        // `/v2.1` alone is the version document (`/{api_version}/`).
        Api::Compute if segments.len() > 1 => {
            if matches!(first(segments).as_str(), "v2.1" | "v2") {
                segments.remove(0);
            }
            if segments.len() > 1 && is_project(&first(segments)) {
                segments.remove(0);
            }
        }
        Api::BlockStorage
            if segments.len() > 1 && segments[0] == "v3" && !is_project(&segments[1]) =>
        {
            segments.insert(1, "{project_id}".to_string());
        }
        _ => {}
    }
}

/// A keystone project id: 32 hex digits, or a UUID with dashes.
fn looks_like_project_id(s: &str) -> bool {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    (s.len() == 32 && hex(s))
        || (s.len() == 36
            && s.split('-').map(str::len).eq([8, 4, 4, 4, 12])
            && hex(&s.replace('-', "")))
}
