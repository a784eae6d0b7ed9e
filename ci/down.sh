#!/usr/bin/env bash
# Tears the local fleet down: `deployer down` on manifests/local.yaml. Pass --volumes to delete data.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p deployer --bin deployer
exec target/release/deployer down -f manifests/local.yaml "$@"
