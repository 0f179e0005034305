//! What tracer remembers about who holds what, for calls whose caller no
//! process can tell (a compute node on another host): the calls open right
//! now, the caller each service-user token was issued to or first seen
//! with, and the service each person's token went to last.
//!
//! Everything here is keyed by token hashes or service names, bounded, and
//! held in memory only.

use super::tokens::TokenKey;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Entries kept per map; the oldest go first.
const MAX_ENTRIES: usize = 50_000;

/// Calls being forwarded right now, of any kind, in the order they started.
#[derive(Default)]
pub(crate) struct OpenCalls {
    calls: Mutex<Vec<(u64, Arc<str>)>>,
}

impl OpenCalls {
    pub fn start(&self, id: u64, service: &str) {
        lock(&self.calls).push((id, service.into()));
    }

    pub fn end(&self, id: u64) {
        lock(&self.calls).retain(|(i, _)| *i != id);
    }

    /// Whether a call to `service` is open.
    pub fn is_open(&self, service: &str) -> bool {
        lock(&self.calls).iter().any(|(_, s)| &**s == service)
    }

    /// The service of the latest open call, other than `except` (the
    /// service being called): the one a nested call most likely serves.
    pub fn latest(&self, except: &str) -> Option<Arc<str>> {
        lock(&self.calls)
            .iter()
            .rev()
            .find(|(_, s)| &**s != except)
            .map(|(_, s)| s.clone())
    }
}

/// A bounded map, oldest entries evicted first.
pub(crate) struct Bounded<V> {
    inner: Mutex<(HashMap<TokenKey, V>, VecDeque<TokenKey>)>,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }
}

impl<V: Clone> Bounded<V> {
    pub fn get(&self, key: &TokenKey) -> Option<V> {
        lock(&self.inner).0.get(key).cloned()
    }

    pub fn insert(&self, key: TokenKey, value: V) {
        let mut g = lock(&self.inner);
        let (map, order) = &mut *g;
        if map.insert(key, value).is_none() {
            order.push_back(key);
            while map.len() > MAX_ENTRIES {
                let Some(old) = order.pop_front() else { break };
                map.remove(&old);
            }
        }
    }

    /// Inserts unless the key is known.
    pub fn remember(&self, key: TokenKey, value: V) {
        if self.get(&key).is_none() {
            self.insert(key, value);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_calls_latest_skips_the_called_service() {
        let o = OpenCalls::default();
        o.start(1, "nova-api");
        o.start(2, "neutron-server");
        assert_eq!(o.latest("keystone").as_deref(), Some("neutron-server"));
        assert_eq!(o.latest("neutron-server").as_deref(), Some("nova-api"));
        assert!(o.is_open("nova-api"));
        o.end(1);
        assert!(!o.is_open("nova-api"));
        o.end(2);
        assert_eq!(o.latest("keystone"), None);
    }

    #[test]
    fn bounded_keeps_the_first_value_and_evicts_the_oldest() {
        let b: Bounded<u32> = Bounded::default();
        b.remember([1; 32], 1);
        b.remember([1; 32], 2);
        assert_eq!(b.get(&[1; 32]), Some(1));
        b.insert([1; 32], 3);
        assert_eq!(b.get(&[1; 32]), Some(3));
        for i in 0..MAX_ENTRIES as u32 + 1 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            k[31] = 9;
            b.insert(k, i);
        }
        assert_eq!(b.get(&[1; 32]), None, "the oldest entry went first");
    }
}
