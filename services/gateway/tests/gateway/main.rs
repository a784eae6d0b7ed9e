//! Fleet tests through the gateway: the whole fleet runs in-process on loopback ports.

mod compensation;
mod duplicates;
mod fleet;
mod rebuild;
mod talk_example;

pub use fleet::Fleet;
