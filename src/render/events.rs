//! The numbering every page shares: the flow's events in the order the proxy
//! saw them.
//!
//! An exchange gives one event when its request head arrived (`request_seq`)
//! and one more when a response head came back (`response_seq`). Sorting all
//! of them by that one process-wide counter puts a call that a service makes
//! while serving another call between that call's request and its response.

use crate::model::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// 1-based, as shown in `(N)`.
    pub number: usize,
    pub side: Side,
    pub exchange: &'a Exchange,
    /// Position of the exchange in the slice given to [`events`].
    pub index: usize,
}

impl Event<'_> {
    pub fn is_request(&self) -> bool {
        self.side == Side::Request
    }

    /// `POST /v2/images` or `201 Created /v2/images` (the target as sent,
    /// query included: two pages of a listing differ only there).
    pub fn title(&self) -> String {
        let x = self.exchange;
        match self.side {
            Side::Request => format!("{} {}", x.method, x.target),
            Side::Response => format!("{} {}", status_line(x), x.target),
        }
    }
}

/// `201 Created`, or just `201` when the upstream sent no reason phrase.
pub fn status_line(x: &Exchange) -> String {
    let status = x.status.map(|s| s.to_string()).unwrap_or_default();
    match x.reason.as_deref() {
        Some(r) if !r.is_empty() => format!("{status} {r}"),
        _ => status,
    }
}

/// Whether an exchange has a response event: a status came back, from the
/// upstream or from the proxy itself (502/504).
pub fn has_response(x: &Exchange) -> bool {
    x.status.is_some()
}

/// Every event of the exchanges, numbered from 1 in wire order.
pub fn events(exchanges: &[Exchange]) -> Vec<Event<'_>> {
    let mut keyed: Vec<(i64, Side, usize)> = Vec::with_capacity(exchanges.len() * 2);
    for (i, x) in exchanges.iter().enumerate() {
        keyed.push((x.request_seq, Side::Request, i));
        if has_response(x) {
            // A response never goes before its own request, whatever clocks
            // of two daemons sharing a database said.
            let seq = x.response_seq.unwrap_or(x.request_seq).max(x.request_seq);
            keyed.push((seq, Side::Response, i));
        }
    }
    keyed.sort();
    keyed
        .into_iter()
        .enumerate()
        .map(|(n, (_, side, index))| Event {
            number: n + 1,
            side,
            exchange: &exchanges[index],
            index,
        })
        .collect()
}

/// For each exchange (by index), the number of its request event.
pub fn request_numbers(events: &[Event<'_>], len: usize) -> Vec<usize> {
    let mut numbers = vec![0; len];
    for e in events.iter().filter(|e| e.is_request()) {
        numbers[e.index] = e.number;
    }
    numbers
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{BodyRecord, CallerSource};

    /// A minimal exchange for tests across the render modules.
    /// A body whose whole text is kept.
    pub(crate) fn body(s: &str) -> crate::model::BodyRecord {
        crate::model::BodyRecord {
            kept: s.as_bytes().to_vec(),
            size: s.len() as u64,
            sha256: String::new(),
        }
    }

    pub(crate) fn exchange(
        caller: &str,
        service: &str,
        method: &str,
        target: &str,
        seqs: (i64, Option<i64>),
        status: Option<(u16, &str)>,
    ) -> Exchange {
        Exchange {
            id: 0,
            uuid: String::new(),
            request_id: String::new(),
            service: service.into(),
            caller: caller.into(),
            caller_source: CallerSource::Header,
            client_addr: "127.0.0.1:40000".into(),
            upstream_url: format!("http://127.0.0.1:9000{target}"),
            method: method.into(),
            target: target.into(),
            request_version: "HTTP/1.1".into(),
            request_headers: vec![],
            request_body: BodyRecord::default(),
            status: status.map(|s| s.0),
            reason: status.map(|s| s.1.to_string()),
            response_version: status.map(|_| "HTTP/1.1".to_string()),
            response_headers: vec![],
            response_body: BodyRecord::default(),
            request_seq: seqs.0,
            response_seq: seqs.1,
            started_at: 1_700_000_000_000_000 + seqs.0,
            response_at: seqs.1.map(|s| 1_700_000_000_000_000 + s),
            finished_at: 1_700_000_000_000_000 + seqs.1.unwrap_or(seqs.0) + 1,
            error: None,
            ignored: false,
        }
    }

    #[test]
    fn nested_call_sits_between_request_and_response() {
        let xs = vec![
            exchange(
                "openstack",
                "glance",
                "POST",
                "/v2/images",
                (10, Some(40)),
                Some((201, "Created")),
            ),
            exchange(
                "glance",
                "keystone",
                "GET",
                "/v3/auth/tokens",
                (20, Some(30)),
                Some((200, "OK")),
            ),
        ];
        let ev = events(&xs);
        let got: Vec<(usize, String)> = ev.iter().map(|e| (e.number, e.title())).collect();
        assert_eq!(
            got,
            vec![
                (1, "POST /v2/images".to_string()),
                (2, "GET /v3/auth/tokens".to_string()),
                (3, "200 OK /v3/auth/tokens".to_string()),
                (4, "201 Created /v2/images".to_string()),
            ]
        );
        assert_eq!(request_numbers(&ev, 2), vec![1, 2]);
    }

    #[test]
    fn no_response_gives_one_event_and_responses_never_precede_requests() {
        let mut failed = exchange("a", "b", "GET", "/x", (5, None), None);
        failed.error = Some("connection refused".into());
        let skewed = exchange("a", "b", "GET", "/y", (7, Some(3)), Some((200, "OK")));
        let xs = vec![failed, skewed];
        let ev = events(&xs);
        let got: Vec<(Side, &str)> = ev
            .iter()
            .map(|e| (e.side, e.exchange.target.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Side::Request, "/x"),
                (Side::Request, "/y"),
                (Side::Response, "/y")
            ]
        );
    }

    #[test]
    fn status_without_reason() {
        let x = exchange("a", "b", "GET", "/", (1, Some(2)), Some((204, "")));
        assert_eq!(status_line(&x), "204");
    }
}
