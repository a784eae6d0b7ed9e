//! The path segments of the store's routes, below its base URL. Names go into a path as they
//! are: the name rules leave nothing to escape.

/// `/streams/{stream_id}/events`: append (`POST`) and read (`GET`) a stream.
pub fn stream_events(stream_id: &str) -> [&str; 3] {
    ["streams", stream_id, "events"]
}

/// `/streams/{stream_id}/snapshot`: the stream's latest snapshot (`GET`, `PUT`).
pub fn stream_snapshot(stream_id: &str) -> [&str; 3] {
    ["streams", stream_id, "snapshot"]
}

/// `/events`: the global log.
pub const EVENTS: [&str; 1] = ["events"];

/// `/event-types`: the event types and schema versions the store holds, with counts.
pub const EVENT_TYPES: [&str; 1] = ["event-types"];

/// `/import`: events with their own positions, for restores.
pub const IMPORT: [&str; 1] = ["import"];

/// `/subscriptions/{group}`: a consumer group (`PUT`, `GET`).
pub fn subscription(group: &str) -> [&str; 2] {
    ["subscriptions", group]
}

/// `/subscriptions/{group}/events`: the group's next events.
pub fn subscription_events(group: &str) -> [&str; 3] {
    ["subscriptions", group, "events"]
}

/// `/subscriptions/{group}/ack`: moves the group's checkpoint.
pub fn subscription_ack(group: &str) -> [&str; 3] {
    ["subscriptions", group, "ack"]
}
