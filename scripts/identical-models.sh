#!/usr/bin/env bash
# Trains a fixed matrix of small runs and prints the SHA-256 of each run's model.bin, one line per cell
# ("cell-name sha256"), also written to OUTDIR/hashes.txt. Run it with the program before and after a change that
# must not change behaviour (issue 14) and compare the two hashes.txt files: every line must be equal.
#
# Usage: scripts/identical-models.sh DISTSGD_CMD OUTDIR
#   DISTSGD_CMD  how to start the program: a published binary (/work/baseline-bin/distsgd) or
#                "dotnet path/to/distsgd.dll" (split on spaces)
#   OUTDIR       a new or empty folder: each cell's results folder and log, and hashes.txt
#   e.g.  scripts/identical-models.sh /work/baseline-bin/distsgd /tmp/before
#         scripts/identical-models.sh "dotnet src/Host/bin/Release/net10.0/distsgd.dll" /tmp/after
#         diff /tmp/before/hashes.txt /tmp/after/hashes.txt
#
# Cells (blobs, 4000 samples, MLP 20-16-4, batch 16 per worker, 4 epochs, stop rule off; 2–4 min in all):
#   sequential; centralized 1, 2, 4 workers and decentralized 2, 3 peers, each on --transport direct and akka;
#   resume-*: the uninterrupted run's checkpoint cut back to one (the end of epoch 2 for centralized, a mid-epoch
#     step for decentralized: a crash just after that checkpoint), then `train --resume`; the script warns on stderr
#     when the resumed model differs from the uninterrupted run's (the README promises byte-identical);
#   worker-loss-*: `distsgd node` processes (a master and workers A, B on 127.0.0.2-4, 2 workers). Worker B refuses
#     every data connection from the master (distsgd.direct.members-only on; the master's connections come from
#     127.0.0.1, no member's address) before the data-plane handshake, so the master's first connect gets no
#     hello, its first send of θ to B fails and B is lost at that step (a connection closed before the hello is not
#     tried again, docs/decisions/0062; B logs the refusal as refused_not_member at Warning): the
#     rest of its shard of that epoch is skipped, the next epoch is cut for worker A alone. "-step-0" starts fresh;
#     "-mid-epoch" resumes the master from step 111 of the uninterrupted centralized run (epoch 2, 11 steps in), so
#     the loss lands mid-run at a fixed step. A kill -9 (scripts/fault-tolerance.sh, NodeFaultTests) lands at a
#     different step every time, so it cannot be hashed; this loss goes through the same path ("could not be sent
#     θ" → the worker dropped, re-shard) at a step fixed by the protocol, not by timing. Before the data-plane
#     handshake (docs/decisions/0057) one race was left: the refusal could reach the master after its first send to B
#     (then B was lost at step s + 1); now the send waits for B's hello, so B is lost at step s. Either way every step
#     from s on uses A's gradient alone, and both gave the same hash. stderr says at which step each run lost B.
# Every run has a timeout; a cell that fails prints "cell-name FAILED" (see OUTDIR/cell-name.log) and the script
# exits 1 at the end.
set -uo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 DISTSGD_CMD OUTDIR" >&2
  exit 2
fi
read -r -a distsgd <<<"$1"
out=$2
mkdir -p "$out"
out=$(cd "$out" && pwd)
: >"$out/hashes.txt"
flags=(--dataset blobs --samples 4000 --hidden 16 --batch-size 16 --epochs 4 --patience 0)
limit=120   # seconds any one run may take
failed=0
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done' EXIT   # timeout passes the TERM on to the node

record() {   # record CELL MODEL_FILE
  local line
  if [[ -f $2 ]]; then line="$1 $(sha256sum "$2" | cut -d' ' -f1)"; else line="$1 FAILED"; failed=1; fi
  echo "$line" | tee -a "$out/hashes.txt"
}

train() {   # train CELL ARGS...: a `train` run into OUTDIR/CELL
  local cell=$1; shift
  rm -rf "${out:?}/$cell"   # a model.bin left from an earlier use of OUTDIR must not be hashed
  timeout -k 5 "$limit" "${distsgd[@]}" train "${flags[@]}" "$@" --out "$out/$cell" >"$out/$cell.log" 2>&1
}

train sequential --mode sequential
record sequential "$out/sequential/model.bin"
for transport in direct akka; do
  for n in 1 2 4; do
    cell=centralized-$n-$transport
    train "$cell" --mode centralized --workers "$n" --transport "$transport"
    record "$cell" "$out/$cell/model.bin"
  done
  for n in 2 3; do
    cell=decentralized-$n-$transport
    train "$cell" --mode decentralized --workers "$n" --transport "$transport"
    record "$cell" "$out/$cell/model.bin"
  done
done

# resume CELL MODE STEP ARGS...: the uninterrupted run keeps every checkpoint; a copy of the one of global step STEP,
# alone in a fresh folder, is resumed there.
echo 'distsgd.checkpoint.keep = 1000' >"$out/keep-all.conf"
resume() {
  local cell=$1 mode=$2 step=$3; shift 3
  train "$cell-full" --mode "$mode" --workers 2 --config "$out/keep-all.conf" --checkpoint-every-seconds 0 "$@"
  local ckpt
  ckpt=$(printf '%s/%s-full/checkpoints/step-%012d.ckpt' "$out" "$cell" "$step")
  rm -rf "${out:?}/$cell"
  mkdir -p "$out/$cell/checkpoints"
  cp "$ckpt" "$out/$cell/checkpoints/" 2>/dev/null
  timeout -k 5 "$limit" "${distsgd[@]}" train "${flags[@]}" --mode "$mode" --workers 2 --config "$out/keep-all.conf" \
    --checkpoint-every-seconds 0 "$@" --resume "$out/$cell" >"$out/$cell.log" 2>&1
  record "$cell" "$out/$cell/model.bin"
  if ! cmp -s "$out/$cell/model.bin" "$out/$cell-full/model.bin"; then
    echo "warning: $cell: the resumed model differs from the uninterrupted run's ($cell-full)" >&2
  fi
}
# Checkpoints every 37 steps (100 steps an epoch) and at the epoch ends. Centralized resumes from step 200 (the end
# of epoch 2), decentralized from step 111 (epoch 2, 11 steps in).
resume resume-centralized-2-direct centralized 200 --transport direct --checkpoint-every-steps 37
resume resume-decentralized-2-direct decentralized 111 --transport direct --checkpoint-every-steps 37

# The worker loss: separate node processes on their own loopback addresses (worker A 127.0.0.3 sorts first: index 0).
free_ports() { python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'; }
# worker_loss CELL [CHECKPOINT]: a master and workers A and B; B never takes θ. With a checkpoint the master resumes
# from it, so B is lost at that (mid-run) step instead of step 0.
worker_loss() {
  local cell=$1 ckpt=${2:-} p0 p1 p2 master_pid resume=()
  rm -rf "${out:?}/$cell"
  mkdir -p "$out/$cell/master/checkpoints"
  if [[ -n $ckpt ]]; then
    cp "$ckpt" "$out/$cell/master/checkpoints/" 2>/dev/null
    resume=(--resume "$out/$cell/master")
  fi
  read -r p0 p1 p2 < <(free_ports)
  # Master: recheck a lost worker only after 600 s (never in this run), so it is not invited back at a
  # time-dependent epoch; accept the workers' data connections from 127.0.0.1. Worker A: accept the master's.
  printf '%s\n' 'distsgd.step-timeout = 5s' 'distsgd.direct.frame-timeout = 600s' 'distsgd.direct.members-only = off' \
    >"$out/$cell/master.conf"
  echo 'distsgd.direct.members-only = off' >"$out/$cell/worker-a.conf"
  echo 'distsgd.direct.members-only = on' >"$out/$cell/worker-b.conf"
  node() {   # node NAME HOST PORT ROLES ARGS...: starts one node in the background
    local name=$1 host=$2 port=$3 roles=$4; shift 4
    timeout -k 5 "$limit" "${distsgd[@]}" node --host "$host" --port "$port" --seed-nodes "127.0.0.2:$p0" --roles "$roles" \
      "${flags[@]}" --workers 2 --transport direct --config "$out/$cell/$name.conf" --out "$out/$cell/$name" "$@" \
      >"$out/$cell/$name.log" 2>&1 &
    pids+=($!)
  }
  node master 127.0.0.2 "$p0" master --checkpoint-every-seconds 0 "${resume[@]}"
  master_pid=${pids[-1]}
  node worker-a 127.0.0.3 "$p1" worker
  node worker-b 127.0.0.4 "$p2" worker
  wait "$master_pid"
  sleep 2
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
  local seen
  seen=$(grep -oE "step [0-9]+: worker 1 at \S+127\.0\.0\.4:[0-9]+ could not be sent" "$out/$cell/master.log" | head -1)
  if [[ -n $seen ]]; then echo "$cell: ${seen%% worker*} worker B lost (could not be sent θ)" >&2
  else echo "warning: $cell: the master's log does not say worker B (127.0.0.4) was lost" >&2; fi
  record "$cell" "$out/$cell/master/model.bin"
}
worker_loss worker-loss-centralized-2-direct-step-0
# Step 111 (epoch 2, 11 steps in) of the uninterrupted centralized run: lost mid-epoch, the rest of its shard skipped.
worker_loss worker-loss-centralized-2-direct-mid-epoch "$out/resume-centralized-2-direct-full/checkpoints/step-000000000111.ckpt"

exit "$failed"
