//! The tail: events acknowledged (journaled) but not yet committed to SQLite, for readers.

use std::collections::HashMap;

use crate::domain::RecordedEvent;
use crate::storage::{CommittedEvents, GlobalQuery};

/// Events acknowledged but not yet committed to SQLite, for readers: every event after `base`
/// is here, in position order. Readers take what they need from it first and then read SQLite
/// only up to `base`, which SQLite held before `base` was set.
#[derive(Default)]
pub(super) struct Tail {
    pub(super) base: u64,
    pub(super) groups: Vec<CommittedEvents>,
    /// Per stream, (group index, event index) in version order.
    pub(super) streams: HashMap<String, Vec<(u32, u32)>>,
    pub(super) len: usize,
}

impl Tail {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn push(&mut self, events: CommittedEvents) {
        let g = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        for (i, event) in (0u32..).zip(events.iter()) {
            self.streams
                .entry(event.stream_id.clone())
                .or_default()
                .push((g, i));
        }
        self.len += events.len();
        self.groups.push(events);
    }

    pub(super) fn reset(&mut self, base: u64) {
        self.base = base;
        self.groups.clear();
        self.streams.clear();
        self.len = 0;
    }

    /// (base, the stream's events in the tail).
    pub(super) fn stream(&self, stream: &str) -> (u64, Vec<RecordedEvent>) {
        let events = self.streams.get(stream).map_or_else(Vec::new, |at| {
            at.iter()
                .map(|&(g, i)| self.groups[g as usize][i as usize].clone())
                .collect()
        });
        (self.base, events)
    }

    /// (base, the tail's events with `after < position <= up_to` that match, at most `limit`).
    pub(super) fn global(&self, query: &GlobalQuery) -> (u64, Vec<RecordedEvent>) {
        let events = self
            .groups
            .iter()
            .flat_map(|g| g.iter())
            .skip_while(|e| e.position <= query.after)
            .take_while(|e| e.position <= query.up_to)
            .filter(|e| query.filter.matches(&e.event_type, &e.stream_id))
            .take(query.limit)
            .cloned()
            .collect();
        (self.base, events)
    }
}
