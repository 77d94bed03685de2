//! The transactional ids this broker coordinates, with their state, behind
//! one lock held only for a lookup or an update (txns.rs drives them).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use runnel_coordinator::txn::Transaction;

#[derive(Debug, Default)]
pub struct Transactions {
    by_id: Mutex<HashMap<String, Transaction>>,
}

impl Transactions {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Transaction>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
