//! Named placeholders for the long IDs in diagram paths.
//!
//! A diagram reads better as `PUT /v2/images/{image_id}/file` than with the
//! UUID, but only where the flow itself shows where the ID came from: the
//! `id` of the image that `POST /v2/images` returned, the `project.id` of a
//! token keystone issued. Such origins are gathered from the JSON bodies in
//! event order (the first one names the value); a path segment equal to a
//! named value becomes `{name}`. Swift's `AUTH_<project>` account segment
//! is `{account}`, as the Swift API reference writes it.

use super::body;
use super::escape::code_span;
use super::events::{Event, Side};
use crate::model::Exchange;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Without braces: `image_id`.
    pub name: String,
    pub value: String,
    /// Where the value first appears, as Markdown.
    pub origin: String,
}

/// Every value the flow names, and which of them the diagram used.
#[derive(Debug, Default, Clone)]
pub struct Placeholders {
    vars: Vec<Variable>,
    by_value: HashMap<String, usize>,
    used: Vec<usize>,
}

/// A "long ID": a UUID, with or without dashes (OpenStack's two spellings).
pub fn is_long_id(s: &str) -> bool {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    let dashes = s.len() - hex.len();
    hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && (dashes == 0 || (dashes == 4 && s.len() == 36 && is_uuid_shape(s)))
}

fn is_uuid_shape(s: &str) -> bool {
    s.split('-').map(str::len).eq([8, 4, 4, 4, 12])
}

/// `images` → `image`, `policies` → `policy`, `addresses` → `address`.
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if word.ends_with("sses") || word.ends_with("xes") {
        word[..word.len() - 2].to_string()
    } else if word.ends_with('s') && !word.ends_with("ss") {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

/// The resource a path names: its last segment that is neither an ID nor a
/// version (`/v2/images` and `/v2/images/<id>` both give `image`).
fn resource_of(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .filter(|s| !s.is_empty() && !is_long_id(s) && !is_version(s) && !s.starts_with("AUTH_"))
        .map(|s| singular(&s.replace(['-', '.'], "_")))
        .next()
}

fn is_version(s: &str) -> bool {
    let rest = s.strip_prefix('v').or_else(|| s.strip_prefix('V'));
    rest.is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn is_account(segment: &str) -> bool {
    segment
        .strip_prefix("AUTH_")
        .is_some_and(|rest| !rest.is_empty())
}

impl Placeholders {
    /// Gathers the named values of a flow from its events' JSON bodies.
    pub fn find(events: &[Event<'_>]) -> Self {
        let mut p = Placeholders::default();
        for e in events {
            let x = e.exchange;
            let (record, headers) = match e.side {
                Side::Request => (&x.request_body, &x.request_headers),
                Side::Response => (&x.response_body, &x.response_headers),
            };
            if record.kept.is_empty() {
                continue;
            }
            let d = body::decode(record, headers);
            let ct = crate::model::header_str(headers, "content-type").unwrap_or_default();
            let Some(value) = body::parse_json(&d.bytes, &ct) else {
                continue;
            };
            let context = resource_of(x.path());
            let mut found = Vec::new();
            walk(&value, context.as_deref(), &mut String::new(), &mut found);
            for (name, id, json_path) in found {
                let origin = format!(
                    "{} in the body of ({}) {}",
                    code_span(&json_path),
                    e.number,
                    code_span(&e.title())
                );
                p.add(name, id, origin);
            }
        }
        // Swift accounts: named where a body first shows them (a catalog
        // endpoint URL), else where the path first does.
        for e in events {
            for seg in e.exchange.path().split('/').filter(|s| is_account(s)) {
                if p.by_value.contains_key(seg) {
                    continue;
                }
                let origin = origin_in_bodies(events, seg)
                    .unwrap_or_else(|| format!("the Swift account in the path of ({})", e.number));
                p.add("account".into(), seg.to_string(), origin);
            }
        }
        p
    }

    fn add(&mut self, name: String, value: String, origin: String) {
        if self.by_value.contains_key(&value) {
            return;
        }
        // Two different images in one flow: image_id, image_id_2.
        let taken = |n: &str| self.vars.iter().any(|v| v.name == n);
        let mut unique = name.clone();
        let mut k = 2;
        while taken(&unique) {
            unique = format!("{name}_{k}");
            k += 1;
        }
        self.by_value.insert(value.clone(), self.vars.len());
        self.vars.push(Variable {
            name: unique,
            value,
            origin,
        });
    }

    /// The path with every named segment replaced by `{name}`; remembers
    /// which names were used.
    pub fn apply(&mut self, path: &str) -> String {
        for seg in path.split('/') {
            if let Some(&i) = self.by_value.get(seg) {
                if !self.used.contains(&i) {
                    self.used.push(i);
                }
            }
        }
        self.substitute(path)
    }

    /// The path with every named segment replaced by `{name}`.
    pub fn substitute(&self, path: &str) -> String {
        path.split('/')
            .map(|seg| match self.by_value.get(seg) {
                Some(&i) => format!("{{{}}}", self.vars[i].name),
                None => seg.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The variables the diagram used, in order of first use.
    pub fn used(&self) -> Vec<&Variable> {
        self.used.iter().map(|&i| &self.vars[i]).collect()
    }

    pub fn all(&self) -> &[Variable] {
        &self.vars
    }
}

/// Collects `(name, id, json path)` for every long ID under a key `id`
/// (named after the object that holds it) or `*_id`.
fn walk(
    v: &Value,
    context: Option<&str>,
    path: &mut String,
    found: &mut Vec<(String, String, String)>,
) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match child {
                    Value::String(s) if is_long_id(s) => {
                        if k == "id" {
                            if let Some(c) = context {
                                found.push((format!("{c}_id"), s.clone(), path.clone()));
                            }
                        } else if k.ends_with("_id") {
                            found.push((k.clone(), s.clone(), path.clone()));
                        }
                    }
                    Value::Array(_) => {
                        // keystone's catalog lists services.
                        let item = if k == "catalog" {
                            "service".to_string()
                        } else {
                            singular(k)
                        };
                        walk(child, Some(&item), path, found);
                    }
                    _ => walk(child, Some(k), path, found),
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, context, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn origin_in_bodies(events: &[Event<'_>], needle: &str) -> Option<String> {
    events.iter().find_map(|e| {
        let x = e.exchange;
        let (record, headers) = match e.side {
            Side::Request => (&x.request_body, &x.request_headers),
            Side::Response => (&x.response_body, &x.response_headers),
        };
        let d = body::decode(record, headers);
        let hay = String::from_utf8_lossy(&d.bytes);
        hay.contains(needle).then(|| {
            format!(
                "seen in the body of ({}) {}",
                e.number,
                code_span(&e.title())
            )
        })
    })
}

/// The placeholders of a whole flow (gathered once per render).
pub fn for_flow(exchanges: &[Exchange]) -> Placeholders {
    Placeholders::find(&super::events::events(exchanges))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::render::events::{
        events,
        tests::{body, exchange},
    };

    const IMAGE: &str = "a42bfade-78ec-4c95-b7b4-272ba265072c";
    const PROJECT: &str = "de5af600557d44d0996e667499376dbb";
    const SERVICE_PROJECT: &str = "7c4cda7e4807414bbdfcb22b535a9802";

    fn flow() -> Vec<Exchange> {
        let mut token = exchange(
            "openstack",
            "keystone",
            "POST",
            "/identity/v3/auth/tokens",
            (1, Some(2)),
            Some((201, "CREATED")),
        );
        token.response_body = body(&format!(
            r#"{{"token":{{"user":{{"id":"f7a842b4104247debd7589051c5321fc","name":"admin"}},"project":{{"id":"{PROJECT}"}},
               "catalog":[{{"endpoints":[{{"url":"http://h:8080/v1/AUTH_{SERVICE_PROJECT}","id":"82c559324ad244beacb2fd0406f0298b"}}],"id":"628d3cea8d3b4615a4b047bae6112d0e","type":"object-store"}}]}}}}"#
        ));
        let mut create = exchange(
            "openstack",
            "glance-api",
            "POST",
            "/v2/images",
            (3, Some(4)),
            Some((201, "Created")),
        );
        create.response_body = body(&format!(
            r#"{{"name":"cirros","owner":"{PROJECT}","id":"{IMAGE}"}}"#
        ));
        let upload = exchange(
            "openstack",
            "glance-api",
            "PUT",
            &format!("/v2/images/{IMAGE}/file"),
            (5, Some(8)),
            Some((204, "No Content")),
        );
        let swift = exchange(
            "glance-api",
            "swift",
            "PUT",
            &format!("/v1/AUTH_{SERVICE_PROJECT}/glance/{IMAGE}"),
            (6, Some(7)),
            Some((201, "Created")),
        );
        let trove = exchange(
            "openstack",
            "trove",
            "GET",
            &format!("/v1.0/{PROJECT}/instances"),
            (9, Some(10)),
            Some((200, "OK")),
        );
        let unknown = exchange(
            "openstack",
            "nova",
            "GET",
            "/v2.1/servers/0b8f3a0e-1111-2222-3333-444455556666",
            (11, Some(12)),
            Some((404, "Not Found")),
        );
        vec![token, create, upload, swift, trove, unknown]
    }

    #[test]
    fn ids_with_a_seen_origin_are_named() {
        let xs = flow();
        let ev = events(&xs);
        let mut p = Placeholders::find(&ev);
        assert_eq!(p.apply(&xs[2].target), "/v2/images/{image_id}/file");
        assert_eq!(p.apply(&xs[3].target), "/v1/{account}/glance/{image_id}");
        assert_eq!(p.apply(&xs[4].target), "/v1.0/{project_id}/instances");
        // No origin in the flow: left as it is.
        assert_eq!(
            p.apply(&xs[5].target),
            "/v2.1/servers/0b8f3a0e-1111-2222-3333-444455556666"
        );
        let used: Vec<(&str, &str)> = p
            .used()
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            used,
            vec![
                ("image_id", IMAGE),
                ("account", &*format!("AUTH_{SERVICE_PROJECT}")),
                ("project_id", PROJECT)
            ]
        );
        let image = &p.used()[0];
        assert_eq!(
            image.origin,
            "`id` in the body of (4) `201 Created /v2/images`"
        );
        assert_eq!(
            p.used()[1].origin,
            "seen in the body of (2) `201 CREATED /identity/v3/auth/tokens`"
        );
        assert_eq!(
            p.used()[2].origin,
            "`token.project.id` in the body of (2) `201 CREATED /identity/v3/auth/tokens`"
        );
        // Nested context names: user, catalog service, endpoint.
        let names: Vec<&str> = p.all().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "user_id",
                "project_id",
                "endpoint_id",
                "service_id",
                "image_id",
                "account"
            ]
        );
    }

    #[test]
    fn same_name_different_values() {
        let mut a = exchange(
            "c",
            "glance",
            "POST",
            "/v2/images",
            (1, Some(2)),
            Some((201, "Created")),
        );
        a.response_body = body(r#"{"id":"11111111-2222-3333-4444-555555555555"}"#);
        let mut b = exchange(
            "c",
            "glance",
            "POST",
            "/v2/images",
            (3, Some(4)),
            Some((201, "Created")),
        );
        b.response_body = body(r#"{"id":"66666666-2222-3333-4444-555555555555"}"#);
        let xs = vec![a, b];
        let p = Placeholders::find(&events(&xs));
        let names: Vec<&str> = p.all().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["image_id", "image_id_2"]);
    }

    #[test]
    fn words() {
        assert!(is_long_id("a42bfade-78ec-4c95-b7b4-272ba265072c"));
        assert!(is_long_id("de5af600557d44d0996e667499376dbb"));
        assert!(!is_long_id("glance"));
        assert!(!is_long_id("a42bfade78ec-4c95-b7b4-272ba265072c-"));
        assert_eq!(singular("images"), "image");
        assert_eq!(singular("policies"), "policy");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("access"), "access");
        assert_eq!(resource_of("/v2.1/os-keypairs"), Some("os_keypair".into()));
        assert_eq!(
            resource_of("/image/v2/images/a42bfade-78ec-4c95-b7b4-272ba265072c"),
            Some("image".into())
        );
    }
}
