//! `tracer serve`: the daemon assembled from its parts — the capture queue
//! and its writer, attribution, the proxy's listeners, the admin UI — and
//! the order they stop in on SIGTERM/SIGINT (docs/LIFECYCLE.md §7).

use crate::attribution::Attributor;
use crate::capture::CaptureQueue;
use crate::config::Config;
use crate::proxy::{Proxy, Shared};
use crate::store::SharedStore;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long the final flush of the store writer may take.
const FINAL_FLUSH: Duration = Duration::from_secs(60);

pub async fn serve(config: Config, store: SharedStore) -> anyhow::Result<()> {
    if config.services.is_empty() {
        anyhow::bail!(
            "the config has no [[service]]: nothing to proxy (see config/tracer.toml for an example)"
        );
    }
    // Watch the signals before anything listens: a SIGTERM that arrives as
    // soon as the ports accept must still mean a clean stop.
    let signals = Signals::watch()?;
    let (queue, writer) = CaptureQueue::spawn(
        store.clone(),
        config.storage.queue_exchanges,
        config.storage.queue_bytes,
    );
    let attributor = Arc::new(Attributor::load(&config, store.clone()).await);
    let shared = Arc::new(Shared::new(&config, queue.clone(), attributor));

    // Bind everything before serving anything: a port in use is reported at once.
    let proxy = Proxy::bind(&config, shared.clone()).await?;
    let admin_addr = config.admin.listen;
    let admin = TcpListener::bind(admin_addr).await.with_context(|| {
        format!("cannot listen on {admin_addr} for the admin UI ([admin].listen)")
    })?;

    let listening = proxy.start()?;
    let admin_state = crate::web::AdminState {
        store: store.clone(),
        queue: queue.clone(),
        services: config
            .services
            .iter()
            .map(|s| (s.name.clone(), s.listen.to_string(), s.upstream.to_string()))
            .collect(),
    };
    tracing::info!(listen = %admin_addr, "admin UI and API");
    let admin_task = tokio::spawn(crate::web::serve(
        admin,
        admin_state,
        shared.shutdown.clone(),
    ));

    signals.wait().await;
    tracing::info!(
        in_flight = listening.in_flight(),
        "shutting down: no new connections; finishing exchanges in flight"
    );
    listening
        .shutdown(Duration::from_secs(config.proxy.shutdown_grace_secs))
        .await;
    let flushed = queue.flush(FINAL_FLUSH).await;
    let stats = queue.stats();
    drop(shared);
    drop(queue);
    admin_task.abort();
    let _ = tokio::time::timeout(FINAL_FLUSH, writer).await;
    tracing::info!(stored = stats.stored, lost = stats.lost, "stopped");
    if !flushed.stored {
        anyhow::bail!("could not store every captured exchange before exiting (see the log)");
    }
    Ok(())
}

/// SIGTERM and SIGINT, both meaning "stop cleanly".
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
