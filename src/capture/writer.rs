//! The batched store writer: the proxy hands finished exchanges to a bounded
//! queue and moves on; one task writes them in batches.
//!
//! The proxy never waits on the disk. When the queue is full (by count or by
//! body bytes) the exchange is not stored: the loss is counted, logged, and
//! written to the database so `tracer flow list` and the admin API show it.

use crate::model::Exchange;
use crate::store::{Loss, LossCause, SharedStore};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// How long a flush waits for exchanges whose responses are still streaming.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Everything queued before the flush is in the database.
    pub stored: bool,
    /// Exchanges this flush waited for, answered before it began, that were
    /// still streaming when it stopped waiting (they are stored when they end).
    pub still_streaming: u64,
}

/// Counters the admin API shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub queued: u64,
    pub stored: u64,
    pub lost: u64,
    /// `lost` by cause.
    pub lost_queue_full: u64,
    pub lost_queue_bytes: u64,
    pub lost_write_failed: u64,
    pub write_errors: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    stored: AtomicU64,
    lost: AtomicU64,
    /// `lost`, by `LossCause::index`.
    lost_by_cause: [AtomicU64; 4],
    /// When the oldest loss not yet recorded happened (0: none), by cause:
    /// a loss recorded late still falls in the flow it happened in.
    first_unrecorded_at: [AtomicI64; 4],
    write_errors: AtomicU64,
    bytes_in_queue: AtomicU64,
}

impl Counters {
    /// Counts `n` lost exchanges; returns the total lost so far.
    fn count_loss(&self, cause: LossCause, n: u64) -> u64 {
        let _ = self.first_unrecorded_at[cause.index()].compare_exchange(
            0,
            crate::timefmt::now_micros(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        self.lost_by_cause[cause.index()].fetch_add(n, Ordering::Relaxed);
        self.lost.fetch_add(n, Ordering::Relaxed) + n
    }
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
    answer_wait: Duration,
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
                answer_wait: ANSWER_WAIT,
            },
            handle,
        )
    }

    /// How long flushes wait for responses still streaming (tests shorten it).
    pub fn with_answer_wait(mut self, wait: Duration) -> Self {
        self.answer_wait = wait;
        self
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
            self.count_loss(&ex, LossCause::QueueBytes);
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
                let cause = match &err {
                    mpsc::error::TrySendError::Full(_) => LossCause::QueueFull,
                    mpsc::error::TrySendError::Closed(_) => LossCause::WriterStopped,
                };
                if let Message::Exchange(ex) = err.into_inner() {
                    self.count_loss(&ex, cause);
                }
                false
            }
        }
    }

    fn count_loss(&self, ex: &Exchange, cause: LossCause) {
        let n = self.counters.count_loss(cause, 1);
        // Log the first loss and then every 1000th, so a flood does not flood
        // the log. The path only: a query string may carry secrets.
        if n == 1 || n % 1000 == 0 {
            tracing::warn!(
                lost_total = n,
                service = %ex.service,
                method = %ex.method,
                path = %ex.path(),
                cause = cause.as_str(),
                "exchange not stored: {}",
                cause.describe()
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
    /// the database, within `timeout`. An answered exchange whose response
    /// is still streaming is waited for [`ANSWER_WAIT`] at most (by default): one stalled
    /// exchange must not hold every flush (it is stored when it ends, and
    /// counted in `still_streaming` meanwhile).
    pub async fn flush(&self, timeout: Duration) -> Flushed {
        let a = &self.answered;
        let (done_tx, done_rx) = oneshot::channel();
        let mut still_streaming = 0;
        let wait = async {
            let _turn = a.flush_turn.lock().await;
            // Tickets from now on count in the other slot; wait for this one.
            let slot = (a.epoch.fetch_add(1, Ordering::SeqCst) & 1) as usize;
            let drained = async {
                let _waiting = Waiting::start(&a.waiting);
                loop {
                    let drained = a.drained.notified();
                    if a.open[slot].load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    drained.await;
                }
            };
            if tokio::time::timeout(self.answer_wait.min(timeout), drained)
                .await
                .is_err()
            {
                still_streaming = a.open[slot].load(Ordering::SeqCst);
            }
            self.tx.send(Message::Barrier(done_tx)).await.is_ok() && done_rx.await.is_ok()
        };
        let stored = tokio::time::timeout(timeout, wait).await.unwrap_or(false);
        Flushed {
            stored,
            still_streaming,
        }
    }

    fn lost_by(&self, cause: LossCause) -> u64 {
        self.counters.lost_by_cause[cause.index()].load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> QueueStats {
        QueueStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            stored: self.counters.stored.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
            lost_queue_full: self.lost_by(LossCause::QueueFull),
            lost_queue_bytes: self.lost_by(LossCause::QueueBytes),
            lost_write_failed: self.lost_by(LossCause::WriteFailed),
            write_errors: self.counters.write_errors.load(Ordering::Relaxed),
        }
    }
}

async fn run_writer(store: SharedStore, mut rx: mpsc::Receiver<Message>, counters: Arc<Counters>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut batch: Vec<Exchange> = Vec::with_capacity(BATCH);
    let mut barriers = Vec::new();
    let mut losses = LossReport::default();
    loop {
        // Unrecorded losses (the database refused them too) are tried again
        // every so often, also when no traffic comes.
        let received = if losses.pending(&counters) {
            match tokio::time::timeout(LOSS_RETRY, rx.recv_many(&mut buf, BATCH)).await {
                Ok(n) => n,
                Err(_) => {
                    losses.record(&store, &counters).await;
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut buf, BATCH).await
        };
        if received == 0 {
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
            if let Err(why) = write_batch(&store, &batch, &counters).await {
                counters.count_loss(LossCause::WriteFailed, batch.len() as u64);
                losses.detail = Some(why);
            }
            let bytes: u64 = batch.iter().map(body_bytes).sum();
            counters.bytes_in_queue.fetch_sub(bytes, Ordering::AcqRel);
            batch.clear();
        }
        losses.record(&store, &counters).await;
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
    losses.record(&store, &counters).await;
}

/// How often unrecorded losses are tried again.
const LOSS_RETRY: Duration = Duration::from_secs(1);

/// Writes one batch, retrying a failing database a few times before giving
/// the batch up (the proxy must not stall behind a dead disk). Err: the
/// last error, once every attempt failed.
async fn write_batch(
    store: &SharedStore,
    batch: &[Exchange],
    counters: &Counters,
) -> Result<(), String> {
    let mut delay = Duration::from_millis(50);
    let mut last = String::new();
    for attempt in 1..=5 {
        match store.insert_exchanges(batch).await {
            Ok(()) => {
                counters
                    .stored
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(err) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    attempt,
                    exchanges = batch.len(),
                    "cannot store exchanges: {err}"
                );
                last = err.to_string();
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Err(last)
}

/// Losses counted but not yet in the database, by cause: recorded when the
/// database takes them (after a disk-full spell, once it is writable again).
#[derive(Default)]
struct LossReport {
    recorded: [u64; 4],
    /// The last write error, recorded with the `write-failed` losses.
    detail: Option<String>,
}

impl LossReport {
    fn pending(&self, counters: &Counters) -> bool {
        LossCause::ALL.iter().any(|c| {
            counters.lost_by_cause[c.index()].load(Ordering::Relaxed) != self.recorded[c.index()]
        })
    }

    async fn record(&mut self, store: &SharedStore, counters: &Counters) {
        for cause in LossCause::ALL {
            let i = cause.index();
            let lost = counters.lost_by_cause[i].load(Ordering::Relaxed);
            if lost == self.recorded[i] {
                continue;
            }
            let first = counters.first_unrecorded_at[i].load(Ordering::Acquire);
            let loss = Loss {
                at: if first > 0 {
                    first
                } else {
                    crate::timefmt::now_micros()
                },
                count: (lost - self.recorded[i]) as i64,
                cause,
                detail: (cause == LossCause::WriteFailed)
                    .then(|| self.detail.clone())
                    .flatten(),
            };
            match store.record_loss(loss.clone()).await {
                Ok(()) => {
                    self.recorded[i] = lost;
                    // Losses counted meanwhile keep their own, later, time.
                    let _ = counters.first_unrecorded_at[i].compare_exchange(
                        first,
                        0,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                Err(err) => {
                    tracing::error!(
                        "cannot record {} lost exchanges ({}) yet: {err}",
                        loss.count,
                        cause.describe()
                    );
                    return;
                }
            }
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
        assert!(queue.flush(Duration::from_secs(5)).await.stored);
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
        assert!(queue.flush(Duration::from_secs(5)).await.stored);
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
        let flushing = tokio::spawn(async move { q.flush(Duration::from_secs(5)).await.stored });
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
            tokio::spawn(async move { q.flush(Duration::from_secs(5)).await.stored })
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
        assert!(!queue.flush(Duration::from_millis(30)).await.stored);
        drop(stuck);
        assert!(queue.flush(Duration::from_secs(5)).await.stored);
        assert_eq!(queue.answered.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_stalled_answer_does_not_hold_flushes() {
        let store = Arc::new(SlowStore::default());
        store.gate.add_permits(1000);
        let (queue, _writer) = CaptureQueue::spawn(store.clone(), 1000, u64::MAX);
        let queue = queue.with_answer_wait(Duration::from_millis(100));
        let _stalled = queue.answered();
        assert!(queue.submit(exchange(1)));
        for round in 0..3 {
            let began = std::time::Instant::now();
            let flushed = queue.flush(Duration::from_secs(30)).await;
            assert!(flushed.stored);
            if round == 0 {
                assert_eq!(flushed.still_streaming, 1, "the one it gave up on");
            }
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "{:?}",
                began.elapsed()
            );
        }
        assert_eq!(*store.stored.lock().unwrap(), 1);
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
