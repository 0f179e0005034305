//! SHA-256 of a body while it streams.
//!
//! Hashing costs about as much CPU as relaying the bytes. Small bodies are
//! hashed in place; once a body passes [`HASH_AWAY_AFTER`] bytes, the rest
//! is hashed on a thread of its own, so a large upload is relayed and hashed
//! on two cores at once instead of one after the other. The chunks handed
//! over are the relay's own buffers (`Bytes`, no copy), and at most
//! [`CHUNKS_IN_FLIGHT`] of them wait, so memory stays bounded and a slow
//! hasher slows the relay down instead of queueing the body.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// Bodies up to this size are hashed on the proxy thread.
pub const HASH_AWAY_AFTER: u64 = 4 * 1024 * 1024;
/// Chunks queued for the hashing thread at most.
const CHUNKS_IN_FLIGHT: usize = 8;

pub struct BodyHash {
    state: State,
}

enum State {
    Here(Sha256),
    Away(Away),
    /// Only while switching states.
    Gone,
}

struct Away {
    /// None once closed: the thread then finishes what it has and ends.
    chunks: Option<mpsc::Sender<Bytes>>,
    /// The hasher once every chunk is in (for `settle`, which may not block).
    back: oneshot::Receiver<Sha256>,
    /// The same, for `finish` after an abandoned relay (it may block briefly).
    thread: std::thread::JoinHandle<Sha256>,
}

impl BodyHash {
    pub fn new() -> Self {
        Self {
            state: State::Here(Sha256::new()),
        }
    }

    /// Hashes `data` in place. Only for bodies that are not relayed (a
    /// pre-read request body, tracer's own responses).
    pub fn update(&mut self, data: &[u8]) {
        self.settle_blocking();
        if let State::Here(h) = &mut self.state {
            h.update(data);
        }
    }

    /// Hashes a relayed chunk; `seen` is the body's size before it. Waits
    /// only when the hashing thread is [`CHUNKS_IN_FLIGHT`] chunks behind.
    pub async fn update_shared(&mut self, data: Bytes, seen: u64) {
        if let State::Here(h) = &mut self.state {
            if seen + data.len() as u64 <= HASH_AWAY_AFTER {
                h.update(&data);
                return;
            }
            self.send_away();
        }
        let unsent = match &self.state {
            State::Away(Away {
                chunks: Some(chunks),
                ..
            }) => match chunks.send(data).await {
                Ok(()) => return,
                Err(unsent) => unsent.0, // the thread is gone (only a panic does that)
            },
            _ => data,
        };
        self.settle_blocking();
        if let State::Here(h) = &mut self.state {
            h.update(&unsent);
        }
    }

    /// Waits, without blocking the thread, until every chunk is hashed.
    /// If this is cancelled midway, `finish` still gets the whole hash.
    pub async fn settle(&mut self) {
        let State::Away(away) = &mut self.state else {
            return;
        };
        away.chunks = None;
        if let Ok(hasher) = (&mut away.back).await {
            self.state = State::Here(hasher);
        } else {
            self.settle_blocking();
        }
    }

    /// The digest. After a relay that was abandoned midway (its future
    /// dropped), this waits for the hashing thread: at most
    /// [`CHUNKS_IN_FLIGHT`] chunks, well under a millisecond.
    pub fn finish(mut self) -> [u8; 32] {
        self.settle_blocking();
        match self.state {
            State::Here(h) => h.finalize().into(),
            // settle_blocking leaves no other state.
            State::Away(_) | State::Gone => Sha256::new().finalize().into(),
        }
    }

    fn send_away(&mut self) {
        let State::Here(mut hasher) = std::mem::replace(&mut self.state, State::Gone) else {
            return;
        };
        let (chunks, mut rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let (back_tx, back) = oneshot::channel();
        let kept_here = hasher.clone();
        let spawned = std::thread::Builder::new()
            .name("tracer-hash".into())
            .spawn(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    hasher.update(&chunk);
                }
                let _ = back_tx.send(hasher.clone());
                hasher
            });
        self.state = match spawned {
            Ok(thread) => State::Away(Away {
                chunks: Some(chunks),
                back,
                thread,
            }),
            Err(err) => {
                tracing::warn!("cannot start a hashing thread, hashing in place: {err}");
                State::Here(kept_here)
            }
        };
    }

    fn settle_blocking(&mut self) {
        if !matches!(self.state, State::Away(_)) {
            return;
        }
        if let State::Away(away) = std::mem::replace(&mut self.state, State::Gone) {
            drop(away.chunks); // close, so the thread can end
            self.state = State::Here(join(away.thread));
        }
    }
}

impl Default for BodyHash {
    fn default() -> Self {
        Self::new()
    }
}

fn join(thread: std::thread::JoinHandle<Sha256>) -> Sha256 {
    thread.join().unwrap_or_else(|_| {
        // sha2 does not panic; if it ever did, say so rather than store a wrong hash quietly.
        tracing::error!("the hashing thread failed: this body's SHA-256 is not its own");
        Sha256::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of `chunks` 64 KiB chunks, each its own byte, and its SHA-256.
    fn body(chunks: usize) -> (Vec<Bytes>, [u8; 32]) {
        let parts: Vec<Bytes> = (0..chunks)
            .map(|i| Bytes::from(vec![i as u8; 64 * 1024]))
            .collect();
        let sha = sha256_of(&parts, b"");
        (parts, sha)
    }

    fn sha256_of(parts: &[Bytes], tail: &[u8]) -> [u8; 32] {
        let mut whole = Sha256::new();
        for p in parts {
            whole.update(p);
        }
        whole.update(tail);
        whole.finalize().into()
    }

    async fn feed(hash: &mut BodyHash, parts: &[Bytes]) -> bool {
        let (mut seen, mut went_away) = (0u64, false);
        for p in parts {
            hash.update_shared(p.clone(), seen).await;
            seen += p.len() as u64;
            went_away |= matches!(hash.state, State::Away(_));
        }
        went_away
    }

    #[tokio::test]
    async fn a_large_body_is_hashed_away_and_whole() {
        let (parts, expected) = body(200); // 12.5 MiB
        let mut hash = BodyHash::new();
        assert!(feed(&mut hash, &parts).await, "hashed on its own thread");
        hash.settle().await;
        assert!(matches!(hash.state, State::Here(_)));
        assert_eq!(hash.finish(), expected);
    }

    #[tokio::test]
    async fn a_small_body_stays_here() {
        let (parts, expected) = body(8);
        let mut hash = BodyHash::new();
        assert!(!feed(&mut hash, &parts).await);
        assert_eq!(hash.finish(), expected);
    }

    /// A relay dropped midway (no settle), or a settle itself cancelled:
    /// finish still hashes every byte handed over.
    #[tokio::test]
    async fn abandoned_relays_and_cancelled_settles_lose_no_bytes() {
        let (parts, expected) = body(120);
        let mut hash = BodyHash::new();
        feed(&mut hash, &parts).await;
        assert_eq!(hash.finish(), expected);

        let mut hash = BodyHash::new();
        feed(&mut hash, &parts).await;
        {
            let settle = hash.settle();
            tokio::pin!(settle);
            let _ = futures_poll_once(settle.as_mut()).await;
        }
        assert_eq!(hash.finish(), expected);
    }

    #[tokio::test]
    async fn bytes_fed_in_place_after_going_away_keep_their_order() {
        let (parts, _) = body(80);
        let mut hash = BodyHash::new();
        feed(&mut hash, &parts).await;
        hash.update(b"tail");
        assert_eq!(hash.finish(), sha256_of(&parts, b"tail"));
    }

    /// Polls a future once and reports whether it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> bool {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx).is_ready())
        })
        .await
    }
}
