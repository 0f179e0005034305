//! Export: writes a flow's rendered pages into a directory.
//! (Skeleton: filled in by the flow-pages work.)

use crate::cli::{ExportArgs, SiteArgs};
use crate::store::Store;

/// `tracer export`: writes the files of one flow. Returns the paths written.
pub async fn export_flow(
    _store: &dyn Store,
    _args: &ExportArgs,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    anyhow::bail!("export is not built yet")
}

/// `tracer site`: writes a complete mkdocs project.
pub async fn write_site(_store: &dyn Store, _args: &SiteArgs) -> anyhow::Result<()> {
    anyhow::bail!("site is not built yet")
}
