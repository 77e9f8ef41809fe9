//! A byte budget shared by every request body being read: a body holds a reservation for
//! the bytes it has (or announced), and gives them back when it is dropped.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes all bodies in flight may hold together.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

/// The bytes one body holds; released on drop.
#[derive(Debug)]
pub struct Held {
    budget: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `bytes` (at most 4 GiB, the semaphore's unit count).
    pub fn new(bytes: usize) -> Self {
        let units = bytes.min(u32::MAX as usize).min(Semaphore::MAX_PERMITS);
        Self(Arc::new(Semaphore::new(units)))
    }

    /// Reserves `bytes` now, or `None` when the budget has not that much left.
    pub fn reserve(&self, bytes: usize) -> Option<Held> {
        let mut held = Held {
            budget: self.0.clone(),
            permit: None,
        };
        held.grow_to(bytes).then_some(held)
    }

    /// Bytes not reserved.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

impl Held {
    /// Holds at least `bytes` in all; false (holding what it held) when the budget is short.
    pub fn grow_to(&mut self, bytes: usize) -> bool {
        let have = self.permit.as_ref().map_or(0, |p| p.num_permits());
        if bytes <= have {
            return true;
        }
        let Ok(more) = u32::try_from(bytes - have) else {
            return false;
        };
        match self.budget.clone().try_acquire_many_owned(more) {
            Ok(more) => {
                match &mut self.permit {
                    Some(p) => p.merge(more),
                    None => self.permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_come_back_on_drop() {
        let budget = BodyBudget::new(100);
        let mut a = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none());
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.available(), 0);
        assert!(!a.grow_to(61));
        assert!(a.grow_to(60));
        drop(b);
        assert!(a.grow_to(100));
        drop(a);
        assert_eq!(budget.available(), 100);
    }
}
