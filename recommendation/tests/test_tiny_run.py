"""End to end on the tiny data: the run reaches the target, its MLPerf log is complete, broken data stays
below the target with the same epoch budget, and the reference preset refuses tiny data."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
from conftest import SEED, read_mllog

import data
import train
from config import PRESETS

# Hyperparameter and data events with the values the tiny preset must log (spec section 6 names).
TINY_EVENTS = {
    "submission_benchmark": "ncf", "submission_division": "closed", "submission_status": "research",
    "seed": SEED, "global_batch_size": 1024, "opt_name": "adam", "opt_base_learning_rate": 0.005,
    "opt_adam_beta_1": 0.9, "opt_adam_beta_2": 0.999, "opt_adam_epsilon": 1e-8,
    "preproc_hp_min_ratings": 20, "preproc_hp_num_eval": 100, "preproc_hp_sample_eval_replacement": True,
    "input_hp_num_neg": 4, "input_hp_sample_train_replacement": True, "eval_hp_num_neg": 100,
    "model_hp_mf_dim": 8, "model_hp_mlp_layer_sizes": [64, 32, 16, 8],
    "model_hp_loss_fn": "binary_cross_entropy",
    "eval_target": 0.45, "eval_negatives_seed": 0, "eval_hp_num_users": 1000, "eval_samples": 1000 * 101,
}


# Lazy against dense Adam, same seed: HR@10 may differ by this much at an epoch. README "Measured": over 20
# seeds lazy trailed dense by 0.010 +- 0.011 at epoch 2 (largest gap 0.033), against a seed-to-seed standard
# deviation of 0.03; a lazy Adam that moved absent rows or mis-scaled its step would miss the target.
LAZY_TOLERANCE = 0.04


def test_tiny_run_reaches_the_target(tiny_run):
    s = tiny_run["summary"]
    assert tiny_run["rc"] == 0 and s["success"] and s["reached"] >= s["target"] == 0.45
    assert s["benchmark"] == "recommendation" and s["metric"] == "HR@10" and s["higher_is_better"]
    assert s["world_size"] == 1 and s["seed"] == SEED and not s["resumed"]
    assert [e["epoch"] for e in s["evals"]] == list(range(s["epochs"] + 1))  # epoch 0: before training
    assert s["evals"][0]["value"] < 0.2  # untrained: about 10 / 101
    assert all(e["value"] < 0.45 for e in s["evals"][:-1])  # it stopped at the first eval over the target
    assert 0 < s["seconds"] < 60 and s["evals"][-1]["seconds"] <= s["seconds"]
    assert os.path.exists(os.path.join(tiny_run["out"], "checkpoint.pt"))


def test_mlperf_log_keys_order_and_success(tiny_run):
    log = tiny_run["log"]
    keys = [e["key"] for e in log]
    for key in ("run_start", "run_stop", "init_start", "init_stop"):
        assert keys.count(key) == 1, key
    order = [keys.index(k) for k in ("cache_clear", "init_start", "init_stop", "run_start",
                                     "input_step_eval_neg_gen", "eval_start", "epoch_start", "run_stop")]
    assert order == sorted(order)
    assert keys[-1] == "run_stop" and log[-1]["metadata"]["status"] == "success"
    values = {e["key"]: e["value"] for e in log}
    for key, value in TINY_EVENTS.items():
        assert values[key] == value, key
    hyper = {k for k in TINY_EVENTS if k.startswith(("opt_", "model_hp", "preproc_hp", "submission_"))}
    assert all(keys.index("init_start") < keys.index(k) < keys.index("init_stop") for k in hyper)
    assert values["train_samples"] == 5 * len(data.load_converted(tiny_run["data_dir"]).train_users)
    # Every epoch: start, training negatives, stop, then one evaluation: start, accuracy, ndcg, stop.
    epochs = tiny_run["summary"]["epochs"]
    per_epoch = [(e["key"], e["metadata"]["epoch_num"]) for e in log if "epoch_num" in e["metadata"]]
    expected = [("eval_start", 0), ("eval_accuracy", 0), ("eval_ndcg", 0), ("eval_stop", 0)]
    for n in range(1, epochs + 1):
        expected += [("epoch_start", n), ("input_step_train_neg_gen", n), ("epoch_stop", n),
                     ("eval_start", n), ("eval_accuracy", n), ("eval_ndcg", n), ("eval_stop", n)]
    assert per_epoch == expected
    accuracy = [e["value"] for e in log if e["key"] == "eval_accuracy"]
    assert accuracy == [e["value"] for e in tiny_run["summary"]["evals"]]
    assert accuracy[-1] >= 0.45


def test_lazy_adam_trains_as_well_as_dense_adam(tiny_run, tmp_path):
    """Same seed and data, lazy instead of dense Adam: the target is reached and HR@10 stays within the
    seed-to-seed noise of the dense run at every epoch (README: both over 20 seeds)."""
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", tiny_run["data_dir"], "--output-dir", out, "--config", "tiny", "--seed",
                     str(SEED), "--device", "cpu", "--lazy-adam"])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 0 and summary["success"]
    values = {e["key"]: e["value"] for e in read_mllog(os.path.join(out, "mlperf.log"))}
    assert values["opt_name"] == "lazy_adam"
    dense = [e["value"] for e in tiny_run["summary"]["evals"]]
    lazy = [e["value"] for e in summary["evals"]]
    assert lazy[0] == dense[0]  # the same untrained model
    assert all(abs(a - b) <= LAZY_TOLERANCE for a, b in zip(lazy[1:], dense[1:])), (lazy, dense)


def perturbed_copy(src: str, dst: str, kind: str) -> str:
    """A copy of the tiny data whose converted file (what train.py reads) is broken in one way."""
    shutil.copytree(src, dst)
    r = data.load_converted(dst)
    rng = np.random.default_rng(0)
    if kind == "shuffled_labels":
        # Which user rated which item, shuffled over all training rows: popularity stays, personal taste goes.
        keys = np.unique(r.train_users * r.n_items + rng.permutation(r.train_items))
        r.train_users, r.train_items = keys // r.n_items, keys % r.n_items
    else:  # misaligned: every user is evaluated on another user's held-out item
        r.test_items = rng.permutation(r.test_items)
    source = os.stat(os.path.join(dst, data.RATINGS_CSV))
    data.save_converted(os.path.join(dst, data.CONVERTED_NAME), r, source)
    return dst


@pytest.mark.parametrize("kind", ["shuffled_labels", "misaligned_test_items"])
def test_broken_data_stays_below_the_target(tiny_run, tiny_data, tmp_path, kind):
    budget = tiny_run["summary"]["epochs"]  # what the correct run needed
    d = perturbed_copy(tiny_data, str(tmp_path / "data"), kind)
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", d, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu", "--max-epochs", str(budget)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and not summary["success"] and summary["epochs"] == budget
    # Item popularity alone reaches about 0.3; the target is 0.45.
    assert max(e["value"] for e in summary["evals"]) < 0.36
    assert read_mllog(os.path.join(out, "mlperf.log"))[-1]["metadata"]["status"] == "aborted"


@pytest.mark.parametrize("preset", ["reference", "large_batch"])
def test_real_data_presets_refuse_tiny_data(tiny_data, tmp_path, capsys, preset):
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", preset,
                     "--device", "cpu"])
    assert rc == 2 and "holds tiny.md5" in capsys.readouterr().err


def test_large_batch_presets_are_nvidias_recipe():
    """NVIDIA v0.5 run_and_time.sh: -b 1048576 -l 0.0045 -b1 0.25 -b2 0.5 --eps 1e-8; all else the
    reference's. The tiny variant changes the tiny preset the same way, with its batch scaled and the
    reference's 20 epochs at most (config.py)."""
    nvidia = {"global_batch_size": 1_048_576, "learning_rate": 0.0045, "adam_beta1": 0.25, "adam_beta2": 0.5,
              "adam_epsilon": 1e-8}
    for tiny, large in (("tiny", "tiny_large_batch"), ("reference", "large_batch")):
        base, recipe = dataclasses.asdict(PRESETS[tiny]), dataclasses.asdict(PRESETS[large])
        scaled = {"global_batch_size": 4096, "max_epochs": 20} if tiny == "tiny" else {}
        expected = {**base, **nvidia, **scaled}
        assert recipe == expected, large


def test_new_run_moves_the_old_log_aside(tmp_path):
    path = tmp_path / "mlperf.log"
    for text in ("first", "second", "third"):
        train.rotate_log(str(path))
        path.write_text(text)
    assert [(tmp_path / n).read_text() for n in ("mlperf.log", "mlperf.log.1", "mlperf.log.2")] == \
        ["third", "second", "first"]
