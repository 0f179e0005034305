//! The batched store writer: the proxy hands finished exchanges to a bounded
//! queue and moves on; one task writes them in batches.
//!
//! The proxy never waits on the disk. When the queue is full (by count or by
//! body bytes) the exchange is not stored: the loss is counted, logged, and
//! written to the database so `tracer flow list` and the admin API show it.

use crate::model::Exchange;
use crate::store::{Loss, SharedStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most exchanges written in one transaction.
const BATCH: usize = 256;

// Nearly every message is an exchange: boxing it would add an allocation
// per exchange to spare the rare barrier some bytes.
#[allow(clippy::large_enum_variant)]
enum Message {
    Exchange(Exchange),
    /// Answered once everything queued before it is in the database.
    Barrier(oneshot::Sender<()>),
}

/// Counters the admin API shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub queued: u64,
    pub stored: u64,
    pub lost: u64,
    pub write_errors: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    stored: AtomicU64,
    lost: AtomicU64,
    write_errors: AtomicU64,
    bytes_in_queue: AtomicU64,
}

/// The proxy's handle on the writer. Cheap to clone.
#[derive(Clone)]
pub struct CaptureQueue {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    max_bytes: u64,
}

fn body_bytes(ex: &Exchange) -> u64 {
    (ex.request_body.kept.len() + ex.response_body.kept.len()) as u64
}

impl CaptureQueue {
    /// Starts the writer task. `capacity` bounds the queue in exchanges,
    /// `max_bytes` in kept body bytes.
    pub fn spawn(store: SharedStore, capacity: usize, max_bytes: u64) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let handle = tokio::spawn(run_writer(store, rx, counters.clone()));
        (
            Self {
                tx,
                counters,
                max_bytes,
            },
            handle,
        )
    }

    /// Queues an exchange for storage without waiting. False if it was lost.
    pub fn submit(&self, ex: Exchange) -> bool {
        let bytes = body_bytes(&ex);
        let in_queue = self
            .counters
            .bytes_in_queue
            .fetch_add(bytes, Ordering::AcqRel);
        if in_queue + bytes > self.max_bytes && in_queue > 0 {
            self.counters
                .bytes_in_queue
                .fetch_sub(bytes, Ordering::AcqRel);
            self.count_loss(
                &ex,
                "body bytes waiting for the database over [storage].queue_bytes",
            );
            return false;
        }
        match self.tx.try_send(Message::Exchange(ex)) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(err) => {
                self.counters
                    .bytes_in_queue
                    .fetch_sub(bytes, Ordering::AcqRel);
                let reason = match &err {
                    mpsc::error::TrySendError::Full(_) => {
                        "queue full ([storage].queue_exchanges); the database is not keeping up"
                    }
                    mpsc::error::TrySendError::Closed(_) => "writer stopped",
                };
                if let Message::Exchange(ex) = err.into_inner() {
                    self.count_loss(&ex, reason);
                }
                false
            }
        }
    }

    fn count_loss(&self, ex: &Exchange, reason: &str) {
        let n = self.counters.lost.fetch_add(1, Ordering::Relaxed) + 1;
        // Log the first loss and then every 1000th, so a flood does not flood the log.
        if n == 1 || n % 1000 == 0 {
            tracing::warn!(
                lost_total = n,
                service = %ex.service,
                method = %ex.method,
                target = %ex.target,
                "exchange not stored: {reason}"
            );
        }
    }

    /// Waits until every exchange queued before this call is in the database.
    /// False if that did not happen within `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done_rx) = oneshot::channel();
        let wait = async {
            self.tx.send(Message::Barrier(done_tx)).await.is_ok() && done_rx.await.is_ok()
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    pub fn stats(&self) -> QueueStats {
        QueueStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            stored: self.counters.stored.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
            write_errors: self.counters.write_errors.load(Ordering::Relaxed),
        }
    }
}

async fn run_writer(store: SharedStore, mut rx: mpsc::Receiver<Message>, counters: Arc<Counters>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut batch: Vec<Exchange> = Vec::with_capacity(BATCH);
    let mut barriers = Vec::new();
    let mut losses_reported = 0u64;
    loop {
        if rx.recv_many(&mut buf, BATCH).await == 0 {
            break; // every sender is gone and the queue is drained
        }
        for msg in buf.drain(..) {
            match msg {
                Message::Exchange(ex) => batch.push(ex),
                Message::Barrier(done) => barriers.push(done),
            }
        }
        if !batch.is_empty() {
            write_batch(&store, &batch, &counters).await;
            let bytes: u64 = batch.iter().map(body_bytes).sum();
            counters.bytes_in_queue.fetch_sub(bytes, Ordering::AcqRel);
            batch.clear();
        }
        losses_reported = report_losses(&store, &counters, losses_reported).await;
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
    report_losses(&store, &counters, losses_reported).await;
}

/// Writes one batch, retrying a failing database a few times before giving
/// the batch up (counted as lost: the proxy must not stall behind a dead disk).
async fn write_batch(store: &SharedStore, batch: &[Exchange], counters: &Counters) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match store.insert_exchanges(batch).await {
            Ok(()) => {
                counters
                    .stored
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(err) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    attempt,
                    exchanges = batch.len(),
                    "cannot store exchanges: {err}"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    counters
        .lost
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
}

async fn report_losses(store: &SharedStore, counters: &Counters, reported: u64) -> u64 {
    let lost = counters.lost.load(Ordering::Relaxed);
    if lost == reported {
        return reported;
    }
    let loss = Loss {
        at: crate::timefmt::now_micros(),
        count: (lost - reported) as i64,
    };
    match store.record_loss(loss).await {
        Ok(()) => lost,
        Err(err) => {
            tracing::error!("cannot record {} lost exchanges: {err}", loss.count);
            reported
        }
    }
}
