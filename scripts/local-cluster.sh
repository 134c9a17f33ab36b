#!/usr/bin/env bash
# Starts a cluster of separate `distsgd node` processes on 127.0.0.1, waits for the run to end and stops
# them all on exit, on Ctrl+C or after a time limit. The multi-machine path on one machine: every node is
# its own OS process with its own port, exactly as on separate machines.
#
# Usage: scripts/local-cluster.sh [-n NODES] [-p FIRST_PORT] [-t SECONDS] [-m centralized|decentralized] [--] [RUN FLAGS…]
#   -n  centralized: 1 master + NODES workers; decentralized: NODES peers (default 3)
#   -p  port of the first node; the others take the next ones (default 4053)
#   -t  stop everything after this many seconds (default 600)
#   -m  mode (default centralized)
#   RUN FLAGS: the train flags describing the run, the same for every node (--dataset, --epochs, --out, …)
# Each node's output goes to $LOGS/node-<port>.log (default: a temporary folder, printed at the start).
# Exit status: the master's (or the first peer's) exit status, or 124 when the time limit was reached.
# Example: scripts/local-cluster.sh -n 3 -- --dataset blobs --samples 600 --epochs 2 --hidden 16 --out runs/local
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3 first_port=4053 limit=600 mode=centralized
while getopts "n:p:t:m:" option; do
  case $option in
    n) nodes=$OPTARG ;;
    p) first_port=$OPTARG ;;
    t) limit=$OPTARG ;;
    m) mode=$OPTARG ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
case $mode in centralized|decentralized) ;; *) echo "error: -m: expected centralized or decentralized, found '$mode'" >&2; exit 2 ;; esac
[[ $nodes =~ ^[0-9]+$ && $nodes -ge 1 && $nodes -le 64 ]] || { echo "error: -n: expected 1 to 64 nodes, found '$nodes'" >&2; exit 2; }

dll=src/Host/bin/Release/net10.0/distsgd.dll
if [[ ! -f $dll ]]; then
  echo "building $dll" >&2
  dotnet build -c Release src/Host >/dev/null
fi
logs=${LOGS:-$(mktemp -d -t distsgd-local-XXXXXX)}
mkdir -p "$logs"
echo "logs: $logs"

seed="127.0.0.1:$first_port"
pids=()
. scripts/cluster-processes.sh
trap stop_processes EXIT
trap 'echo "interrupted: stopping the nodes" >&2; exit 130' INT TERM

start_node() { # port roles
  local port=$1 roles=$2
  DISTSGD_PORT=$port DISTSGD_ROLES=$roles DISTSGD_SEED_NODES=$seed DISTSGD_HOST=127.0.0.1 \
    dotnet "$dll" node --mode "$mode" --workers "$nodes" "${run_flags[@]}" >"$logs/node-$port.log" 2>&1 &
  pids+=($!)
  echo "node 127.0.0.1:$port ($roles): pid $!, log $logs/node-$port.log"
}

run_flags=("$@")
port=$first_port
if [[ $mode == centralized ]]; then
  start_node "$port" master; port=$((port + 1))
  for _ in $(seq "$nodes"); do start_node "$port" worker; port=$((port + 1)); done
else
  for _ in $(seq "$nodes"); do start_node "$port" peer; port=$((port + 1)); done
fi

# The first node is the master (or the first peer; with the seed first it is node 0, the lead): wait for
# it, bounded, then for the others (they end with the run).
wait_for_run "$limit"
echo "--- $logs/node-$first_port.log (last lines)"
tail -n 5 "$logs/node-$first_port.log"
exit "$status"
