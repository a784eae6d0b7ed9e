#!/usr/bin/env bash
# The project's test command (README "Tests"). Installs what a fresh machine lacks (Debian
# packages, and moto's S3 server in a venv), builds the static binaries that test images are made
# from, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# moto's S3 server (the archiver's S3 test) lives in a venv under target/: Debian's pip refuses
# to install into the system Python, and python3-venv provides `python3 -m venv` there.
moto_venv=target/moto-venv
need_pkgs=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_pkgs[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "test.sh: installing moto[server] into $moto_venv" >&2
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q 'moto[server]'
fi
export MOTO_SERVER="$PWD/$moto_venv/bin/moto_server"

# Test images are built FROM scratch out of these statically linked release binaries.
ci/build-static.sh

cargo test --workspace --no-fail-fast "$@"
