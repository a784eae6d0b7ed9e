//! The server-sent-events feed of a consumer group: the events after its checkpoint from the
//! database, then each commit's events as the writer pushes them, reading the database again
//! only after a gap.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event as SseEvent;
use futures::Stream;
use service_kit::metrics::GaugeGuard;
use tokio::sync::{broadcast, watch};

use super::{AppState, SSE_BATCH};
use crate::domain::{EventFilter, RecordedEvent};
use crate::storage::{CommittedEvents, GlobalQuery};

pub(super) struct Feed {
    pub(super) state: AppState,
    pub(super) live: Option<broadcast::Receiver<CommittedEvents>>,
    pub(super) head_rx: watch::Receiver<u64>,
    pub(super) cursor: u64,
    pub(super) filter: EventFilter,
    pub(super) buffer: VecDeque<RecordedEvent>,
    pub(super) _subscriber: GaugeGuard,
}

impl Feed {
    pub(super) fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
        futures::stream::unfold(self, |mut feed| async move {
            let event = feed.next().await?;
            Some((Ok(event), feed))
        })
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                let id = event.position.to_string();
                return match SseEvent::default().event("event").id(id).json_data(&event) {
                    Ok(sse) => Some(sse),
                    Err(error) => {
                        tracing::error!(%error, "could not encode an event for a subscriber");
                        None
                    }
                };
            }
            let head = *self.head_rx.borrow_and_update();
            if head > self.cursor {
                if self.take_live() {
                    continue;
                }
                let query = GlobalQuery {
                    after: self.cursor,
                    up_to: head,
                    limit: SSE_BATCH,
                    filter: self.filter.clone(),
                };
                match self.state.storage().read_all(query).await {
                    Ok(slice) => {
                        self.cursor = self.cursor.max(slice.scanned_to);
                        self.buffer.extend(slice.events);
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%error, "reading events for a subscriber failed; closing its stream");
                        return None;
                    }
                }
            }
            tokio::select! {
                changed = self.head_rx.changed() => changed.ok()?,
                () = self.state.inner.shutdown.cancelled() => return None,
            }
        }
    }
}

impl Feed {
    /// Takes the next pushed commit if it continues exactly after the cursor; false when there
    /// is none or there is a gap (lagged or subscribed late), so the caller reads the database.
    fn take_live(&mut self) -> bool {
        let Some(live) = &mut self.live else {
            return false;
        };
        loop {
            match live.try_recv() {
                Ok(events) => {
                    let (Some(first), Some(last)) = (events.first(), events.last()) else {
                        continue;
                    };
                    if last.position <= self.cursor {
                        continue;
                    }
                    if first.position > self.cursor + 1 {
                        return false;
                    }
                    self.buffer.extend(
                        events
                            .iter()
                            .filter(|e| e.position > self.cursor)
                            .filter(|e| self.filter.matches(&e.event_type, &e.stream_id))
                            .cloned(),
                    );
                    self.cursor = last.position;
                    return true;
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(broadcast::error::TryRecvError::Empty) => return false,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.live = None;
                    return false;
                }
            }
        }
    }
}
