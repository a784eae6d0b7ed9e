//! The deployer against the real Docker Engine. Every test uses its own project, images and
//! ports, and cleans up in a Drop guard. With `DEPLOYER_REQUIRE_DOCKER=1` a missing engine
//! fails the tests instead of skipping them.

#[path = "../support/mod.rs"]
mod support;

mod apply;
mod cli;
mod engine_select;
mod events;
mod health_probe;
mod history;
mod registry;
mod registry_access;
mod roll;
