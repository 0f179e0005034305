//! Export: fetches a flow from the store, renders it ([`crate::render`],
//! pure) and writes the files. The only I/O of the pages.
//!
//! Flow names become directory names (`tracer site`): each is checked
//! before anything is written, and nothing inside `--out` is written
//! through a symbolic link ([`outdir`]).

mod outdir;

use crate::model::{Exchange, Flow, FlowSummary};
use crate::render::{self, site, RenderOptions};
use crate::store::{ExchangeFilter, Store, StoreError};
pub use outdir::{OutDir, OutDirError};
use std::path::PathBuf;

/// mermaid 11 (`dist/mermaid.min.js` of the npm package, MIT; see
/// assets/README.md), written into offline sites.
pub const MERMAID_MIN_JS: &[u8] = include_bytes!("../../assets/mermaid.min.js");

/// The iframe-worker shim (npm `iframe-worker`, MIT) that lets material's
/// search run from `file://` without fetching it from a CDN.
pub const IFRAME_WORKER_JS: &[u8] = include_bytes!("../../assets/iframe-worker-shim.js");

/// The name `tracer site` gives the site unless told otherwise.
pub const DEFAULT_SITE_NAME: &str = "tracer flows";

/// What `tracer export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Mkdocs,
    Har,
    All,
}

/// `tracer export`: one flow's files into one directory.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub flow: String,
    pub out: PathBuf,
    pub format: ExportFormat,
    /// Mask passwords, shorten tokens ([`render::redact`]).
    pub redact: bool,
    /// Include exchanges marked by ignore rules.
    pub all: bool,
}

/// `tracer site`: a complete mkdocs project of several flows.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub out: PathBuf,
    /// Only these flows (all when empty).
    pub flows: Vec<String>,
    /// Carry mermaid and use no web font: the site works with no network.
    pub offline: bool,
    pub redact: bool,
    pub all: bool,
    /// `site_name` of mkdocs.yml ([`DEFAULT_SITE_NAME`] when None).
    pub site_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "flow name {0:?} cannot be written as a directory: a flow name is [a-z0-9][a-z0-9._-]*, at most {max} characters",
        max = crate::model::MAX_FLOW_NAME_LEN
    )]
    BadFlowName(String),
    #[error(transparent)]
    Write(#[from] OutDirError),
}

pub type Result<T> = std::result::Result<T, ExportError>;

/// Refuses a name read from the database that is no valid flow name (one
/// inserted by hand, say `../../x`): it would become a path.
fn check_name(name: &str) -> Result<()> {
    if crate::model::is_valid_flow_name(name) {
        Ok(())
    } else {
        Err(ExportError::BadFlowName(name.to_string()))
    }
}

async fn flow_exchanges(
    store: &dyn Store,
    flow: &Flow,
    include_ignored: bool,
) -> Result<Vec<Exchange>> {
    let mut filter = ExchangeFilter::for_flow(flow);
    filter.include_ignored = include_ignored;
    let mut exchanges = store.list_exchanges(&filter).await?;
    if !include_ignored {
        // Whatever the backend did with the flag, ignored ones stay out.
        exchanges.retain(|x| !x.ignored);
    }
    Ok(exchanges)
}

/// `tracer export`: writes the files of one flow. Returns the paths written.
pub async fn export_flow(store: &dyn Store, opts: &ExportOptions) -> Result<Vec<PathBuf>> {
    let flow = store.get_flow(&opts.flow).await?;
    check_name(&flow.name)?;
    let exchanges = flow_exchanges(store, &flow, opts.all).await?;
    let (mkdocs, har) = match opts.format {
        ExportFormat::Mkdocs => (true, false),
        ExportFormat::Har => (false, true),
        ExportFormat::All => (true, true),
    };
    let render = RenderOptions {
        redact: opts.redact,
        har_link: har,
    };
    let out = OutDir::open(&opts.out)?;
    write_flow(&out, &flow, &exchanges, &render, mkdocs, har)
}

/// Writes one flow's files into `dir`.
fn write_flow(
    dir: &OutDir,
    flow: &Flow,
    exchanges: &[Exchange],
    opts: &RenderOptions,
    mkdocs: bool,
    har: bool,
) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(&str, String)> = Vec::new();
    if mkdocs {
        let pages = render::flow_pages(flow, exchanges, opts);
        files.push(("body.md", pages.body_md));
        files.push(("diagram.md", pages.diagram_md));
        files.push(("index.md", pages.index_md));
        files.push(("log.md", pages.log_md));
    }
    if har {
        files.push(("flow.har", render::har::har_json(flow, exchanges, opts)));
    }
    let mut written = Vec::with_capacity(files.len());
    for (name, text) in files {
        written.push(dir.write(name, text.as_bytes())?);
    }
    Ok(written)
}

/// `tracer site`: writes a complete mkdocs project.
pub async fn write_site(store: &dyn Store, opts: &SiteOptions) -> Result<()> {
    let all = store.list_flows().await?;
    let flows: Vec<FlowSummary> = if opts.flows.is_empty() {
        all
    } else {
        let mut chosen = Vec::with_capacity(opts.flows.len());
        for name in &opts.flows {
            // get_flow gives the store's own "no flow named ..." error.
            let flow = store.get_flow(name).await?;
            match all.iter().find(|s| &s.flow.name == name) {
                Some(s) => chosen.push(s.clone()),
                None => chosen.push(FlowSummary {
                    flow,
                    exchanges: 0,
                    services: Vec::new(),
                    lost: 0,
                }),
            }
        }
        chosen
    };
    // Every name is checked before anything is written.
    for summary in &flows {
        check_name(&summary.flow.name)?;
    }

    let out = OutDir::open(&opts.out)?;
    let docs = out.subdir("docs")?;
    let render = RenderOptions {
        redact: opts.redact,
        har_link: true,
    };
    for summary in &flows {
        let exchanges = flow_exchanges(store, &summary.flow, opts.all).await?;
        let dir = docs.subdir(&summary.flow.name)?;
        write_flow(&dir, &summary.flow, &exchanges, &render, true, true)?;
    }

    let site_opts = site::SiteOptions {
        site_name: opts
            .site_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SITE_NAME.to_string()),
        offline: opts.offline,
    };
    out.write(
        "mkdocs.yml",
        site::mkdocs_yml(&flows, &site_opts).as_bytes(),
    )?;
    docs.write(
        "index.md",
        site::site_index_md(&flows, &site_opts).as_bytes(),
    )?;
    if opts.offline {
        for (rel, bytes) in [
            (site::MERMAID_JS, MERMAID_MIN_JS),
            (site::IFRAME_WORKER_JS, IFRAME_WORKER_JS),
        ] {
            docs.write(rel, bytes)?;
        }
    }
    Ok(())
}
