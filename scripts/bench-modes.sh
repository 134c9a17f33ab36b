#!/usr/bin/env bash
# Compares the training modes on the same data, seed and per-worker batch: median of REPEAT runs of
# the second epoch (the first includes JIT warm-up and cluster start). Prints a markdown table.
# Usage: scripts/bench-modes.sh [REPEAT] [EPOCHS]   (defaults 3 and 2)
#        The decentralized rows name their collective (--collective); the plain ones are the all-gather.
#        BENCH_ONLY='regex' scripts/bench-modes.sh …   only the rows whose name matches (e.g. 'direct')
# The TLS rows use a throw-away CA and node certificate made by scripts/make-certs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-3}
epochs=${2:-2}
dotnet build -c Release src/Host >/dev/null
bin="dotnet src/Host/bin/Release/net10.0/distsgd.dll"
out=$(mktemp -d)
chunk64=$(mktemp --suffix=.conf); echo 'distsgd.akka-chunk-size = 64KiB' > "$chunk64"
nobatch=$(mktemp --suffix=.conf); echo 'akka.remote.dot-netty.tcp.batching.enabled = false' > "$nobatch"
certs=$(mktemp -d)
DISTSGD_TLS_PASSWORD=bench scripts/make-certs.sh "$certs" node >/dev/null
export DISTSGD_TLS_PASSWORD=bench
tls="--tls-cert $certs/node.pfx"

configs=(
  "sequential b64|--mode sequential --batch-size 64 --threads 1"
  "sequential b128|--mode sequential --batch-size 128 --threads 1"
  "sequential b256|--mode sequential --batch-size 256 --threads 1"
  "centralized 1 worker|--mode centralized --workers 1"
  "centralized 2 workers, direct|--mode centralized --workers 2 --transport direct"
  "centralized 2 workers, direct, TLS|--mode centralized --workers 2 --transport direct $tls"
  "centralized 2 workers, akka|--mode centralized --workers 2 --transport akka"
  "centralized 2 workers, akka, TLS|--mode centralized --workers 2 --transport akka $tls"
  "centralized 4 workers, direct|--mode centralized --workers 4 --transport direct"
  "centralized 4 workers, akka|--mode centralized --workers 4 --transport akka"
  "centralized 2 workers, akka, 64 KiB chunks|--mode centralized --workers 2 --transport akka --config $chunk64"
  "centralized 2 workers, akka, no batching|--mode centralized --workers 2 --transport akka --config $nobatch"
  "decentralized 2 peers, direct|--mode decentralized --workers 2 --transport direct"
  "decentralized 2 peers, direct, TLS|--mode decentralized --workers 2 --transport direct $tls"
  "decentralized 2 peers, akka|--mode decentralized --workers 2 --transport akka"
  "decentralized 2 peers, direct, ring|--mode decentralized --workers 2 --transport direct --collective ring"
  "decentralized 2 peers, direct, pairwise|--mode decentralized --workers 2 --transport direct --collective pairwise"
  "decentralized 3 peers, direct, allgather|--mode decentralized --workers 3 --transport direct --collective allgather"
  "decentralized 3 peers, direct, ring|--mode decentralized --workers 3 --transport direct --collective ring"
  "decentralized 3 peers, direct, pairwise|--mode decentralized --workers 3 --transport direct --collective pairwise"
  "decentralized 4 peers, direct|--mode decentralized --workers 4 --transport direct --collective allgather"
  "decentralized 4 peers, direct, ring|--mode decentralized --workers 4 --transport direct --collective ring"
  "decentralized 4 peers, direct, pairwise|--mode decentralized --workers 4 --transport direct --collective pairwise"
  "decentralized 4 peers, akka|--mode decentralized --workers 4 --transport akka"
)

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "| run | global batch | s/epoch | samples/s | step ms | compute ms | comm ms | comm share | MB sent/step | MB recv/step | test acc |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for entry in "${configs[@]}"; do
  name=${entry%%|*}; flags=${entry#*|}
  [[ -z "${BENCH_ONLY:-}" || "$name" =~ $BENCH_ONLY ]] || continue
  rows=()
  for r in $(seq 1 "$repeat"); do
    dir="$out/$(echo "$name" | tr ' ,' '__')-$r"
    $bin train $flags --epochs "$epochs" --patience 0 --out "$dir" --quiet >/dev/null
    rows+=("$(sed -n "$((epochs + 1))p" "$dir/metrics.csv")")
  done
  workers=$(echo "$flags" | { grep -Eo -- '--workers [0-9]+' || true; } | awk '{print $2}'); workers=${workers:-1}
  batch=$(echo "$flags" | { grep -Eo -- '--batch-size [0-9]+' || true; } | awk '{print $2}'); batch=${batch:-64}
  col() { printf '%s\n' "${rows[@]}" | cut -d, -f"$1" | median; }
  steps=$(( $(col 2) / epochs ))
  awk -v name="$name" -v gb=$((workers * batch)) -v s="$(col 6)" -v sps="$(col 7)" -v c="$(col 9)" -v m="$(col 11)" \
      -v u="$(col 12)" -v bs="$(col 13)" -v br="$(col 14)" -v sh="$(col 15)" -v acc="$(col 5)" -v steps="$steps" 'BEGIN {
    step = (c + m + u) / steps * 1000;
    printf "| %s | %d | %.2f | %.0f | %.2f | %.2f | %.2f | %.0f%% | %.2f | %.2f | %.2f%% |\n",
           name, gb, s, sps, step, c / steps * 1000, m / steps * 1000, sh * 100, bs / steps / 1e6, br / steps / 1e6, acc * 100 }'
done
rm -rf "$out" "$chunk64" "$nobatch" "$certs"
