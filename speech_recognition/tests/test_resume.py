"""A tiny run killed after its first checkpoint resumes from it and continues exactly where the uninterrupted
run of the same seed was (same weights, optimizer state, annealed learning rate and augmentation draws)."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import FOLDER, SEED, read_mllog

import train


def test_killed_run_resumes_where_it_stopped(tiny_run, tmp_path):
    out = str(tmp_path / "out")
    args = ["--data-dir", tiny_run["data_dir"], "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
            "--device", "cpu"]
    # An unreachable target keeps the first process training until it is killed.
    proc = subprocess.Popen([sys.executable, os.path.join(FOLDER, "train.py"), *args, "--target", "-1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = os.path.join(out, "checkpoint.pt")
    deadline = time.time() + 300
    while not os.path.exists(checkpoint):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    proc.kill()
    assert proc.wait() == -9  # killed, not finished
    saved = torch.load(checkpoint, weights_only=True)
    uninterrupted = [e["value"] for e in tiny_run["summary"]["evals"]]
    # The killed run had trained exactly as the uninterrupted one, up to its checkpoint.
    assert [e["value"] for e in saved["evals"]] == uninterrupted[:saved["epoch"]]
    epochs = saved["epoch"] + 1
    assert epochs <= len(uninterrupted)

    rc = train.main([*args, "--resume", "--max-epochs", str(epochs)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["resumed"] and summary["epochs"] == epochs
    assert rc == (0 if summary["success"] else 1)
    # Same model, optimizer state, learning rate and augmentation: the same evaluation as without the kill.
    assert [e["value"] for e in summary["evals"]] == uninterrupted[:epochs]
    log = read_mllog(os.path.join(out, "mlperf.log"))
    resumed = [e for e in log if e["key"] == "resumed"]
    assert resumed and resumed[0]["metadata"]["from_epoch"] == saved["epoch"]
    assert [e["metadata"]["epoch_num"] for e in log if e["key"] == "epoch_start"] == [epochs]
    lr = [e["value"] for e in log if e["key"] == "opt_learning_rate"]
    assert lr == pytest.approx([3e-3 / 1.1 ** saved["epoch"]])
    killed = read_mllog(os.path.join(out, "mlperf.log.1"))  # the killed run's log, moved aside
    assert "run_start" in {e["key"] for e in killed} and "run_stop" not in {e["key"] for e in killed}
