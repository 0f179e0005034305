//! The JSON API (docs/api.md). Every exchange and flow object is built by
//! `present::json`, so the API, `tracer list --json`, `tracer show --json` and
//! `tracer flow list --json` agree field for field.

use super::fetch;
use super::query::{self, ExchangeQuery, DEFAULT_LIMIT};
use super::reply::{self, Reply, WebResult};
use super::views::ServiceView;
use super::App;
use crate::present::json;
use crate::render::events::{events, Side};
use crate::render::{har, RenderOptions};
use crate::timefmt::rfc3339;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// How long `POST /api/flush` waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

/// `GET /api/flows`: `{"flows": [...]}`, oldest first.
pub async fn flows(app: &App) -> WebResult<Value> {
    let flows = app.state.store.list_flows().await?;
    Ok(json!({ "flows": flows.iter().map(json::flow_summary).collect::<Vec<_>>() }))
}

/// `GET /api/flows/{name}`: the flow, its exchanges as list rows, and the
/// numbered events of its pages.
pub async fn flow(app: &App, name: &str) -> WebResult<Value> {
    let store = app.state.store.as_ref();
    let summary = fetch::flow_summary(store, name).await?;
    let xs = fetch::flow_exchanges(store, &summary.flow, false).await?;
    let events: Vec<Value> = events(&xs)
        .iter()
        .map(|e| {
            json!({
                "n": e.number,
                "side": match e.side { Side::Request => "request", Side::Response => "response" },
                "id": e.exchange.id,
                "title": e.title(),
            })
        })
        .collect();
    Ok(json!({
        "flow": json::flow_summary(&summary),
        "exchanges": xs.iter().map(json::exchange_summary).collect::<Vec<_>>(),
        "events": events,
    }))
}

/// `GET /api/flows/{name}/har[?redact=1]`: the HAR `tracer export --format
/// har` writes, as a download.
pub async fn flow_har(app: &App, name: &str, query: &str) -> WebResult<Reply> {
    let mut redact = false;
    for (k, v) in query::params(query, &["redact"])? {
        if k == "redact" {
            redact = query::boolean("redact", &v)?;
        }
    }
    let store = app.state.store.as_ref();
    let flow = store.get_flow(name).await?;
    let xs = fetch::flow_exchanges(store, &flow, true).await?;
    let opts = RenderOptions {
        redact,
        ..Default::default()
    };
    let text = har::har_json(&flow, &xs, &opts);
    Ok(reply::attachment(
        "application/json",
        &format!("{name}.har"),
        text,
    ))
}

/// `GET /api/exchanges?...`: list rows (as `tracer list --json`), oldest
/// first; `more` says older rows matched but the limit left them out.
pub async fn exchanges(app: &App, query: &str) -> WebResult<Value> {
    let q = ExchangeQuery::parse(query)?;
    let (xs, more) = fetch::exchanges(app.state.store.as_ref(), &q, DEFAULT_LIMIT).await?;
    Ok(json!({
        "exchanges": xs.iter().map(json::exchange_summary).collect::<Vec<_>>(),
        "more": more,
    }))
}

/// `GET /api/exchanges/{id}`: everything recorded, as `tracer show --json`.
pub async fn exchange(app: &App, key: &str) -> WebResult<Value> {
    let x = fetch::exchange(app.state.store.as_ref(), key).await?;
    Ok(json::exchange_full(&x))
}

/// `GET /api/stats`: the capture counters, the services, how long the
/// daemon has run.
pub fn stats(app: &App) -> Value {
    json!({
        "queue": app.state.queue.stats(),
        "services": app.state.services.iter().map(ServiceView::new).collect::<Vec<_>>(),
        "started_at": rfc3339(app.started_at),
        "uptime_secs": app.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// `POST /api/flush`: answers once every exchange the daemon has answered
/// is in the database (how `tracer flow stop` knows an export is complete).
pub async fn flush(app: &App) -> Reply {
    let flushed = app.state.queue.flush(FLUSH_WAIT).await;
    let status = if flushed.stored {
        StatusCode::OK
    } else {
        StatusCode::GATEWAY_TIMEOUT
    };
    reply::json(
        status,
        &json!({
            "flushed": flushed.stored,
            "still_streaming": flushed.still_streaming,
            "queue": app.state.queue.stats(),
        }),
    )
}
