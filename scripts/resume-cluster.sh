#!/usr/bin/env bash
# Measures "the whole cluster stopped, then resumed": runs the same training three ways on separate `distsgd node`
# processes on 127.0.0.1 and compares them:
#   1. uninterrupted (the reference model and accuracy);
#   2. every node process killed with SIGKILL, KILL_AFTER seconds after the master printed its first epoch;
#   3. the same commands started again with --resume: from the newest valid checkpoint to the end.
# Prints: seconds from the restart to the first step again ("run … started"), the step resumed from, the steps
# lost (estimated: seconds between the newest checkpoint's write and the kill × steps per second of the killed
# run), the final test accuracy of both runs and whether the two model files are byte-identical.
#
# Usage: scripts/resume-cluster.sh [-m centralized|decentralized] [-n WORKERS] [-p FIRST_PORT] [-k KILL_AFTER] [--] [RUN FLAGS…]
#   -m  mode (default centralized); decentralized: every peer resumes from the lead peer's folder
#   -n  workers, one master besides (default 2); or peers
#   -p  port of the master; the workers take the next ones (default 4153)
#   -k  seconds after the first epoch line to kill every node (default 1)
#   RUN FLAGS: train flags, the same for every node (default: --epochs 3, the default MLP on Fashion-MNIST;
#   checkpoints with the defaults: every 60 s and at every epoch end)
# Results land in $OUT (default runs/resume-<timestamp>): whole/, run/ (killed, then resumed), logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=2 first_port=4153 kill_after=1 mode=centralized
while getopts "m:n:p:k:" option; do
  case $option in
    m) mode=$OPTARG ;;
    n) workers=$OPTARG ;;
    p) first_port=$OPTARG ;;
    k) kill_after=$OPTARG ;;
    *) sed -n '2,19p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
run_flags=("$@")
[[ ${#run_flags[@]} -eq 0 ]] && run_flags=(--epochs 3)

dll=src/Host/bin/Release/net10.0/distsgd.dll
[[ -f $dll ]] || { echo "building $dll" >&2; dotnet build -c Release src/Host >/dev/null; }
out=${OUT:-runs/resume-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
echo "results: $out"

pids=()
kill_all() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do { wait "$pid"; } 2>/dev/null || true; done
  pids=()
}
trap kill_all EXIT

start_cluster() { # name results-folder extra-flags…
  local name=$1 results=$2; shift 2
  local seed="127.0.0.1:$first_port" port=$first_port
  local first=master others=worker count=$workers
  [[ $mode == decentralized ]] && { first=peer; others=peer; count=$((workers - 1)); }
  pids=()
  # The first node is the master, or the lead peer (the lowest address): it writes the results and the checkpoints.
  dotnet "$dll" node --mode "$mode" --host 127.0.0.1 --port "$port" --seed-nodes "$seed" --roles $first --workers "$workers" \
    "${run_flags[@]}" "$@" --out "$results" >"$out/logs/$name-master.log" 2>&1 &
  pids+=($!)
  for i in $(seq "$count"); do
    dotnet "$dll" node --mode "$mode" --host 127.0.0.1 --port $((port + i)) --seed-nodes "$seed" --roles $others --workers "$workers" \
      "${run_flags[@]}" "$@" --out "$out/logs/$name-node-$i" >"$out/logs/$name-worker-$i.log" 2>&1 &
    pids+=($!)
  done
}

wait_for() { # file pattern seconds
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    (( SECONDS < deadline )) || { echo "error: '$2' did not appear in $1 within $3 s" >&2; tail -5 "$1" >&2; exit 1; }
    sleep 0.05
  done
}

wait_master() { # name
  local status=0
  wait "${pids[0]}" || status=$?
  for pid in "${pids[@]:1}"; do wait "$pid" || true; done
  pids=()
  [[ $status == 0 ]] || { echo "error: the $1 master exited with $status" >&2; tail -5 "$out/logs/$1-master.log" >&2; exit 1; }
}

accuracy() { grep -o 'test accuracy [0-9.]*%' "$1" | tail -1; }

echo "1/3 uninterrupted run"
start_cluster whole "$out/whole"
wait_master whole

echo "2/3 run killed (SIGKILL, every node) ${kill_after}s after its first epoch"
start_cluster run "$out/run"
wait_for "$out/logs/run-master.log" "^epoch " 600
sleep "$kill_after"
killed_at=$(date +%s.%N)
kill_all
newest=$(ls "$out/run/checkpoints"/step-*.ckpt | sort | tail -1)
checkpoint_step=$((10#$(basename "$newest" .ckpt | sed 's/step-//')))
checkpoint_at=$(stat -c %.9Y "$newest")
samples_per_second=$(grep '^epoch ' "$out/logs/run-master.log" | tail -1 | grep -o '[0-9,]* samples/s' | tr -d ', samples/')
batch=$(grep -o 'global batch [0-9]*' "$out/logs/run-master.log" | head -1 | grep -o '[0-9]*$')

echo "3/3 the same commands with --resume"
restarted_at=$(date +%s.%N)
start_cluster resumed "$out/run" --resume "$out/run"
wait_for "$out/logs/resumed-master.log" "run .* started" 600
training_at=$(date +%s.%N)
wait_master resumed

awk -v r="$restarted_at" -v t="$training_at" -v k="$killed_at" -v c="$checkpoint_at" -v s="$samples_per_second" -v b="$batch" \
    -v step="$checkpoint_step" 'BEGIN {
  printf "restart to training again: %.1f s\n", t - r
  printf "resumed from the checkpoint of step %d, written %.2f s before the kill\n", step, k - c
  printf "steps lost (estimated): %.0f (%.2f s x %.0f steps/s)\n", (k - c) * s / b, k - c, s / b }'
echo "uninterrupted: $(accuracy "$out/logs/whole-master.log"); killed and resumed: $(accuracy "$out/logs/resumed-master.log")"
if cmp -s "$out/whole/model.bin" "$out/run/model.bin"; then echo "model files: byte-identical"; else echo "model files: DIFFERENT"; exit 1; fi
