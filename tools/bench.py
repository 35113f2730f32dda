#!/usr/bin/env python3
"""`make bench`: run every benchmark folder's bench.py with this interpreter and print one table.

Each bench.py prints one JSON line per measured configuration (at least benchmark, device,
batch_size, samples_per_s, tflops); lines that are not JSON objects are passed through as progress.
Extra arguments after the options go to every bench.py (e.g. --steps 5). Exits non-zero if any
bench.py failed. The JSON lines are also written to .demo/bench.jsonl for the READMEs.

    python tools/bench.py [--bench recommendation] [--steps 5 --device cuda ...]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from table import format_table, num

ROOT = Path(__file__).resolve().parents[1]


def parse_results(stdout: str) -> list[dict]:
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                rows.append(obj)
    return rows


def bench_table(rows: list[dict]) -> str:
    core = ("benchmark", "device", "batch_size", "samples_per_s", "tflops")
    return format_table(
        ["benchmark", "device", "batch", "samples/s", "TFLOP/s", "notes"],
        [[str(r.get("benchmark", "?")), str(r.get("device", "?")), str(r.get("batch_size", "?")),
          num(r.get("samples_per_s"), ".1f"), num(r.get("tflops"), ".3f"),
          " ".join(f"{k}={v}" for k, v in r.items() if k not in core)] for r in rows])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run every folder's bench.py and print one table.")
    p.add_argument("--bench", action="append", help="only this folder (repeatable)")
    # Anything else (--steps 5 --device cuda ...) goes to each bench.py unchanged.
    args, rest = p.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]

    folders = sorted(p.parent.name for p in ROOT.glob("*/bench.py"))
    names = args.bench or folders
    rows, failed = [], []
    for name in names:
        print(f"=== {name}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, "bench.py", *rest], cwd=ROOT / name,
                              stdout=subprocess.PIPE, text=True)
        sys.stderr.write(proc.stdout)
        found = parse_results(proc.stdout)
        if proc.returncode != 0 or not found:
            failed.append(name)
        rows.extend(found)
    print(bench_table(rows))
    out = ROOT / ".demo" / "bench.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if failed:
        print(f"bench.py failed in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
