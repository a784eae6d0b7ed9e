#!/usr/bin/env bash
# Runs one microservice's build-and-deploy pipeline locally, without Jenkins: the same stages as
# ci/Jenkinsfile, each through ci/stage.sh, against a registry on 127.0.0.1.
#
#   ci/pipeline.sh SERVICE
#
# Stages: build-test, image, smoke-test, push, plan (saved to target/ci/SERVICE/plan.json, the
# artifact), apply. The fleet is manifests/ci.yaml's (project bank-ci, gateway on
# 127.0.0.1:8088 unless PROJECT / GATEWAY_PORT say otherwise).
#
# Registry: $REGISTRY when set. Otherwise Debian's docker-registry (installed with apt-get when
# missing) is started on 127.0.0.1:5000 (storage and pid in target/ci/registry/) unless one
# already answers there; it keeps running after the pipeline so the fleet's images stay
# pullable. Stop it with:
#   kill "$(cat target/ci/registry/pid)"
# manifests/ci.yaml names every service's image, so when the registry lacks another service's
# image of this version (a fresh registry), that image is built and pushed first (stages image
# and push only), and the pipeline says so.
# Exit codes: 0 deployed (or nothing to change); 1 a stage failed; 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(event-store accounts transfers account-view gateway archiver indexer)
[ $# -eq 1 ] || { sed -n '2,19p' "$0" >&2; exit 2; }
service=$1
[[ " ${SERVICES[*]} " == *" $service "* ]] || { echo "pipeline: unknown service $service; one of: ${SERVICES[*]}" >&2; exit 2; }
started=$(date +%s)

answers() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }
has_manifest() {
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="HEAD", headers={"Accept": ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json"])})
urllib.request.urlopen(req, timeout=5)
PY
}

if [ -z "${REGISTRY:-}" ]; then
  export REGISTRY=127.0.0.1:5000
  if ! answers "http://$REGISTRY/v2/"; then
    bin=$(command -v docker-registry || echo /usr/bin/docker-registry)
    if [ ! -x "$bin" ]; then
      echo "pipeline: no registry at $REGISTRY; installing Debian's docker-registry (or set REGISTRY)" >&2
      if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry >/dev/null
      # The package's own service listens on :5000 on every interface; this pipeline runs its own.
      $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    dir=target/ci/registry
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PWD/$dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
YAML
    nohup "$bin" serve "$dir/config.yml" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 1 50); do answers "http://$REGISTRY/v2/" && break; sleep 0.1; done
    answers "http://$REGISTRY/v2/" || { echo "pipeline: the registry did not start; see $dir/log" >&2; exit 1; }
    echo "pipeline: started docker-registry on $REGISTRY (pid $(cat "$dir/pid"))" >&2
  fi
fi

run_stage() {
  echo "=== [$service] $1" >&2
  ci/stage.sh "$1" "$2" || { echo "pipeline: stage $1 of $2 failed" >&2; exit 1; }
}

run_stage build-test "$service"
run_stage image "$service"
run_stage smoke-test "$service"
run_stage push "$service"

# A fresh registry lacks the rest of the fleet that manifests/ci.yaml names.
missing=()
for other in "${SERVICES[@]}"; do
  [ "$other" = "$service" ] && continue
  version=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null | python3 -c \
    'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]))' "$other")
  has_manifest "http://$REGISTRY/v2/fleet/$other/manifests/$version" || missing+=("$other")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pipeline: the registry lacks ${missing[*]}; building and pushing them once so the fleet can be planned" >&2
  ci/build-images.sh "${missing[@]}" >&2
  for other in "${missing[@]}"; do
    ci/stage.sh image "$other"
    ci/stage.sh push "$other"
  done
fi

run_stage plan "$service"
run_stage apply "$service"
echo "pipeline: $service built, smoke-tested, pushed and deployed in $(( $(date +%s) - started ))s; plan artifact target/ci/$service/plan.json" >&2
