#!/usr/bin/env bash
# One stage of a microservice's build-and-deploy pipeline. The Jenkinsfile calls it once per
# stage, and ci/pipeline.sh calls the same stages in order, so both run exactly the same steps.
#
#   ci/stage.sh STAGE SERVICE
#
# Stages:
#   build-test   cargo clippy and cargo test of the service's package, then its static release
#                binary and the static deployer
#   image        the FROM scratch image fleet/SERVICE:REVISION (ci/build-images.sh)
#   smoke-test   `deployer smoke-test` of that image: it must answer 200 on its health path
#   push         push it to $REGISTRY as fleet/SERVICE:VERSION and fleet/SERVICE:REVISION
#   plan         `deployer plan --detailed-exitcode --out $OUT/plan.json` on manifests/ci.yaml
#                (exit 2, "changes pending", is success here); the plan is the build artifact
#   apply        `deployer apply --plan $OUT/plan.json`: refused if the engine changed since
#
# Environment: REGISTRY (default 127.0.0.1:5000); VERSION (default: the package's version);
# REVISION (default: the git commit, 12 digits, "-dirty" with uncommitted changes under
# services/); OUT (default target/ci/SERVICE); and manifests/ci.yaml's PROJECT, GATEWAY_PORT.
# Exit codes: 0 stage passed; 1 stage failed; 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,24p' "$0" >&2; exit 2; }
[ $# -eq 2 ] || usage
stage=$1 service=$2
case $service in
  event-store|accounts|transfers|account-view|gateway|archiver|indexer) ;;
  *) echo "stage: unknown service $service" >&2; usage ;;
esac

DEPLOYER=target/x86_64-unknown-linux-gnu/release/deployer
export REGISTRY=${REGISTRY:-127.0.0.1:5000}
OUT=${OUT:-target/ci/$service}
mkdir -p "$OUT"
if [ -z "${VERSION:-}" ]; then
  VERSION=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null | python3 -c \
    'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]))' "$service")
fi
if [ -z "${REVISION:-}" ]; then
  REVISION=$(git rev-parse --short=12 HEAD)
  if [ -n "$(git status --porcelain --untracked-files=no -- services crates)" ]; then REVISION="$REVISION-dirty"; fi
fi
# manifests/ci.yaml deploys the version tag; the revision tag records what it was built from.
export TAG=$VERSION

port_of() {
  case $1 in
    event-store) echo 8100 ;; accounts) echo 8101 ;; transfers) echo 8102 ;;
    account-view) echo 8103 ;; gateway) echo 8080 ;; archiver) echo 8104 ;; indexer) echo 8105 ;;
  esac
}

echo "--- stage $stage of $service (version $VERSION, revision $REVISION, registry $REGISTRY)" >&2
case $stage in
  build-test)
    cargo clippy -p "$service" --all-targets -- -D warnings
    cargo test -p "$service"
    # `-p`: features unified over this service only (see ci/build-images.sh).
    RUSTFLAGS='-C target-feature=+crt-static' \
      cargo build --release --target x86_64-unknown-linux-gnu -p "$service" --bin "$service"
    ci/build-static.sh deployer
    ;;
  image)
    ci/build-images.sh --no-build --tag "$REVISION" "$service"
    ;;
  smoke-test)
    # The gateway's /health is 200 only when its upstreams answer, and a smoke test runs the
    # image alone: its web UI at / shows that the binary starts and serves.
    path=/health
    [ "$service" = gateway ] && path=/
    "$DEPLOYER" smoke-test "fleet/$service:$REVISION" --port "$(port_of "$service")" \
      --path "$path" --timeout 30s
    ;;
  push)
    for tag in "$VERSION" "$REVISION"; do
      docker tag "fleet/$service:$REVISION" "$REGISTRY/fleet/$service:$tag"
      docker push -q "$REGISTRY/fleet/$service:$tag" >/dev/null
      echo "pushed $REGISTRY/fleet/$service:$tag" >&2
    done
    ;;
  plan)
    code=0
    "$DEPLOYER" plan -f manifests/ci.yaml --no-color --detailed-exitcode --out "$OUT/plan.json" || code=$?
    case $code in
      0) echo "no changes: the fleet already runs this build" >&2 ;;
      2) echo "changes pending; saved to $OUT/plan.json" >&2 ;;
      *) exit 1 ;;
    esac
    ;;
  apply)
    "$DEPLOYER" apply -f manifests/ci.yaml --no-color --plan "$OUT/plan.json"
    ;;
  *)
    echo "stage: unknown stage $stage" >&2
    usage
    ;;
esac
