#!/usr/bin/env bash
# Brings the whole fleet up on the local Docker Engine (README "Bring-up"):
# builds the static binaries and FROM scratch images, then `deployer apply -f manifests/local.yaml`,
# which waits until every service is healthy. Running it again changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building images" >&2
ci/build-images.sh
echo "==> building the deployer" >&2
cargo build --release -p deployer --bin deployer
echo "==> applying manifests/local.yaml" >&2
target/release/deployer apply -f manifests/local.yaml
gw_port=$(awk '/^  gateway:/{g=1} g && /published|"[0-9]+:/{print; exit}' manifests/local.yaml | grep -oE '[0-9]{2,5}' | head -1)
echo
echo "Fleet is up."
echo "  Gateway API: http://127.0.0.1:${gw_port:-8080}/api"
echo "  Web UI:      http://127.0.0.1:${gw_port:-8080}/"
echo "Tear down with: ci/down.sh   (add --volumes to delete the data too)"
