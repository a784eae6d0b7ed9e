//! deployer: plan and apply a fleet of services against a Docker Engine.
