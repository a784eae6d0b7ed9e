#!/usr/bin/env bash
# Builds one FROM scratch image per fleet service from its statically linked release binary.
#
#   ci/build-images.sh [--tag TAG] [--no-build] [SERVICE...]
#
# Default: every service, tag "dev". Images are named fleet/<service>:<tag>. The static release
# binaries are built first (`-C target-feature=+crt-static`, x86_64-unknown-linux-gnu, see
# below); `--no-build` uses those already in target/x86_64-unknown-linux-gnu/release.
# Prints one line per image: service, image, size in bytes. Nothing is pulled from the internet:
# ci/Dockerfile starts FROM scratch.
#
# Each image carries the OCI labels version (the crate's version), revision (the git commit,
# with "-dirty" when the tree has uncommitted changes) and source, and the labels
# io.fleet.events.produces / io.fleet.events.consumes, read from ci/events/<service>.produces and
# .consumes (one `EventType@schema_version` per line; the workspace test `event_names` checks
# these files against the code), and io.fleet.events.schemas: one line of JSON
# {"Type@version": <JSON Schema draft 2020-12 of the event's stored data>}, printed by the
# image's own binary (`<service> event-schemas`, generated from the Rust event types) for a
# service that declares what it produces, `{}` for the others; its keys must be exactly the
# declared produces. A service with ci/events/<service>.projection (one integer, `#` comments
# allowed) also gets io.fleet.projection.version=<that integer>.
#
# Environment: FLEET_SOURCE_URL sets the source label (default: git remote "origin" when it is a
# network address, with any user:password@ removed; a local path is never written, and the label
# is left out when there is no such address). Exit codes: 0 built; 1 a build failed; 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_SERVICES=(event-store accounts transfers account-view gateway archiver indexer)
tag=dev
build=1
services=()
while [ $# -gt 0 ]; do
  case $1 in
    --tag) [ $# -ge 2 ] || { echo "build-images: --tag needs a value" >&2; exit 2; }; tag=$2; shift 2 ;;
    --no-build) build=; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "build-images: unknown option $1; see --help" >&2; exit 2 ;;
    *) services+=("$1"); shift ;;
  esac
done
[ ${#services[@]} -gt 0 ] || services=("${ALL_SERVICES[@]}")

port_of() {
  case $1 in
    event-store) echo 8100 ;; accounts) echo 8101 ;; transfers) echo 8102 ;;
    account-view) echo 8103 ;; gateway) echo 8080 ;; archiver) echo 8104 ;; indexer) echo 8105 ;;
    canary) echo 8090 ;; *) echo 8080 ;;
  esac
}

# Comma-separated lines of a file, or empty when the file does not exist.
joined() { if [ -f "$1" ]; then grep -v '^[[:space:]]*\(#.*\)\?$' "$1" | paste -sd, -; fi; }

# The io.fleet.events.schemas label of service $1 from binary $2: `{}` when it declares no
# produces, else what the binary prints, checked to cover exactly the declared produces.
schemas_of() {
  local produces
  produces=$(joined "ci/events/$1.produces")
  if [ -z "$produces" ]; then echo '{}'; return; fi
  local json
  json=$("$2" event-schemas) || { echo "build-images: $2 event-schemas failed; ci/events/$1.produces declares events, so the binary must print their schemas" >&2; return 1; }
  python3 -c '
import json, sys
service, produces, text = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
keys = set(json.loads(text))
if keys != produces:
    sys.exit(f"build-images: `{service} event-schemas` gives schemas of {sorted(keys)}, but ci/events/{service}.produces declares {sorted(produces)}")
' "$1" "$produces" "$json" || return 1
  echo "$json"
}

# The io.fleet.projection.version label of service $1 (empty: none): the one integer of
# ci/events/$1.projection.
projection_of() {
  local file="ci/events/$1.projection" value
  [ -f "$file" ] || return 0
  value=$(joined "$file")
  if ! [[ $value =~ ^[0-9]+$ ]]; then
    echo "build-images: $file must hold one integer (the projection version), not \"$value\"" >&2
    return 1
  fi
  echo "$value"
}

# The static binaries, as ci/build-static.sh builds them but with `-p` per service: `cargo build
# --bin X` alone resolves features for the whole workspace, which gives the services the
# deployer's reqwest with rustls, whose client then fails to build in a FROM scratch image (no
# CA certificates). With `-p`, features are unified across the services only.
if [ -n "$build" ]; then
  packages=()
  for s in "${services[@]}"; do packages+=(-p "$s" --bin "$s"); done
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --target x86_64-unknown-linux-gnu "${packages[@]}" >&2
fi

revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no -- services crates 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
source_url=${FLEET_SOURCE_URL:-}
if [ -z "$source_url" ]; then
  origin=$(git remote get-url origin 2>/dev/null || true)
  case $origin in
    http://*|https://*|ssh://*|git://*) source_url=$(sed -E 's#^([a-z]+://)[^/@]*@#\1#' <<<"$origin") ;;
    git@*:*) source_url=$origin ;;
  esac
fi
source_label=()
[ -z "$source_url" ] || source_label=(--label "org.opencontainers.image.source=$source_url")
metadata=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null || cargo metadata --no-deps --format-version 1)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
for s in "${services[@]}"; do
  bin="target/x86_64-unknown-linux-gnu/release/$s"
  [ -x "$bin" ] || { echo "build-images: $bin is missing; run ci/build-images.sh without --no-build" >&2; exit 1; }
  version=$(python3 -c 'import json,sys; print(next((p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]), "0.0.0"))' "$s" <<<"$metadata")
  schemas=$(schemas_of "$s" "$bin") || exit 1
  projection=$(projection_of "$s") || exit 1
  extra_labels=(--label "io.fleet.events.schemas=$schemas")
  [ -z "$projection" ] || extra_labels+=(--label "io.fleet.projection.version=$projection")
  rm -rf "${ctx:?}"/*
  cp "$bin" "$ctx/$s"
  mkdir "$ctx/data"
  # The legacy builder's deprecation notice is noise: show the output only when the build fails.
  if ! out=$(docker build -q -f ci/Dockerfile -t "fleet/$s:$tag" \
    --build-arg BIN="$s" --build-arg PORT="$(port_of "$s")" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    "${source_label[@]}" "${extra_labels[@]}" \
    --build-arg PRODUCES="$(joined "ci/events/$s.produces")" \
    --build-arg CONSUMES="$(joined "ci/events/$s.consumes")" \
    "$ctx" 2>&1 >/dev/null); then
    echo "build-images: building fleet/$s:$tag failed:" >&2
    echo "$out" >&2
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "fleet/$s:$tag")
  printf '%-14s fleet/%s:%s %s\n' "$s" "$s" "$tag" "$size"
done
