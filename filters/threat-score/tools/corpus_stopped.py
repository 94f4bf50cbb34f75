#!/usr/bin/env python3
"""Acceptance figures of issue 11 from a `cargo xtask corpus --report OUT.json` run.

A row Envoy rejects itself (400 for a malformed request line, 426 for HTTP/1.0...) never
reaches an upstream: it counts as stopped, like a row the filter blocked. Prints, per
category, `expect: attack` rows with paranoia <= N that were stopped, and `no-match` rows
the filter blocked.

usage: corpus_stopped.py REPORT.json PARANOIA CORPUS.jsonl...
"""
import collections
import json
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    results = json.load(open(sys.argv[1]))["results"]
    paranoia = int(sys.argv[2])
    rows = {}
    for path in sys.argv[3:]:
        for line in open(path):
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    # category -> [attack, attack stopped, no-match, no-match blocked, benign, benign passed]
    tally = collections.defaultdict(lambda: [0] * 6)
    for r in results:
        row = rows[r["id"]]
        stopped = r["blocked"] or r["rejected_by_envoy"]
        for key in (row["category"], "**total**"):
            t = tally[key]
            if row["expect"] == "attack" and row.get("paranoia", 1) <= paranoia:
                t[0] += 1
                t[1] += stopped
            elif row["expect"] == "no-match":
                t[2] += 1
                t[3] += r["blocked"]
            elif row["expect"] == "benign":
                t[4] += 1
                t[5] += not r["blocked"]
    pct = lambda a, b: f"{a}/{b} ({100 * a / b:.1f}%)" if b else "-"
    print(f"| category | attack rows (PL <= {paranoia}) stopped | no-match blocked | benign passed |")
    print("| --- | ---: | ---: | ---: |")
    for key in sorted(k for k in tally if k != "**total**") + ["**total**"]:
        t = tally[key]
        print(f"| {key} | {pct(t[1], t[0])} | {t[3]}/{t[2]} | {pct(t[5], t[4])} |")


if __name__ == "__main__":
    main()
