#!/usr/bin/env bash
# Measures the README's fault-tolerance rows on separate `distsgd node` processes on 127.0.0.1: a fault-free run,
# then RUNS runs with one worker killed (kill -9) and RUNS runs with the master's process killed, each kill
# landing mid-epoch 2. For each: seconds from the kill to training again (the master's timestamped notes: the
# worker's loss seen and its step finished without it; the new master's "training again"), the step the new
# master resumed at against the highest step the workers held, and the final test accuracy.
#
# Usage: scripts/fault-tolerance.sh [RUNS] [FIRST_PORT]     (defaults 3 and 26000)
# Nodes: 1 master + 3 workers; for the master kill, two of the workers also hold the master role (standbys).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} port=${2:-26000}
flags=(--dataset blobs --samples 40000 --epochs 4 --hidden 64,32 --batch-size 16 --workers 3)
dll=src/Host/bin/Release/net10.0/distsgd.dll
dotnet build -c Release src/Host >/dev/null
work=$(mktemp -d -t distsgd-faults-XXXXXX)
echo "logs: $work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT

accuracy() { grep -o '"final_test_accuracy": [0-9.]*' "$1/summary.json" | awk '{printf "%.2f%%", 100*$2}'; }
ms() { date -u -d "$1" +%s.%N; }   # HH:MM:SS.mmm today (UTC) → epoch seconds

dotnet "$dll" train "${flags[@]}" --out "$work/fault-free" >"$work/fault-free.log" 2>&1
echo "fault-free: test accuracy $(accuracy "$work/fault-free")"

# start_cluster DIR ROLES_OF_WORKERS: starts the master and 3 workers; sets master_pid and worker_pids.
start_cluster() {
  local dir=$1 standby=$2 seed="127.0.0.1:$port"
  mkdir -p "$dir"
  dotnet "$dll" node --host 127.0.0.1 --port "$port" --seed-nodes "$seed" --roles master "${flags[@]}" --out "$dir/node-0" >"$dir/node-0.log" 2>&1 &
  master_pid=$!; pids+=("$master_pid")
  worker_pids=()
  for i in 1 2 3; do
    local roles=worker
    [[ $standby == yes && $i -le 2 ]] && roles=worker,master
    dotnet "$dll" node --host 127.0.0.1 --port $((port + i)) --seed-nodes "$seed" --roles "$roles" "${flags[@]}" --out "$dir/node-$i" >"$dir/node-$i.log" 2>&1 &
    worker_pids+=($!); pids+=($!)
  done
  for _ in $(seq 1 1200); do grep -q "epoch   1/4" "$dir/node-0.log" && break; sleep 0.1; done
  sleep 0.4   # into epoch 2
  port=$((port + 10))
}

for run in $(seq 1 "$runs"); do
  dir="$work/worker-$run"
  start_cluster "$dir" no
  killed=$(date -u +%H:%M:%S.%N | cut -c1-12); kill -9 "${worker_pids[2]}"
  wait "$master_pid" || true; wait "${worker_pids[0]}" "${worker_pids[1]}" || true
  seen=$(grep -oE '^cluster: [0-9:.]{12} (step [0-9]+: )?worker 2' "$dir/node-0.log" | head -1 | cut -d' ' -f2)
  printf 'worker killed, run %d: loss seen after %.2f s (steps go on with the others from then; no step redone), test accuracy %s\n' \
    "$run" "$(echo "$(ms "$seen") - $(ms "$killed")" | bc)" "$(accuracy "$dir/node-0")"
done

for run in $(seq 1 "$runs"); do
  dir="$work/master-$run"
  start_cluster "$dir" yes
  killed=$(date -u +%H:%M:%S.%N | cut -c1-12); kill -9 "$master_pid"
  wait "${worker_pids[@]}" || true
  log=$(grep -l "training again" "$dir"/node-*.log | head -1)
  again=$(grep -oE '^cluster: [0-9:.]{12} run \S+ recovered' "$log" | cut -d' ' -f2)
  resumed=$(grep -oE 'new master: θ of step [0-9]+' "$log" | grep -oE '[0-9]+$')
  highest=$(grep -ohE 'stopped at step [0-9]+' "$dir"/node-*.log | grep -oE '[0-9]+$' | sort -n | tail -1)
  printf 'master killed, run %d: training again after %.2f s, resumed at step %s (highest step the workers held: %s; at most 1 step redone), test accuracy %s\n' \
    "$run" "$(echo "$(ms "$again") - $(ms "$killed")" | bc)" "$resumed" "$highest" "$(accuracy "$(dirname "$log")/$(basename "$log" .log)")"
done
