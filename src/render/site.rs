//! `tracer site`: the mkdocs project around the flows' pages.
//!
//! ```text
//! DIR/mkdocs.yml
//! DIR/docs/index.md                 every flow, linked
//! DIR/docs/<flow>/index.md          the flow's page (diagram + sections)
//! DIR/docs/<flow>/log.md            the plain log
//! DIR/docs/<flow>/body.md, diagram.md, flow.har
//! DIR/docs/assets/mermaid.min.js    with --offline
//! DIR/docs/assets/iframe-worker-shim.js  with --offline
//! ```
//!
//! body.md and diagram.md are parts of index.md, so the site leaves them
//! out of the build (`exclude_docs`); they stay in the folder for anyone
//! who includes them elsewhere.

use super::escape::{self, cell, html_text, yaml_str};
use crate::model::FlowSummary;
use crate::timefmt;

/// Where `--offline` puts mermaid, relative to the docs folder.
pub const MERMAID_JS: &str = "assets/mermaid.min.js";
/// Where `--offline` puts the iframe-worker shim (search from `file://`).
pub const IFRAME_WORKER_JS: &str = "assets/iframe-worker-shim.js";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteOptions {
    pub site_name: String,
    /// Carry mermaid and use no web font: the site works with no network.
    pub offline: bool,
}

/// mkdocs.yml: material theme, the Markdown extensions the pages use, and a
/// nav of every flow. The site name and nav titles are HTML-escaped:
/// mkdocs-material writes them into its pages as they are.
pub fn mkdocs_yml(flows: &[FlowSummary], opts: &SiteOptions) -> String {
    let mut y = String::new();
    y.push_str(&format!(
        "site_name: {}\n",
        yaml_str(&html_text(&opts.site_name))
    ));
    y.push_str("docs_dir: docs\n");
    y.push_str("theme:\n  name: material\n");
    if opts.offline {
        // Material loads Roboto from Google Fonts unless told not to.
        y.push_str("  font: false\n");
    }
    y.push_str("  features:\n    - content.code.copy\n    - navigation.indexes\n");
    y.push_str(
        "markdown_extensions:\n\
         \x20 - admonition\n\
         \x20 - attr_list\n\
         \x20 - tables\n\
         \x20 - pymdownx.details\n\
         \x20 - pymdownx.highlight\n\
         \x20 - pymdownx.superfences:\n\
         \x20     custom_fences:\n\
         \x20       - name: mermaid\n\
         \x20         class: mermaid\n\
         \x20         format: !!python/name:pymdownx.superfences.fence_code_format\n\
         \x20 - pymdownx.tabbed:\n\
         \x20     alternate_style: true\n",
    );
    y.push_str("plugins:\n  - search\n");
    if opts.offline {
        // Material's offline plugin: pages work from file:// (no directory
        // URLs, search index inlined).
        y.push_str("  - offline\n");
        // Loaded before material's bundle runs its mermaid hook, so
        // `window.mermaid` is defined and no CDN is asked.
        y.push_str(&format!("extra_javascript:\n  - {MERMAID_JS}\n"));
        // The offline plugin adds the shim from a CDN unless a polyfill
        // named iframe-worker is already listed.
        y.push_str(&format!("extra:\n  polyfills:\n    - {IFRAME_WORKER_JS}\n"));
    }
    y.push_str("exclude_docs: |\n  */body.md\n  */diagram.md\n");
    y.push_str("nav:\n  - Flows: index.md\n");
    for f in flows {
        let name = &f.flow.name;
        let title = f.flow.title.as_deref().unwrap_or(name);
        y.push_str(&format!("  - {}:\n", yaml_str(&html_text(title))));
        y.push_str(&format!(
            "      - {}\n",
            yaml_str(&format!("{name}/index.md"))
        ));
        y.push_str(&format!(
            "      - Log: {}\n",
            yaml_str(&format!("{name}/log.md"))
        ));
    }
    y
}

/// docs/index.md: a table of the flows.
pub fn site_index_md(flows: &[FlowSummary], opts: &SiteOptions) -> String {
    let mut s = format!("# {}\n\n", escape::heading(&opts.site_name));
    if flows.is_empty() {
        s.push_str("No flow has been recorded yet.\n");
        return s;
    }
    s.push_str(
        "| Flow | Title | Started (UTC) | Calls | Services |\n| --- | --- | --- | --- | --- |\n",
    );
    for f in flows {
        let name = &f.flow.name;
        s.push_str(&format!(
            // Names were checked: valid flow names are plain in a link.
            "| [{}]({name}/index.md) | {} | {} | {} | {} |\n",
            cell(name),
            cell(f.flow.title.as_deref().unwrap_or("")),
            timefmt::short(f.flow.started_at),
            f.exchanges,
            cell(&f.services.join(", ")),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flow;

    fn summary(name: &str, title: Option<&str>) -> FlowSummary {
        FlowSummary {
            flow: Flow {
                name: name.into(),
                title: title.map(str::to_string),
                started_at: 1_700_000_000_000_000,
                stopped_at: Some(1_700_000_001_000_000),
                command: None,
            },
            exchanges: 11,
            services: vec!["glance-api".into(), "keystone".into()],
            lost: 0,
        }
    }

    #[test]
    fn mkdocs_yml_lists_extensions_and_flows() {
        let flows = vec![
            summary("image-create", Some("Image \"create\"")),
            summary("image-show", None),
        ];
        let opts = SiteOptions {
            site_name: "tracer flows".into(),
            offline: false,
        };
        let y = mkdocs_yml(&flows, &opts);
        for ext in [
            "admonition",
            "pymdownx.details",
            "pymdownx.superfences:",
            "pymdownx.tabbed:",
            "pymdownx.highlight",
        ] {
            assert!(y.contains(&format!("  - {ext}\n")), "{ext} in {y}");
        }
        assert!(y.contains("      alternate_style: true\n"));
        // Material writes nav titles into HTML as they are.
        assert!(y.contains("  - \"Image &quot;create&quot;\":\n      - \"image-create/index.md\"\n      - Log: \"image-create/log.md\"\n"), "{y}");
        assert!(y.contains("  - \"image-show\":\n"));
        assert!(!y.contains("mermaid.min.js"));
        assert!(!y.contains("font: false"));

        let offline = mkdocs_yml(
            &flows,
            &SiteOptions {
                offline: true,
                ..opts
            },
        );
        assert!(offline.contains("extra_javascript:\n  - assets/mermaid.min.js\n"));
        assert!(offline.contains("extra:\n  polyfills:\n    - assets/iframe-worker-shim.js\n"));
        assert!(offline.contains("  font: false\n"));
        assert!(offline.contains("  - offline\n"));
    }

    #[test]
    fn index_links_every_flow() {
        let opts = SiteOptions {
            site_name: "tracer flows".into(),
            offline: false,
        };
        let s = site_index_md(&[summary("image-create", Some("a | b"))], &opts);
        assert!(s.contains("| [image-create](image-create/index.md) | a \\| b | 2023-11-14 22:13:20 | 11 | glance-api, keystone |\n"), "{s}");
        assert!(site_index_md(&[], &opts).contains("No flow"));
    }
}
