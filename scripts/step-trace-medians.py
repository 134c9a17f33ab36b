#!/usr/bin/env python3
"""Medians of a run's step traces (distsgd.step-trace = on) and the time after the slowest compute, per step.

Usage: scripts/step-trace-medians.py RUN_DIR [--from-step N] [--ring]
  RUN_DIR    a results folder of `train ... --config trace.conf` (step-trace-*.json and metrics.csv)
  --from-step  the first step counted (default: the first step of the last epoch in metrics.csv)
  --ring     a ring all-reduce of peers 0 … N−1 (whole chunks: one part a hop): the hops instead of the critical path
Prints the last epoch's metrics.csv row per step (ms), the median of every span per node, and for a decentralized run
of peers on the direct transport the critical path from the slowest peer's compute to this peer's update, with the
"pure" hand-off: from the later of the frame's last byte and the peer being ready to wait (its send and its own
share's offer done) to the actor taking the frame. With --ring, per hop (medians over peers and steps): from the left
neighbour forwarding the part (its own `send` for hop 0, else its `offer` of the hop before, which sends inside it) to
this reader seeing the header, the reader's receive, the frame's last byte to the actor's offer (of which the peer
was still computing or sending its own), and the offer (add and forward). Standard library only.
"""
import argparse
import csv
import glob
import json
import os
import statistics


def spans_by_step(path, first):
    """{step: {span name: event}}, the latest of a name in a step; the reader threads' `receive` spans are under "receive"."""
    return {step: {name: events[-1] for name, events in spans.items()} for step, spans in all_spans(path, first).items()}


def end(e):
    return e["ts"] + e["dur"]


def median_ms(values):
    return statistics.median(values) / 1000 if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--from-step", type=int)
    parser.add_argument("--ring", action="store_true")
    args = parser.parse_args()
    with open(os.path.join(args.run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    steps = int(last["step"]) - (int(rows[-2]["step"]) if len(rows) > 1 else 0)
    first = args.from_step if args.from_step is not None else int(last["step"]) - steps
    per_step = {k: float(last[k]) / steps * 1000 for k in
                ("seconds", "compute_seconds", "imbalance_seconds", "communication_seconds", "update_seconds")}
    print(f"epoch {last['epoch']}: {float(last['samples_per_second']):,.0f} samples/s; ms per step: " +
          ", ".join(f"{k.replace('_seconds', '')} {v:.2f}" for k, v in per_step.items()) +
          f", outside compute {per_step['communication_seconds'] + per_step['update_seconds']:.2f}")
    traces = sorted(glob.glob(os.path.join(args.run, "step-trace-*.json")))
    nodes = {os.path.basename(t)[len("step-trace-"):-len(".json")]: spans_by_step(t, first) for t in traces}
    for node, by_step in nodes.items():
        names = {}
        for spans in by_step.values():
            for name, e in spans.items():
                names.setdefault(name, []).append(e["dur"])
        print(f"{node}: " + ", ".join(f"{name} {median_ms(d):.3f}" for name, d in names.items()))
    peers = [n for n in nodes if n.startswith("peer-")]
    if len(peers) < 2:
        return
    if args.ring:
        ring_hops({int(n[len("peer-"):]): all_spans(t, first) for n, t in zip(nodes, traces) if n.startswith("peer-")})
        return
    path = {}
    for node in peers:
        for step, spans in nodes[node].items():
            if not {"compute", "receive", "offer", "update", "arm timeout"} <= spans.keys():
                continue
            slowest = max(end(nodes[p][step]["compute"]) for p in peers if "compute" in nodes[p].get(step, {}))
            frame, ready = end(spans["receive"]), end(spans["arm timeout"])
            for name, value in (("slowest compute end -> frame's last byte", frame - slowest),
                                ("pure hand-off", spans["offer"]["ts"] - max(frame, ready)),
                                ("offer", spans["offer"]["dur"]), ("update", spans["update"]["dur"]),
                                ("slowest compute end -> update end", end(spans["update"]) - slowest)):
                path.setdefault(name, []).append(value)
    print("peers, ms per step (median): " + ", ".join(f"{k} {median_ms(v):.3f}" for k, v in path.items()))


def all_spans(path, first):
    """{step: {span name: [events in time order]}}: every part of a step, not the last one only."""
    steps = {}
    with open(path) as f:
        for e in json.load(f):
            step = e.get("args", {}).get("step", -1)
            if e.get("ph") == "X" and step >= first:
                steps.setdefault(step, {}).setdefault(e["name"], []).append(e)
    for spans in steps.values():
        for events in spans.values():
            events.sort(key=lambda e: e["ts"])
    return steps


def ring_hops(peers):
    """Medians per hop of a ring of peers 0 … N−1, each hop one part (see the module's doc)."""
    n = len(peers)
    hops = 2 * (n - 1)
    rows = {}
    for node, steps in peers.items():
        left = peers.get((node - 1) % n, {})
        for step, spans in steps.items():
            theirs = left.get(step, {})
            if any(len(spans.get(k, [])) != hops for k in ("receive", "offer")) or len(theirs.get("offer", [])) != hops \
                    or not spans.get("send") or not theirs.get("send"):
                continue
            ready = end(spans["send"][0])
            for hop in range(hops):
                forwarded = (theirs["send"][0] if hop == 0 else theirs["offer"][hop - 1])["ts"]
                receive, offer = spans["receive"][hop], spans["offer"][hop]
                for name, value in (("left forwards -> header", receive["ts"] - forwarded), ("receive", receive["dur"]),
                                    ("last byte -> offer", offer["ts"] - end(receive)),
                                    ("of which own share not sent", max(0, min(offer["ts"], ready) - end(receive))),
                                    ("offer", offer["dur"]), ("left forwards -> offer end", end(offer) - forwarded)):
                    rows.setdefault(name, {}).setdefault(hop, []).append(value)
    if not rows:
        print(f"ring: no step with {hops} parts on every peer (segments, or not a ring of peers 0 … {n - 1})")
        return
    print(f"ring of {n}, ms per hop (median over peers and steps): hop " + " | ".join(str(h) for h in range(hops)))
    for name, by_hop in rows.items():
        print(f"  {name}: " + " | ".join(f"{median_ms(by_hop.get(h, [])):.3f}" for h in range(hops)))


if __name__ == "__main__":
    main()
