//! Export: fetches a flow from the store, renders it ([`crate::render`],
//! pure) and writes the files. The only I/O of the pages.
//!
//! Flow names become directory names (`tracer site`): each is checked
//! before anything is written, and nothing inside `--out` is written
//! through a symbolic link ([`outdir`]).

mod outdir;

use crate::apiref::Api;
use crate::model::{Exchange, Flow, FlowSummary};
use crate::render::notes::Notes;
use crate::render::{self, site, RenderOptions};
use crate::store::{ExchangeFilter, Store, StoreError};
pub use outdir::{OutDir, OutDirError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// mermaid 11 (`dist/mermaid.min.js` of the npm package, MIT; see
/// assets/README.md), written into offline sites.
pub const MERMAID_MIN_JS: &[u8] = include_bytes!("../../assets/mermaid.min.js");

/// The iframe-worker shim (npm `iframe-worker`, MIT) that lets material's
/// search run from `file://` without fetching it from a CDN.
pub const IFRAME_WORKER_JS: &[u8] = include_bytes!("../../assets/iframe-worker-shim.js");

/// The name `tracer site` gives the site unless told otherwise.
pub const DEFAULT_SITE_NAME: &str = "tracer flows";

/// What `tracer export` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportFormat {
    #[default]
    Mkdocs,
    Har,
    All,
}

/// `tracer export`: one flow's files into one directory.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub flow: String,
    pub out: PathBuf,
    pub format: ExportFormat,
    /// Mask passwords, shorten tokens ([`render::redact`]).
    pub redact: bool,
    /// Include exchanges marked by ignore rules.
    pub all: bool,
    /// The notes file (default `OUT/notes.toml`, when it exists).
    pub notes: Option<PathBuf>,
    /// A note that matches no step is an error, not a warning.
    pub strict: bool,
    pub pages: PageSettings,
}

/// What the config says about every flow's pages.
#[derive(Debug, Clone, Default)]
pub struct PageSettings {
    /// `[export] reference_title` (the default when None).
    pub reference_title: Option<String>,
    /// `[[service]] api`.
    pub apis: Arc<BTreeMap<String, Api>>,
}

impl PageSettings {
    fn render_options(&self, redact: bool, har_link: bool, notes: Notes) -> RenderOptions {
        let defaults = RenderOptions::default();
        RenderOptions {
            redact,
            har_link,
            reference_title: self
                .reference_title
                .clone()
                .unwrap_or(defaults.reference_title),
            apis: self.apis.clone(),
            notes: Arc::new(notes),
        }
    }
}

/// What an export wrote, and the notes that found no place.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    pub written: Vec<PathBuf>,
    pub unmatched: Vec<String>,
}

/// `tracer site`: a complete mkdocs project of several flows.
#[derive(Debug, Clone, Default)]
pub struct SiteOptions {
    pub out: PathBuf,
    pub pages: PageSettings,
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
    #[error("cannot read the notes {path}: {message}")]
    Notes { path: String, message: String },
    #[error("{} note(s) found no place (--strict): {}", .0.len(), .0.join("; "))]
    Unmatched(Vec<String>),
}

/// The notes at `path`: none when `required` is false and there is no file.
fn read_notes(path: &Path, required: bool) -> Result<Notes> {
    let err = |message: String| ExportError::Notes {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Notes::parse(&text).map_err(err),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Notes::default()),
        Err(e) => Err(err(e.to_string())),
    }
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

/// A flow's exchanges in event order (ignored ones only when asked for).
pub async fn flow_exchanges(
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

/// `tracer export`: writes the files of one flow, with `OUT/notes.toml`
/// (or `--notes`) merged in.
pub async fn export_flow(store: &dyn Store, opts: &ExportOptions) -> Result<Exported> {
    let flow = store.get_flow(&opts.flow).await?;
    check_name(&flow.name)?;
    let exchanges = flow_exchanges(store, &flow, opts.all).await?;
    let (mkdocs, har) = match opts.format {
        ExportFormat::Mkdocs => (true, false),
        ExportFormat::Har => (false, true),
        ExportFormat::All => (true, true),
    };
    let notes = match &opts.notes {
        Some(path) => read_notes(path, true)?,
        None => read_notes(&opts.out.join(NOTES_FILE), false)?,
    };
    let render = opts.pages.render_options(opts.redact, har, notes);
    let out = OutDir::open(&opts.out)?;
    write_flow(&out, &flow, &exchanges, &render, mkdocs, har, opts.strict)
}

/// The notes beside a flow's pages.
pub const NOTES_FILE: &str = "notes.toml";

/// Writes one flow's files into `dir`.
fn write_flow(
    dir: &OutDir,
    flow: &Flow,
    exchanges: &[Exchange],
    opts: &RenderOptions,
    mkdocs: bool,
    har: bool,
    strict: bool,
) -> Result<Exported> {
    let mut files: Vec<(&str, String)> = Vec::new();
    let mut unmatched = Vec::new();
    if mkdocs {
        let pages = render::flow_pages(flow, exchanges, opts);
        if strict && !pages.unmatched.is_empty() {
            return Err(ExportError::Unmatched(pages.unmatched));
        }
        unmatched = pages.unmatched;
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
    Ok(Exported { written, unmatched })
}

/// `tracer site`: writes a complete mkdocs project; each flow's
/// `docs/FLOW/notes.toml` is merged in. Returns the notes that found no place.
pub async fn write_site(store: &dyn Store, opts: &SiteOptions) -> Result<Vec<String>> {
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
    let mut unmatched = Vec::new();
    for summary in &flows {
        let exchanges = flow_exchanges(store, &summary.flow, opts.all).await?;
        let name = &summary.flow.name;
        let notes = read_notes(&opts.out.join("docs").join(name).join(NOTES_FILE), false)?;
        let render = opts.pages.render_options(opts.redact, true, notes);
        let dir = docs.subdir(name)?;
        let done = write_flow(&dir, &summary.flow, &exchanges, &render, true, true, false)?;
        unmatched.extend(done.unmatched.into_iter().map(|u| format!("{name}: {u}")));
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
    Ok(unmatched)
}
