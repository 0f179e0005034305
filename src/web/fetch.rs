//! The store reads behind both the JSON API and the pages, so the two show
//! the same rows.

use super::query::ExchangeQuery;
use super::reply::{WebError, WebResult};
use crate::model::{Exchange, Flow, FlowSummary};
use crate::store::{ExchangeFilter, Store, StoreError};

/// One flow with what `flow list` says about it; 404 when there is none.
pub async fn flow_summary(store: &dyn Store, name: &str) -> WebResult<FlowSummary> {
    store
        .list_flows()
        .await?
        .into_iter()
        .find(|s| s.flow.name == name)
        .ok_or_else(|| StoreError::UnknownFlow(name.to_string()).into())
}

/// The flow's exchanges in event order, ignored ones left out as the pages
/// leave them out. `bodies`: with the kept body bytes (the diagram's
/// placeholders and the HAR read them), or heads only (tables).
pub async fn flow_exchanges(
    store: &dyn Store,
    flow: &Flow,
    bodies: bool,
) -> WebResult<Vec<Exchange>> {
    let filter = ExchangeFilter::for_flow(flow);
    let mut xs = if bodies {
        store.list_exchanges(&filter).await?
    } else {
        store.list_exchange_heads(&filter).await?
    };
    // Whatever the backend did with the flag, ignored ones stay out.
    xs.retain(|x| !x.ignored);
    Ok(xs)
}

/// One exchange by row id, uuid or request id; 404 when there is none.
pub async fn exchange(store: &dyn Store, key: &str) -> WebResult<Exchange> {
    store.get_exchange(key).await?.ok_or_else(|| {
        WebError::not_found(format!("no exchange with id, uuid or request id {key:?}"))
    })
}

/// An exchange list (heads only), oldest first, and whether older rows
/// matched but were left out by the limit.
pub async fn exchanges(
    store: &dyn Store,
    q: &ExchangeQuery,
    default_limit: i64,
) -> WebResult<(Vec<Exchange>, bool)> {
    let limit = q.effective_limit(default_limit);
    let filter = q.filter(store, limit).await?;
    let mut xs = store.list_exchange_heads(&filter).await?;
    if !q.all {
        xs.retain(|x| !x.ignored);
    }
    let more = match limit {
        Some(n) if xs.len() as i64 > n => {
            let extra = xs.len() - n as usize;
            xs.drain(..extra);
            true
        }
        _ => false,
    };
    Ok((xs, more))
}

/// The flows whose window holds the exchange, with the number of its
/// request event in each (for "event N of flow F" links).
pub async fn flows_of(store: &dyn Store, x: &Exchange) -> WebResult<Vec<(String, Option<usize>)>> {
    let mut out = Vec::new();
    for s in store.list_flows().await? {
        if !s.flow.contains(x.started_at) {
            continue;
        }
        let number = if x.ignored {
            None
        } else {
            let xs = flow_exchanges(store, &s.flow, false).await?;
            crate::render::events::events(&xs)
                .iter()
                .find(|e| e.is_request() && e.exchange.id == x.id)
                .map(|e| e.number)
        };
        out.push((s.flow.name, number));
    }
    Ok(out)
}
