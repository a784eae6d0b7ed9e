//! A tiny HTTP service for deployer tests, whose /health can be switched to fail.
