//! Remembers recent `X-GitHub-Delivery` ids: GitHub keeps the id when it redelivers.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// A bounded set of delivery ids; the oldest is forgotten when it is full.
#[derive(Debug)]
pub struct Dedupe {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
}

impl Dedupe {
    /// Remembers up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Records `id`; true the first time it is seen, false for a repeat.
    pub fn first_time(&self, id: &str) -> bool {
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.contains(id) {
            return false;
        }
        if seen.order.len() >= self.capacity
            && let Some(oldest) = seen.order.pop_front()
        {
            seen.ids.remove(&oldest);
        }
        let id: Arc<str> = id.into();
        seen.ids.insert(id.clone());
        seen.order.push_back(id);
        true
    }

    /// Forgets `id`, so that a redelivery of a delivery we failed to take is processed.
    pub fn forget(&self, id: &str) {
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.remove(id) {
            seen.order.retain(|x| &**x != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_caught_until_forgotten_or_evicted() {
        let d = Dedupe::new(2);
        assert!(d.first_time("a"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c")); // evicts a
        assert!(!d.first_time("b"));
        assert!(d.first_time("a"));
        d.forget("a");
        assert!(d.first_time("a"));
    }
}
