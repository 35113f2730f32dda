"""End to end on the tiny data: the run reaches the target, its MLPerf log is complete and passes the 0.7.0
compliance checker but (at most) the real quality threshold, and the reference preset refuses tiny data. The
three "must fail" cases of spec section 8 stay below the target with the epoch budget of the correct run:
shuffled training labels, validation labels off by one, and a train/eval preprocessing mismatch."""

import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile

import pytest
from conftest import SEED, TARGET, read_mllog

import extract
import train
from config import PRESETS

TARGET_CHECK = "Failed checks for eval_accuracy : v['value'] >= 0.7590 and v['value'] < 1.0"
# Hyperparameter events with the values the tiny preset must log.
TINY_EVENTS = {
    "submission_benchmark": "resnet", "submission_division": "closed", "submission_status": "research",
    "submission_platform": "1xcpu", "seed": SEED, "global_batch_size": 32, "model_bn_span": 32,
    "opt_name": "sgd", "sgd_opt_base_learning_rate": 0.01, "sgd_opt_momentum": 0.9,
    "sgd_opt_weight_decay": 1e-4,
    "opt_learning_rate_warmup_epochs": 1, "sgd_opt_learning_rate_decay_steps": [250, 350],
    "sgd_opt_end_learning_rate": 1e-4, "sgd_opt_learning_rate_decay_poly_power": None,
    "opt_learning_rate_decay_boundary_epochs": [10, 14], "label_smoothing": 0.0,
    "train_samples": 800, "eval_samples": 200, "eval_target": TARGET, "eval_every_epochs": 4,
}


def compliance(log: str, cwd) -> tuple[int, list[str]]:
    """The mlperf-logging checker, ruleset 0.7.0 -> (exit code, its WARNING/ERROR lines)."""
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", "0.7.0", log], cwd=cwd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    return proc.returncode, [ln for ln in out.splitlines() if ln.startswith(("WARNING", "ERROR"))
                             and "FAILED" not in ln]


def test_tiny_run_reaches_the_target(tiny_run):
    s = tiny_run["summary"]
    assert tiny_run["rc"] == 0 and s["success"] and s["reached"] >= s["target"] == TARGET
    assert s["benchmark"] == "image_classification" and s["metric"] == "top1" and s["higher_is_better"]
    assert s["world_size"] == 1 and s["seed"] == SEED and not s["resumed"]
    assert [e["epoch"] for e in s["evals"]] == list(range(4, s["epochs"] + 1, 4))  # every 4 epochs
    assert all(e["value"] < TARGET for e in s["evals"][:-1])  # it stopped at the first eval over the target
    # the MLPerf time is recorded (how long it is, bench.py and make score measure; no test asserts a time)
    assert 0 < s["evals"][0]["seconds"] <= s["evals"][-1]["seconds"] <= s["seconds"]
    assert os.path.exists(os.path.join(tiny_run["out"], "checkpoint.pt"))


def test_mlperf_log_keys_order_and_success(tiny_run):
    log = tiny_run["log"]
    keys = [e["key"] for e in log]
    for key in ("run_start", "run_stop", "init_start", "init_stop"):
        assert keys.count(key) == 1, key
    order = [keys.index(k) for k in ("cache_clear", "init_start", "init_stop", "run_start", "train_samples",
                                     "block_start", "epoch_start", "eval_start", "run_stop")]
    assert order == sorted(order)
    assert keys[-1] == "run_stop" and log[-1]["metadata"]["status"] == "success"
    values = {e["key"]: e["value"] for e in log}
    for key, value in TINY_EVENTS.items():
        assert values[key] == value, key
    hyper = {k for k in TINY_EVENTS if k.startswith(("opt_", "sgd_", "submission_", "model_"))}
    assert all(keys.index("init_start") < keys.index(k) < keys.index("init_stop") for k in hyper)
    # Blocks of 4 epochs, each closed by one evaluation.
    epochs = tiny_run["summary"]["epochs"]
    per_epoch = [(e["key"], e["metadata"].get("epoch_num", e["metadata"].get("first_epoch_num")))
                 for e in log if {"epoch_num", "first_epoch_num"} & set(e["metadata"])]
    expected = []
    for first in range(1, epochs + 1, 4):
        expected.append(("block_start", first))
        for n in range(first, first + 4):
            expected += [("epoch_start", n), ("epoch_stop", n)]
        expected += [("eval_start", first + 3), ("eval_accuracy", first + 3), ("eval_stop", first + 3),
                     ("block_stop", first)]
    assert per_epoch == expected
    assert [e["value"] for e in log if e["key"] == "eval_accuracy"] == \
        [e["value"] for e in tiny_run["summary"]["evals"]]


def test_tiny_log_passes_every_compliance_check_but_the_target(tiny_run, tmp_path):
    code, problems = compliance(os.path.join(tiny_run["out"], "mlperf.log"), tmp_path)
    # A tiny top-1 inside [0.759, 1) passes even the real target check; anything else may fail only that.
    assert problems in ([], [f"WARNING -  {TARGET_CHECK}"]), problems
    assert (code == 0) == (problems == [])


def shuffled_copy(src: str, dst: str) -> str:
    """A copy of the extracted tiny data whose training images are moved to random class folders."""
    shutil.copytree(os.path.join(src, "val"), os.path.join(dst, "val"))
    train_dir = os.path.join(src, "train")
    files = sorted((wnid, f) for wnid in os.listdir(train_dir)
                   for f in os.listdir(os.path.join(train_dir, wnid)))
    labels = [wnid for wnid, _ in files]
    random.Random(0).shuffle(labels)
    for (wnid, f), new in zip(files, labels):
        os.makedirs(os.path.join(dst, "train", new), exist_ok=True)
        shutil.copy(os.path.join(train_dir, wnid, f), os.path.join(dst, "train", new, f))
    return dst


def test_shuffled_training_labels_stay_below_the_target(tiny_run, tiny_data, tmp_path):
    budget = tiny_run["summary"]["epochs"]  # what the correct run needed
    d = shuffled_copy(tiny_data, str(tmp_path / "data"))
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", d, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu", "--max-epochs", str(budget)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and not summary["success"] and summary["epochs"] == budget
    assert max(e["value"] for e in summary["evals"]) < 0.3  # chance is 0.1; the target 0.70
    log = read_mllog(os.path.join(out, "mlperf.log"))
    assert log[-1]["key"] == "run_stop" and log[-1]["metadata"]["status"] == "aborted"
    code, problems = compliance(os.path.join(out, "mlperf.log"), tmp_path)
    assert code != 0 and problems == [f"WARNING -  {TARGET_CHECK}"], problems


def off_by_one_copy(src: str, dst: str) -> dict[str, str]:
    """A copy of the tiny archives whose devkit ground truth names, for every val image, the next class id
    (wrapping around within the ids the ground truth uses, so each still maps to a class in meta.mat), as a
    1000-vs-1001 label offset would; tiny.md5 is updated to the new devkit. Returns {old id: new id}."""
    os.makedirs(dst)
    for name in (extract.TRAIN_TAR, extract.VAL_TAR):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    with tarfile.open(os.path.join(src, extract.DEVKIT)) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    truth = next(content for m, content in members if m.name == extract.DEVKIT_GROUND_TRUTH).decode().split()
    ids = sorted({int(i) for i in truth})
    shift = {str(i): str(ids[(k + 1) % len(ids)]) for k, i in enumerate(ids)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for m, content in members:
            if m.name == extract.DEVKIT_GROUND_TRUTH:
                content = "".join(f"{shift[i]}\n" for i in truth).encode()
                m.size = len(content)
            tar.addfile(m, io.BytesIO(content))
    with open(os.path.join(dst, extract.DEVKIT), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(dst, "tiny.md5"), "w") as f:
        for name in sorted((extract.DEVKIT, extract.TRAIN_TAR, extract.VAL_TAR)):
            f.write(f"{hashlib.md5(open(os.path.join(dst, name), 'rb').read()).hexdigest()}  {name}\n")
    return shift


def val_labels(data_dir: str) -> dict[str, str]:
    """{val file name: wnid folder it was extracted to}."""
    val = os.path.join(data_dir, "val")
    return {f: wnid for wnid in os.listdir(val) for f in os.listdir(os.path.join(val, wnid))}


def test_eval_labels_off_by_one_score_near_zero(tiny_run, tiny_data, tmp_path):
    """Spec section 8 (b): the devkit's val ground truth shifted by one class id, extracted by extract.py.
    The same training then scores near 0, below chance (measured, seed 1, with the earlier lr-0.1 preset:
    0.04 / 0.06 / 0.045 at epochs 4 / 8 / 12, where the correct run reached 0.28 / 0.595 / 0.77)."""
    budget = tiny_run["summary"]["epochs"]
    d = str(tmp_path / "data")
    shift = off_by_one_copy(tiny_data, d)
    assert extract.main([d]) == 0  # the real extraction, on the corrupted devkit
    # Every val image now sits under another (valid) class, and every class still holds 20 images.
    old, new = val_labels(tiny_data), val_labels(d)
    assert sorted(old) == sorted(new) and all(new[f] != old[f] for f in old)
    assert sorted(os.listdir(os.path.join(d, "val"))) == sorted(os.listdir(os.path.join(tiny_data, "val")))
    assert all(len(os.listdir(os.path.join(d, "val", w))) == 20 for w in os.listdir(os.path.join(d, "val")))
    assert len(set(shift.values())) == len(shift) and all(k != v for k, v in shift.items())
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", d, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu", "--max-epochs", str(budget)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and not summary["success"] and summary["epochs"] == budget
    assert max(e["value"] for e in summary["evals"]) < 0.15  # chance is 0.1; the target 0.70


def test_eval_without_mean_subtraction_drops_well_below_the_correct_run(tiny_run, tiny_data, tmp_path,
                                                                         monkeypatch):
    """Spec section 8 (c): the means subtracted in training but not in evaluation. A code bug, so simulated
    in-process: train.evaluate (the eval side; data.normalize serves both) gets a config with zero means.
    Not harmless: a constant input shift passes the first conv as a per-channel offset that BatchNorm in eval
    mode (running statistics) does not remove. Same seed, so the training is the correct run's, step for step;
    measured (lr-0.01 preset, seed 1) 0.325 / 0.475 / 0.43 at epochs 4 / 8 / 12, where the correct run had
    0.45 / 0.675 / 0.84; a drop of 0.2 or more is required (the same seed makes both runs deterministic)."""
    budget = tiny_run["summary"]["epochs"]
    real_evaluate = train.evaluate

    def evaluate_without_mean(model, loader, dataset, cfg, device, autocast):
        return real_evaluate(model, loader, dataset, dataclasses.replace(cfg, mean_rgb=(0.0, 0.0, 0.0)),
                             device, autocast)

    monkeypatch.setattr(train, "evaluate", evaluate_without_mean)
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", tiny_data, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu", "--max-epochs", str(budget)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and not summary["success"] and summary["epochs"] == budget
    best, correct_best = (max(e["value"] for e in run["evals"]) for run in (summary, tiny_run["summary"]))
    assert best < TARGET and best < correct_best - 0.2, (best, correct_best)


def test_reference_preset_refuses_tiny_data(tiny_data, tmp_path, capsys):
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", "reference",
                     "--device", "cpu"])
    assert rc == 2 and "holds tiny.md5" in capsys.readouterr().err


def test_new_run_moves_the_old_log_aside(tmp_path):
    path = tmp_path / "mlperf.log"
    for text in ("first", "second", "third"):
        train.rotate_log(str(path))
        path.write_text(text)
    assert [(tmp_path / n).read_text() for n in ("mlperf.log", "mlperf.log.1", "mlperf.log.2")] == \
        ["third", "second", "first"]


@pytest.mark.parametrize("step, lr", [(0, 0.0), (15, 0.02), (75, 0.1), (199, 0.1), (200, 0.01), (300, 0.001),
                                      (350, 1e-4), (10_000, 1e-4)])
def test_learning_rate_schedule(step, lr):
    # warmup over 75 steps, x0.1 at steps 200, 300 and 350 (the earlier tiny schedule's numbers)
    assert train.step_lr(step, 0.1, 75, [200, 300, 350], 0.1) == pytest.approx(lr)


@pytest.mark.parametrize("step, lr", [(0, 0.0), (5, 0.002), (25, 0.01), (249, 0.01), (250, 0.001),
                                      (349, 0.001), (350, 1e-4), (10_000, 1e-4)])
def test_tiny_learning_rate_schedule(step, lr):
    # tiny: 800 images / 32 = 25 steps per epoch; warmup 1 epoch to 0.01; x0.1 at epochs 10 and 14
    assert train.learning_rate_fn(PRESETS["tiny"])(step) == pytest.approx(lr)
