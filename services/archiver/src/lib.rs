//! The archiver: copies the global event log to object storage as immutable, compressed segments.
