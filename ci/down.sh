#!/usr/bin/env bash
# Tears the local fleet down (the README's second command): `deployer down` on the project of
# manifests/local.yaml removes its containers and network. Pass --volumes to delete the data
# volumes and the apply history too.
# Exit codes: 0 done; 1 the deployer could not be built or the engine refused.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOYER=target/x86_64-unknown-linux-gnu/release/deployer
[ -x "$DEPLOYER" ] || ci/build-static.sh deployer >&2
exec "$DEPLOYER" down -f manifests/local.yaml "$@"
