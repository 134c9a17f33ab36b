#!/usr/bin/env python3
"""Runs a distsgd command and reports, per epoch, the wall seconds the run itself reports, its samples/s,
and the CPU seconds its whole process tree used since the previous epoch line (for epoch 1: since the
line saying training started, "… started with N workers/peers" or, sequential, "results: …"); then
epoch 1 / epoch 2 of both.

Usage: scripts/epoch-warmup.py [--repeat N] [--log FILE] -- COMMAND…
   e.g. scripts/epoch-warmup.py --repeat 2 -- dotnet src/Host/bin/Release/net10.0/distsgd.dll train --epochs 3 --patience 0
The command's plain output (standard output not a terminal) is read: lines "epoch   N/M … S s   R samples/s".
CPU time is read from /proc (Linux only): user + system ticks of the command and all its descendants, so a
scripts/local-cluster.sh run counts every node; its epoch lines are in the master's log: --log FILE reads the
lines from FILE as it grows instead of from the command's output, e.g.
   LOGS=/tmp/lc scripts/epoch-warmup.py --log /tmp/lc/node-4053.log -- scripts/local-cluster.sh -n 2 -- --epochs 3 --patience 0
"""
import os
import re
import subprocess
import sys
import time


def tree_cpu_seconds(root: int) -> float:
    """User + system seconds of root and every live descendant (children that exited are counted by the kernel
    in their parent's cutime/cstime, which are added too)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime are fields 14-17 of stat; after the ")" split, index 11-14.
        stats[pid] = sum(int(x) for x in fields[11:15])
    total = 0
    for pid, used in stats.items():
        p = pid
        while p not in (0, 1) and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += used
    return total / ticks


EPOCH = re.compile(r"^epoch\s+(\d+)/\d+.*?([\d.]+) s\s+([\d,]+) samples/s")
STARTED = re.compile(r"started with \d+|^results: ")


def lines_of(process, log):
    """The command's output lines, or FILE's lines as they are written while the command runs."""
    if log is None:
        yield from process.stdout
        return
    while not os.path.exists(log) or os.path.getmtime(log) < process.start:
        if process.poll() is not None:
            return
        time.sleep(0.1)
    with open(log) as f:
        pending = ""
        while True:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                continue
            if process.poll() is not None:
                return
            time.sleep(0.1)


def run_once(command, log):
    start = time.monotonic()
    if log is not None and os.path.exists(log):
        os.remove(log)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL if log else subprocess.PIPE,
                               stderr=subprocess.DEVNULL if log else subprocess.STDOUT, text=True)
    process.start = time.time() - 1
    rows = []
    previous_cpu = 0.0
    for line in lines_of(process, log):
        line = line.strip()
        if STARTED.search(line) and not rows:
            previous_cpu = tree_cpu_seconds(process.pid)
            continue
        match = EPOCH.match(line)
        if not match:
            continue
        cpu = tree_cpu_seconds(process.pid)
        rows.append((int(match[1]), float(match[2]), float(match[3].replace(",", "")), cpu - previous_cpu))
        previous_cpu = cpu
    process.wait()
    return rows, time.monotonic() - start, process.returncode


def main(argv):
    repeat = 1
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    if "--repeat" in options:
        repeat = int(options[options.index("--repeat") + 1])
    log = options[options.index("--log") + 1] if "--log" in options else None
    with open("/proc/loadavg") as f:
        print(f"load average at start: {f.read().split()[0]}")
    for r in range(repeat):
        rows, wall, code = run_once(command, log)
        if code != 0:
            print(f"run {r + 1}: exit status {code}", file=sys.stderr)
            return 1
        cells = "  ".join(f"e{e}: {s:.2f} s, {(sps or 0):,.0f}/s, cpu {c:.2f} s" for e, s, sps, c in rows)
        ratio = ""
        if len(rows) >= 2:
            ratio = f"  | epoch1/epoch2: wall {rows[0][1] / rows[1][1]:.2f}, cpu {rows[0][3] / rows[1][3]:.2f}"
        print(f"run {r + 1} ({wall:.1f} s): {cells}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
