//! The command line (SPEC "Command line"): argument types and dispatch.
//! Each subcommand's work lives in its own file beside this one.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod admin_client;
mod commands;
mod flow;
mod list;
mod out;
mod record;
mod show;
mod table;
pub use commands::run;
pub use out::is_closed_pipe;

const ABOUT: &str =
    "Record the HTTP calls between the OpenStack CLI and its services, and turn them into pages.";

const LONG_ABOUT: &str = "\
tracer is a reverse proxy you put in front of the API services of a devstack.
It forwards every request unchanged (stamping X-Requestshook-Request-Id and
X-Requestshook-Request-From), stores each request/response pair in a database,
and exports a named flow as numbered mkdocs-material pages with a mermaid
sequence diagram.";

const AFTER_HELP: &str = "\
Typical session:
  tracer --config config/tracer.toml serve &          # the daemon
  tracer record image-create -- openstack image create --file cirros.img img1
  tracer export --flow image-create --out docs/image-create
  tracer flow list

Config: --config PATH, else $TRACER_CONFIG, else ./tracer.toml, else defaults
(database sqlite://tracer.db, admin UI on 127.0.0.1:8799, no services).";

#[derive(Debug, Parser)]
#[command(name = "tracer", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// TOML config file [default: $TRACER_CONFIG, else ./tracer.toml if present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding [storage].url: sqlite://PATH (created if missing) or postgres://...
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: one listener per [[service]], plus the admin listener.
    ///
    /// SIGTERM or SIGINT stops accepting, lets exchanges in flight finish
    /// (bounded by [proxy].shutdown_grace_secs), stores every captured
    /// exchange and exits 0.
    Serve,
    /// Open, close and list named flows.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Run a command inside a new flow and keep its output with the flow.
    ///
    /// Starts flow NAME, runs CMD with its output passed through to the
    /// terminal (and kept with the flow, up to 4 MiB per stream), stops the
    /// flow (waiting for a running daemon to store it) and exits with CMD's
    /// status: 128+N if CMD was killed by signal N, 127 if it was not found.
    /// Ctrl-C goes to CMD; the flow is stopped either way.
    #[command(after_help = "Example:\n  tracer record image-show -- openstack image show cirros")]
    Record {
        /// Flow name: [a-z0-9][a-z0-9._-]*, at most 128 characters
        name: String,
        /// A title for the flow's pages
        #[arg(long)]
        title: Option<String>,
        /// Replace a closed flow of that name (one whose command failed is
        /// replaced without asking)
        #[arg(long)]
        replace: bool,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// List captured exchanges, newest last.
    List(ListArgs),
    /// Show one exchange in full (by id, uuid or request id).
    ///
    /// Request line, headers as they crossed the proxy, body (text, or a
    /// hex preview), the response likewise, timing, the caller and how it
    /// was decided. --json prints everything as one object (docs/cli-json.md).
    Show {
        id: String,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Write a flow's pages (mkdocs), its HAR file, or both into DIR.
    Export(ExportArgs),
    /// Write a complete mkdocs project holding every flow (or the named ones).
    Site(SiteArgs),
    /// Compare two recordings of the same command, call by call.
    ///
    /// Calls are matched by caller, service, method and path (ids as the
    /// pages' {placeholders}); then their statuses, header names and JSON
    /// body fields are compared, with ids, tokens and times put aside.
    /// Exits 0 when there is no difference, 1 when there is.
    #[command(
        after_help = "Example:\n  tracer diff image-create image-create-2024.2 --out docs/diff"
    )]
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first flow (A)
    pub a: String,
    /// The second flow (B)
    pub b: String,
    /// Also write the differences as a page, DIR/index.md (mkdocs)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Include exchanges marked by [[ignore]] rules
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Open a named flow: every exchange that starts from now on belongs to it.
    Start {
        /// Flow name: [a-z0-9][a-z0-9._-]*, at most 128 characters
        name: String,
        /// A title for the flow's pages
        #[arg(long)]
        title: Option<String>,
    },
    /// Close a flow (the open one if NAME is omitted), once a running daemon has stored all of it.
    ///
    /// After closing the window it asks the daemon on [admin].listen to
    /// flush its writer (POST /api/flush) and waits up to 30 s, so an export
    /// right after is complete. No daemon running is fine.
    Stop { name: Option<String> },
    /// Flows with their window, number of exchanges and services involved.
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Remove a flow (its exchanges stay in the database).
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the exchanges of this flow
    #[arg(long, value_name = "NAME")]
    pub flow: Option<String>,
    /// Only exchanges that started at or after this time (RFC 3339, or e.g. 10m for ten minutes ago)
    #[arg(long, value_name = "S")]
    pub from: Option<String>,
    /// Only exchanges that started at or before this time
    #[arg(long, value_name = "S")]
    pub to: Option<String>,
    /// Only this method (GET, POST, ...)
    #[arg(long, value_name = "M")]
    pub method: Option<String>,
    /// Only this response status
    #[arg(long, value_name = "N")]
    pub status: Option<u16>,
    /// At most N exchanges (the newest)
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
    /// Include exchanges marked by [[ignore]] rules
    #[arg(long)]
    pub all: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The flow to export
    #[arg(long, value_name = "NAME")]
    pub flow: String,
    /// Output directory (created if missing; nothing inside it is written through a symlink)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Mkdocs)]
    pub format: ExportFormat,
    /// Mask passwords entirely (***) and cut tokens and secrets to 8 characters (abcdefgh***), in every file written
    #[arg(long)]
    pub redact: bool,
    /// Include exchanges marked by [[ignore]] rules
    #[arg(long)]
    pub all: bool,
    /// The notes to merge into the pages [default: DIR/notes.toml, when it exists]
    #[arg(long, value_name = "PATH")]
    pub notes: Option<PathBuf>,
    /// A note that matches no step is an error (default: a warning)
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Mkdocs,
    Har,
    All,
}

#[derive(Debug, Args)]
pub struct SiteArgs {
    /// Output directory (created if missing; nothing inside it is written through a symlink)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only these flows (default: every flow)
    #[arg(value_name = "FLOW")]
    pub flows: Vec<String>,
    /// Carry a local mermaid.min.js so diagrams render without internet
    #[arg(long)]
    pub offline: bool,
    /// Mask passwords entirely (***) and cut tokens and secrets to 8 characters (abcdefgh***), in every file written
    #[arg(long)]
    pub redact: bool,
    /// Include exchanges marked by [[ignore]] rules
    #[arg(long)]
    pub all: bool,
    /// The site's name (mkdocs site_name) [default: tracer flows]
    #[arg(long, value_name = "TEXT")]
    pub site_name: Option<String>,
}
