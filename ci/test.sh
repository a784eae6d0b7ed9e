#!/usr/bin/env bash
# The project's test command (README "Tests"). Installs what a fresh machine lacks, builds the
# static binaries that test images are made from, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_pkgs[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Test images are built FROM scratch out of these statically linked release binaries.
ci/build-static.sh

cargo test --workspace --no-fail-fast "$@"
