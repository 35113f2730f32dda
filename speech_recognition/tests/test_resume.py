"""A tiny run killed after a checkpoint resumes from it and continues exactly as the uninterrupted run of the
same seed; --compile and eager runs resume from each other's checkpoints. Both on 48 training utterances."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import FOLDER, SEED, read_mllog

import train
from config import PRESETS
from model import precision_policy


def test_killed_run_resumes_where_it_stopped(small_data, tmp_path):
    """Same weights, optimizer state, annealed learning rate and augmentation draws: the resumed run ends with
    the uninterrupted run's model, bit for bit."""
    args = ["--data-dir", small_data, "--config", "tiny", "--seed", str(SEED), "--device", "cpu", "--target",
            "-1"]
    out = str(tmp_path / "killed")
    # An unreachable target keeps the first process training until it is killed.
    proc = subprocess.Popen([sys.executable, os.path.join(FOLDER, "train.py"), *args, "--output-dir", out],
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
    epochs = saved["epoch"] + 1

    straight = str(tmp_path / "straight")
    assert train.main([*args, "--output-dir", straight, "--max-epochs", str(epochs)]) == 1
    rc = train.main([*args, "--output-dir", out, "--resume", "--max-epochs", str(epochs)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and summary["resumed"] and summary["epochs"] == epochs
    expected = torch.load(os.path.join(straight, "checkpoint.pt"), weights_only=True)
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["epoch"] == expected["epoch"] == epochs
    for key, value in expected["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for a, b in zip(resumed["optimizer"]["state"].values(), expected["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert [e["value"] for e in resumed["evals"]] == [e["value"] for e in expected["evals"]]
    log = read_mllog(os.path.join(out, "mlperf.log"))
    assert [e["metadata"]["from_epoch"] for e in log if e["key"] == "resumed"] == [saved["epoch"]]
    assert [e["metadata"]["epoch_num"] for e in log if e["key"] == "epoch_start"] == [epochs]
    lr = [e["value"] for e in log if e["key"] == "opt_learning_rate"]
    assert lr == pytest.approx([3e-3 / 1.1 ** saved["epoch"]])
    killed = read_mllog(os.path.join(out, "mlperf.log.1"))  # the killed run's log, moved aside
    assert "run_start" in {e["key"] for e in killed} and "run_stop" not in {e["key"] for e in killed}


def test_compiled_and_eager_runs_resume_from_each_other(small_data, tmp_path):
    """torch.compile'd submodules used to save their weights as `conv._orig_mod.*`, which an eager run could
    not load. Now: a --compile run's checkpoint has the eager model's keys; an eager run resumes from it, and
    a --compile run from the eager run's checkpoint."""
    out = str(tmp_path / "out")
    args = ["--data-dir", small_data, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
            "--device", "cpu", "--target", "-1"]
    eager_keys = list(train.build_model(PRESETS["tiny"], precision_policy(None, False)).state_dict())
    for epochs, compile in ((1, True), (2, False), (3, True)):
        rc = train.main([*args, "--max-epochs", str(epochs), *(["--resume"] if epochs > 1 else []),
                         *(["--compile"] if compile else [])])
        summary = json.load(open(os.path.join(out, "summary.json")))
        assert rc == 1 and summary["epochs"] == epochs and summary["resumed"] == (epochs > 1)
        saved = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
        assert saved["epoch"] == epochs and list(saved["model"]) == eager_keys
    # A checkpoint written before the fix (compiled keys) still loads.
    old = {k.replace("conv.", "conv._orig_mod.", 1): v for k, v in saved["model"].items()}
    train.build_model(PRESETS["tiny"], precision_policy(None, False)).load_state_dict(
        train.checkpoint_state_dict(old))
