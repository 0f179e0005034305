//! Dispatch: config, logging, the runtime and the store every subcommand
//! needs, then the subcommand's own file.

use super::{
    flow, list, out, record, show, Cli, Command, ExportArgs, ExportFormat, FlowCommand, SiteArgs,
};
use crate::config::Config;
use crate::export::{self, ExportOptions, SiteOptions};
use anyhow::Context as _;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let serving = matches!(cli.command, Command::Serve);
    init_logging(if serving { "info" } else { "warn" });

    // ConfigError's message already names its cause; flattening it keeps
    // main's "error: cause" chain from saying it twice.
    let mut config = Config::load(crate::config::resolve_path(cli.config.as_deref()).as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(url) = cli.db {
        config.storage.url = url;
    }

    // The daemon wants every core; a CLI command is one short conversation
    // with the database.
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .context("cannot start the async runtime")?;

    runtime.block_on(dispatch(cli.command, config))
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    // Commands that only read open the database read-only: they work on a
    // read-only copy and never create or upgrade a database.
    let store = if reads_only(&command) {
        crate::store::open_read_only(&config.storage.url).await?
    } else {
        crate::store::open(&config.storage.url).await?
    };
    let done = run_command(command, config, &store).await;
    store.close().await;
    done
}

async fn run_command(
    command: Command,
    config: Config,
    store: &crate::store::SharedStore,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            crate::daemon::serve(config, store.clone()).await?;
        }
        Command::Flow(cmd) => flow::run(&**store, &config, cmd).await?,
        Command::Record {
            name,
            title,
            replace,
            cmd,
        } => {
            return record::run(&**store, &config, &name, title.as_deref(), replace, &cmd).await;
        }
        Command::List(args) => list::run(&**store, &args).await?,
        Command::Show { id, json } => {
            show::run(&**store, &id, json, &config.page_settings().apis).await?
        }
        Command::Export(args) => {
            let done = export::export_flow(&**store, &export_options(args, &config)).await?;
            warn_unmatched(&done.unmatched);
            for path in done.written {
                out::line(path.display())?;
            }
        }
        Command::Diff(args) => return diff(&**store, &args).await,
        Command::Site(args) => {
            let opts = site_options(args, &config);
            warn_unmatched(&export::write_site(&**store, &opts).await?);
            out::line(opts.out.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn diff(store: &dyn crate::store::Store, args: &super::DiffArgs) -> anyhow::Result<ExitCode> {
    let a = export::flow_exchanges(store, &store.get_flow(&args.a).await?, args.all).await?;
    let b = export::flow_exchanges(store, &store.get_flow(&args.b).await?, args.all).await?;
    let d = crate::diff::diff(&a, &b);
    out::text(crate::render::diff::text(&args.a, &args.b, &d))?;
    if let Some(dir) = &args.out {
        let page = crate::render::diff::page(&args.a, &args.b, &d);
        let path = export::OutDir::open(dir)?.write("index.md", page.as_bytes())?;
        eprintln!("tracer: wrote {}", path.display());
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Notes that found no place: one warning line each.
fn warn_unmatched(unmatched: &[String]) {
    for u in unmatched {
        eprintln!("tracer: warning: {u}");
    }
}

fn export_options(a: ExportArgs, config: &Config) -> ExportOptions {
    ExportOptions {
        notes: a.notes,
        strict: a.strict,
        pages: config.page_settings(),
        flow: a.flow,
        out: a.out,
        format: match a.format {
            ExportFormat::Mkdocs => export::ExportFormat::Mkdocs,
            ExportFormat::Har => export::ExportFormat::Har,
            ExportFormat::All => export::ExportFormat::All,
        },
        redact: a.redact,
        all: a.all,
    }
}

fn site_options(a: SiteArgs, config: &Config) -> SiteOptions {
    SiteOptions {
        pages: config.page_settings(),
        out: a.out,
        flows: a.flows,
        offline: a.offline,
        redact: a.redact,
        all: a.all,
        site_name: a.site_name,
    }
}

fn reads_only(command: &Command) -> bool {
    matches!(
        command,
        Command::List(_)
            | Command::Show { .. }
            | Command::Export(_)
            | Command::Site(_)
            | Command::Diff(_)
            | Command::Flow(FlowCommand::List { .. })
    )
}

/// Logs go to stderr (stdout is for results); `TRACER_LOG`, else `RUST_LOG`,
/// else `default` decides the level.
fn init_logging(default: &str) {
    let spec = ["TRACER_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    let filter = spec
        .and_then(|s| match EnvFilter::try_new(&s) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("tracer: ignoring log filter {s:?}: {e}");
                None
            }
        })
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
