"""A tiny run killed after its first checkpoint resumes from it and continues exactly where the uninterrupted
run of the same seed would have been (same model, optimizer, step count, crops and sample order)."""

import json
import os
import subprocess
import sys
import time

import torch
from conftest import FOLDER, SEED, TARGET, read_mllog

import train


def test_killed_run_resumes_to_the_target(tiny_run, tmp_path):
    out = str(tmp_path / "out")
    args = ["--data-dir", tiny_run["data_dir"], "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
            "--device", "cpu"]
    # An unreachable target keeps the first process training until it is killed.
    # One thread, as the in-process run: the comparison below is exact.
    proc = subprocess.Popen([sys.executable, os.path.join(FOLDER, "train.py"), *args, "--target", "0.99"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint = os.path.join(out, "checkpoint.pt")
    deadline = time.time() + 300
    while not os.path.exists(checkpoint):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.005)
    proc.kill()
    assert proc.wait() == -9  # killed, not finished
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 25 * saved["epoch"]
    # The kill came before the run had reached the target (at the first checkpoint, epoch 1, while the target
    # takes the uninterrupted run several evaluations), so the resumed run has epochs left to train and
    # everything below is checked, every time.
    assert saved["epoch"] < tiny_run["summary"]["epochs"], (saved["epoch"], tiny_run["summary"]["epochs"])
    assert all(e["value"] < TARGET for e in saved["evals"])
    uninterrupted = tiny_run["summary"]["evals"]
    # The killed run had trained exactly as the uninterrupted one, up to its checkpoint.
    assert [e["value"] for e in saved["evals"]] == \
        [e["value"] for e in uninterrupted if e["epoch"] <= saved["epoch"]]

    rc = train.main([*args, "--resume"])
    assert rc == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["success"] and summary["resumed"] and summary["epochs"] == tiny_run["summary"]["epochs"]
    # Same model, optimizer state and data streams: the same evaluations as without the interruption.
    assert [e["value"] for e in summary["evals"]] == [e["value"] for e in uninterrupted]
    log = read_mllog(os.path.join(out, "mlperf.log"))
    resumed = [e for e in log if e["key"] == "resumed"]
    assert resumed and resumed[0]["metadata"]["from_epoch"] == saved["epoch"]
    assert log[-1]["key"] == "run_stop" and log[-1]["metadata"]["status"] == "success"
    assert not any(e["key"] == "epoch_start" and e["metadata"]["epoch_num"] <= saved["epoch"] for e in log)
    killed = read_mllog(os.path.join(out, "mlperf.log.1"))  # the killed run's log, moved aside
    assert "run_start" in {e["key"] for e in killed} and "run_stop" not in {e["key"] for e in killed}
