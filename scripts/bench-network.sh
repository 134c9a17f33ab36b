#!/usr/bin/env bash
# Measures real runs on the emulated network (scripts/emulated-cluster.sh, root) and sets them next to the cost
# model's prediction: for every link rate, the centralized mode with N workers and the decentralized mode with N
# peers (each collective), the samples/s and ms per step of every epoch after the first (together), and the bytes each node's link sent per step
# (the master's, and the mean over the peers). Prints a markdown table; the prediction is `distsgd bench cost` with
# the constants of `distsgd bench calibrate` (measured first, on this machine) and every node's compute and network stack
# on this machine's cores (--shared-cores), with ν, the stack's CPU per byte sent, and κ, what each message round costs
# on top of the socket's α (the actors and data-plane reader threads), fitted to the runs by least squares (veth, a
# bridge and two token buckets per byte cost more than the loopback's β that calibrate measures).
# Usage: scripts/bench-network.sh [-r RATES] [-n COUNTS] [-c COLLECTIVES] [-e EPOCHS] [-f FILE] [-- RUN FLAGS…]
#   -r  link rates, comma-separated (default 1gbit,none)
#   -n  node counts N, comma-separated (default 2,3,4)
#   -c  collectives of the decentralized runs, comma-separated (default allgather; ring, pairwise where the program
#       has --collective)
#   -e  epochs per run (default 2; all but the first are measured, together: the first pays JIT and cluster start)
#   -f  no runs: fit and compare again the rows of an earlier run's output (stdout and stderr together, e.g.
#       `… >run.txt 2>&1`: its calibrated: and measured: lines) with this build's model
#   RUN FLAGS: more train flags for every run (default --dataset fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
rates=1gbit,none counts=2,3,4 collectives=allgather epochs=2 refit=""
while getopts "r:n:c:e:f:" option; do
  case $option in
    r) rates=$OPTARG ;;
    n) counts=$OPTARG ;;
    c) collectives=$OPTARG ;;
    e) epochs=$OPTARG ;;
    f) refit=$OPTARG ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == "--" ]] && shift
run_flags=("$@")
(( ${#run_flags[@]} > 0 )) || run_flags=(--dataset fashion-mnist)
[[ $epochs =~ ^[0-9]+$ && $epochs -ge 2 ]] || { echo "error: -e: expected at least 2 epochs, found '$epochs'" >&2; exit 2; }

dotnet build -c Release src/Host >/dev/null
dll=src/Host/bin/Release/net10.0/distsgd.dll
work=$(mktemp -d -t distsgd-bench-network-XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM INT   # the EXIT trap then removes the work folder
has_collective=0
dotnet "$dll" node --help | grep -q -- '--collective' && has_collective=1

measured=()
if [[ -n $refit ]]; then
  [[ -r $refit ]] || { echo "error: -f: cannot read '$refit'" >&2; exit 2; }
  sed -n 's/^calibrated: //p' "$refit" | head -n 1 >"$work/constants.json"
  mapfile -t measured < <(sed -n 's/^measured: //p' "$refit")
  [[ -s $work/constants.json && ${#measured[@]} -gt 0 ]] ||
    { echo "error: -f: expected the calibrated: line and measured: rows of a bench-network.sh run in '$refit', found ${#measured[@]} rows" >&2; exit 2; }
  echo "calibrated (from $refit): $(cat "$work/constants.json")"
  rate_list=() count_list=() collective_list=()
else
  dotnet "$dll" bench calibrate --out "$work/constants.json" >/dev/null
  echo "calibrated: $(tr -d '\n' <"$work/constants.json" | tr -s ' ')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  IFS=, read -r -a rate_list <<<"$rates"
  IFS=, read -r -a count_list <<<"$counts"
  IFS=, read -r -a collective_list <<<"$collectives"
fi

# Pass 1: the runs. Each measured row: rate n name key ms_per_step samples_per_s wire_bytes_per_step.
for rate in "${rate_list[@]}"; do
  for n in "${count_list[@]}"; do
    runs=("centralized|centralized")
    for c in "${collective_list[@]}"; do
      if [[ $c != allgather && $has_collective == 0 ]]; then
        echo "note: this distsgd has no --collective; skipping $c" >&2
        continue
      fi
      runs+=("decentralized|$c")
    done
    for entry in "${runs[@]}"; do
      mode=${entry%%|*} what=${entry#*|}
      extra=()
      # The link rate too: the ring cuts its hops into segments on a slow link only (CostModel.RingPartValues).
      [[ $mode == decentralized && $has_collective == 1 ]] && extra=(--collective "$what" --link-rate "$rate")
      out="$work/$rate-$n-$what"
      if ! LOGS="$out-logs" scripts/emulated-cluster.sh -m "$mode" -n "$n" -r "$rate" -t 900 -- \
           "${run_flags[@]}" "${extra[@]}" --epochs "$epochs" --patience 0 --out "$out" --quiet >"$out.log" 2>&1; then
        kept=$(mktemp -d -t distsgd-bench-network-failed-XXXXXX); cp -r "$out"* "$kept"/
        echo "error: $mode $n, $what at $rate failed: logs kept in $kept" >&2
        continue
      fi
      # Every epoch after the first together (a loopback epoch is a second or less): its seconds, steps and samples.
      read -r secs steps sps < <(awk -F, 'NR == 2 { first = $2 } NR > 2 { s += $6; n += $7 * $6; last = $2 }
                                          END { printf "%.9f %d %.3f\n", s, last - first, n / s }' "$out/metrics.csv")
      total_steps=$(sed -n "$((epochs + 1))p" "$out/metrics.csv" | cut -d, -f2)
      # Bytes per step on the wire (whole run, control traffic and framing included): the master's link (host 0),
      # or the mean over the peers' links.
      if [[ $mode == centralized ]]; then
        wire=$(awk -F'\t' 'NR == 2 { print $3 }' "$out-logs/links.tsv")
      else
        wire=$(awk -F'\t' 'NR > 1 { s += $3; k++ } END { printf "%.0f", s / k }' "$out-logs/links.tsv")
      fi
      measured+=("$(awk -v r="$rate" -v n="$n" -v name="$mode $n, $what" -v key="$what" -v secs="$secs" \
                     -v sps="$sps" -v steps="$steps" -v wire="$wire" -v total="$total_steps" \
                     'BEGIN { printf "%s|%s|%s|%s|%.6f|%.0f|%.0f", r, n, name, key, secs / steps, sps, wire / total }')")
      echo "measured: ${measured[-1]}" >&2   # kept in the output if a later step fails
    done
  done
done

# Pass 2: ν and κ as the runs see them, fitted by least squares on the relative error (weights 1/measured):
# measured − predicted(ν = 0, κ = 0) = kν·ν + kκ·κ, kν the bytes all nodes send per step over the shared cores and kκ
# the rounds on a step's critical path (both from the model itself: its prediction with ν = 1 ns/byte, κ = 1 ms).
# α stays the bare socket's that calibrate measured; κ is what each round adds on top of it (the actors and reader threads).
predict() { # constants rate n key → seconds bytes
  dotnet "$dll" bench cost --csv --constants "$1" --nodes "$3" --rate "$2" --shared-cores "$(nproc)" | awk -F, -v k="$4" '$3 == k { print $4, $6 }'
}
with_fit() { # ν κ file
  sed -e "s/\"NetworkSecondsPerByte\": [^,]*,/\"NetworkSecondsPerByte\": $1,/" -e "s/\"RoundSeconds\": [^,]*,/\"RoundSeconds\": $2,/" \
    "$work/constants.json" >"$3"
}
grep -q '"RoundSeconds"' "$work/constants.json" || { echo "error: $work/constants.json has no RoundSeconds (κ): an older distsgd?" >&2; exit 1; }
with_fit 0 0 "$work/none.json"; with_fit 1e-9 0 "$work/nu1ns.json"; with_fit 0 1e-3 "$work/kappa1ms.json"
sums="0 0 0 0 0"   # Σ kν², Σ kν·kκ, Σ kκ², Σ kν·r, Σ kκ·r (weighted)
for m in "${measured[@]}"; do
  IFS='|' read -r rate n name key secs sps wire <<<"$m"
  read -r t0 _ < <(predict "$work/none.json" "$rate" "$n" "$key")
  read -r tn _ < <(predict "$work/nu1ns.json" "$rate" "$n" "$key")
  read -r tk _ < <(predict "$work/kappa1ms.json" "$rate" "$n" "$key")
  sums=$(awk -v s="$sums" -v t0="$t0" -v tn="$tn" -v tk="$tk" -v m="$secs" 'BEGIN {
    split(s, a, " "); w = 1 / m; a1 = (tn - t0) / 1e-9 * w; a2 = (tk - t0) / 1e-3 * w; r = (m - t0) * w
    printf "%.12g %.12g %.12g %.12g %.12g\n", a[1] + a1 * a1, a[2] + a1 * a2, a[3] + a2 * a2, a[4] + a1 * r, a[5] + a2 * r }')
done
# The 2×2 normal equations; a negative value is clamped to 0 and the other refitted alone.
read -r nu kappa < <(awk -v s="$sums" 'BEGIN {
  split(s, a, " "); nn = a[1]; nk = a[2]; kk = a[3]; nr = a[4]; kr = a[5]; det = nn * kk - nk * nk
  nu = 0; kappa = 0
  if (det > 0) { nu = (kk * nr - nk * kr) / det; kappa = (nn * kr - nk * nr) / det }
  if (det <= 0 || kappa < 0) { kappa = 0; nu = (nn > 0) ? nr / nn : 0 }
  if (nu < 0) { nu = 0; kappa = (kk > 0) ? kr / kk : 0 }
  if (kappa < 0) kappa = 0
  printf "%.6g %.6g\n", nu, kappa }')
with_fit "$nu" "$kappa" "$work/fitted.json"
echo "ν fitted to the runs: $(awk -v v="$nu" 'BEGIN { printf "%.3f ns/byte", v * 1e9 }') (loopback β, calibrated: $(grep -o '"LoopbackSecondsPerByte": [^,]*' "$work/constants.json" | awk '{ printf "%.3f ns/byte", $2 * 1e9 }')); κ fitted: $(awk -v v="$kappa" 'BEGIN { printf "%.3f ms", v * 1000 }') a round on top of α, the bare socket's: $(grep -o '"MessageSeconds": [^,]*' "$work/constants.json" | awk '{ printf "%.3f ms", $2 * 1000 }')"
echo
echo "| link | run | samples/s | ms/step | predicted ms/step | measured / predicted | MB/step sent per node (wire) | predicted MB/step (payload) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for m in "${measured[@]}"; do
  IFS='|' read -r rate n name key secs sps wire <<<"$m"
  read -r t bytes < <(predict "$work/fitted.json" "$rate" "$n" "$key")
  awk -v rate="$rate" -v name="$name" -v sps="$sps" -v s="$secs" -v t="$t" -v wire="$wire" -v bytes="$bytes" 'BEGIN {
    printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.3f | %.3f |\n", rate, name, sps, s * 1000, t * 1000, s / t, wire / 1e6, bytes / 1e6 }'
done
echo
[[ -n $refit ]] || echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
