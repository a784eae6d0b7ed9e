//! The event store: durable streams, a global log and consumer groups over HTTP.
