//! `tracer flow start|stop|list|delete`, and the stop-then-flush step that
//! `record` shares.

use super::admin_client::{self, FlushOutcome, FLUSH_TIMEOUT};
use super::{out, table, FlowCommand};
use crate::config::Config;
use crate::model::{Flow, FlowSummary};
use crate::present::json;
use crate::store::Store;
use crate::timefmt::{now_micros, rfc3339, short};

pub async fn run(store: &dyn Store, config: &Config, cmd: FlowCommand) -> anyhow::Result<()> {
    match cmd {
        FlowCommand::Start { name, title } => {
            let flow = store
                .start_flow(&name, title.as_deref(), now_micros())
                .await?;
            out::line(format_args!(
                "started flow {} at {}",
                flow.name,
                rfc3339(flow.started_at)
            ))?;
        }
        FlowCommand::Stop { name } => {
            let (flow, was_open) = stop_and_flush(store, config, name.as_deref()).await?;
            if was_open {
                out::line(stopped_line(store, &flow).await?)?;
            } else {
                out::line(format_args!(
                    "flow {} was already stopped at {}",
                    flow.name,
                    rfc3339(flow.stopped_at.unwrap_or_default())
                ))?;
            }
        }
        FlowCommand::List { json } => {
            let flows = store.list_flows().await?;
            if json {
                for f in &flows {
                    out::line(json::flow_summary(f))?;
                }
            } else if flows.is_empty() {
                eprintln!("no flows yet (start one with `tracer flow start NAME` or `tracer record NAME -- CMD`)");
            } else {
                out::text(flow_table(&flows))?;
            }
        }
        FlowCommand::Delete { name } => {
            store.delete_flow(&name).await?;
            out::line(format_args!(
                "deleted flow {name} (its exchanges stay in the database)"
            ))?;
        }
    }
    Ok(())
}

/// Closes the flow's window, then waits for a running daemon to store what
/// it has answered, so an export right after is complete. Closing first
/// means no new exchange joins while we wait. Returns the flow and whether
/// this call closed it.
pub async fn stop_and_flush(
    store: &dyn Store,
    config: &Config,
    name: Option<&str>,
) -> anyhow::Result<(Flow, bool)> {
    let at = now_micros();
    let flow = store.stop_flow(name, at).await?;
    let closed_now = flow.stopped_at.is_some_and(|t| t >= at);
    if closed_now {
        if let Some(warning) = flush_daemon(config).await {
            eprintln!("tracer: warning: {warning}");
        }
    }
    Ok((flow, closed_now))
}

/// None when the daemon confirmed, or when no daemon runs.
async fn flush_daemon(config: &Config) -> Option<String> {
    let addr = admin_client::admin_address(config.admin.listen);
    match admin_client::flush(addr, FLUSH_TIMEOUT).await {
        FlushOutcome::Flushed { still_streaming: 0 } | FlushOutcome::NoDaemon => None,
        FlushOutcome::Flushed { still_streaming } => Some(format!(
            "{still_streaming} exchange(s) answered before the stop were still streaming; each is stored when it ends"
        )),
        FlushOutcome::TimedOut => Some(format!(
            "the daemon at {addr} did not confirm within {}s that the flow's exchanges are stored; an export now may miss the last ones",
            FLUSH_TIMEOUT.as_secs()
        )),
        FlushOutcome::Failed(why) => Some(format!(
            "could not confirm that a daemon stored every exchange of the flow: {why}"
        )),
    }
}

/// `stopped flow NAME: 12 exchanges (keystone, glance)`.
pub async fn stopped_line(store: &dyn Store, flow: &Flow) -> anyhow::Result<String> {
    let summary = store
        .list_flows()
        .await?
        .into_iter()
        .find(|s| s.flow.name == flow.name);
    let mut line = format!("stopped flow {}", flow.name);
    if let Some(s) = summary {
        line.push_str(&format!(": {}", count_text(store, &s).await?));
        if !s.services.is_empty() {
            line.push_str(&format!(" ({})", s.services.join(", ")));
        }
    }
    Ok(line)
}

async fn count_text(store: &dyn Store, s: &FlowSummary) -> anyhow::Result<String> {
    let noun = if s.exchanges == 1 {
        "exchange"
    } else {
        "exchanges"
    };
    let mut text = format!("{} {noun}", s.exchanges);
    if s.lost > 0 {
        text.push_str(&format!(", {} lost", s.lost));
        let losses = store
            .losses(s.flow.started_at, s.flow.stopped_at.unwrap_or(i64::MAX))
            .await?;
        let causes: Vec<String> = losses
            .iter()
            .map(|l| match &l.detail {
                Some(d) => format!("{} {}: {d}", l.count, l.cause.describe()),
                None => format!("{} {}", l.count, l.cause.describe()),
            })
            .collect();
        if !causes.is_empty() {
            text.push_str(&format!(" ({})", causes.join("; ")));
        }
    }
    Ok(text)
}

fn flow_table(flows: &[FlowSummary]) -> String {
    let rows: Vec<Vec<String>> = flows
        .iter()
        .map(|s| {
            vec![
                s.flow.name.clone(),
                short(s.flow.started_at),
                s.flow.stopped_at.map_or("(open)".into(), short),
                if s.lost > 0 {
                    format!("{} ({} lost)", s.exchanges, s.lost)
                } else {
                    s.exchanges.to_string()
                },
                s.services.join(", "),
                s.flow.title.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "STARTED",
            "STOPPED",
            "EXCHANGES",
            "SERVICES",
            "TITLE",
        ],
        &rows,
    )
}
