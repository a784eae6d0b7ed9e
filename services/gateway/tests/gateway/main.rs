//! Fleet tests through the gateway: the whole fleet runs in-process on loopback ports.

mod bad_input;
mod browser;
mod compensation;
mod concurrency;
mod duplicates;
mod fleet;
mod gateway_behaviour;
mod poison;
mod process;
mod rebuild;
mod search;
mod talk_example;
mod weak_schema;

pub use fleet::Fleet;
