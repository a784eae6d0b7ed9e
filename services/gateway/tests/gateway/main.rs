//! Fleet tests through the gateway: the whole fleet runs in-process on loopback ports.

mod fleet;
mod talk_example;

pub use fleet::Fleet;
