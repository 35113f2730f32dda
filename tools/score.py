#!/usr/bin/env python3
"""`make score`: the MLPerf result of one benchmark, from a set of runs of its run_and_time.sh.

MLPerf never scores one run. The v0.5 training rules ("Benchmark Results", training_rules.adoc of
mlcommons/training_policies as of December 2018) take a set of runs per benchmark -- image
classification and object detection 5, translation 10, recommendation "run 100, use first 50 that
converge", reinforcement learning 20 -- and compute the result "by dropping the fastest and slowest
runs, then taking the mean of the remaining times", normalised as speedup = reference time / result.
Sentiment analysis and speech recognition left the suite before the v0.5 round, so they have no count:
this tool uses 5 and 10 (the counts of the benchmarks nearest in cost).

Each run gets its own seed (given with --seeds, or drawn and recorded) and its own OUTPUT_DIR under one
score folder; a failed run is recorded and the next one starts. A run's time is the MLPerf time,
run_start to run_stop in its mlperf.log.

Which runs must converge:
  reference  the v0.5 rule: every run of the set (recommendation: half of them, and the first half of
             the runs that converged, in run order, are the ones scored);
  tiny       the suite's rule for tiny presets: at least 95 % of the runs (19 of 20), because
             run_and_time.sh draws a random seed and a user's first run must not fail.
Exits 0 when the rule holds, 1 when too few runs converged, 2 on bad arguments.

    python tools/score.py --bench recommendation --config tiny --runs 5 [--seeds "1 2 3"] [-- --target 0.9]
"""

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from demo import select_benchmarks
from table import format_table, num

ROOT = Path(__file__).resolve().parents[1]

# Runs per result (v0.5 rules; sentiment and speech: ours, see above), and the 2018 reference time on
# one P100 in seconds (reference_results.md of mlcommons/training at aa596ff4; the folders' READMEs and
# ../shared/specs give the details of each).
RULES = {
    "image_classification": {"runs": 5, "reference_seconds": 529_877},
    "object_detection": {"runs": 5, "reference_seconds": 299_971},
    "recommendation": {"runs": 100, "reference_seconds": 2_803, "first_half_converged": True},
    "reinforcement": {"runs": 20, "reference_seconds": 263_322},
    "sentiment_analysis": {"runs": 5, "reference_seconds": 214},
    "speech_recognition": {"runs": 10, "reference_seconds": 412_417},
    "transformer": {"runs": 10, "reference_seconds": 112_187},
}
TINY_PASS_RATE = 0.95  # 19 of 20


def olympic_mean(times: list[float]) -> float | None:
    """Drop the fastest and the slowest, average the rest (fewer than 3 runs: the plain mean)."""
    if not times:
        return None
    if len(times) < 3:
        return sum(times) / len(times)
    kept = sorted(times)[1:-1]
    return sum(kept) / len(kept)


def benchmark_result(runs: list[dict], bench: str, config: str) -> dict:
    """The v0.5 result of a set of runs (each {"converged": bool, "seconds": float|None}, in run order).

    Returns required (how many runs must converge), converged, scored (indices of the runs whose times
    are averaged), seconds (the olympic mean of those) and valid (enough runs converged).
    """
    rule = RULES.get(bench, {})
    n = len(runs)
    converged = [i for i, r in enumerate(runs) if r["converged"] and r.get("seconds") is not None]
    if rule.get("first_half_converged"):
        needed = math.ceil(n / 2)  # "run 100, use first 50 that converge"
        scored = converged[:needed]
    else:
        needed = n
        scored = converged
    if config == "tiny":
        needed = max(math.ceil(TINY_PASS_RATE * n - 1e-9), 1)
        scored = converged[:math.ceil(n / 2)] if rule.get("first_half_converged") else converged
    seconds = olympic_mean([runs[i]["seconds"] for i in scored])
    valid = len(converged) >= needed and seconds is not None
    out = {"runs": n, "required": needed, "converged": len(converged), "scored": scored,
           "pass_rate": len(converged) / n if n else 0.0, "seconds": seconds, "valid": valid,
           "rule": ("tiny: at least 95 % of the runs converge" if config == "tiny" else
                    "v0.5: first half of the runs that converge" if rule.get("first_half_converged")
                    else "v0.5: every run converges"),
           "speedup": None, "reference_seconds": rule.get("reference_seconds")}
    if config != "tiny" and valid and out["reference_seconds"]:
        out["speedup"] = speedup(out["reference_seconds"], seconds)
    return out


def speedup(reference_seconds: float, result_seconds: float) -> float:
    """v0.5 normalisation: reference time / benchmark result (higher is better)."""
    return reference_seconds / result_seconds


def read_mlperf_log(path: Path) -> dict:
    """run_start/run_stop times (ms) and run_stop's status from an mllog file; {} if there is none."""
    found = {}
    if not path.exists():
        return found
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith(":::MLLOG "):
            continue
        try:
            rec = json.loads(line[len(":::MLLOG "):])
        except json.JSONDecodeError:
            continue
        if rec.get("key") == "run_start":
            found["start_ms"] = rec["time_ms"]
        elif rec.get("key") == "run_stop":
            found["stop_ms"] = rec["time_ms"]
            found["status"] = (rec.get("metadata") or {}).get("status")
    if "start_ms" in found and "stop_ms" in found:
        found["seconds"] = (found["stop_ms"] - found["start_ms"]) / 1000
    return found


def parse_result_line(text: str) -> dict:
    """The RESULT,<benchmark>,<seed>,<seconds>,<user>,<start> line that run_and_time.sh prints."""
    for line in reversed(text.splitlines()):
        parts = line.strip().split(",")
        if len(parts) == 6 and parts[0] == "RESULT":
            try:
                return {"seed": int(parts[2]), "wall_seconds": float(parts[3]), "start": parts[5]}
            except ValueError:
                return {}
    return {}


def run_once(bench: str, seed: int, data_dir: Path, output_dir: Path, config: str, extra: list[str],
             verbose: bool) -> dict:
    """One run_and_time.sh run; returns its row (the log and summary are read back, never trusted blind)."""
    if output_dir.exists():
        shutil.rmtree(output_dir)  # a score run is a fresh run: nothing is resumed
    output_dir.mkdir(parents=True)
    env = dict(os.environ, DATA_DIR=str(data_dir), OUTPUT_DIR=str(output_dir), CONFIG=config,
               SEED=str(seed), PYTHON=sys.executable, PYTHONUNBUFFERED="1")
    t0 = time.time()
    with open(output_dir / "run.log", "w") as log:
        proc = subprocess.Popen(["bash", "run_and_time.sh", *extra], cwd=ROOT / bench, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        text = []
        for line in proc.stdout:
            log.write(line)
            text.append(line)
            if verbose:
                sys.stdout.write(line)
        rc = proc.wait()
    row = {"seed": seed, "rc": rc, "output_dir": str(output_dir), "run_seconds": round(time.time() - t0, 2),
           **parse_result_line("".join(text))}
    summary_path = output_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    log = read_mlperf_log(output_dir / "mlperf.log")
    row.update(reached=summary.get("reached"), epochs=summary.get("epochs"), metric=summary.get("metric"),
               target=summary.get("target"), higher_is_better=summary.get("higher_is_better", True),
               evals=summary.get("evals", []), seconds=log.get("seconds"), status=log.get("status"))
    # Converged: the script says so (exit 0), the summary says so, and the log's run_stop says so.
    row["converged"] = rc == 0 and summary.get("success") is True and log.get("status") == "success"
    if rc == 0 and not row["converged"]:
        row["error"] = "exit 0 but summary.json/mlperf.log do not say success"
    elif rc != 0:
        row["error"] = f"exit {rc}" + ("" if summary else ", no summary.json")
    return row


def score_table(rows: list[dict]) -> str:
    body = [[str(i + 1), str(r["seed"]), num(r.get("reached"), ".4f"), num(r.get("epochs"), "d"),
             num(r.get("seconds"), ".1f"), num(r.get("wall_seconds"), ".1f"),
             "pass" if r["converged"] else f"FAIL ({r.get('error', '')})"] for i, r in enumerate(rows)]
    return format_table(["run", "seed", "reached", "epochs", "mlperf s", "wall s", "result"], body)


def result_text(bench: str, config: str, res: dict) -> str:
    lines = [f"{bench} ({config}): {res['converged']} of {res['runs']} runs converged "
             f"(pass rate {res['pass_rate']:.0%}; the rule needs {res['required']}: {res['rule']})"]
    if res["seconds"] is not None:
        n = len(res["scored"])
        kept = (f"mean of {n - 2}: the {n} scored runs less the fastest and the slowest" if n >= 3 else
                f"mean of the {n} scored runs, too few to drop any")
        lines.append(f"result: {res['seconds']:.2f} s ({kept})")
    if res["speedup"] is not None:
        lines.append(f"speedup: {res['speedup']:.2f} x the 2018 reference "
                     f"({res['reference_seconds']:,} s on one P100)")
    elif config == "tiny":
        lines.append("speedup: none for the tiny preset (the 2018 reference time is for the real dataset)")
    lines.append("VALID" if res["valid"] else "NOT VALID: too few runs converged")
    return "\n".join(lines)


def plot(rows: list[dict], bench: str, res: dict, path: Path) -> None:
    """One panel: every run's eval metric against seconds since run start, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    target = next((r["target"] for r in rows if r.get("target") is not None), None)
    for r in rows:
        evals = r.get("evals") or []
        label = f"seed {r['seed']}" + ("" if r["converged"] else " (fail)")
        ax.plot([e["seconds"] for e in evals], [e["value"] for e in evals], "o-" if r["converged"] else "x--",
                markersize=3, linewidth=1, alpha=0.8, label=label)
    if target is not None:
        ax.axhline(target, color="black", linestyle=":", label=f"target {target:g}")
    ax.set_title(f"{bench}: {res['converged']}/{res['runs']} converged")
    ax.set_xlabel("seconds since run start")
    ax.set_ylabel(next((r["metric"] for r in rows if r.get("metric")), "metric"))
    ax.grid(alpha=0.3)
    if len(rows) <= 20:
        ax.legend(fontsize="x-small", ncol=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="MLPerf v0.5 result of one benchmark over several seeded runs.",
                                epilog="Arguments after -- go to run_and_time.sh (and so to train.py).")
    p.add_argument("--bench", required=True, help="benchmark folder")
    p.add_argument("--runs", type=int, default=None, help="number of runs (default: the v0.5 count)")
    p.add_argument("--config", choices=["reference", "tiny"], default="reference")
    p.add_argument("--seeds", default="", help="space-separated seeds (default: drawn and recorded)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset (default: tiny data written once into the score folder for --config tiny, "
                        "else the folder's DATA_DIR or ./data)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the tiny dataset (default 0, as a user's)")
    p.add_argument("--score-dir", type=Path, default=None,
                   help="where runs, score.json and score.png go (default .score/<bench>-<config>-<time>)")
    p.add_argument("--verbose", action="store_true", help="echo every run's output")
    args, extra = p.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]

    if select_benchmarks([args.bench]) is None:
        return 2
    seeds = [int(s) for s in args.seeds.split()]
    runs = args.runs or (len(seeds) if seeds else RULES.get(args.bench, {}).get("runs", 5))
    if seeds and len(seeds) != runs:
        print(f"--seeds gives {len(seeds)} seeds for {runs} runs", file=sys.stderr)
        return 2
    if runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2
    drawn = random.SystemRandom()
    while len(seeds) < runs:  # distinct seeds, as run_and_time.sh would draw them (15+15 bits)
        s = drawn.randrange(1 << 30)
        if s not in seeds:
            seeds.append(s)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # Resolved: the runs execute in the benchmark folder, where a relative path would name another place.
    score_dir = (args.score_dir or ROOT / ".score" / f"{args.bench}-{args.config}-{stamp}").resolve()
    score_dir.mkdir(parents=True, exist_ok=True)

    data_dir = args.data_dir
    if data_dir is None and args.config == "tiny":
        data_dir = score_dir / "data"
        if not (data_dir / "tiny.md5").exists():
            print(f"=== {args.bench}: tiny data (seed {args.data_seed}) into {data_dir}", flush=True)
            proc = subprocess.run([sys.executable, "make_tiny_dataset.py", str(data_dir), "--seed",
                                   str(args.data_seed)], cwd=ROOT / args.bench, capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                print(f"make_tiny_dataset.py exited {proc.returncode}", file=sys.stderr)
                return 1
    if data_dir is None:
        data_dir = Path(os.environ.get("DATA_DIR", ROOT / args.bench / "data"))
    data_dir = data_dir.resolve()

    print(f"=== {args.bench}: {runs} runs, CONFIG={args.config}, seeds {' '.join(map(str, seeds))}",
          flush=True)
    rows = []
    for i, seed in enumerate(seeds):
        row = run_once(args.bench, seed, data_dir, (score_dir / f"run{i + 1:03d}-seed{seed}").resolve(),
                       args.config, extra, args.verbose)
        rows.append(row)
        why = "" if row["converged"] else f" ({row.get('error')}, see {row['output_dir']}/run.log)"
        print(f"run {i + 1}/{runs} seed {seed}: {'pass' if row['converged'] else 'FAIL'} "
              f"reached {num(row.get('reached'), '.4f')} after {num(row.get('epochs'), 'd')} epochs, "
              f"{num(row.get('seconds'), '.1f')} s MLPerf time{why}", flush=True)

    res = benchmark_result(rows, args.bench, args.config)
    print("\n" + score_table(rows) + "\n\n" + result_text(args.bench, args.config, res))
    report = {"benchmark": args.bench, "config": args.config, "seeds": seeds, "data_dir": str(data_dir),
              "extra_args": extra, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "result": res,
              "runs": rows}
    (score_dir / "score.json").write_text(json.dumps(report, indent=1))
    plot(rows, args.bench, res, score_dir / "score.png")
    print(f"\n{score_dir / 'score.json'}\n{score_dir / 'score.png'}")
    return 0 if res["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
