//! The HTML pages: fetch (`fetch.rs`), shape (`views.rs`), render
//! (`templates/`). Server-rendered; the only scripts are mermaid (the
//! diagram) and tracer.js (renders it, refreshes the live counters).

use super::fetch;
use super::query::ExchangeQuery;
use super::reply::{self, Reply, WebError, WebResult};
use super::views::{
    CommandView, EventRow, ExchangeRow, ExchangeView, FlowRow, ServiceView, VariableView,
};
use super::App;
use crate::capture::QueueStats;
use crate::model::{Exchange, FlowSummary, Micros};
use crate::render::diagram::{diagram, lines_md};
use crate::render::events::events;
use hyper::StatusCode;
use minijinja::context;
use minijinja::value::{Serde, Value};

/// Rows of `/exchanges` when no limit is asked for.
const PAGE_LIMIT: i64 = 100;

/// The methods the filter form offers (OpenStack's, and swift's COPY).
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY",
];

/// Which body of an exchange a raw download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Request,
    Response,
}

fn page(app: &App, template: &str, ctx: Value) -> WebResult<Reply> {
    Ok(reply::html(
        StatusCode::OK,
        app.templates.render(template, ctx)?,
    ))
}

/// An error as a page (the API answers JSON instead).
pub fn error(app: &App, e: &WebError) -> Reply {
    let ctx = context! {
        status => e.status.as_u16(),
        reason => e.status.canonical_reason().unwrap_or(""),
        message => e.message.clone(),
    };
    match app.templates.render("error.html", ctx) {
        Ok(html) => reply::html(e.status, html),
        // The error page itself failed: say both, as text.
        Err(e2) => reply::bytes(
            e.status,
            "text/plain; charset=utf-8",
            format!("{}\n{}\n", e.message, e2.message),
        ),
    }
}

/// `3d 4h`, `2h 05m`, `4m 09s`, `12s`.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `/`: the flows, newest first, and the live capture counters.
pub async fn home(app: &App) -> WebResult<Reply> {
    let flows = app.state.store.list_flows().await?;
    let ctx = home_context(
        &flows,
        app.state.queue.stats(),
        app.started.elapsed().as_secs(),
        app.started_at,
        &app.state.services,
    );
    page(app, "flows.html", ctx)
}

fn home_context(
    flows: &[FlowSummary],
    stats: QueueStats,
    uptime_secs: u64,
    started_at: Micros,
    services: &[(String, String, String)],
) -> Value {
    let flows: Vec<FlowRow> = flows.iter().rev().map(FlowRow::new).collect();
    let services: Vec<ServiceView> = services.iter().map(ServiceView::new).collect();
    context! {
        flows => Serde(flows),
        stats => Serde(stats),
        uptime => uptime(uptime_secs),
        started => crate::timefmt::short(started_at),
        services => Serde(services),
    }
}

/// `/flows/{name}`: the sequence diagram and the numbered events.
pub async fn flow(app: &App, name: &str) -> WebResult<Reply> {
    let store = app.state.store.as_ref();
    let summary = fetch::flow_summary(store, name).await?;
    // With bodies: the diagram names IDs after the bodies they come from.
    let xs = fetch::flow_exchanges(store, &summary.flow, true).await?;
    page(app, "flow.html", flow_context(&summary, &xs))
}

fn flow_context(summary: &FlowSummary, xs: &[Exchange]) -> Value {
    let evs = events(xs);
    let (lines, names) = diagram(xs);
    let diagram_src =
        (!xs.is_empty()).then(|| format!("sequenceDiagram\nautonumber\n{}", lines_md(&lines)));
    let variables: Vec<VariableView> = names.used().into_iter().map(VariableView::new).collect();
    context! {
        flow => Serde(FlowRow::new(summary)),
        command => Serde(summary.flow.command.as_ref().map(CommandView::new)),
        diagram => diagram_src,
        variables => Serde(variables),
        events => Serde(evs.iter().map(EventRow::new).collect::<Vec<_>>()),
        calls => xs.len(),
    }
}

/// `/exchanges`: recent exchanges, filtered, newest last.
pub async fn exchanges(app: &App, query: &str) -> WebResult<Reply> {
    let q = ExchangeQuery::parse(query)?;
    let store = app.state.store.as_ref();
    let (xs, more) = fetch::exchanges(store, &q, PAGE_LIMIT).await?;
    let flows: Vec<String> = store
        .list_flows()
        .await?
        .into_iter()
        .rev()
        .map(|s| s.flow.name)
        .collect();
    let services: Vec<String> = app.state.services.iter().map(|s| s.0.clone()).collect();
    let ctx = exchanges_context(&q, query, &xs, more, flows, services);
    page(app, "exchanges.html", ctx)
}

fn exchanges_context(
    q: &ExchangeQuery,
    query: &str,
    xs: &[Exchange],
    more: bool,
    flows: Vec<String>,
    services: Vec<String>,
) -> Value {
    context! {
        q => Serde(q),
        limit => q.effective_limit(PAGE_LIMIT),
        rows => Serde(xs.iter().map(ExchangeRow::new).collect::<Vec<_>>()),
        more => more,
        flows => flows,
        services => services,
        methods => Serde(METHODS),
        api_query => query,
    }
}

/// `/exchanges/{id}`: one exchange in full.
pub async fn exchange(app: &App, key: &str) -> WebResult<Reply> {
    let store = app.state.store.as_ref();
    let x = fetch::exchange(store, key).await?;
    let flows = fetch::flows_of(store, &x).await?;
    page(app, "exchange.html", exchange_context(&x, flows))
}

fn exchange_context(x: &Exchange, flows: Vec<(String, Option<usize>)>) -> Value {
    let flows: Vec<Value> = flows
        .into_iter()
        .map(|(name, n)| context! { name => name, n => n })
        .collect();
    context! { x => Serde(ExchangeView::new(x)), flows => flows }
}

/// `/exchanges/{id}/request.body`, `.../response.body`: the kept bytes as
/// they were recorded (still compressed if they were).
pub async fn body(app: &App, key: &str, part: Part) -> WebResult<Reply> {
    let x = fetch::exchange(app.state.store.as_ref(), key).await?;
    let (b, name) = match part {
        Part::Request => (&x.request_body, "request"),
        Part::Response => (&x.response_body, "response"),
    };
    if part == Part::Response && x.status.is_none() {
        return Err(WebError::not_found(format!(
            "exchange {} got no response",
            x.id
        )));
    }
    Ok(reply::attachment(
        "application/octet-stream",
        &format!("exchange-{}-{name}.body", x.id),
        b.kept.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BodyRecord, Flow, HeaderField, RecordedCommand};
    use crate::render::events::tests::exchange;
    use crate::web::templates::Templates;

    fn render(name: &str, ctx: Value) -> String {
        Templates::new()
            .render(name, ctx)
            .unwrap_or_else(|e| panic!("{name}: {}", e.message))
    }

    fn summary(flow: Flow, xs: &[Exchange], lost: i64) -> FlowSummary {
        FlowSummary {
            flow,
            exchanges: xs.len() as i64,
            services: vec!["glance".into()],
            lost,
        }
    }

    /// The branches a live daemon seldom shows: a recorded command, calls
    /// nobody answered, a 502 of the proxy's own, ignored and binary and
    /// compressed bodies, empty lists. Every one renders, escaped.
    #[test]
    fn every_branch_of_the_templates_renders() {
        let evil = "<img src=x onerror=alert(1)>";
        let mut refused = exchange("openstack", "nova", "GET", "/v2.1/servers", (1, None), None);
        refused.error = Some(format!("upstream refused {evil}").into());
        let mut gateway = exchange(
            "openstack",
            "glance",
            "GET",
            "/v2/images",
            (2, Some(3)),
            Some((502, "Bad Gateway")),
        );
        gateway.error = Some("upstream timed out".into());
        let mut upload = exchange(
            "openstack",
            "glance",
            "PUT",
            "/v2/images/x/file",
            (4, Some(5)),
            Some((204, "No Content")),
        );
        upload.request_headers = vec![HeaderField::new("Content-Type", "application/octet-stream")];
        upload.request_body = BodyRecord {
            kept: vec![0xfb; 64],
            size: 5 << 20,
            sha256: "cafe".into(),
        };
        upload.ignored = true;
        let xs = vec![refused.clone(), gateway, upload.clone()];
        let flow = Flow {
            name: "f".into(),
            title: Some(evil.into()),
            started_at: 0,
            stopped_at: Some(10),
            command: Some(RecordedCommand {
                argv: vec![
                    "openstack".into(),
                    "server".into(),
                    "list".into(),
                    evil.into(),
                ],
                stdout: b"+----+\n".to_vec(),
                stderr: evil.as_bytes().to_vec(),
                exit_status: Some(1),
            }),
        };

        let page = render(
            "flow.html",
            flow_context(&summary(flow.clone(), &xs, 2), &xs),
        );
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("exit status 1") && page.contains("2 lost"),
            "{page}"
        );
        assert!(page.contains("openstack-xnova: GET"), "{page}");
        assert!(page.contains("upstream refused &lt;img"), "{page}");
        assert!(page.contains(r#"id="ev-5""#), "{page}");

        let open = Flow {
            stopped_at: None,
            command: None,
            ..flow.clone()
        };
        let page = render(
            "flow.html",
            flow_context(&summary(open.clone(), &[], 0), &[]),
        );
        assert!(page.contains("yet: it is open"), "{page}");
        assert!(
            !page.contains("mermaid.min.js"),
            "no diagram, no mermaid: {page}"
        );

        let page = render(
            "flows.html",
            home_context(&[], QueueStats::default(), 5, 0, &[]),
        );
        assert!(page.contains("No flows yet"), "{page}");
        let flows = [summary(flow, &xs, 0), summary(open, &[], 3)];
        let services = [(
            "glance".to_string(),
            "0.0.0.0:19292".to_string(),
            "http://127.0.0.1:60999".to_string(),
        )];
        let stats = QueueStats {
            queued: 9,
            stored: 8,
            lost: 1,
            lost_queue_full: 1,
            write_errors: 0,
            ..Default::default()
        };
        let page = render(
            "flows.html",
            home_context(&flows, stats, 3700, 0, &services),
        );
        assert!(
            page.contains("badge open") && page.contains("badge closed"),
            "{page}"
        );
        assert!(
            page.contains("1h 01m") && page.contains("counter bad"),
            "{page}"
        );
        assert!(!page.contains("<img"), "{page}");

        let q = ExchangeQuery::parse("service=glance&all=1&limit=2").unwrap();
        let page = render(
            "exchanges.html",
            exchanges_context(
                &q,
                "service=glance&all=1&limit=2",
                &xs,
                true,
                vec!["f".into()],
                vec!["glance".into()],
            ),
        );
        assert!(
            page.contains("older ones match too") && page.contains(" checked"),
            "{page}"
        );
        assert!(page.contains("badge closed\">ignored"), "{page}");
        assert!(
            page.contains("/api/exchanges?service=glance&amp;all=1&amp;limit=2"),
            "{page}"
        );
        let page = render(
            "exchanges.html",
            exchanges_context(&ExchangeQuery::default(), "", &[], false, vec![], vec![]),
        );
        assert!(page.contains("No exchange matches"), "{page}");

        let page = render("exchange.html", exchange_context(&refused, vec![]));
        assert!(
            page.contains("No response came back: upstream refused &lt;img"),
            "{page}"
        );
        assert!(!page.contains("<img"), "{page}");
        let page = render(
            "exchange.html",
            exchange_context(&upload, vec![("f".into(), None)]),
        );
        assert!(
            page.contains("matched an ignore rule") && page.contains("(5.0M)"),
            "{page}"
        );
        assert!(page.contains("b&#x27;\\xfb"), "binary preview: {page}");
        assert!(page.contains(r#"href="/flows/f">f</a>"#), "{page}");

        let e = WebError::not_found(evil);
        let page = render(
            "error.html",
            context! { status => 404, reason => "Not Found", message => e.message },
        );
        assert!(page.contains("&lt;img") && !page.contains("<img"), "{page}");
    }

    #[test]
    fn uptimes_read_well() {
        assert_eq!(uptime(12), "12s");
        assert_eq!(uptime(249), "4m 09s");
        assert_eq!(uptime(7500), "2h 05m");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
