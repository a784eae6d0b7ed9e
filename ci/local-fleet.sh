#!/usr/bin/env bash
# Runs the whole banking fleet as local processes on loopback ports, without Docker.
#
#   ci/local-fleet.sh [up]     build, start every service, wait until healthy, print the gateway URL
#   ci/local-fleet.sh down     stop the services this script started (by their recorded pids)
#   ci/local-fleet.sh status   show each service's health
#
# Environment (all optional):
#   FLEET_DIR       state folder: one data directory, log and pid file per service
#                   (default: target/local-fleet)
#   FLEET_PROFILE   cargo profile to build and run: release (default) or dev
#   FLEET_PORT_BASE the event store's port; accounts, transfers and the view take the next three
#                   (default: 8100, so 8100-8103)
#   GATEWAY_PORT    the gateway's port (default: 8080)
#   FLEET_BUILD     0 to skip `cargo build` and run the binaries already built (default: 1)
#   CARGO_TARGET_DIR  where the binaries are built and run from (default: target)
#   RUST_LOG        log filter for every service (default: info)
#
# Exit codes: 0 fleet up (or stopped); 1 a build failed or a service did not become healthy
# (its log is printed); 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

FLEET_DIR=${FLEET_DIR:-target/local-fleet}
FLEET_PROFILE=${FLEET_PROFILE:-release}
BASE=${FLEET_PORT_BASE:-8100}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
SERVICES=(event-store accounts transfers account-view gateway)

port_of() {
  case "$1" in
    event-store) echo "$BASE" ;;
    accounts) echo $((BASE + 1)) ;;
    transfers) echo $((BASE + 2)) ;;
    account-view) echo $((BASE + 3)) ;;
    gateway) echo "$GATEWAY_PORT" ;;
  esac
}

healthy() {
  # /dev/tcp keeps the script free of curl: send GET /health, read the status line. A subshell
  # so that a refused connection cannot end this script.
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
    IFS= read -r line <&3 || exit 1
    [[ "$line" == *" 200 "* ]]' "$1" 2>/dev/null
}

running() {
  local pidfile="$FLEET_DIR/$1/pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

down() {
  local i pid
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    local s=${SERVICES[$i]}
    if running "$s"; then
      pid=$(cat "$FLEET_DIR/$s/pid")
      echo "local-fleet: stopping $s (pid $pid)" >&2
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$FLEET_DIR/$s/pid"
  done
}

status() {
  for s in "${SERVICES[@]}"; do
    local p
    p=$(port_of "$s")
    if healthy "$p"; then echo "$s http://127.0.0.1:$p up"; else echo "$s http://127.0.0.1:$p down"; fi
  done
}

up() {
  local profile_dir=$FLEET_PROFILE flags=()
  if [[ "$FLEET_PROFILE" == release ]]; then flags=(--release); fi
  if [[ "$FLEET_PROFILE" == dev ]]; then profile_dir=debug; fi
  local bins=()
  for s in "${SERVICES[@]}"; do bins+=(--bin "$s"); done
  if [[ "${FLEET_BUILD:-1}" != 0 ]]; then
    echo "local-fleet: building ${SERVICES[*]} ($FLEET_PROFILE)" >&2
    cargo build "${flags[@]}" "${bins[@]}" >&2
  fi

  local store="http://127.0.0.1:$(port_of event-store)"
  for s in "${SERVICES[@]}"; do
    if running "$s"; then
      echo "local-fleet: $s already runs (pid $(cat "$FLEET_DIR/$s/pid"))" >&2
      continue
    fi
    local dir="$FLEET_DIR/$s" port
    port=$(port_of "$s")
    mkdir -p "$dir/data"
    echo "local-fleet: starting $s on port $port" >&2
    env PORT="$port" DATA_DIR="$dir/data" EVENT_STORE_URL="$store" \
      ACCOUNTS_URL="http://127.0.0.1:$(port_of accounts)" \
      TRANSFERS_URL="http://127.0.0.1:$(port_of transfers)" \
      VIEW_URL="http://127.0.0.1:$(port_of account-view)" \
      RUST_LOG="${RUST_LOG:-info}" \
      nohup "${CARGO_TARGET_DIR:-target}/$profile_dir/$s" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    local ok=
    for _ in $(seq 1 100); do
      if healthy "$port"; then ok=1; break; fi
      running "$s" || break
      sleep 0.1
    done
    if [[ -z "$ok" ]]; then
      echo "local-fleet: $s did not become healthy on port $port; its log:" >&2
      tail -n 40 "$dir/log" >&2 || true
      down
      exit 1
    fi
  done
  echo "local-fleet: up; logs and data in $FLEET_DIR; stop with: ci/local-fleet.sh down" >&2
  echo "http://127.0.0.1:$GATEWAY_PORT"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: ci/local-fleet.sh [up|down|status]" >&2; exit 2 ;;
esac
