"""A tiny run killed after its first checkpoint resumes from it and reaches the target, continuing exactly
where the uninterrupted run of the same seed would have been."""

import json
import os
import subprocess
import sys
import threading
import time

import torch
from conftest import FOLDER, SEED, read_mllog

import train


def test_killed_run_resumes_to_the_target(tiny_run, tmp_path):
    out = str(tmp_path / "out")
    args = ["--data-dir", tiny_run["data_dir"], "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
            "--device", "cpu"]
    # An unreachable target keeps the first process training until it is killed.
    proc = subprocess.Popen([sys.executable, os.path.join(FOLDER, "train.py"), *args, "--target", "0.99"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = os.path.join(out, "checkpoint.pt")
    deadline = time.time() + 180
    while not os.path.exists(checkpoint):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint after 180 s"
        time.sleep(0.005)
    proc.kill()
    assert proc.wait() == -9  # killed, not finished
    saved = torch.load(checkpoint, weights_only=True)
    uninterrupted = [e["value"] for e in tiny_run["summary"]["evals"]]
    # The killed run had trained exactly as the uninterrupted one, up to its checkpoint.
    assert [e["value"] for e in saved["evals"]] == uninterrupted[:saved["epoch"] + 1]

    rc = train.main([*args, "--resume"])
    assert rc == 0
    if saved["evals"][-1]["value"] >= 0.45:  # the kill came late (busy machine): nothing was left to do
        return
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["success"] and summary["resumed"] and summary["epochs"] == tiny_run["summary"]["epochs"]
    # Same model, optimizer state and data streams: the same evaluations as without the interruption.
    assert [e["value"] for e in summary["evals"]] == uninterrupted
    log = read_mllog(os.path.join(out, "mlperf.log"))
    resumed = [e for e in log if e["key"] == "resumed"]
    assert resumed and resumed[0]["metadata"]["from_epoch"] == saved["epoch"]
    assert log[-1]["key"] == "run_stop" and log[-1]["metadata"]["status"] == "success"
    assert "eval_accuracy" in {e["key"] for e in log} and not any(
        e["key"] == "eval_start" and e["metadata"]["epoch_num"] <= saved["epoch"] for e in log)
    killed = read_mllog(os.path.join(out, "mlperf.log.1"))  # the killed run's log, moved aside
    assert "run_start" in {e["key"] for e in killed} and "run_stop" not in {e["key"] for e in killed}


def test_checkpoint_writes_in_the_background_and_skips_while_busy(tmp_path, monkeypatch):
    """save() hands the write to a thread and returns; while that write runs, the next epoch's save is
    skipped rather than waited for; close() (after RUN_STOP) waits and writes the skipped last epoch."""
    release, writes = threading.Event(), []
    real_save = train.save_checkpoint

    def slow_save(path, state):
        release.wait(timeout=60)
        writes.append((state["epoch"], state["model"]["w"].tolist()))
        real_save(path, state)

    monkeypatch.setattr(train, "save_checkpoint", slow_save)
    path = str(tmp_path / "checkpoint.pt")
    writer = train.CheckpointWriter(path)
    weights = torch.zeros(3)
    assert writer.save({"model": {"w": weights}, "epoch": 1}, 1)  # returned while the write waits
    weights += 1  # training goes on: the checkpoint keeps the copy taken at save()
    assert writer.busy() and not os.path.exists(path)
    assert not writer.save({"model": {"w": weights}, "epoch": 2}, 2)  # skipped, not waited for
    release.set()
    writer.close({"model": {"w": weights}, "epoch": 2}, 2)
    # Epoch 1 wrote the weights as they were at its save(), not as training left them.
    assert writes == [(1, [0.0, 0.0, 0.0]), (2, [1.0, 1.0, 1.0])] and not writer.busy()
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 2 and torch.equal(saved["model"]["w"], torch.ones(3))
