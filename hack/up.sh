#!/usr/bin/env bash
# Installs what is missing, builds lotse and starts a single-node cluster
# in the background. The admin kubeconfig path is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${LOTSE_DATA_DIR:-/var/lib/lotse}
LOG=${LOTSE_LOG:-$DATA_DIR/server.log}

command -v go >/dev/null || { echo "lotse: Go is required (https://go.dev/dl)"; exit 1; }
./hack/deps.sh
make build
mkdir -p "$DATA_DIR"
if [ -f "$DATA_DIR/server.pid" ] && kill -0 "$(cat "$DATA_DIR/server.pid")" 2>/dev/null; then
  echo "lotse server already running (pid $(cat "$DATA_DIR/server.pid")); stop it with: kill $(cat "$DATA_DIR/server.pid")"
else
  nohup ./bin/lotse server --data-dir "$DATA_DIR" "$@" >"$LOG" 2>&1 &
  echo $! >"$DATA_DIR/server.pid"
fi
for _ in $(seq 1 120); do
  if grep -q "admin kubeconfig:" "$LOG" 2>/dev/null; then
    # An image to try things with, built from this machine's busybox.
    ./bin/lotse image busybox --kubeconfig "$DATA_DIR/admin.kubeconfig" busybox:latest busybox:1.36 >/dev/null
    echo "lotse server is running (log: $LOG, stop: kill \$(cat $DATA_DIR/server.pid))"
    echo "export KUBECONFIG=$DATA_DIR/admin.kubeconfig"
    exit 0
  fi
  if ! kill -0 "$(cat "$DATA_DIR/server.pid")" 2>/dev/null; then
    echo "lotse server exited:"; cat "$LOG"; exit 1
  fi
  sleep 0.5
done
echo "lotse server did not become ready in 60s; see $LOG"; exit 1
