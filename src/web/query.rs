//! Query strings: `/api/exchanges` and `/exchanges` take the filters of
//! `tracer list`, so a script and the filter form ask the same question.
//!
//! An empty value means "not set" (what an empty form field sends); an
//! unknown or repeated parameter, or a value that does not parse, is a 400
//! that names it, rather than a filter silently left out.

use super::reply::{WebError, WebResult};
use crate::store::{ExchangeFilter, Store};
use crate::timefmt::{now_micros, parse_user_time};

/// Rows a list holds when no `limit` is given (and no `flow`).
pub const DEFAULT_LIMIT: i64 = 200;
/// The most rows one answer holds.
pub const MAX_LIMIT: i64 = 10_000;

/// The non-empty parameters of a query string, checked against `known`.
pub fn params(query: &str, known: &[&str]) -> WebResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !known.contains(&k.as_ref()) {
            return Err(WebError::bad_request(format!(
                "unknown query parameter {k:?} (known: {})",
                known.join(", ")
            )));
        }
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(WebError::bad_request(format!(
                "query parameter {k:?} is given twice"
            )));
        }
        out.push((k.into_owned(), v.to_string()));
    }
    Ok(out)
}

/// `1`, `true`, `yes`, `on` (a checked checkbox) or their opposites.
pub fn boolean(name: &str, v: &str) -> WebResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(WebError::bad_request(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

/// What an exchange list asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExchangeQuery {
    pub flow: Option<String>,
    pub service: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub limit: Option<i64>,
    pub all: bool,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl ExchangeQuery {
    pub const PARAMS: &'static [&'static str] = &[
        "flow", "service", "method", "status", "limit", "all", "from", "to",
    ];

    pub fn parse(query: &str) -> WebResult<Self> {
        let mut q = ExchangeQuery::default();
        for (k, v) in params(query, Self::PARAMS)? {
            match k.as_str() {
                "flow" => q.flow = Some(v),
                "service" => q.service = Some(v),
                "method" => {
                    if !v.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(WebError::bad_request(format!(
                            "method must be a method name such as GET, not {v:?}"
                        )));
                    }
                    q.method = Some(v.to_ascii_uppercase());
                }
                "status" => {
                    q.status = Some(
                        v.parse::<u16>()
                            .ok()
                            .filter(|s| (100..=599).contains(s))
                            .ok_or_else(|| {
                                WebError::bad_request(format!(
                                    "status must be a number from 100 to 599, not {v:?}"
                                ))
                            })?,
                    )
                }
                "limit" => {
                    q.limit = Some(
                        v.parse::<i64>()
                            .ok()
                            .filter(|n| (0..=MAX_LIMIT).contains(n))
                            .ok_or_else(|| {
                                WebError::bad_request(format!(
                                    "limit must be a number from 0 to {MAX_LIMIT}, not {v:?}"
                                ))
                            })?,
                    )
                }
                "all" => q.all = boolean("all", &v)?,
                "from" => q.from = Some(v),
                "to" => q.to = Some(v),
                _ => unreachable!("params() only lets known names through"),
            }
        }
        Ok(q)
    }

    /// The rows to return: `limit`, else all of a flow, else `default`.
    pub fn effective_limit(&self, default: i64) -> Option<i64> {
        match (self.limit, &self.flow) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(default),
        }
    }

    /// The store filter, asking for one row more than `limit` so that the
    /// caller can tell whether older rows were left out. A flow narrows
    /// the window to the flow's; `from`/`to` narrow it further, never widen.
    pub async fn filter(&self, store: &dyn Store, limit: Option<i64>) -> WebResult<ExchangeFilter> {
        let mut filter = ExchangeFilter {
            method: self.method.clone(),
            status: self.status,
            service: self.service.clone(),
            limit: limit.map(|n| n + 1),
            include_ignored: self.all,
            ..Default::default()
        };
        if let Some(name) = &self.flow {
            let flow = store.get_flow(name).await?;
            filter.from = Some(flow.started_at);
            filter.to = flow.stopped_at;
        }
        let now = now_micros();
        if let Some(s) = &self.from {
            let t =
                parse_user_time(s, now).map_err(|e| WebError::bad_request(format!("from: {e}")))?;
            filter.from = Some(filter.from.map_or(t, |f| f.max(t)));
        }
        if let Some(s) = &self.to {
            let t =
                parse_user_time(s, now).map_err(|e| WebError::bad_request(format!("to: {e}")))?;
            filter.to = Some(filter.to.map_or(t, |f| f.min(t)));
        }
        Ok(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_empty_means_unset() {
        let q =
            ExchangeQuery::parse("service=glance+api&method=post&status=201&limit=5&all=on&flow=")
                .unwrap();
        assert_eq!(q.service.as_deref(), Some("glance api"));
        assert_eq!(q.method.as_deref(), Some("POST"));
        assert_eq!(q.status, Some(201));
        assert_eq!(q.limit, Some(5));
        assert!(q.all);
        assert_eq!(q.flow, None);
        assert_eq!(ExchangeQuery::parse("").unwrap(), ExchangeQuery::default());
    }

    #[test]
    fn bad_queries_are_400_naming_the_parameter() {
        for (query, names) in [
            ("status=abc", "status"),
            ("status=99", "status"),
            ("limit=-1", "limit"),
            ("limit=10001", "limit"),
            ("all=maybe", "all"),
            ("method=GE%20T", "method"),
            ("colour=red", "colour"),
            ("service=a&service=b", "service"),
        ] {
            let e = ExchangeQuery::parse(query).unwrap_err();
            assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST, "{query}");
            assert!(e.message.contains(names), "{query}: {}", e.message);
        }
    }

    #[test]
    fn a_flow_lists_whole_unless_limited() {
        let mut q = ExchangeQuery::default();
        assert_eq!(q.effective_limit(50), Some(50));
        q.flow = Some("x".into());
        assert_eq!(q.effective_limit(50), None);
        q.limit = Some(3);
        assert_eq!(q.effective_limit(50), Some(3));
    }
}
