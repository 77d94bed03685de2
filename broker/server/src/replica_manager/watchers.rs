//! Wake-ups per partition: a parked request registers its [`Waiter`] with
//! each partition it waits on, checks its condition, and only then sleeps;
//! a change to the partition wakes just the waiters registered with it.
//!
//! Registering before checking closes the race Kafka's
//! `tryCompleteElseWatch` closes: a change between the check and the sleep
//! leaves a permit in the waiter's `Notify`, so the sleep returns at once.
//! A partition holds its waiters weakly and forgets them when it wakes
//! them; a waiter that gave up (its request timed out) is dropped, and its
//! dead entries are swept when a list has grown past twice what was live at
//! the last sweep, so a partition no one appends to does not collect them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::Notify;

/// One parked request's wake-up, shared with the partitions it watches.
#[derive(Debug, Clone, Default)]
pub struct Waiter {
    notify: Arc<Notify>,
}

impl Waiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns once a partition this waiter registered with has changed
    /// since it registered (at once if one already has).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

/// The waiters registered with one partition for one kind of change.
#[derive(Debug, Default)]
pub struct Watchers {
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// `waiters.len()`, readable without the lock: a change with no one
    /// waiting (the common case on the produce path) costs one load.
    registered: AtomicUsize,
    /// Entries left after the last sweep of dead waiters.
    live_at_sweep: AtomicUsize,
}

impl Watchers {
    /// Registers `waiter` until the next [`Watchers::wake`].
    pub fn watch(&self, waiter: &Waiter) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        if waiters.len() >= 2 * self.live_at_sweep.load(Ordering::Relaxed).max(16) {
            waiters.retain(|w| w.strong_count() > 0);
            self.live_at_sweep.store(waiters.len(), Ordering::Relaxed);
        }
        waiters.push(Arc::downgrade(&waiter.notify));
        self.registered.store(waiters.len(), Ordering::Release);
    }

    /// Wakes every registered waiter and forgets them all.
    pub fn wake(&self) {
        if self.registered.load(Ordering::Acquire) == 0 {
            return;
        }
        let woken = {
            let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            self.registered.store(0, Ordering::Release);
            self.live_at_sweep.store(0, Ordering::Relaxed);
            std::mem::take(&mut *waiters)
        };
        for waiter in woken.iter().filter_map(Weak::upgrade) {
            // A permit, not `notify_waiters`: a waiter between its check and
            // its sleep must still see this change.
            waiter.notify_one();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_change_after_registering_wakes_even_before_the_sleep() {
        let watchers = Watchers::default();
        let waiter = Waiter::new();
        watchers.watch(&waiter);
        // The change lands between the waiter's check and its sleep.
        watchers.wake();
        tokio::time::timeout(Duration::from_secs(5), waiter.changed())
            .await
            .expect("the permit left by wake() ends the wait");
    }

    #[tokio::test(start_paused = true)]
    async fn only_registered_waiters_wake_and_only_once() {
        let watchers = Watchers::default();
        let other = Watchers::default();
        let waiter = Waiter::new();
        other.watch(&waiter);
        watchers.wake();
        let slept = tokio::time::timeout(Duration::from_secs(1), waiter.changed()).await;
        assert!(slept.is_err(), "woken by a partition it does not watch");

        watchers.watch(&waiter);
        watchers.wake();
        waiter.changed().await;
        watchers.wake();
        let again = tokio::time::timeout(Duration::from_secs(1), waiter.changed()).await;
        assert!(
            again.is_err(),
            "a wake-up is not remembered after it is used"
        );
    }

    #[test]
    fn waiters_that_gave_up_are_swept() {
        let watchers = Watchers::default();
        let kept = Waiter::new();
        watchers.watch(&kept);
        for _ in 0..10_000 {
            watchers.watch(&Waiter::new());
        }
        assert!(watchers.len() <= 64, "{} entries kept", watchers.len());
    }
}
