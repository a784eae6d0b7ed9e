//! Support for the fleet's end-to-end tests: images, a local registry, the deployer, load.
