//! The proxy: one listener per service, HTTP/1.1 framing owned by tracer so
//! that what is recorded is exactly what crossed the wire.

use crate::config::Config;
use crate::store::SharedStore;

/// `tracer serve`: runs every listener and the admin API until SIGTERM/SIGINT.
pub async fn serve(_config: Config, _store: SharedStore) -> anyhow::Result<()> {
    anyhow::bail!("serve is not built yet")
}
