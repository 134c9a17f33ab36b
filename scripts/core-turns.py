#!/usr/bin/env python3
"""How this machine's cores run N equal jobs started together, the premise of CostModel.Turns (decision 0138).

Usage: scripts/core-turns.py [--nodes 1,2,3,4] [--work-ms 1.2] [--rounds 200]
N processes run in lock-step rounds: this process wakes them all through pipes, each does the same CPU work
(calibrated to WORK ms alone) and answers; the round ends with the last answer. Prints, per N, the median round
against the two ways K cores could share the jobs: fluid, max(1, N/K) jobs' time, and in whole turns, ⌈N/K⌉ jobs'
time (what the cost model charges nodes on shared cores). Run it on a quiet machine (`uptime`). Standard library only.
"""
import argparse
import math
import os
import statistics
import time


def spin(iterations):
    x = 0
    for i in range(iterations):
        x += i
    return x


def iterations_for(seconds):
    """Iterations of spin() that take `seconds` alone (from the fastest of five timings)."""
    n = 200_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(n)
        best = min(best, time.perf_counter() - start)
    return max(1, int(n * seconds / best))


def round_seconds(nodes, iterations, rounds):
    """The median round of `nodes` worker processes woken together through pipes."""
    workers = []
    for _ in range(nodes):
        go_read, go_write = os.pipe()
        done_read, done_write = os.pipe()
        if os.fork() == 0:
            os.close(go_write)
            os.close(done_read)
            while os.read(go_read, 1) == b"g":
                spin(iterations)
                os.write(done_write, b"d")
            os._exit(0)
        os.close(go_read)
        os.close(done_write)
        workers.append((go_write, done_read))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for go, _ in workers:
            os.write(go, b"g")
        for _, done in workers:
            os.read(done, 1)
        times.append(time.perf_counter() - start)
    for go, done in workers:
        os.write(go, b"q")
        os.close(go)
        os.close(done)
    for _ in workers:
        os.wait()
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2,3,4", help="process counts N, comma-separated (default 1,2,3,4)")
    parser.add_argument("--work-ms", type=float, default=1.2, help="each job's CPU time alone, ms (default 1.2: a step's gradient)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds per N (default 200)")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.nodes.split(",")]
    except ValueError:
        parser.error(f"--nodes: expected comma-separated process counts, found '{args.nodes}'")
    if not all(1 <= n <= 256 for n in counts):
        parser.error(f"--nodes: expected counts from 1 to 256, found '{args.nodes}'")
    if not args.work_ms > 0 or args.rounds < 1:
        parser.error(f"expected --work-ms > 0 and --rounds ≥ 1, found {args.work_ms} and {args.rounds}")
    cores = len(os.sched_getaffinity(0))
    iterations = iterations_for(args.work_ms / 1000)
    print(f"K = {cores} cores, a job of {args.work_ms:g} ms alone, load average {os.getloadavg()[0]:.2f}")
    print("| N | round, median ms | fluid: max(1, N/K) jobs | whole turns: ⌈N/K⌉ jobs |")
    print("| ---: | ---: | ---: | ---: |")
    for n in counts:
        ms = round_seconds(n, iterations, args.rounds) * 1000
        print(f"| {n} | {ms:.2f} | {max(1, n / cores) * args.work_ms:.2f} | {math.ceil(n / cores) * args.work_ms:.2f} |")


if __name__ == "__main__":
    main()
