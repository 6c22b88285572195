#!/usr/bin/env python3
"""Draws a soak run (scripts/soak.sh's CSV) as one SVG: RSS and open descriptors (left axis,
relative to the first window) and p99 latency (right axis) against time (standard library only).

    python3 scripts/soak_chart.py docs/bench/soak.csv -o docs/bench/soak.svg
"""

import argparse
import csv

WIDTH, HEIGHT = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 50, 50


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    rows = [r for r in csv.DictReader(open(args.csv)) if r["rss_kib"]]
    if not rows:
        raise SystemExit("no rows")
    t = [float(r["elapsed_s"]) / 60 for r in rows]
    rss = [float(r["rss_kib"]) / 1024 for r in rows]
    fds = [float(r["fds"]) for r in rows]
    p99 = [float(r["p99_ms"] or 0) for r in rows]
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tmax = max(t) or 1
    left_max = max(max(rss), max(fds)) * 1.2 or 1
    right_max = max(p99) * 1.5 or 1

    def x(v):
        return LEFT + w * v / tmax

    def yl(v):
        return TOP + h - h * v / left_max

    def yr(v):
        return TOP + h - h * v / right_max

    def line(xs, ys, color, label, dy):
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
        return (f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
                f'<text x="{LEFT + 10}" y="{TOP + 15 + dy}" fill="{color}" font-size="13">{label}</text>')

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="25" text-anchor="middle" font-size="15">Soak: sign-ins and connects, {len(rows)} windows of 30 s</text>',
             f'<line x1="{LEFT}" y1="{TOP + h}" x2="{LEFT + w}" y2="{TOP + h}" stroke="black"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + h}" stroke="black"/>',
             f'<line x1="{LEFT + w}" y1="{TOP}" x2="{LEFT + w}" y2="{TOP + h}" stroke="black"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle" font-size="12">minutes</text>']
    for i in range(5):
        v = left_max * i / 4
        parts.append(f'<text x="{LEFT - 6}" y="{yl(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.0f}</text>')
        r = right_max * i / 4
        parts.append(f'<text x="{LEFT + w + 6}" y="{yr(r) + 4:.1f}" font-size="11">{r:.1f}</text>')
        m = tmax * i / 4
        parts.append(f'<text x="{x(m):.1f}" y="{TOP + h + 16}" text-anchor="middle" font-size="11">{m:.1f}</text>')
    parts.append(line([x(v) for v in t], [yl(v) for v in rss], "#1f77b4", "RSS, MiB (left)", 0))
    parts.append(line([x(v) for v in t], [yl(v) for v in fds], "#2ca02c", "open descriptors (left)", 16))
    parts.append(line([x(v) for v in t], [yr(v) for v in p99], "#d62728", "p99 latency, ms (right)", 32))
    parts.append("</svg>")
    open(args.output, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
