#!/usr/bin/env bash
# Issue 20's measurement: 4 centralized workers on Fashion-MNIST (default flags, --patience 0), one of them slowed to a
# third of its speed (distsgd.debug.slowdown = 3: it sleeps twice its compute time after each gradient), with and
# without --backup-workers 1 and --balance speed, against the same run with no slow node. Each configuration runs
# REPEAT times, the configurations interleaved (a load change hits them alike). Prints a markdown table: samples/s as
# the median of the per-epoch rates of epochs 2..EPOCHS over the repeats (epoch 1 carries the JIT and the cluster's
# start, and --balance speed starts balancing in epoch 2; the median resists load spikes of a shared machine), its
# share of the run with no slow node, the final test accuracy of each repeat, the late gradients, and the load average.
# Usage: scripts/stragglers.sh [EPOCHS] [REPEAT] [OUTDIR] [EXTRA FLAGS]   (defaults 10, 2, a temporary folder, none)
#   e.g. scripts/stragglers.sh 3 2 /tmp/s "--batch-size 256"   (a bigger batch: the step is compute-bound)
# MODE=decentralized runs 4 peers (add "--transport direct" to EXTRA FLAGS for the data plane) without the backup-worker
# rows: peers have no backup workers (decision 0099), only --balance speed (decision 0123).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-10}
repeat=${2:-2}
out=${3:-$(mktemp -d)}
extra=${4:-}
mkdir -p "$out"
bin="dotnet src/Host/bin/Release/net10.0/distsgd.dll"
slow="$out/slow.conf"
printf 'distsgd.debug.slowdown = 3\ndistsgd.debug.slow-node = 1\n' > "$slow"

mode=${MODE:-centralized}
configs=(
  "no slow node|"
  "one at 1/3 speed|--config $slow"
  "one at 1/3, --backup-workers 1|--config $slow --backup-workers 1"
  "one at 1/3, --balance speed|--config $slow --balance speed"
  "one at 1/3, both|--config $slow --backup-workers 1 --balance speed"
)
if [[ $mode == decentralized ]]; then
  configs=("${configs[0]}" "${configs[1]}" "${configs[3]}")
fi
for r in $(seq 1 "$repeat"); do
  for i in "${!configs[@]}"; do
    IFS='|' read -r _ flags <<<"${configs[$i]}"
    dir="$out/run-$i-$r"
    rm -rf "$dir"
    # shellcheck disable=SC2086
    $bin train --mode "$mode" --workers 4 --epochs "$epochs" --patience 0 $extra $flags --quiet --out "$dir" >"$dir.log" 2>&1 \
      || echo "run $i repeat $r failed: see $dir.log" >&2
    cut -d' ' -f1 /proc/loadavg >"$dir.load"
  done
done
python3 - "$out" "$repeat" "${configs[@]}" <<'PY'
import csv, json, os, statistics, sys
out, repeat, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"| run (4 {'peers' if os.environ.get('MODE') == 'decentralized' else 'workers'}) | samples/s (median of epochs 2+) | vs no slow node | test accuracy | late gradients | load average |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
base = None
for i, config in enumerate(configs):
    name = config.split("|")[0]
    rates, accuracies, late, loads = [], [], [], []
    for r in range(1, repeat + 1):
        d = f"{out}/run-{i}-{r}"
        if not os.path.exists(f"{d}/summary.json"):
            continue
        rows = list(csv.DictReader(open(f"{d}/metrics.csv")))
        rates += [float(row["samples_per_second"]) for row in rows[1:]]
        s = json.load(open(f"{d}/summary.json"))
        accuracies.append(f"{100 * s['final_test_accuracy']:.2f}%")
        late.append(str((s.get("dropped_messages") or {}).get("late_gradient", 0)))
        loads.append(open(f"{d}.load").read().strip())
    if not rates:
        print(f"| {name} | failed | | | | |")
        continue
    rate = statistics.median(rates)
    base = base or rate
    print(f"| {name} | {rate:,.0f} | {100 * rate / base:.0f} % | {', '.join(accuracies)} | {', '.join(late)} | {', '.join(loads)} |")
PY
