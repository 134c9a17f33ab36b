#!/bin/sh
# The container's entry point: runs one `distsgd node` with the container's arguments (the run's flags come from the
# DISTSGD_* variables of the ConfigMap), then keeps the container up with the node's exit code recorded, so that the
# StatefulSet does not start the run again in a restarted container and the results can be copied out:
#   kubectl exec distsgd-0 -- cat /var/lib/distsgd/exit-code; kubectl cp distsgd-0:/var/lib/distsgd/results ./results
# Delete the StatefulSet to end the job. SIGTERM reaches the node (it leaves the cluster and exits 1).
# DISTSGD_STATE (the pod's volume) and DISTSGD_PROGRAM are for tests.
state=${DISTSGD_STATE:-/var/lib/distsgd}
program=${DISTSGD_PROGRAM:-/app/distsgd}
mkdir -p "$state"
if [ -f "$state/exit-code" ]; then
  echo "distsgd: this node's part of the run already ended with exit code $(cat "$state/exit-code"); not starting it again"
else
  "$program" "$@" &
  node=$!
  trap 'kill -TERM "$node" 2>/dev/null' TERM INT
  wait "$node"
  code=$?
  # A signal interrupts the first wait; the second returns the node's own exit code once it has left the cluster.
  if kill -0 "$node" 2>/dev/null; then wait "$node"; code=$?; fi
  echo "$code" > "$state/exit-code"
  echo "distsgd: the node exited with code $code; the container stays up (delete the StatefulSet to end the job)"
fi
trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM INT
while :; do sleep 3600 & sleeper=$!; wait "$sleeper"; done
