#!/usr/bin/env bash
# Brings the whole fleet up on the local Docker Engine (the README's first command):
#   1. builds the static release binaries (the services and the deployer) and the FROM scratch
#      images fleet/<service>:dev (ci/build-static.sh, ci/build-images.sh);
#   2. `deployer apply -f manifests/local.yaml`: health-gated, start-first rolls (stop-first for
#      the single-writer services), nothing to do when everything already runs as built;
#   3. waits until every container is healthy, then prints the gateway URL and the web UI's
#      address, read from `deployer status --output json` and the engine.
# Running it again changes nothing and is quick (cargo, docker build and the plan are no-ops).
# Tear down with ci/down.sh (add --volumes to delete the data too).
#
# Environment: GATEWAY_PORT (default 8080, the host port on 127.0.0.1), RUST_LOG, and
# DOCKER_HOST & co. as for the docker CLI.
# Exit codes: 0 up and healthy; 1 a build, the apply or the health wait failed.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(event-store accounts transfers account-view gateway archiver indexer)
MANIFEST=manifests/local.yaml
DEPLOYER=target/x86_64-unknown-linux-gnu/release/deployer
started=$(date +%s)
step() { echo "==> $*" >&2; }
die() { echo "up: $*" >&2; exit 1; }

command -v docker >/dev/null || die "the docker command is missing; install Docker Engine"
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer; start it (or set DOCKER_HOST)"
command -v python3 >/dev/null || die "python3 is missing (it reads the deployer's JSON); apt-get install python3"

# Two builds, not one: the deployer's reqwest features (rustls) must not reach the services'
# binaries (see ci/build-images.sh).
step "building the static binaries of the services and their images"
ci/build-images.sh "${SERVICES[@]}" >&2
step "building the static deployer"
ci/build-static.sh deployer

step "applying $MANIFEST"
"$DEPLOYER" apply -f "$MANIFEST"

# Reads `deployer status --output json` on stdin; prints "ok" when every container of every
# service runs and is healthy, else the first one that is not.
read_health='
import json, sys
for s in json.load(sys.stdin):
    cs = s["containers"]
    if not cs:
        print(s["service"] + ": no container"); sys.exit()
    for c in cs:
        if c["state"] != "running" or c["health"] not in ("healthy", "none"):
            print(s["service"] + ": " + c["name"] + " " + c["state"] + " " + c["health"]); sys.exit()
print("ok")'
step "waiting until every service is healthy"
health=
for _ in $(seq 1 120); do
  health=$("$DEPLOYER" status -f "$MANIFEST" --output json | python3 -c "$read_health")
  [ "$health" = ok ] && break
  sleep 0.5
done
[ "$health" = ok ] || die "not healthy after 60s: $health; see \`$DEPLOYER status -f $MANIFEST\` and \`docker logs <container>\`"

gateway=$("$DEPLOYER" status -f "$MANIFEST" --output json | python3 -c '
import json, sys
print(next(c["name"] for s in json.load(sys.stdin) if s["service"] == "gateway" for c in s["containers"] if c["state"] == "running"))')
address=$(docker port "$gateway" 8080/tcp | head -n 1)
[ -n "$address" ] || die "the gateway container $gateway publishes no port"

echo "Fleet is up in $(( $(date +%s) - started ))s." >&2
echo "  Gateway API: http://$address/api"
echo "  Web UI:      http://$address/"
echo "Status: $DEPLOYER status -f $MANIFEST    Tear down: ci/down.sh [--volumes]" >&2
