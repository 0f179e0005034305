//! Export: fetches a flow from the store, renders it ([`crate::render`],
//! pure) and writes the files. The only I/O of the pages.

use crate::cli::{ExportArgs, ExportFormat, SiteArgs};
use crate::model::{Exchange, Flow, FlowSummary};
use crate::render::{self, site, RenderOptions};
use crate::store::{ExchangeFilter, Store};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// mermaid 11 (`dist/mermaid.min.js` of the npm package, MIT; see
/// assets/README.md), written into offline sites.
pub const MERMAID_MIN_JS: &[u8] = include_bytes!("../assets/mermaid.min.js");

/// The iframe-worker shim (npm `iframe-worker`, MIT) that lets material's
/// search run from `file://` without fetching it from a CDN.
pub const IFRAME_WORKER_JS: &[u8] = include_bytes!("../assets/iframe-worker-shim.js");

/// The name `tracer site` gives the site unless told otherwise.
pub const DEFAULT_SITE_NAME: &str = "tracer flows";

async fn flow_exchanges(
    store: &dyn Store,
    flow: &Flow,
    include_ignored: bool,
) -> anyhow::Result<Vec<Exchange>> {
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
pub async fn export_flow(store: &dyn Store, args: &ExportArgs) -> anyhow::Result<Vec<PathBuf>> {
    let flow = store.get_flow(&args.flow).await?;
    let exchanges = flow_exchanges(store, &flow, args.all).await?;
    let (mkdocs, har) = match args.format {
        ExportFormat::Mkdocs => (true, false),
        ExportFormat::Har => (false, true),
        ExportFormat::All => (true, true),
    };
    let opts = RenderOptions {
        redact: args.redact,
        har_link: har,
    };
    write_flow(&args.out, &flow, &exchanges, &opts, mkdocs, har).await
}

/// Writes one flow's files into `dir` (created if missing).
async fn write_flow(
    dir: &Path,
    flow: &Flow,
    exchanges: &[Exchange],
    opts: &RenderOptions,
    mkdocs: bool,
    har: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
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
        let path = dir.join(name);
        write(&path, text.as_bytes()).await?;
        written.push(path);
    }
    Ok(written)
}

async fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    tokio::fs::write(path, bytes)
        .await
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `tracer site`: writes a complete mkdocs project.
pub async fn write_site(store: &dyn Store, args: &SiteArgs) -> anyhow::Result<()> {
    let all = store.list_flows().await?;
    let flows: Vec<FlowSummary> = if args.flows.is_empty() {
        all
    } else {
        let mut chosen = Vec::with_capacity(args.flows.len());
        for name in &args.flows {
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

    let docs = args.out.join("docs");
    tokio::fs::create_dir_all(&docs)
        .await
        .with_context(|| format!("cannot create {}", docs.display()))?;
    let opts = RenderOptions {
        redact: args.redact,
        har_link: true,
    };
    for summary in &flows {
        let exchanges = flow_exchanges(store, &summary.flow, args.all).await?;
        let dir = docs.join(&summary.flow.name);
        write_flow(&dir, &summary.flow, &exchanges, &opts, true, true).await?;
    }

    let site_opts = site::SiteOptions {
        site_name: args
            .site_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SITE_NAME.to_string()),
        offline: args.offline,
    };
    write(
        &args.out.join("mkdocs.yml"),
        site::mkdocs_yml(&flows, &site_opts).as_bytes(),
    )
    .await?;
    write(
        &docs.join("index.md"),
        site::site_index_md(&flows, &site_opts).as_bytes(),
    )
    .await?;
    if args.offline {
        for (rel, bytes) in [
            (site::MERMAID_JS, MERMAID_MIN_JS),
            (site::IFRAME_WORKER_JS, IFRAME_WORKER_JS),
        ] {
            let path = docs.join(rel);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write(&path, bytes).await?;
        }
    }
    Ok(())
}
