#!/usr/bin/env bash
# Measures a decentralized run that loses a peer to kill -9: separate `distsgd node` processes on 127.0.0.1,
# one killed as soon as the lead peer has printed epoch K, against the same run without a fault.
# Prints, per try: the time from the kill to the survivors' agreement (after which they step again at once),
# the steps of the run with and without the fault, and the final test accuracy of both.
#
# Usage: scripts/peer-loss.sh [-n PEERS] [-k NODE] [-e EPOCH] [-d SECONDS] [-r TRIES] [-p FIRST_PORT] [--] [RUN FLAGS…]
#   -n  peers (default 3)       -k  node id to kill (default 0, the lead: node 1 takes over)
#   -e, -d  kill SECONDS (default 1.5, mid-epoch) after the lead has printed epoch EPOCH (default 1)   -r  tries (default 3)
#   RUN FLAGS: the flags of the run (default: --dataset fashion-mnist --epochs 4)
# Example: scripts/peer-loss.sh -n 3 -k 0 -r 3 -- --dataset fashion-mnist --epochs 4
set -euo pipefail
cd "$(dirname "$0")/.."

peers=3 victim=0 epoch=1 delay=1.5 tries=3 first_port=4153
while getopts "n:k:e:d:r:p:" option; do
  case $option in
    n) peers=$OPTARG ;; k) victim=$OPTARG ;; e) epoch=$OPTARG ;; d) delay=$OPTARG ;; r) tries=$OPTARG ;; p) first_port=$OPTARG ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
run_flags=("$@")
[[ ${#run_flags[@]} -eq 0 ]] && run_flags=(--dataset fashion-mnist --epochs 4)
(( victim >= 0 && victim < peers )) || { echo "error: -k: expected a node id from 0 to $((peers - 1)), found '$victim'" >&2; exit 2; }

dll=src/Host/bin/Release/net10.0/distsgd.dll
[[ -f $dll ]] || { echo "building $dll" >&2; dotnet build -c Release src/Host >/dev/null; }
work=$(mktemp -d -t distsgd-peer-loss-XXXXXX)
echo "logs and results: $work"

pids=()
stop_all() { for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done; pids=(); }
trap stop_all EXIT

# run NAME KILL(0/1): starts the peers (ports ascending: port i is node i), kills node $victim when asked, waits.
run() {
  local name=$1 kill=$2 port lead_log
  pids=()
  for i in $(seq 0 $((peers - 1))); do
    port=$((first_port + i))
    dotnet "$dll" node --host 127.0.0.1 --port "$port" --seed-nodes "127.0.0.1:$first_port" --roles peer \
      --mode decentralized --workers "$peers" "${run_flags[@]}" --out "$work/$name/out-$i" >"$work/$name-node-$i.log" 2>&1 &
    pids+=($!)
  done
  lead_log=$work/$name-node-0.log
  if [[ $kill == 1 ]]; then
    for _ in $(seq 6000); do
      grep -q "epoch *$epoch/" "$lead_log" 2>/dev/null && break
      sleep 0.05
    done
    sleep "$delay"
    kill -KILL "${pids[$victim]}"
    date +%s.%N >"$work/$name-killed-at"
  fi
  for i in "${!pids[@]}"; do wait "${pids[$i]}" 2>/dev/null || true; done
  pids=()
}

# The results of a run: the folder of the peer that wrote them (the lowest surviving node id).
results() { for d in "$work/$1"/out-*; do [[ -f $d/summary.json ]] && { echo "$d"; return; }; done; }
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s$2)" "$1/summary.json"; }
accuracy() { python3 -c "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); print(rows[-1]['test_accuracy'])" "$1/metrics.csv"; }
steps() { python3 -c "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); print(rows[-1]['step'])" "$1/metrics.csv"; }

run clean 0
clean=$(results clean)
echo "fault-free: $(steps "$clean") steps, test accuracy $(accuracy "$clean")"
for t in $(seq "$tries"); do
  run "fault-$t" 1
  out=$(results "fault-$t")
  killed=$(cat "$work/fault-$t-killed-at")
  # The survivors' agreement line ("peers … lost: … go on"), timestamped by Akka's logger in UTC.
  agreed=$(grep -h "^\[WARNING\].*lost: .* peers go on" "$work"/fault-"$t"-node-*.log | sort -t] -k2 | head -1 | sed -E 's/^\[WARNING\]\[([^]]+)\].*/\1/')
  # The first survivor that suspected the lost peer.
  detected=$(grep -h "^\[WARNING\].*agreeing with the others on the survivors" "$work"/fault-"$t"-node-*.log | sort -t] -k2 | head -1 | sed -E 's/^\[WARNING\]\[([^]]+)\].*/\1/')
  since() { python3 -c "import sys,datetime; a=datetime.datetime.strptime(sys.argv[1], '%m/%d/%Y %H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc); print(f'{a.timestamp() - float(sys.argv[2]):.3f}')" "$1" "$2"; }
  seconds=$(since "$agreed" "$killed")
  seconds_detected=$(since "$detected" "$killed")
  hashes=$(grep -ho "replica sha256 [0-9a-f]*" "$work"/fault-"$t"-node-*.log | sort -u | wc -l)
  contested=$(grep -h "^\[WARNING\].*lost: .* peers go on" "$work"/fault-"$t"-node-*.log | head -1 | sed -E 's/.*go on \([^)]*\); //')
  echo "try $t: node $victim killed; suspected after ${seconds_detected} s, agreement after ${seconds} s ($contested); $(steps "$out") steps; test accuracy $(accuracy "$out"); distinct replica hashes among the survivors: $hashes"
done
