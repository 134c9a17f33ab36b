#!/usr/bin/env bash
# Measures what a worker loss costs in accuracy: a centralized run of separate `distsgd node` processes on
# 127.0.0.1 (1 master + 2 workers), one worker killed (kill -9) mid-epoch 2 of 4, against the same run without a
# fault (`train --workers 2`, the same model byte for byte as the node processes). The schedule is the default
# cosine one, which is re-planned over the steps that remain once the survivor's epochs are longer.
#
# Usage: scripts/schedule-loss.sh [DLL_DIR] [FIRST_PORT] [--] [RUN FLAGS…]
#   DLL_DIR: where distsgd.dll is (default: this checkout's Release build)
#   RUN FLAGS: the run (default: --dataset fashion-mnist --epochs 4)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-src/Host/bin/Release/net10.0} port=${2:-27000}
shift $(( $# < 2 ? $# : 2 ))
[[ ${1:-} == "--" ]] && shift
flags=("$@")
[[ ${#flags[@]} -eq 0 ]] && flags=(--dataset fashion-mnist --epochs 4)
flags+=(--workers 2)
dll=$dir/distsgd.dll
[[ -f $dll ]] || { echo "error: no distsgd.dll in $dir" >&2; exit 2; }
work=$(mktemp -d -t distsgd-schedule-loss-XXXXXX)
echo "logs: $work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
accuracy() { grep -o '"final_test_accuracy": [0-9.]*' "$1/summary.json" | awk '{printf "%.2f%%", 100*$2}'; }

dotnet "$dll" train "${flags[@]}" --quiet --out "$work/fault-free" >"$work/fault-free.log" 2>&1
echo "fault-free: test accuracy $(accuracy "$work/fault-free")"

seed="127.0.0.1:$port"
dotnet "$dll" node --host 127.0.0.1 --port "$port" --seed-nodes "$seed" --roles master "${flags[@]}" --out "$work/node-0" >"$work/node-0.log" 2>&1 &
master=$!; pids+=("$master")
workers=()
for i in 1 2; do
  dotnet "$dll" node --host 127.0.0.1 --port $((port + i)) --seed-nodes "$seed" --roles worker "${flags[@]}" --out "$work/node-$i" >"$work/node-$i.log" 2>&1 &
  workers+=($!); pids+=($!)
done
for _ in $(seq 1 3000); do grep -q "epoch   1/" "$work/node-0.log" && break; sleep 0.1; done
sleep 2   # into epoch 2
kill -9 "${workers[1]}"
wait "$master" || true; wait "${workers[0]}" || true
echo "the second worker (index 1) killed in epoch 2: test accuracy $(accuracy "$work/node-0")"
grep -E "epoch +[0-9]+/" "$work/node-0.log" || true
grep -iE "schedule|shards for" "$work/node-0.log" || true
