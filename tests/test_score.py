"""`make score`: the v0.5 scoring rule on recorded times, and real runs of the recommendation tiny preset."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import score  # noqa: E402


def _runs(times, converged=None):
    converged = converged or [True] * len(times)
    return [{"seconds": t, "converged": c} for t, c in zip(times, converged)]


def test_olympic_mean_drops_fastest_and_slowest():
    assert score.olympic_mean([10.0, 1.0, 4.0, 7.0, 100.0]) == pytest.approx(7.0)  # (4 + 7 + 10) / 3
    # Only one of several equal extremes is dropped.
    assert score.olympic_mean([5.0, 5.0, 5.0, 9.0]) == pytest.approx(5.0)
    assert score.olympic_mean([2.0, 4.0]) == pytest.approx(3.0)  # too few to drop: the plain mean
    assert score.olympic_mean([]) is None


def test_reference_rule_needs_every_run_and_normalises_by_the_2018_time():
    runs = _runs([100.0, 90.0, 110.0, 105.0, 95.0])
    res = score.benchmark_result(runs, "image_classification", "reference")
    assert res["valid"] and res["required"] == 5 and res["converged"] == 5
    assert res["seconds"] == pytest.approx(100.0)  # 95, 100, 105 kept
    assert res["speedup"] == pytest.approx(529_877 / 100.0)
    assert score.speedup(2_803, 28.03) == pytest.approx(100.0)
    # One run that missed the target makes the set invalid (v0.5 counts every run), and no speedup is given.
    res = score.benchmark_result(_runs([100.0, 90.0, None, 105.0, 95.0], [True, True, False, True, True]),
                                 "image_classification", "reference")
    assert not res["valid"] and res["converged"] == 4 and res["speedup"] is None
    assert res["seconds"] == pytest.approx(97.5)  # still reported: 95, 100 of the converged runs


def test_recommendation_scores_the_first_half_of_the_converged_runs():
    # 10 runs: the rule needs 5 converged and scores the first 5 that converged, in run order.
    times = [10.0, None, 20.0, None, 30.0, 40.0, None, 50.0, 1.0, 2.0]
    conv = [t is not None for t in times]
    res = score.benchmark_result(_runs(times, conv), "recommendation", "reference")
    assert res["required"] == 5 and res["converged"] == 7 and res["valid"]
    assert res["scored"] == [0, 2, 4, 5, 7]  # not the fast runs 9 and 10, which converged later
    assert res["seconds"] == pytest.approx(30.0)  # 10 and 50 dropped
    assert res["speedup"] == pytest.approx(2_803 / 30.0)
    res = score.benchmark_result(_runs(times[:6], conv[:6]), "recommendation", "reference")
    assert res["required"] == 3 and res["converged"] == 4 and res["valid"]
    runs = _runs([None] * 3 + [5.0], [False] * 3 + [True])
    res = score.benchmark_result(runs, "recommendation", "reference")
    assert not res["valid"]


def test_tiny_rule_is_19_of_20_and_gives_no_speedup():
    times = [float(i) for i in range(1, 21)]
    res = score.benchmark_result(_runs(times, [True] * 19 + [False]), "transformer", "tiny")
    assert res["required"] == 19 and res["valid"] and res["speedup"] is None
    assert res["pass_rate"] == pytest.approx(0.95)
    res = score.benchmark_result(_runs(times, [True] * 18 + [False] * 2), "transformer", "tiny")
    assert not res["valid"]
    res = score.benchmark_result(_runs([3.0] * 5, [True] * 4 + [False]), "transformer", "tiny")
    assert res["required"] == 5 and not res["valid"]


def test_mlperf_log_and_result_line_are_read(tmp_path):
    log = tmp_path / "mlperf.log"
    log.write_text('noise\n:::MLLOG {"time_ms": 1000, "key": "run_start", "metadata": {}}\n'
                   ':::MLLOG {"time_ms": 3500, "key": "run_stop", "metadata": {"status": "success"}}\n')
    assert score.read_mlperf_log(log) == {"start_ms": 1000, "stop_ms": 3500, "status": "success",
                                          "seconds": 2.5}
    assert score.read_mlperf_log(tmp_path / "none.log") == {}
    out = "x\nRESULT,recommendation,42,9.5,root,2026-12-03T08:18:39Z\n"
    assert score.parse_result_line(out) == {"seed": 42, "wall_seconds": 9.5, "start": "2026-12-03T08:18:39Z"}


def _score(tmp_path, *args, score_dir=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ROOT / "tools" / "score.py"), "--bench", "recommendation",
                           "--config", "tiny", "--score-dir", score_dir or str(tmp_path), *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)


def test_score_recommendation_tiny_five_runs(tmp_path):
    proc = _score(tmp_path, "--runs", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "score.json").read_text())
    rows = report["runs"]
    assert len(rows) == 5 and len({r["seed"] for r in rows}) == 5  # drawn, distinct, recorded
    for r in rows:
        assert r["converged"] and r["seconds"] > 0 and r["reached"] >= 0.45 and r["epochs"] >= 1
        assert f"{r['seed']}" in proc.stdout
    res = report["result"]
    assert res["valid"] and res["pass_rate"] == 1.0 and res["scored"] == [0, 1, 2]  # NCF: the first half
    assert res["seconds"] == pytest.approx(sorted(rows[i]["seconds"] for i in range(3))[1])
    assert "5 of 5 runs converged" in proc.stdout and "result:" in proc.stdout
    assert (tmp_path / "score.png").read_bytes()[:4] == b"\x89PNG"


def test_score_with_an_unreachable_target_fails_and_reports_every_run(tmp_path):
    # A relative --score-dir (from the caller's folder, while the runs execute in the benchmark's) too.
    proc = _score(tmp_path.parent, "--seeds", "3 4", "--", "--target", "0.99", "--max-epochs", "1",
                  score_dir=tmp_path.name)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "score.json").read_text())
    assert [r["seed"] for r in report["runs"]] == [3, 4]
    assert all(not r["converged"] and r["rc"] == 1 and r["reached"] < 0.99 for r in report["runs"])
    assert "NOT VALID" in proc.stdout and "0 of 2 runs converged" in proc.stdout
    assert (tmp_path / "run002-seed4" / "mlperf.log").exists()


def test_score_names_an_unknown_benchmark(capsys):
    assert score.main(["--bench", "nosuch"]) == 2
    assert "unknown benchmark folder(s): nosuch" in capsys.readouterr().err


def test_make_score_passes_its_variables():
    proc = subprocess.run(["make", "-n", "score", "BENCH=transformer", "RUNS=3", "CONFIG=tiny", "SEEDS=1 2 3",
                           "ARGS=--target 30"], cwd=ROOT, capture_output=True, text=True)
    line = next(x for x in proc.stdout.replace("\\\n", " ").splitlines() if "tools/score.py" in x)
    expected = '--bench transformer --config tiny --runs 3 --seeds "1 2 3" -- --target 30'
    assert expected in " ".join(line.split())
    proc = subprocess.run(["make", "score"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "usage: make score BENCH=" in proc.stdout
