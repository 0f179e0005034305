//! Render: pure functions from stored exchanges to text (pages, diagram, log, HAR).
//!
//! Nothing here touches the disk or the network: [`crate::export`] fetches
//! the exchanges and writes what these functions return. Every page numbers
//! the flow's events the same way ([`events`]), so `(N)` in a section title,
//! the N-th arrow of the diagram and the N-th entry of the log are the same
//! moment on the wire.

pub mod annotate;
pub mod body;
pub mod diagram;
pub mod diff;
pub mod escape;
pub mod events;
pub mod har;
pub mod index;
pub mod log;
pub mod notes;
pub mod placeholders;
pub mod redact;
pub mod sections;
pub mod site;
pub(crate) mod text;

use crate::apiref::Api;
use crate::model::{Exchange, Flow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the user asked for that changes how pages are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Mask passwords, cut tokens to a short prefix ([`redact`]).
    pub redact: bool,
    /// `flow.har` is written beside the pages, so index.md may link to it.
    pub har_link: bool,
    /// The title of the API reference admonition (`[export] reference_title`).
    pub reference_title: String,
    /// Which API a service speaks where its name does not say (`[[service]] api`).
    pub apis: Arc<BTreeMap<String, Api>>,
    /// The writer's notes, merged into the sections.
    pub notes: Arc<notes::Notes>,
}

pub const DEFAULT_REFERENCE_TITLE: &str = "API reference";

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            redact: false,
            har_link: false,
            reference_title: DEFAULT_REFERENCE_TITLE.to_string(),
            apis: Arc::default(),
            notes: Arc::default(),
        }
    }
}

/// The four mkdocs files of one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPages {
    pub body_md: String,
    pub diagram_md: String,
    pub index_md: String,
    pub log_md: String,
    /// Notes (and highlights) that found no place: `export` reports them.
    pub unmatched: Vec<String>,
}

/// Renders every mkdocs page of a flow.
pub fn flow_pages(flow: &Flow, exchanges: &[Exchange], opts: &RenderOptions) -> FlowPages {
    let r = redact::Redacted::new(exchanges, flow.command.as_ref(), opts.redact);
    // The sections and the diagram go into two files each: rendered once.
    let (body, unmatched) = sections::sections(&r.exchanges, opts);
    let (lines, names) = diagram::diagram(&r.exchanges);
    let index_md = index::index_md_from(flow, &r, opts, &lines, &names, &body);
    FlowPages {
        body_md: r.scrub(body),
        diagram_md: r.scrub(diagram::lines_md(&lines)),
        index_md,
        log_md: r.scrub(log::entries(&r.exchanges, opts)),
        unmatched,
    }
}
