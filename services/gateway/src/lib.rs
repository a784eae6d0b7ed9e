//! The API gateway and web UI.
