#!/usr/bin/env bash
# Builds one FROM scratch image per fleet service from its static release binary.
#   ci/build-images.sh [--tag TAG] [SERVICE...]     (default: every service, tag "dev")
# Images are named fleet/<service>:<tag>. Prints each image's size.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=dev
if [ "${1:-}" = "--tag" ]; then tag=$2; shift 2; fi
all=(event-store accounts transfers account-view gateway)
services=("$@"); [ ${#services[@]} -gt 0 ] || services=("${all[@]}")

port_of() {
  case $1 in
    event-store) echo 8100;; accounts) echo 8101;; transfers) echo 8102;;
    account-view) echo 8103;; gateway) echo 8080;; archiver) echo 8104;; indexer) echo 8105;;
    canary) echo 8090;; *) echo 8080;;
  esac
}

ci/build-static.sh "${services[@]}"
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version=$(cargo metadata --no-deps --format-version 1 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])' 2>/dev/null || echo 0.0.0)
for s in "${services[@]}"; do
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "target/x86_64-unknown-linux-gnu/release/$s" "$ctx/$s"
  mkdir "$ctx/data"
  produces=$(cat "services/$s/events.produces" 2>/dev/null | paste -sd, || true)
  consumes=$(cat "services/$s/events.consumes" 2>/dev/null | paste -sd, || true)
  docker build -q -f ci/Dockerfile -t "fleet/$s:$tag" \
    --build-arg BIN="$s" --build-arg PORT="$(port_of "$s")" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --build-arg SOURCE="fleet/services/$s" \
    --build-arg PRODUCES="$produces" --build-arg CONSUMES="$consumes" \
    "$ctx" >/dev/null
  rm -rf "$ctx"; trap - EXIT
  size=$(docker image inspect -f '{{.Size}}' "fleet/$s:$tag")
  printf '%-14s fleet/%s:%s  %s bytes\n' "$s" "$s" "$tag" "$size"
done
