#!/usr/bin/env python3
"""Renders a few steps of a DistSgd Chrome trace (--trace FILE) as an SVG timeline: one row per node and thread.

Usage: scripts/trace-to-svg.py trace.json --steps 400 402 -o timeline.svg
Standard library only; for reading a trace, open it in ui.perfetto.dev or chrome://tracing instead.
"""
import argparse
import html
import json

COLOURS = {
    "step": "#e8e8e8", "open": "#bdbdbd", "compute": "#4c78a8", "send": "#f58518", "arm timeout": "#bab0ac",
    "wait": "#dddddd", "receive": "#e45756", "hand-off": "#b279a2", "offer": "#ff9da6", "before update": "#9d755d",
    "update": "#54a24b", "after update": "#88d27a", "checkpoint": "#eeca3b", "evaluation": "#72b7b2", "gc pause": "#000000",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--steps", nargs=2, type=int, required=True, metavar=("FIRST", "LAST"))
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--width", type=int, default=1100)
    args = parser.parse_args()

    with open(args.trace, encoding="utf-8") as f:
        events = json.load(f)
    processes = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    first, last = args.steps
    spans = [e for e in events if e.get("ph") == "X" and first <= e["args"].get("step", -1) <= last]
    if not spans:
        raise SystemExit(f"{args.trace}: no spans of steps {first}-{last}")
    start = min(e["ts"] for e in spans)
    end = max(e["ts"] + e["dur"] for e in spans)
    rows = sorted({(e["pid"], e["tid"]) for e in spans})
    label_width, row_height, top = 230, 26, 40
    scale = (args.width - label_width - 20) / max(end - start, 1)
    height = top + row_height * len(rows) + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{args.width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="13">steps {first}-{last}: {(end - start) / 1000:.2f} ms</text>']
    for i, (pid, tid) in enumerate(rows):
        y = top + i * row_height
        name = f'{processes.get(pid, pid)} / {threads.get((pid, tid), "thread " + str(tid))}'
        out.append(f'<text x="10" y="{y + 17}">{html.escape(name)}</text>')
        # Outer spans first (the step), so the phases inside it are drawn over it.
        for e in sorted((e for e in spans if (e["pid"], e["tid"]) == (pid, tid)), key=lambda e: -e["dur"]):
            x = label_width + (e["ts"] - start) * scale
            w = max(e["dur"] * scale, 0.5)
            colour = COLOURS.get(e["name"], "#999999")
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_height - 6}" fill="{colour}">'
                       f'<title>{html.escape(e["name"])} (step {e["args"]["step"]}): {e["dur"] / 1000:.3f} ms</title></rect>')
            if w > 6 * len(e["name"]) and e["name"] != "step":
                out.append(f'<text x="{x + 3:.1f}" y="{y + 17}" fill="#222222">{html.escape(e["name"])}</text>')
    axis = top + row_height * len(rows) + 15
    ticks = 8
    for k in range(ticks + 1):
        x = label_width + k * (args.width - label_width - 20) / ticks
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis}" stroke="#cccccc" stroke-dasharray="2,3"/>')
        out.append(f'<text x="{x:.1f}" y="{axis + 14}" text-anchor="middle">{k * (end - start) / ticks / 1000:.1f} ms</text>')
    legend_x = label_width
    for name in ["compute", "send", "receive", "wait", "update", "hand-off", "offer"]:
        out.append(f'<rect x="{legend_x}" y="{axis + 24}" width="10" height="10" fill="{COLOURS[name]}"/>'
                   f'<text x="{legend_x + 14}" y="{axis + 33}">{name}</text>')
        legend_x += 90
    out.append("</svg>")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
