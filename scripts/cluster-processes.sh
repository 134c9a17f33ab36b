# Sourced by local-cluster.sh and emulated-cluster.sh: stopping and waiting for the node processes in the array
# `pids`, the first of which (the master, or the lead peer) ends the run.

# SIGTERM: each node leaves the cluster (CoordinatedShutdown); what is still running after 15 s is killed.
stop_processes() {
  local pid alive
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && return 0   # (a bare return in a trap handler returns the status that started the trap)
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# Waits for the first process, at most LIMIT seconds, then (within the same limit) for the others, which end with
# the run; warns of each that failed. Sets `status`: the first process's exit status, or 124 at the limit.
wait_for_run() { # limit
  local deadline=$((SECONDS + $1)) pid alive
  status=124
  while (( SECONDS < deadline )); do
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
      wait "${pids[0]}" && status=0 || status=$?
      break
    fi
    sleep 0.5
  done
  if [[ $status == 124 ]]; then
    echo "error: the run did not end within ${1}s (-t); stopping the nodes" >&2
  else
    while (( SECONDS < deadline )); do
      alive=0
      for pid in "${pids[@]:1}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [[ $alive == 0 ]] && break
      sleep 0.5
    done
  fi
  for pid in "${pids[@]:1}"; do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" || echo "warning: node pid $pid exited with status $?" >&2; fi
  done
}
