//! deployer: plan and apply a fleet of services against a Docker Engine.

pub mod manifest;
pub mod plan;
pub mod labels;
pub mod spec;
