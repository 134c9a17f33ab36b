#!/usr/bin/env bash
# Runs a cluster of `distsgd node` processes on an emulated network: every node in a network namespace of its own
# (address 10.77.0.<i+1>), all joined by veth pairs to a bridge that lives in one more namespace, and each node's
# link limited with tc's token bucket (tbf) to RATE in both directions, as a full-duplex NIC of that rate would be
# (the kernel has no netem, so the only latency is the queue's). Nothing is changed in this machine's own namespace:
# every link lives in the run's namespaces, and deleting them (always, on exit, Ctrl+C or failure) deletes everything.
# Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
#
# Usage: scripts/emulated-cluster.sh [-n NODES] [-r RATE] [-t SECONDS] [-m centralized|decentralized] [-x] [--] ARGS…
#   -n  centralized: 1 master + NODES workers; decentralized: NODES peers (default 3)
#   -r  each node's link rate, each way, as tc writes it: 100mbit, 1gbit, 10gbit; none = no limit (default 1gbit)
#   -t  stop everything after this many seconds (default 600)
#   -m  mode (default centralized)
#   -x  ARGS is a command to run on every host instead of `distsgd node`; it sees EMU_INDEX (0, 1, …), EMU_NODES,
#       EMU_ADDRESS (its own address) and EMU_SEED (host 0's address); hosts = NODES (the mode is not used)
#   ARGS: without -x, the train flags describing the run, the same for every node (--dataset, --epochs, --out, …);
#         --link-rate RATE is added unless ARGS names it (with -r none, none is the default)
# Each host's output goes to $LOGS/node-<i>.log (default: a temporary folder, printed first); $LOGS/links.tsv gets
# the bytes each host's link sent and received (read before the links are deleted). DISTSGD_DLL: the program to
# run (default src/Host/bin/Release/net10.0/distsgd.dll).
# Exit status: host 0's (the master, or the lead peer), 124 when the time limit was reached, 2 for bad usage.
# Example: scripts/emulated-cluster.sh -m decentralized -n 4 -r 1gbit -- --dataset fashion-mnist --epochs 2 --out runs/emu
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3 rate=1gbit limit=600 mode=centralized exec_mode=0
while getopts "n:r:t:m:x" option; do
  case $option in
    n) nodes=$OPTARG ;;
    r) rate=$OPTARG ;;
    t) limit=$OPTARG ;;
    m) mode=$OPTARG ;;
    x) exec_mode=1 ;;
    *) sed -n '9,23p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
case $mode in centralized|decentralized) ;; *) echo "error: -m: expected centralized or decentralized, found '$mode'" >&2; exit 2 ;; esac
[[ $nodes =~ ^[0-9]+$ && $nodes -ge 1 && $nodes -le 64 ]] || { echo "error: -n: expected 1 to 64 nodes, found '$nodes'" >&2; exit 2; }
[[ $limit =~ ^[0-9]+$ && $limit -ge 1 ]] || { echo "error: -t: expected a number of seconds ≥ 1, found '$limit'" >&2; exit 2; }
[[ $rate == none || $rate =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] ||
  { echo "error: -r: expected none or a rate such as 100mbit, 1gbit, 10gbit, found '$rate'" >&2; exit 2; }
(( exec_mode == 0 || $# > 0 )) || { echo "error: -x: expected a command after --, found none" >&2; exit 2; }
(( $(id -u) == 0 )) || { echo "error: emulated-cluster.sh needs root (network namespaces and tc); running as $(id -un)" >&2; exit 2; }
command -v ip >/dev/null && command -v tc >/dev/null || { echo "error: emulated-cluster.sh needs iproute2 (ip, tc)" >&2; exit 2; }

dll=${DISTSGD_DLL:-src/Host/bin/Release/net10.0/distsgd.dll}
if (( exec_mode == 0 )) && [[ ! -f $dll ]]; then
  echo "building $dll" >&2
  dotnet build -c Release src/Host >/dev/null
fi
logs=${LOGS:-$(mktemp -d -t distsgd-emulated-XXXXXX)}
mkdir -p "$logs"
echo "logs: $logs"

# Hosts: centralized = master + workers; decentralized (and -x) = NODES peers.
hosts=$nodes
(( exec_mode == 0 )) && [[ $mode == centralized ]] && hosts=$((nodes + 1))
# Names unique to this run, so that concurrent runs do not collide: <prefix>h is the hub, <prefix>n<i> host i.
prefix="dsemu$$-"
hub="${prefix}h"
address() { echo "10.77.0.$(($1 + 1))"; }
echo "namespaces: ${prefix}* (hub ${hub}, hosts ${prefix}n0…n$((hosts - 1))), link rate $rate"

pids=()
made=()
. scripts/cluster-processes.sh
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_processes
  # Anything else still inside one of this run's namespaces was started by it (a child of a node): killed too,
  # else the namespace would outlive its deletion.
  for ns in "${made[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  for ns in "${made[@]}"; do timeout 20 ip netns delete "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns" >&2; done
  exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted: stopping the hosts and deleting the namespaces" >&2; exit 130' INT TERM

# Every `ip`/`tc` call bounded, and a failure names the command.
run() { timeout 20 "$@" || { echo "error: emulated network: '$*' failed" >&2; exit 1; }; }
add_namespace() { run ip netns add "$1"; made+=("$1"); run ip -n "$1" link set lo up; }

# tbf: rate, a bucket of 1 ms of traffic (at least 10 full frames; a smaller one loses rate to timer wake-ups on a
# loaded machine, decision 0079), and a queue of 50 ms so that several senders into one link (incast) queue rather
# than drop.
limit_link() { # namespace device
  [[ $rate == none ]] && return
  local bits
  bits=$(tc_bits "$rate")
  local burst=$(( bits / 8 / 1000 )); (( burst < 15140 )) && burst=15140
  run ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$rate" burst "$burst" latency 50ms
}
tc_bits() { awk -v r="$1" 'BEGIN { n = r + 0; u = r; sub(/^[0-9.]+/, "", u);
  f = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : 1; printf "%d", n * f }'; }

add_namespace "$hub"
run ip -n "$hub" link add br0 type bridge
run ip -n "$hub" link set br0 up
for i in $(seq 0 $((hosts - 1))); do
  ns="${prefix}n$i"
  add_namespace "$ns"
  # Made inside the hub (nothing in this machine's namespace), the host's end then moved into its namespace.
  run ip -n "$hub" link add "p$i" type veth peer name eth0 netns "$ns"
  run ip -n "$hub" link set "p$i" master br0
  run ip -n "$hub" link set "p$i" up
  run ip -n "$ns" addr add "$(address "$i")/24" dev eth0
  run ip -n "$ns" link set eth0 up
  limit_link "$ns" eth0      # what host i sends
  limit_link "$hub" "p$i"    # what host i receives
done

seed=$(address 0)
start_host() { # index roles
  local i=$1 roles=$2 ns="${prefix}n$1"
  shift 2
  if (( exec_mode == 1 )); then
    EMU_INDEX=$i EMU_NODES=$hosts EMU_ADDRESS=$(address "$i") EMU_SEED=$seed \
      ip netns exec "$ns" "$@" >"$logs/node-$i.log" 2>&1 &
  else
    # The same port on every host (each namespace has its own ports); remoting and the data plane bind the host's
    # address, the only one the other hosts can reach.
    DISTSGD_PORT=4053 DISTSGD_ROLES=$roles DISTSGD_SEED_NODES=$seed:4053 DISTSGD_HOST=$(address "$i") \
      ip netns exec "$ns" dotnet "$dll" node --mode "$mode" --workers "$nodes" "${run_flags[@]}" >"$logs/node-$i.log" 2>&1 &
  fi
  pids+=($!)
  echo "host $i $(address "$i") ($roles): pid $!, log $logs/node-$i.log"
}
run_flags=("$@")
# The nodes are told their link's rate (the ring's parts and --collective auto's choice follow it), unless ARGS says.
if (( exec_mode == 0 )) && [[ $rate != none && " $* " != *" --link-rate "* && " $* " != *" --link-rate="* ]]; then
  run_flags+=(--link-rate "$rate")
fi
for i in $(seq 0 $((hosts - 1))); do
  if (( exec_mode == 1 )); then roles=command
  elif [[ $mode == decentralized ]]; then roles=peer
  elif (( i == 0 )); then roles=master
  else roles=worker; fi
  if (( exec_mode == 1 )); then start_host "$i" "$roles" "$@"; else start_host "$i" "$roles"; fi
done

# Host 0 is the master (or the lead peer: the lowest address): wait for it, bounded, then for the others.
wait_for_run "$limit"
printf 'host\taddress\tsent_bytes\treceived_bytes\n' >"$logs/links.tsv"
for i in $(seq 0 $((hosts - 1))); do
  stats="/sys/class/net/eth0/statistics"
  read -r tx rx < <(ip netns exec "${prefix}n$i" sh -c "echo \$(cat $stats/tx_bytes) \$(cat $stats/rx_bytes)")
  printf '%s\t%s\t%s\t%s\n' "$i" "$(address "$i")" "$tx" "$rx" >>"$logs/links.tsv"
done
echo "--- $logs/node-0.log (last lines)"
tail -n 5 "$logs/node-0.log"
exit "$status"
