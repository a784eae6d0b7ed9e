#!/usr/bin/env bash
# Builds the fleet's statically linked release binaries, from which every image is made FROM scratch.
# Output: target/x86_64-unknown-linux-gnu/release/<binary>
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS='-C target-feature=+crt-static'
bins=()
for b in "$@"; do bins+=(--bin "$b"); done
cargo build --release --target x86_64-unknown-linux-gnu "${bins[@]}"
