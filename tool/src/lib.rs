//! deployer: plan and apply a fleet of services against a Docker Engine.

pub mod manifest;
pub mod plan;
