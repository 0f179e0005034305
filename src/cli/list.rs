//! `tracer list`: captured exchanges, newest last, as a table or JSON lines.

use super::{out, table, ListArgs};
use crate::model::Exchange;
use crate::present::json;
use crate::present::units::{duration, size, status_text, time_ms};
use crate::store::{ExchangeFilter, Store};
use crate::timefmt::{now_micros, parse_user_time};
use anyhow::{anyhow, bail};

/// Targets longer than this are shortened in the table (never in JSON).
const TARGET_WIDTH: usize = 60;

pub async fn run(store: &dyn Store, args: &ListArgs) -> anyhow::Result<()> {
    let filter = filter_for(store, args).await?;
    let exchanges = store.list_exchange_heads(&filter).await?;
    if args.json {
        for ex in &exchanges {
            out::line(json::exchange_summary(ex))?;
        }
    } else if exchanges.is_empty() {
        eprintln!("no exchanges match");
    } else {
        out::text(exchange_table(&exchanges))?;
    }
    Ok(())
}

async fn filter_for(store: &dyn Store, args: &ListArgs) -> anyhow::Result<ExchangeFilter> {
    if args.limit.is_some_and(|n| n < 0) {
        bail!("--limit must be 0 or more");
    }
    let mut filter = ExchangeFilter {
        method: args.method.clone(),
        status: args.status,
        limit: args.limit,
        include_ignored: args.all,
        ..Default::default()
    };
    if let Some(name) = &args.flow {
        let flow = store.get_flow(name).await?;
        filter.from = Some(flow.started_at);
        filter.to = flow.stopped_at;
    }
    // --from/--to narrow a flow's window, they never widen it.
    let now = now_micros();
    if let Some(s) = &args.from {
        let t = parse_user_time(s, now).map_err(|e| anyhow!("--from: {e}"))?;
        filter.from = Some(filter.from.map_or(t, |f| f.max(t)));
    }
    if let Some(s) = &args.to {
        let t = parse_user_time(s, now).map_err(|e| anyhow!("--to: {e}"))?;
        filter.to = Some(filter.to.map_or(t, |f| f.min(t)));
    }
    Ok(filter)
}

fn exchange_table(exchanges: &[Exchange]) -> String {
    let rows: Vec<Vec<String>> = exchanges
        .iter()
        .map(|ex| {
            vec![
                ex.id.to_string(),
                time_ms(ex.started_at),
                format!("{} → {}", ex.caller, ex.service),
                ex.method.clone(),
                shorten(&ex.target, TARGET_WIDTH),
                status_text(ex),
                duration(ex.duration_micros()),
                format!(
                    "{}/{}",
                    size(ex.request_body.size),
                    size(ex.response_body.size)
                ),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "TIME (UTC)",
            "CALLER → SERVICE",
            "METHOD",
            "TARGET",
            "STATUS",
            "DURATION",
            "REQ/RESP",
        ],
        &rows,
    )
}

/// Keeps the start and the end of a long target, which tell most.
fn shorten(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    let tail = width / 3;
    let head = width - tail - 1;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_targets_keep_both_ends() {
        let t = format!("/v2/images/{}?limit=20", "a".repeat(100));
        let s = shorten(&t, 60);
        assert_eq!(s.chars().count(), 60);
        assert!(
            s.starts_with("/v2/images/aaa") && s.ends_with("?limit=20"),
            "{s}"
        );
        assert_eq!(shorten("/v3", 60), "/v3");
    }
}
