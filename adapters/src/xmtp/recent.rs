//! [`RecentIds`]: the message ids seen lately, so a stream resync that replays messages
//! delivers each once. Memory is bounded; the durable de-duplication is the Store's
//! processed message ids.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct RecentIds {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentIds {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
        }
    }

    /// True the first time `id` is offered (within the last `capacity` ids).
    pub fn first_sighting(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_seen_once() {
        let mut recent = RecentIds::new(4);
        assert!(recent.first_sighting("a"));
        assert!(!recent.first_sighting("a"));
    }

    #[test]
    fn the_oldest_id_is_forgotten_at_capacity() {
        let mut recent = RecentIds::new(2);
        assert!(recent.first_sighting("a"));
        assert!(recent.first_sighting("b"));
        assert!(recent.first_sighting("c"));
        assert!(recent.first_sighting("a"));
        assert!(!recent.first_sighting("c"));
    }
}
