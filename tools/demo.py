#!/usr/bin/env python3
"""`make demo`: every benchmark end to end on its tiny synthetic dataset, then one table and one plot.

For each benchmark folder (a top-level folder with a run_and_time.sh), or the one named by --bench:
  1. make_tiny_dataset.py writes synthetic data in the real on-disk format to .demo/<folder>/data,
  2. run_and_time.sh trains with CONFIG=tiny, OUTPUT_DIR=.demo/<folder>/output,
  3. the run's summary.json is read back.
Prints a table (benchmark, metric, tiny target, reached, seconds, seed, pass/fail), writes
.demo/quality_vs_time.png (eval metric against seconds since run start, target as a line) and exits
non-zero if any benchmark failed. The console shows each run's own output as it goes; a copy is kept
in .demo/<folder>/run.log.

    python tools/demo.py [--bench recommendation] [--seed 0]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from table import format_table, num

ROOT = Path(__file__).resolve().parents[1]


def benchmark_folders(root: Path = ROOT) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/run_and_time.sh"))


def select_benchmarks(names: list[str] | None, root: Path = ROOT) -> list[str] | None:
    """The named benchmark folders (every one when none is named), or None after saying which are unknown."""
    folders = benchmark_folders(root)
    unknown = [b for b in names or [] if b not in folders]
    if unknown:
        print(f"unknown benchmark folder(s): {', '.join(unknown)}; known: {', '.join(folders)}",
              file=sys.stderr)
        return None
    return names or folders


def run_logged(cmd: list[str], cwd: Path, env: dict, log) -> int:
    """Run cmd, echoing its output to our stdout and to the open log file."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    for line in proc.stdout:
        sys.stdout.write(line)
        log.write(line)
    return proc.wait()


def run_one(name: str, demo_dir: Path, seed: int) -> dict:
    """Tiny data, then a tiny run; returns a row for the table (with the summary when there is one)."""
    folder = ROOT / name
    work = demo_dir / name
    data_dir, output_dir = work / "data", work / "output"
    # A demo is a fresh run on fresh data: nothing from an earlier demo is reused or resumed.
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    env = dict(os.environ, DATA_DIR=str(data_dir), OUTPUT_DIR=str(output_dir), CONFIG="tiny",
               SEED=str(seed), PYTHON=sys.executable, PYTHONUNBUFFERED="1")
    row = {"benchmark": name, "ok": False, "summary": None, "error": "", "seed": seed}
    with open(work / "run.log", "w") as log:
        print(f"\n=== {name}: writing tiny data to {data_dir}", flush=True)
        t0 = time.time()
        rc = run_logged([sys.executable, "make_tiny_dataset.py", str(data_dir), "--seed", str(seed)],
                        folder, env, log)
        row["data_seconds"] = time.time() - t0
        if rc != 0:
            row["error"] = f"make_tiny_dataset.py exited {rc}"
            return row
        print(f"=== {name}: run_and_time.sh with CONFIG=tiny", flush=True)
        t0 = time.time()
        rc = run_logged(["bash", "run_and_time.sh"], folder, env, log)
        row["run_seconds"] = time.time() - t0
    summary_path = output_dir / "summary.json"
    if summary_path.exists():
        row["summary"] = json.loads(summary_path.read_text())
    if rc != 0:
        row["error"] = f"run_and_time.sh exited {rc}"
    elif row["summary"] is None:
        row["error"] = f"no {summary_path}"
    else:
        row["ok"] = bool(row["summary"].get("success"))
        if not row["ok"]:
            row["error"] = "summary.json says success=false"
    return row


def demo_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        s = r["summary"] or {}
        target = "-"
        if "target" in s:
            target = ("≥ " if s.get("higher_is_better", True) else "≤ ") + num(s["target"], ".4g")
        body.append([r["benchmark"], s.get("metric", "-"), target, num(s.get("reached"), ".4f"),
                     num(s.get("epochs"), "d"), num(r.get("data_seconds"), ".1f"),
                     num(r.get("run_seconds"), ".1f"), num(s.get("seconds"), ".1f"), num(r.get("seed"), "d"),
                     "pass" if r["ok"] else f"FAIL ({r['error']})"])
    return format_table(["benchmark", "metric", "tiny target", "reached", "epochs", "data s", "run s",
                         "mlperf s", "seed", "result"], body)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    n = len(rows)
    cols = min(n, 4)  # a grid, so seven benchmarks stay readable
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        s = r["summary"] or {}
        evals = s.get("evals", [])
        ax.plot([e["seconds"] for e in evals], [e["value"] for e in evals], "o-",
                color="tab:green" if r["ok"] else "tab:red", label="eval")
        if "target" in s:
            ax.axhline(s["target"], color="gray", linestyle="--", label=f"target {s['target']:g}")
        ax.set_title(f"{r['benchmark']} ({'pass' if r['ok'] else 'FAIL'})")
        ax.set_xlabel("seconds since run start")
        ax.set_ylabel(s.get("metric", "metric"))
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Tiny end-to-end run of every benchmark.")
    p.add_argument("--bench", action="append", help="run only this folder (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed for the tiny data and the runs")
    p.add_argument("--demo-dir", type=Path, default=ROOT / ".demo")
    args = p.parse_args(argv)

    names = select_benchmarks(args.bench)
    if names is None:
        return 2
    rows = [run_one(name, args.demo_dir, args.seed) for name in names]
    print("\n" + demo_table(rows))
    # One seed is one draw: `make score CONFIG=tiny RUNS=20` is how a tiny preset is judged.
    print(f"\nseed {args.seed} for every benchmark's tiny data and run (--seed); the pass rate over 20 "
          "seeds: make score BENCH=<folder> CONFIG=tiny RUNS=20")
    png = args.demo_dir / "quality_vs_time.png"
    plot(rows, png)
    print(f"\nplot: {png}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
