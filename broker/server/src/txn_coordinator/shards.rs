//! The transactional ids of each loaded `__transaction_state` partition:
//! one shard per partition, and in it one slot per id.
//!
//! Locks, in the order they may be taken: a slot (one id; held for that
//! id's whole step, its log writes included, so one id's requests apply
//! one at a time), then a shard's map (a lookup, an insert or a removal
//! only), then the map of shards (the same). A shard's map is never held
//! while a slot is taken, and nothing here is held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use runnel_coordinator::txn::Transaction;

/// One transactional id's state.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// `None` until the id's first InitProducerId is stored.
    pub txn: Option<Transaction>,
    /// The id was expired and its slot taken out of the shard: whoever
    /// waited on it looks the id up again.
    pub removed: bool,
}

pub(super) type Entry = Arc<Mutex<Slot>>;

pub(super) fn lock_slot(entry: &Entry) -> MutexGuard<'_, Slot> {
    entry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ids of one `__transaction_state` partition.
#[derive(Debug, Default)]
pub(super) struct Shard {
    ids: Mutex<HashMap<String, Entry>>,
}

impl Shard {
    /// A shard holding `loaded`.
    pub fn with(loaded: impl IntoIterator<Item = (String, Transaction)>) -> Self {
        let ids = loaded
            .into_iter()
            .map(|(id, txn)| {
                let slot = Slot {
                    txn: Some(txn),
                    removed: false,
                };
                (id, Arc::new(Mutex::new(slot)))
            })
            .collect();
        Self {
            ids: Mutex::new(ids),
        }
    }

    fn ids(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `id`; with `create`, an empty one is made for an id not
    /// known yet.
    pub fn entry(&self, id: &str, create: bool) -> Option<Entry> {
        let mut ids = self.ids();
        match ids.get(id) {
            Some(entry) => Some(Arc::clone(entry)),
            None if create => {
                let entry = Entry::default();
                ids.insert(id.to_string(), Arc::clone(&entry));
                Some(entry)
            }
            None => None,
        }
    }

    /// Every slot, to be locked one by one after this returns.
    pub fn entries(&self) -> Vec<(String, Entry)> {
        self.ids()
            .iter()
            .map(|(id, entry)| (id.clone(), Arc::clone(entry)))
            .collect()
    }

    /// Takes `entry` out, if it is still `id`'s slot (called with the slot
    /// held and marked removed).
    pub fn remove(&self, id: &str, entry: &Entry) {
        let mut ids = self.ids();
        if ids.get(id).is_some_and(|held| Arc::ptr_eq(held, entry)) {
            ids.remove(id);
        }
    }
}

/// The loaded shards, by `__transaction_state` partition.
#[derive(Debug, Default)]
pub(super) struct Shards {
    by_partition: RwLock<HashMap<i32, Arc<Shard>>>,
}

impl Shards {
    pub fn get(&self, partition: i32) -> Option<Arc<Shard>> {
        let shards = self
            .by_partition
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shards.get(&partition).cloned()
    }

    /// Every loaded shard, in partition order.
    pub fn all(&self) -> Vec<(i32, Arc<Shard>)> {
        let shards = self
            .by_partition
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(i32, Arc<Shard>)> = shards
            .iter()
            .map(|(partition, shard)| (*partition, Arc::clone(shard)))
            .collect();
        all.sort_by_key(|(partition, _)| *partition);
        all
    }

    pub fn insert(&self, partition: i32, shard: Shard) {
        self.by_partition
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, Arc::new(shard));
    }

    /// Drops a shard; returns whether it was loaded.
    pub fn remove(&self, partition: i32) -> bool {
        self.by_partition
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition)
            .is_some()
    }
}
