#!/usr/bin/env bash
# Issue 20's measurement: 4 centralized workers on Fashion-MNIST (default flags), one of them slowed to a third of its
# speed (distsgd.debug.slowdown = 3: it sleeps twice its compute time after each gradient), with and without
# --backup-workers 1 and --balance speed, against the same run with no slow node. Prints a markdown table: samples/s
# over the training epochs (summary.json totals), its share of the run without a slow node, final test accuracy, and
# the machine's load average when the row finished (the slow node sleeps, so it leaves its CPU to the others).
# Usage: scripts/stragglers.sh [EPOCHS] [OUTDIR]   (defaults 10 and a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-10}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
bin="dotnet src/Host/bin/Release/net10.0/distsgd.dll"
slow="$out/slow.conf"
printf 'distsgd.debug.slowdown = 3\ndistsgd.debug.slow-node = 1\n' > "$slow"

configs=(
  "no slow node|"
  "one worker at 1/3 speed|--config $slow"
  "one at 1/3, --backup-workers 1|--config $slow --backup-workers 1"
  "one at 1/3, --balance speed|--config $slow --balance speed"
  "one at 1/3, both|--config $slow --backup-workers 1 --balance speed"
)
echo "| run (4 workers, $epochs epochs) | samples/s | vs no slow node | test accuracy | late gradients | load average |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
base=""
for i in "${!configs[@]}"; do
  IFS='|' read -r name flags <<<"${configs[$i]}"
  dir="$out/run-$i"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  $bin train --mode centralized --workers 4 --epochs "$epochs" --patience 0 $flags --quiet --out "$dir" >"$out/run-$i.log" 2>&1 || { echo "| $name | FAILED (see $out/run-$i.log) | | | | |"; continue; }
  read -r rate accuracy late < <(python3 - "$dir/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
print(t["samples"] / t["epoch_seconds"], s["final_test_accuracy"], (s.get("dropped_messages") or {}).get("late_gradient", 0))
PY
)
  base=${base:-$rate}
  load=$(cut -d' ' -f1 /proc/loadavg)
  python3 -c "print(f'| $name | {float($rate):,.0f} | {100*float($rate)/float($base):.0f} % | {100*float($accuracy):.2f}% | $late | $load |')"
done
