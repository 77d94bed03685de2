//! Rebalance callbacks, as Java's `ConsumerRebalanceListener`: a
//! subscribed consumer tells its listener which partitions it gives up and
//! which it gets at each rebalance. They run inside `poll`, before it
//! fetches from the new assignment.

/// What a subscribed consumer tells of each rebalance. Partitions are
/// `(topic, partition)`.
///
/// Eager assignors (range, roundrobin, sticky) revoke every partition
/// before the member joins again and assign the whole new set after.
/// `cooperative-sticky` revokes only the partitions that move away and
/// assigns only the ones that are new (called even when none are).
pub trait RebalanceListener: Send {
    /// The partitions this member gives up; with `enable.auto.commit`
    /// their positions were committed just before.
    fn on_partitions_revoked(&mut self, partitions: &[(String, i32)]);

    /// The partitions this member starts reading.
    fn on_partitions_assigned(&mut self, partitions: &[(String, i32)]);

    /// The partitions this member held when it lost its place in the
    /// group (fenced by the coordinator, or it left after missing
    /// `max.poll.interval.ms`): another member may already read them, and
    /// nothing was committed. By default, the same as revoked.
    fn on_partitions_lost(&mut self, partitions: &[(String, i32)]) {
        self.on_partitions_revoked(partitions);
    }
}

/// The consumer's listener, if it has one. The mutex lets the consumer be
/// shared between threads without asking `Sync` of listeners; it is only
/// reached through `&mut`, so never locked.
#[derive(Default)]
pub(super) struct Listener(Option<std::sync::Mutex<Box<dyn RebalanceListener>>>);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Listener(set)"
        } else {
            "Listener(none)"
        })
    }
}

impl Listener {
    pub fn new(listener: Box<dyn RebalanceListener>) -> Self {
        Self(Some(std::sync::Mutex::new(listener)))
    }

    fn get(&mut self) -> Option<&mut Box<dyn RebalanceListener>> {
        let listener = self.0.as_mut()?;
        // A listener that panicked keeps being called, as it would be
        // without the mutex.
        Some(listener.get_mut().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn revoked(&mut self, partitions: &[(String, i32)]) {
        if let Some(listener) = self.get()
            && !partitions.is_empty()
        {
            listener.on_partitions_revoked(partitions);
        }
    }

    pub fn assigned(&mut self, partitions: &[(String, i32)]) {
        if let Some(listener) = self.get() {
            listener.on_partitions_assigned(partitions);
        }
    }

    pub fn lost(&mut self, partitions: &[(String, i32)]) {
        if let Some(listener) = self.get()
            && !partitions.is_empty()
        {
            listener.on_partitions_lost(partitions);
        }
    }
}
