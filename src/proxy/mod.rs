//! The proxy: one listener per service, HTTP/1.1 framing owned by tracer so
//! that what is recorded is exactly what crossed the wire.
//!
//! hyper would forward header case with `preserve_header_case`, but its case
//! map is private (hyperium/hyper#2695), so heads are read off the byte
//! stream with httparse and forwarded as the bytes that arrived.

use crate::attribution::Attributor;
use crate::capture::{CaptureQueue, EventClock};
use crate::config::{parse_listen, Config, ServiceConfig, Upstream};
use crate::store::SharedStore;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod body;
mod connection;
mod exchange;
pub mod head;
mod io;
mod tls;
mod upstream;

pub use exchange::new_request_id;
use io::Stream;
use upstream::Connector;

/// What every connection of every service shares.
pub struct Shared {
    pub clock: EventClock,
    pub queue: CaptureQueue,
    pub attributor: Arc<Attributor>,
    pub max_body: u64,
    pub max_head: usize,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
    /// Stop taking new requests (SIGTERM).
    pub shutdown: CancellationToken,
    /// End the exchanges still in flight (the grace period is over).
    pub abort: CancellationToken,
}

/// One `[[service]]`: its name ("to" of its exchanges) and where it forwards.
pub struct Service {
    pub name: String,
    pub connector: Connector,
    pub shared: Arc<Shared>,
}

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the grace period, how long aborted exchanges get to reach the queue.
const ABORT_WAIT: Duration = Duration::from_secs(5);
/// How long the final flush of the store writer may take.
const FINAL_FLUSH: Duration = Duration::from_secs(60);

struct Bound {
    listener: TcpListener,
    service: Arc<Service>,
    tls: Option<TlsAcceptor>,
}

/// `tracer serve`: runs every listener and the admin API until SIGTERM/SIGINT.
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
    let shared = Arc::new(Shared {
        clock: EventClock::new(),
        queue: queue.clone(),
        attributor,
        max_body: config.storage.max_body_bytes,
        max_head: config.proxy.max_head_bytes,
        response_timeout: Duration::from_secs(config.proxy.response_timeout_secs),
        idle_timeout: Duration::from_secs(config.proxy.idle_timeout_secs),
        shutdown: CancellationToken::new(),
        abort: CancellationToken::new(),
    });

    // Bind everything before serving anything: a port in use is reported at once.
    let client_tls = tls::client_config(config.proxy.ca_file.as_deref())
        .context("cannot set up TLS for https upstreams")?;
    let mut bound = Vec::new();
    for s in &config.services {
        bound.push(bind_service(s, &config, &shared, &client_tls).await?);
    }
    let admin_addr = parse_listen(&config.admin.listen).map_err(anyhow::Error::msg)?;
    let admin = TcpListener::bind(admin_addr).await.with_context(|| {
        format!("cannot listen on {admin_addr} for the admin UI ([admin].listen)")
    })?;

    let tracker = TaskTracker::new();
    let workers = Workers::start(tracker.clone())?;
    for b in bound {
        tracing::info!(
            service = %b.service.name,
            listen = %b.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            upstream = %b.service.connector.upstream.url_for("/"),
            tls = b.tls.is_some(),
            "listening"
        );
        tokio::spawn(accept_loop(b, workers.clone()));
    }
    let admin_state = crate::web::AdminState {
        store: store.clone(),
        queue: queue.clone(),
        services: config
            .services
            .iter()
            .map(|s| (s.name.clone(), s.listen.clone(), s.upstream.clone()))
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
        in_flight = tracker.len(),
        "shutting down: no new connections; finishing exchanges in flight"
    );
    shared.shutdown.cancel();
    tracker.close();
    let grace = Duration::from_secs(config.proxy.shutdown_grace_secs);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            in_flight = tracker.len(),
            "grace period over: closing the exchanges still in flight (they are stored with an error)"
        );
        shared.abort.cancel();
        let _ = tokio::time::timeout(ABORT_WAIT, tracker.wait()).await;
    }
    let flushed = queue.flush(FINAL_FLUSH).await;
    let stats = queue.stats();
    drop(shared);
    drop(queue);
    admin_task.abort();
    let _ = tokio::time::timeout(FINAL_FLUSH, writer).await;
    tracing::info!(stored = stats.stored, lost = stats.lost, "stopped");
    if !flushed {
        anyhow::bail!("could not store every captured exchange before exiting (see the log)");
    }
    Ok(())
}

async fn bind_service(
    s: &ServiceConfig,
    config: &Config,
    shared: &Arc<Shared>,
    client_tls: &Arc<tokio_rustls::rustls::ClientConfig>,
) -> anyhow::Result<Bound> {
    let addr = parse_listen(&s.listen).map_err(anyhow::Error::msg)?;
    let upstream = Upstream::parse(&s.upstream).map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for service {:?}", s.name))?;
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(
            tls::server_config(cert, key)
                .with_context(|| format!("TLS for service {:?}", s.name))?,
        )),
        _ => None,
    };
    let connector = Connector::new(
        upstream,
        Some(client_tls.clone()),
        Duration::from_secs(config.proxy.connect_timeout_secs),
    );
    Ok(Bound {
        listener,
        tls,
        service: Arc::new(Service {
            name: s.name.clone(),
            connector,
            shared: shared.clone(),
        }),
    })
}

/// A connection handed from an accept loop to a worker.
struct Accepted {
    tcp: std::net::TcpStream,
    peer: std::net::SocketAddr,
    service: Arc<Service>,
    tls: Option<TlsAcceptor>,
}

/// One single-threaded runtime per core: a connection lives on one thread
/// from accept to close, so its two sockets never wake another thread.
#[derive(Clone)]
struct Workers {
    queues: Arc<Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl Workers {
    fn start(tracker: TaskTracker) -> anyhow::Result<Workers> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut queues = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a proxy worker")?;
            let tracker = tracker.clone();
            std::thread::Builder::new()
                .name(format!("tracer-proxy-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(accepted) = rx.recv().await {
                            tracker.spawn(serve_connection(accepted));
                        }
                        // No more connections: stay until those in flight are done.
                        tracker.wait().await;
                    })
                })
                .context("cannot start a proxy worker thread")?;
            queues.push(tx);
        }
        Ok(Workers {
            queues: Arc::new(queues),
            next: Arc::default(),
        })
    }

    fn hand_over(&self, accepted: Accepted) {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.queues.len();
        let _ = self.queues[i].send(accepted);
    }
}

async fn serve_connection(a: Accepted) {
    let Ok(tcp) = tokio::net::TcpStream::from_std(a.tcp) else {
        return;
    };
    let local = tcp.local_addr().unwrap_or(a.peer);
    let peer = a.peer;
    let stream = match a.tls {
        None => Stream::Plain(tcp),
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Stream::TlsServer(Box::new(tls)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    connection::handle(stream, peer, local, &a.service).await;
}

async fn accept_loop(b: Bound, workers: Workers) {
    let shutdown = b.service.shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = b.listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: say so, breathe, go on.
                tracing::warn!(service = %b.service.name, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(tcp) = tcp.into_std() else { continue };
        workers.hand_over(Accepted {
            tcp,
            peer,
            service: b.service.clone(),
            tls: b.tls.clone(),
        });
    }
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
