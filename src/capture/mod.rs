//! Capture: the tee between the wire and the record.
//!
//! [`BodyCapture`] watches a body go by (keeps a prefix, counts, hashes);
//! [`EventClock`] numbers events; [`writer`] queues finished exchanges for
//! the store without ever making the proxy wait on the disk.

use crate::model::BodyRecord;
use bytes::Bytes;
use hash::BodyHash;
use std::sync::atomic::{AtomicI64, Ordering};

mod hash;
pub mod writer;

pub use writer::{AnswerTicket, CaptureQueue, Flushed, QueueStats};

/// SHA-256 of no bytes at all.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Watches one body stream: keeps its first `limit` bytes, counts and hashes all.
pub struct BodyCapture {
    kept: Vec<u8>,
    limit: usize,
    size: u64,
    hash: BodyHash,
}

impl BodyCapture {
    pub fn new(limit: u64) -> Self {
        Self {
            kept: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            size: 0,
            hash: BodyHash::new(),
        }
    }

    /// Watches bytes that are not relayed (a body read ahead, tracer's own answers).
    pub fn feed(&mut self, data: &[u8]) {
        self.keep(data);
        self.hash.update(data);
    }

    /// Watches a relayed chunk. A large body is hashed on another thread
    /// (see `hash`): this waits only when that thread falls behind.
    pub async fn feed_relayed(&mut self, data: Bytes) {
        self.keep(&data);
        let seen = self.size - data.len() as u64;
        self.hash.update_shared(data, seen).await;
    }

    /// Waits until every byte watched so far is hashed; call when a relayed
    /// body ends, so that `finish` need not wait.
    pub async fn settle(&mut self) {
        self.hash.settle().await;
    }

    fn keep(&mut self, data: &[u8]) {
        if self.kept.len() < self.limit {
            let room = self.limit - self.kept.len();
            self.kept.extend_from_slice(&data[..data.len().min(room)]);
        }
        self.size += data.len() as u64;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> BodyRecord {
        // Most requests have no body: skip hashing nothing.
        let sha256 = if self.size == 0 {
            EMPTY_SHA256.to_string()
        } else {
            let mut hex = [0u8; 64];
            // A 32-byte digest always fits 64 hex digits.
            let _ = hex::encode_to_slice(self.hash.finish(), &mut hex);
            String::from_utf8_lossy(&hex).into_owned()
        };
        BodyRecord {
            kept: self.kept,
            size: self.size,
            sha256,
        }
    }
}

/// The process-wide event counter: every request head and response head gets
/// the next number. Numbers are `max(previous + 1, now in µs)`, so they grow
/// strictly within a daemon, keep growing across restarts, and stay roughly
/// comparable between daemons sharing one database.
#[derive(Debug, Default)]
pub struct EventClock {
    last: AtomicI64,
}

impl EventClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next(&self) -> i64 {
        let now = crate::timefmt::now_micros();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(prev + 1);
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => prev = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn body_capture_keeps_prefix_and_hashes_all() {
        let mut c = BodyCapture::new(4);
        c.feed(b"ab");
        c.feed(b"cdef");
        let r = c.finish();
        assert_eq!(r.kept, b"abcd");
        assert_eq!(r.size, 6);
        assert!(r.is_truncated());
        // sha256("abcdef")
        assert_eq!(
            r.sha256,
            "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
        );
    }

    #[test]
    fn empty_body_has_the_empty_hash() {
        let r = BodyCapture::new(10).finish();
        assert_eq!(r.size, 0);
        assert_eq!(hex::encode(Sha256::digest(b"")), EMPTY_SHA256);
        assert_eq!(
            r.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn clock_is_strictly_increasing_across_threads() {
        let clock = std::sync::Arc::new(EventClock::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = clock.clone();
                std::thread::spawn(move || (0..1000).map(|_| c.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "no number handed out twice");
    }
}
