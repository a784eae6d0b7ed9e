#!/usr/bin/env bash
# Side-by-side comparison: the event-store append benchmark, then a naive PostgreSQL events
# table (bigserial position, unique (stream_id, version), jsonb data) driven by pgbench with 64
# clients over TCP on 127.0.0.1 (as the event store's clients are), both fsync'd per commit
# (PostgreSQL defaults: fsync=on, synchronous_commit=on).
#
# Usage: services/event-store/bench/pg-compare.sh [seconds-per-scenario]
# Needs the Debian `postgresql` package (apt-get install postgresql); run as root or as a user
# that can run initdb (as root, the server runs as the `postgres` user).
set -euo pipefail

SECS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [[ -z "$PGBIN" || ! -x "$PGBIN/pgbench" ]]; then
  echo "pg-compare: PostgreSQL binaries not found; install them with: apt-get install postgresql" >&2
  exit 2
fi

WORK="$(mktemp -d /tmp/pg-compare.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
AS=()
if [[ "$(id -u)" == 0 ]]; then
  chown postgres "$WORK"
  AS=(runuser -u postgres --)
fi
cleanup() {
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Each side starts with the page cache written back, so neither pays for the other's dirty pages.
settle() { sync; sleep 2; }

(cd "$ROOT" && cargo bench -q -p event-store --bench append --no-run 2>/dev/null)
settle
echo "== event-store (cargo bench -p event-store --bench append, ${SECS}s per scenario)"
(cd "$ROOT" && BENCH_SECONDS="$SECS" cargo bench -q -p event-store --bench append 2>/dev/null)

echo
echo "== naive PostgreSQL events table ($("$PGBIN/postgres" --version), pgbench -c 64 -j 2 -T $SECS)"
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/data" -U postgres -A trust >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w \
  -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" \
  start >/dev/null
PSQL=("${AS[@]}" "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" <<'SQL'
CREATE TABLE events (
  position    bigserial PRIMARY KEY,
  stream_id   text        NOT NULL,
  version     bigint      NOT NULL,
  event_id    uuid        NOT NULL,
  event_type  text        NOT NULL,
  data        jsonb       NOT NULL,
  metadata    jsonb       NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream_id, version)
);
SQL

# One event per transaction, each client on its own stream, version = last + 1.
cat > "$WORK/single.sql" <<'SQL'
INSERT INTO events (stream_id, version, event_id, event_type, data, metadata)
SELECT 'pg-' || :client_id, coalesce(max(version), 0) + 1, gen_random_uuid(), 'AccountCredited',
       '{"account_id": "5f0c6a1e-2b8a-4d7e-9b1a-0f6d2f3c4b5a", "amount": 1000, "transaction_id": 1}'::jsonb,
       '{"correlation_id": "bench"}'::jsonb
FROM events WHERE stream_id = 'pg-' || :client_id;
SQL
# 100 events per transaction.
cat > "$WORK/batch.sql" <<'SQL'
INSERT INTO events (stream_id, version, event_id, event_type, data, metadata)
SELECT 'pgb-' || :client_id, v.base + g, gen_random_uuid(), 'AccountCredited',
       '{"account_id": "5f0c6a1e-2b8a-4d7e-9b1a-0f6d2f3c4b5a", "amount": 1000, "transaction_id": 1}'::jsonb,
       '{"correlation_id": "bench"}'::jsonb
FROM (SELECT coalesce(max(version), 0) AS base FROM events WHERE stream_id = 'pgb-' || :client_id) v,
     generate_series(1, 100) g;
SQL
chmod a+r "$WORK"/*.sql

run() {
  local name="$1" script="$2" per_tx="$3"
  local out
  out="$("${AS[@]}" "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -c 64 -j 2 -T "$SECS" -M prepared -f "$script" postgres 2>&1)"
  local tps lat
  tps="$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)"
  lat="$(grep -oP 'latency average = \K[0-9.]+' <<<"$out" | head -1)"
  printf '%-34s %10.0f events/s   transaction latency average %7.2f ms\n' "$name" "$(echo "$tps * $per_tx" | bc -l)" "$lat"
}
settle
run "pgbench 64 clients x 1 event" "$WORK/single.sql" 1
run "pgbench 64 clients x batches of 100" "$WORK/batch.sql" 100
