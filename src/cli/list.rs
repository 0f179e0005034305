//! `tracer list`: captured exchanges, newest last, as a table or JSON lines.

use super::{json, table, ListArgs};
use crate::model::{Exchange, Micros};
use crate::store::{ExchangeFilter, Store};
use crate::timefmt::{now_micros, parse_user_time, short};
use anyhow::{anyhow, bail};

/// Targets longer than this are shortened in the table (never in JSON).
const TARGET_WIDTH: usize = 60;

pub async fn run(store: &dyn Store, args: &ListArgs) -> anyhow::Result<()> {
    let filter = filter_for(store, args).await?;
    let exchanges = store.list_exchange_heads(&filter).await?;
    if args.json {
        for ex in &exchanges {
            println!("{}", json::exchange_summary(ex));
        }
    } else if exchanges.is_empty() {
        eprintln!("no exchanges match");
    } else {
        print!("{}", exchange_table(&exchanges));
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

/// `2026-11-23 18:54:02.123`
pub fn time_ms(at: Micros) -> String {
    format!("{}.{:03}", short(at), at.rem_euclid(1_000_000) / 1000)
}

pub fn status_text(ex: &Exchange) -> String {
    match (ex.status, &ex.error) {
        (Some(s), _) => match ex.reason.as_deref() {
            Some(r) if !r.is_empty() => format!("{s} {r}"),
            _ => s.to_string(),
        },
        (None, Some(_)) => "error".into(),
        (None, None) => "-".into(),
    }
}

pub fn duration(micros: i64) -> String {
    if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1000.0)
    } else {
        format!("{:.2}s", micros as f64 / 1_000_000.0)
    }
}

pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
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

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(1536), "1.5K");
        assert_eq!(size(3 * 1024 * 1024), "3.0M");
        assert_eq!(duration(12_345), "12.3ms");
        assert_eq!(duration(2_500_000), "2.50s");
        assert_eq!(time_ms(1_700_000_000_123_456), "2023-11-14 22:13:20.123");
    }
}
