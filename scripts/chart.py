#!/usr/bin/env python3
"""Draws throughput and p99 latency against the number of clients from `wsauthn bench --json`
reports, as one SVG (standard library only).

    python3 scripts/chart.py docs/bench/login-*.json -o docs/bench/login.svg \
        --title "login: sign-ins over /ws"

Each input file is one run; runs of one mode at different --clients make one chart. The x axis
is logarithmic (clients usually double), throughput uses the left axis, p99 the right one.
"""

import argparse
import json
import math
import sys

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 80, 50, 60
THROUGHPUT_COLOR = "#1f77b4"
P99_COLOR = "#d62728"


def nice_ceiling(value):
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def fmt(value):
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def load(paths):
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        latency = report.get("latency_ms") or {}
        runs.append(
            {
                "clients": report["clients"],
                "ops_per_sec": report["ops_per_sec"],
                "p99": latency.get("p99", 0.0),
                "errors": report.get("error_count", 0),
                "mode": report.get("mode", "?"),
            }
        )
    runs.sort(key=lambda r: r["clients"])
    return runs


def chart(runs, title, target_p99=None):
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    clients = [r["clients"] for r in runs]
    lo, hi = math.log2(min(clients)), math.log2(max(clients))
    span = max(hi - lo, 1.0)
    y_ops = nice_ceiling(max(r["ops_per_sec"] for r in runs) * 1.1)
    y_p99 = nice_ceiling(max([r["p99"] for r in runs] + [target_p99 or 0]) * 1.1)

    def x(c):
        return LEFT + (math.log2(c) - lo) / span * plot_w

    def y(value, top):
        return TOP + plot_h - value / top * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
    ]
    # Grid and the two value axes: five steps each.
    for i in range(6):
        gy = TOP + plot_h - i * plot_h / 5
        out.append(
            f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + plot_w}" y2="{gy:.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{LEFT - 8}" y="{gy + 4:.1f}" text-anchor="end" '
            f'fill="{THROUGHPUT_COLOR}">{fmt(y_ops * i / 5)}</text>'
        )
        out.append(
            f'<text x="{LEFT + plot_w + 8}" y="{gy + 4:.1f}" '
            f'fill="{P99_COLOR}">{fmt(y_p99 * i / 5)}</text>'
        )
    for c in clients:
        out.append(
            f'<text x="{x(c):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{c}</text>'
        )
        out.append(
            f'<line x1="{x(c):.1f}" y1="{TOP}" x2="{x(c):.1f}" y2="{TOP + plot_h}" '
            'stroke="#f0f0f0"/>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>'
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">'
        "concurrent clients (log scale)</text>"
    )
    out.append(
        f'<text transform="translate(20 {TOP + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle" fill="{THROUGHPUT_COLOR}">operations / s</text>'
    )
    out.append(
        f'<text transform="translate({WIDTH - 18} {TOP + plot_h / 2}) rotate(90)" '
        f'text-anchor="middle" fill="{P99_COLOR}">p99 latency (ms)</text>'
    )
    if target_p99:
        ty = y(target_p99, y_p99)
        out.append(
            f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" '
            f'stroke="{P99_COLOR}" stroke-dasharray="6 4" opacity="0.6"/>'
        )
        out.append(
            f'<text x="{LEFT + 6}" y="{ty - 5:.1f}" fill="{P99_COLOR}" opacity="0.8">'
            f"p99 target {target_p99:g} ms</text>"
        )
    for key, top, color in (
        ("ops_per_sec", y_ops, THROUGHPUT_COLOR),
        ("p99", y_p99, P99_COLOR),
    ):
        points = " ".join(f"{x(r['clients']):.1f},{y(r[key], top):.1f}" for r in runs)
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        for r in runs:
            out.append(
                f'<circle cx="{x(r["clients"]):.1f}" cy="{y(r[key], top):.1f}" r="3.5" '
                f'fill="{color}"><title>{r["clients"]} clients: {r[key]:.1f}</title></circle>'
            )
    # Legend.
    lx, ly = LEFT + 12, TOP + 16
    for i, (label, color) in enumerate(
        (("throughput (ops/s, left)", THROUGHPUT_COLOR), ("p99 latency (ms, right)", P99_COLOR))
    ):
        out.append(
            f'<line x1="{lx}" y1="{ly + i * 18}" x2="{lx + 22}" y2="{ly + i * 18}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{lx + 28}" y="{ly + i * 18 + 4}">{label}</text>')
    errors = sum(r["errors"] for r in runs)
    if errors:
        out.append(
            f'<text x="{LEFT + plot_w - 6}" y="{TOP + 16}" text-anchor="end" fill="#a00">'
            f"{errors} errors over all runs</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="JSON files from wsauthn bench --json")
    parser.add_argument("-o", "--output", required=True, help="the SVG to write")
    parser.add_argument("--title", default=None)
    parser.add_argument("--target-p99", type=float, default=None, help="draw this p99 line (ms)")
    args = parser.parse_args(argv)
    runs = load(args.reports)
    title = args.title or f"wsauthn bench --mode {runs[0]['mode']}"
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(chart(runs, title, args.target_p99))
    print(f"wrote {args.output} from {len(runs)} runs")


if __name__ == "__main__":
    main(sys.argv[1:])
