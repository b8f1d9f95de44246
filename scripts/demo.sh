#!/usr/bin/env bash
# Runs the quickstart end to end: starts build/bifrost-server on a free port with a
# temporary data directory, runs examples/quickstart.py against it, stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=$(mktemp -d -t bifrost-demo-XXXXXX)
log="$data_dir/server.log"
build/bifrost-server --port 0 --data-dir "$data_dir/data" >"$data_dir/server.out" 2>"$log" &
server_pid=$!
cleanup() {
  kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/^bifrost-server listening on .*:\([0-9]*\) .*/\1/p' "$data_dir/server.out" | head -n1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "server failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not report its port" >&2; exit 1; }
echo "[demo] bifrost-server running on localhost:$port (data in $data_dir/data)"
BIFROST_GRPC_URI="localhost:$port" .venv/bin/python examples/quickstart.py
