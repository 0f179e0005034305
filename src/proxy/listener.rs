//! Listening: every `[[service]]` bound before anything is served, accept
//! loops handing connections to the proxy workers (one single-threaded
//! runtime per core), and the shutdown that ends them.

use super::connection;
use super::io::Stream;
use super::upstream::Connector;
use super::{tls, Service, Shared};
use crate::config::{Config, ServiceConfig};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the grace period, how long aborted exchanges get to end by themselves.
const ABORT_WAIT: Duration = Duration::from_secs(5);
/// How long a worker thread gets to drop what is left on it.
const WORKER_STOP_WAIT: Duration = Duration::from_secs(5);

struct Bound {
    listener: TcpListener,
    service: Arc<Service>,
    tls: Option<TlsAcceptor>,
}

/// Every service's listener, bound and not yet serving.
pub struct Proxy {
    shared: Arc<Shared>,
    bound: Vec<Bound>,
}

impl Proxy {
    /// Binds every listener: a port in use is reported before anything is served.
    pub async fn bind(config: &Config, shared: Arc<Shared>) -> anyhow::Result<Proxy> {
        let client_tls = tls::client_config(config.proxy.ca_file.as_deref())
            .context("cannot set up TLS for https upstreams")?;
        let connect_timeout = Duration::from_secs(config.proxy.connect_timeout_secs);
        let mut bound = Vec::new();
        for s in &config.services {
            bound.push(bind_service(s, &shared, &client_tls, connect_timeout).await?);
        }
        Ok(Proxy { shared, bound })
    }

    /// Starts the workers and the accept loops.
    pub fn start(self) -> anyhow::Result<Listening> {
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let workers = Workers::start(tracker.clone(), stop.clone())?;
        for b in self.bound {
            tracing::info!(
                service = %b.service.name,
                listen = %b.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                upstream = %b.service.connector.upstream.url_for("/"),
                tls = b.tls.is_some(),
                "listening"
            );
            tokio::spawn(accept_loop(b, workers.clone()));
        }
        Ok(Listening {
            shared: self.shared,
            tracker,
            stop,
            workers,
        })
    }
}

/// The running proxy.
pub struct Listening {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
    workers: Workers,
}

impl Listening {
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// Stops accepting and closes idle connections; lets exchanges in flight
    /// finish for `grace`; then ends the rest. Every exchange still in
    /// flight is finished by its guard (stored with an error) before this
    /// returns, so the store's final flush has them all.
    pub async fn shutdown(self, grace: Duration) {
        self.shared.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tracker.len(),
                "grace period over: closing the exchanges still in flight (they are stored with an error)"
            );
            self.shared.finisher.abort.cancel();
            let _ = tokio::time::timeout(ABORT_WAIT, self.tracker.wait()).await;
        }
        self.stop.cancel();
        for done in self.workers.stopped {
            if tokio::time::timeout(WORKER_STOP_WAIT, done.notified())
                .await
                .is_err()
            {
                tracing::warn!("a proxy worker did not stop in time");
            }
        }
    }
}

async fn bind_service(
    s: &ServiceConfig,
    shared: &Arc<Shared>,
    client_tls: &Arc<tokio_rustls::rustls::ClientConfig>,
    connect_timeout: Duration,
) -> anyhow::Result<Bound> {
    let addr = s.listen;
    let upstream = s.upstream.clone();
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
    let connector = Connector::new(upstream, Some(client_tls.clone()), connect_timeout);
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
    /// One per worker: answered once its runtime, and every task left on
    /// it, is dropped.
    stopped: Vec<Arc<tokio::sync::Notify>>,
}

impl Workers {
    fn start(tracker: TaskTracker, stop: CancellationToken) -> anyhow::Result<Workers> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut queues = Vec::with_capacity(n);
        let mut stopped = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a proxy worker")?;
            let (tracker, stop) = (tracker.clone(), stop.clone());
            let done = Arc::new(tokio::sync::Notify::new());
            let done_here = done.clone();
            std::thread::Builder::new()
                .name(format!("tracer-proxy-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        loop {
                            tokio::select! {
                                accepted = rx.recv() => match accepted {
                                    Some(a) => { tracker.spawn(serve_connection(a)); }
                                    None => break,
                                },
                                _ = stop.cancelled() => break,
                            }
                        }
                    });
                    // Dropping the runtime drops the tasks still on it: the
                    // guard of each exchange in flight stores it.
                    drop(runtime);
                    done_here.notify_one();
                })
                .context("cannot start a proxy worker thread")?;
            queues.push(tx);
            stopped.push(done);
        }
        Ok(Workers {
            queues: Arc::new(queues),
            next: Arc::default(),
            stopped,
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
