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
use crate::render::diagram::diagram;
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
    let mut flows: Vec<FlowRow> = app
        .state
        .store
        .list_flows()
        .await?
        .iter()
        .map(FlowRow::new)
        .collect();
    flows.reverse();
    let services: Vec<ServiceView> = app.state.services.iter().map(ServiceView::new).collect();
    page(
        app,
        "flows.html",
        context! {
            flows => Serde(flows),
            stats => Serde(app.state.queue.stats()),
            uptime => uptime(app.started.elapsed().as_secs()),
            started => crate::timefmt::short(app.started_at),
            services => Serde(services),
        },
    )
}

/// `/flows/{name}`: the sequence diagram and the numbered events.
pub async fn flow(app: &App, name: &str) -> WebResult<Reply> {
    let store = app.state.store.as_ref();
    let summary = fetch::flow_summary(store, name).await?;
    // With bodies: the diagram names IDs after the bodies they come from.
    let xs = fetch::flow_exchanges(store, &summary.flow, true).await?;
    let evs = events(&xs);
    let (lines, names) = diagram(&xs);
    let diagram_src = (!xs.is_empty()).then(|| {
        let mut s = String::from("sequenceDiagram\nautonumber\n");
        for l in &lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    });
    let variables: Vec<VariableView> = names.used().into_iter().map(VariableView::new).collect();
    page(
        app,
        "flow.html",
        context! {
            flow => Serde(FlowRow::new(&summary)),
            command => Serde(summary.flow.command.as_ref().map(CommandView::new)),
            diagram => diagram_src,
            variables => Serde(variables),
            events => Serde(evs.iter().map(EventRow::new).collect::<Vec<_>>()),
            calls => xs.len(),
        },
    )
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
    page(
        app,
        "exchanges.html",
        context! {
            q => Serde(&q),
            limit => q.effective_limit(PAGE_LIMIT),
            rows => Serde(xs.iter().map(ExchangeRow::new).collect::<Vec<_>>()),
            more => more,
            flows => flows,
            services => services,
            methods => Serde(METHODS),
            api_query => query,
        },
    )
}

/// `/exchanges/{id}`: one exchange in full.
pub async fn exchange(app: &App, key: &str) -> WebResult<Reply> {
    let store = app.state.store.as_ref();
    let x = fetch::exchange(store, key).await?;
    let flows: Vec<Value> = fetch::flows_of(store, &x)
        .await?
        .into_iter()
        .map(|(name, n)| context! { name => name, n => n })
        .collect();
    page(
        app,
        "exchange.html",
        context! { x => Serde(ExchangeView::new(&x)), flows => flows },
    )
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

    #[test]
    fn uptimes_read_well() {
        assert_eq!(uptime(12), "12s");
        assert_eq!(uptime(249), "4m 09s");
        assert_eq!(uptime(7500), "2h 05m");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
