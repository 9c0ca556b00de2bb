#!/usr/bin/env python3
"""Summarise the RESULT lines of a peers run: medians per (partitions, phase, client) and the
kafkawire/rdkafka ratios.

Usage: summarize.py results/last-run.txt   (or RESULT lines on standard input)

Lines that do not start with "RESULT " are ignored. Each RESULT line is space-separated
key=value pairs (see src/meter.rs).
"""

import statistics
import sys

METRICS = [
    # (field, column title, format)
    ("records_per_s", "records/s", "{:>11,.0f}"),
    ("cpu_us_per_record", "cpu us/rec", "{:>10.3f}"),
    ("cpu_util", "cpu util", "{:>8.2f}"),
    ("peak_rss_mb", "peak RSS MB", "{:>11.1f}"),
]


def parse(lines):
    """The RESULT lines as dicts of strings."""
    rows = []
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        rows.append(fields)
    return rows


def medians(rows):
    """{(partitions, phase, client): (runs, {metric: median})}"""
    groups = {}
    for r in rows:
        key = (int(r["partitions"]), r["phase"], r["client"])
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        out[key] = (
            len(rs),
            {m: statistics.median(float(r[m]) for r in rs) for m, _, _ in METRICS},
        )
    return out


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            rows = parse(f)
    else:
        rows = parse(sys.stdin)
    if not rows:
        print("no RESULT lines", file=sys.stderr)
        return 1
    med = medians(rows)
    first = rows[0]
    print()
    print(
        f"medians over rounds ({first.get('records')} records of "
        f"{first.get('value_size')}-byte values per phase)"
    )
    header = f"{'partitions':>10}  {'phase':<8} {'client':<10} {'runs':>4}  " + "  ".join(
        f"{title:>11}" for _, title, _ in METRICS
    )
    print(header)
    print("-" * len(header))
    for key in sorted(med, key=lambda k: (k[0], k[1] != "produce", k[2])):
        runs, values = med[key]
        cells = "  ".join(
            f"{fmt.format(values[m]):>11}" for m, _, fmt in METRICS
        )
        print(f"{key[0]:>10}  {key[1]:<8} {key[2]:<10} {runs:>4}  {cells}")

    pairs = sorted(
        {(p, ph) for (p, ph, c) in med if (p, ph, "kafkawire") in med and (p, ph, "rdkafka") in med},
        key=lambda k: (k[0], k[1] != "produce"),
    )
    if pairs:
        print()
        print("kafkawire / rdkafka (records/s above 1: kafkawire faster; cpu us/rec and RSS")
        print("below 1: kafkawire cheaper)")
        header = f"{'partitions':>10}  {'phase':<8}  " + "  ".join(
            f"{title:>11}" for _, title, _ in METRICS
        )
        print(header)
        print("-" * len(header))
        for p, ph in pairs:
            kw = med[(p, ph, "kafkawire")][1]
            rd = med[(p, ph, "rdkafka")][1]
            cells = "  ".join(
                f"{(kw[m] / rd[m] if rd[m] else float('nan')):>11.2f}" for m, _, _ in METRICS
            )
            print(f"{p:>10}  {ph:<8}  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
