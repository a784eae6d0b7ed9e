//! deployer: plan and apply a fleet of services against a Docker Engine.

pub mod apply;
pub mod contract;
pub mod down;
pub mod engine;
mod errors;
pub mod event_inputs;
pub mod history;
pub mod label_cache;
pub mod labels;
pub mod lock;
pub mod manifest;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod registry;
pub mod smoke;
pub mod spec;
pub mod status;
