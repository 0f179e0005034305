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
const BATCH: usize = 2048;
/// How long the first exchange of a batch waits for others.
const LINGER: Duration = Duration::from_millis(10);

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

/// Exchanges whose response has reached the client but which are not queued
/// yet (the body may still be streaming): `flush` waits for those answered
/// before it began, so a `flow stop` right after a command exits misses none.
///
/// Two counters of open tickets, and an epoch whose parity says which one a
/// new ticket counts in. A flush flips the epoch and waits for the other
/// counter to drain: a ticket costs two atomic adds, not a shared lock.
/// Flushes take turns, so the counter one waits on gets no new tickets.
#[derive(Default)]
struct Answered {
    epoch: AtomicU64,
    open: [AtomicU64; 2],
    /// Flushes waiting for a counter to drain: only then is draining announced.
    waiting: AtomicU64,
    drained: tokio::sync::Notify,
    flush_turn: tokio::sync::Mutex<()>,
}

/// Counts a flush as waiting for as long as it lives (also when the flush
/// times out and is dropped mid-wait).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Held from the moment a response starts going to the client until the
/// exchange is queued (or dropped by the ignore rules).
pub struct AnswerTicket {
    slot: usize,
    answered: Arc<Answered>,
}

impl Drop for AnswerTicket {
    fn drop(&mut self) {
        let a = &self.answered;
        // SeqCst pairs with `flush`: either it sees this decrement, or this
        // sees it waiting.
        if a.open[self.slot].fetch_sub(1, Ordering::SeqCst) == 1
            && a.waiting.load(Ordering::SeqCst) > 0
        {
            a.drained.notify_waiters();
        }
    }
}

/// The proxy's handle on the writer. Cheap to clone.
#[derive(Clone)]
pub struct CaptureQueue {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    answered: Arc<Answered>,
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
                answered: Arc::default(),
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
                // The path only: a query string can hold a password.
                path = %ex.path(),
                "exchange not stored: {reason}"
            );
        }
    }

    /// Marks an exchange as answered: its response is going to the client.
    pub fn answered(&self) -> AnswerTicket {
        let slot = (self.answered.epoch.load(Ordering::SeqCst) & 1) as usize;
        self.answered.open[slot].fetch_add(1, Ordering::SeqCst);
        AnswerTicket {
            slot,
            answered: self.answered.clone(),
        }
    }

    /// Waits until every exchange answered or queued before this call is in
    /// the database. False if that did not happen within `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let a = &self.answered;
        let (done_tx, done_rx) = oneshot::channel();
        let wait = async {
            let _turn = a.flush_turn.lock().await;
            // Tickets from now on count in the other slot; wait for this one.
            let slot = (a.epoch.fetch_add(1, Ordering::SeqCst) & 1) as usize;
            {
                let _waiting = Waiting::start(&a.waiting);
                loop {
                    let drained = a.drained.notified();
                    if a.open[slot].load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    drained.await;
                }
            }
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
        // Let a batch gather before writing it, unless someone waits on a
        // barrier: fewer, larger transactions, and while the writer sleeps
        // the proxy queues exchanges without waking it for each one.
        if buf.len() < BATCH && !buf.iter().any(|m| matches!(m, Message::Barrier(_))) {
            tokio::time::sleep(LINGER).await;
            if !rx.is_empty() {
                let room = BATCH - buf.len();
                rx.recv_many(&mut buf, room).await;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exchange, Flow, FlowSummary, Micros, RecordedCommand};
    use crate::store::{ExchangeFilter, Result, Store, TokenOwner};
    use std::sync::Mutex;

    /// A store whose disk is slow: inserts wait until released.
    struct SlowStore {
        gate: tokio::sync::Semaphore,
        stored: Mutex<usize>,
        losses: Mutex<i64>,
    }

    impl Default for SlowStore {
        fn default() -> Self {
            Self {
                gate: tokio::sync::Semaphore::new(0),
                stored: Mutex::new(0),
                losses: Mutex::new(0),
            }
        }
    }

    #[async_trait::async_trait]
    impl Store for SlowStore {
        async fn insert_exchanges(&self, batch: &[Exchange]) -> Result<()> {
            self.gate.acquire().await.unwrap().forget();
            *self.stored.lock().unwrap() += batch.len();
            Ok(())
        }
        async fn record_loss(&self, loss: Loss) -> Result<()> {
            *self.losses.lock().unwrap() += loss.count;
            Ok(())
        }
        async fn list_exchanges(&self, _: &ExchangeFilter) -> Result<Vec<Exchange>> {
            Ok(vec![])
        }
        async fn get_exchange(&self, _: &str) -> Result<Option<Exchange>> {
            Ok(None)
        }
        async fn start_flow(&self, _: &str, _: Option<&str>, _: Micros) -> Result<Flow> {
            unimplemented!("not used by the writer")
        }
        async fn stop_flow(&self, _: Option<&str>, _: Micros) -> Result<Flow> {
            unimplemented!("not used by the writer")
        }
        async fn set_flow_command(&self, _: &str, _: &RecordedCommand) -> Result<()> {
            Ok(())
        }
        async fn delete_flow(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn get_flow(&self, _: &str) -> Result<Flow> {
            unimplemented!("not used by the writer")
        }
        async fn list_flows(&self) -> Result<Vec<FlowSummary>> {
            Ok(vec![])
        }
        async fn put_token(&self, _: &TokenOwner) -> Result<()> {
            Ok(())
        }
        async fn live_tokens(&self, _: Micros) -> Result<Vec<TokenOwner>> {
            Ok(vec![])
        }
    }

    fn exchange(n: usize) -> Exchange {
        Exchange {
            id: 0,
            uuid: format!("{n}"),
            request_id: String::new(),
            service: "s".into(),
            caller: "c".into(),
            caller_source: crate::model::CallerSource::Unknown,
            client_addr: String::new(),
            upstream_url: String::new(),
            method: "GET".into(),
            target: "/".into(),
            request_version: "HTTP/1.1".into(),
            request_headers: vec![],
            request_body: Default::default(),
            status: Some(200),
            reason: None,
            response_version: None,
            response_headers: vec![],
            response_body: Default::default(),
            request_seq: n as i64,
            response_seq: None,
            started_at: 0,
            response_at: None,
            finished_at: 0,
            error: None,
            ignored: false,
        }
    }

    #[tokio::test]
    async fn a_full_queue_counts_and_records_losses_without_waiting() {
        let store = Arc::new(SlowStore::default());
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 4, u64::MAX);
        // The writer takes the first one and blocks on the slow disk; 4 more fill the queue.
        let accepted = (0..20).filter(|&n| queue.submit(exchange(n))).count();
        assert!((4..=5).contains(&accepted), "{accepted}");
        let stats = queue.stats();
        assert_eq!(stats.lost as usize, 20 - accepted);
        // Let the disk catch up: everything queued is stored, and the loss is recorded.
        store.gate.add_permits(100);
        assert!(queue.flush(Duration::from_secs(5)).await);
        assert_eq!(*store.stored.lock().unwrap(), accepted);
        assert_eq!(*store.losses.lock().unwrap() as usize, 20 - accepted);
    }

    #[tokio::test]
    async fn flush_waits_for_everything_queued_before_it() {
        let store = Arc::new(SlowStore::default());
        store.gate.add_permits(1000);
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 1000, u64::MAX);
        for n in 0..300 {
            assert!(queue.submit(exchange(n)));
        }
        assert!(queue.flush(Duration::from_secs(5)).await);
        assert_eq!(*store.stored.lock().unwrap(), 300);
        assert_eq!(queue.stats().stored, 300);
    }

    #[tokio::test]
    async fn flush_waits_for_answered_exchanges_not_yet_queued() {
        let store = Arc::new(SlowStore::default());
        store.gate.add_permits(1000);
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 1000, u64::MAX);
        let ticket = queue.answered();
        let q = queue.clone();
        let flushing = tokio::spawn(async move { q.flush(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !flushing.is_finished(),
            "flush waits for the answered exchange"
        );
        // An exchange answered after the flush began does not hold it up.
        let _later = queue.answered();
        assert!(queue.submit(exchange(1)));
        drop(ticket);
        assert!(flushing.await.unwrap());
        assert_eq!(*store.stored.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn flushes_in_turn_each_wait_for_their_own_answers() {
        let store = Arc::new(SlowStore::default());
        store.gate.add_permits(1000);
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 1000, u64::MAX);
        let flush = |q: &CaptureQueue| {
            let q = q.clone();
            tokio::spawn(async move { q.flush(Duration::from_secs(5)).await })
        };
        let first = queue.answered();
        let flush_1 = flush(&queue);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = queue.answered();
        let flush_2 = flush(&queue);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!flush_1.is_finished() && !flush_2.is_finished());
        drop(first);
        assert!(flush_1.await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !flush_2.is_finished(),
            "the second flush waits for the second answer"
        );
        drop(second);
        assert!(flush_2.await.unwrap());
        // A flush that gives up leaves nothing behind: the next one is quick.
        let stuck = queue.answered();
        assert!(!queue.flush(Duration::from_millis(30)).await);
        drop(stuck);
        assert!(queue.flush(Duration::from_secs(5)).await);
        assert_eq!(queue.answered.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn body_bytes_bound_the_queue_too() {
        let store = Arc::new(SlowStore::default());
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 1000, 1000);
        let mut big = exchange(1);
        big.request_body.kept = vec![0; 600];
        assert!(queue.submit(big.clone()), "the first one always fits");
        tokio::task::yield_now().await;
        let mut accepted = 0;
        for _ in 0..5 {
            accepted += queue.submit(big.clone()) as usize;
        }
        assert!(accepted <= 1, "{accepted}");
        assert!(queue.stats().lost >= 4);
    }
}
