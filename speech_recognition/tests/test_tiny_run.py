"""End to end on the tiny data: the run reaches the WER target, its MLPerf log is complete, transcripts
shuffled across files stay far above the target with the same epoch budget, and the full presets refuse tiny
data."""

import json
import os
import random
import shutil

import pytest
from conftest import SEED, read_mllog

import data
import preprocess
import train

# Events with the values the tiny preset must log (spec section 6 names; no ruleset covers DS2).
TINY_EVENTS = {
    "cache_clear": False, "submission_benchmark": "speech_recognition", "submission_org": "reference",
    "submission_division": "closed", "submission_status": "research", "submission_platform": "1xcpu",
    "seed": SEED, "global_batch_size": 8, "opt_name": "sgd", "opt_base_learning_rate": 3e-3,
    "opt_momentum": 0.9, "opt_nesterov": True, "opt_weight_decay": 0.0, "opt_learning_rate_anneal": 1.1,
    "opt_gradient_clip_norm": 400.0, "model_hp_rnn_type": "gru", "model_hp_rnn_layers": 2,
    "model_hp_rnn_hidden_size": 128, "model_hp_rnn_bidirectional": False, "model_hp_rnn_batch_norm": False,
    "data_augmentation": True, "eval_target": 25.0, "train_samples": 600, "eval_samples": 80,
}


def test_tiny_run_reaches_the_target(tiny_run):
    s = tiny_run["summary"]
    assert tiny_run["rc"] == 0 and s["success"] and s["reached"] <= s["target"] == 25.0
    assert s["benchmark"] == "speech_recognition" and s["metric"] == "WER" and not s["higher_is_better"]
    assert s["world_size"] == 1 and s["seed"] == SEED and not s["resumed"]
    assert [e["epoch"] for e in s["evals"]] == list(range(1, s["epochs"] + 1))
    assert s["evals"][0]["value"] > 60  # after one epoch the model still gets most words wrong
    assert all(e["value"] > 25.0 for e in s["evals"][:-1])  # it stopped at the first eval under the target
    assert 0 < s["seconds"] and s["evals"][-1]["seconds"] <= s["seconds"]
    assert os.path.exists(os.path.join(tiny_run["out"], "checkpoint.pt"))


def test_mlperf_log_keys_order_and_success(tiny_run):
    log = tiny_run["log"]
    keys = [e["key"] for e in log]
    for key in ("run_start", "run_stop", "init_start", "init_stop"):
        assert keys.count(key) == 1, key
    order = [keys.index(k) for k in ("cache_clear", "init_start", "submission_benchmark", "seed",
                                     "init_stop", "run_start", "train_samples", "epoch_start", "eval_start",
                                     "run_stop")]
    assert order == sorted(order)
    assert keys[-1] == "run_stop" and log[-1]["metadata"]["status"] == "success"
    values = {e["key"]: e["value"] for e in log}
    for key, value in TINY_EVENTS.items():
        assert values[key] == value, key
    hyper = [k for k in TINY_EVENTS if k.startswith(("opt_", "model_hp", "submission_"))]
    assert all(keys.index("init_start") < keys.index(k) < keys.index("init_stop") for k in hyper)
    # Every epoch: start, its learning rate (divided by 1.1 each epoch), stop, then one evaluation.
    epochs = tiny_run["summary"]["epochs"]
    per_epoch = [(e["key"], e["metadata"]["epoch_num"]) for e in log if "epoch_num" in e["metadata"]]
    expected = []
    for n in range(1, epochs + 1):
        expected += [("epoch_start", n), ("opt_learning_rate", n), ("epoch_stop", n), ("eval_start", n),
                     ("eval_accuracy", n), ("eval_cer", n), ("eval_corpus_wer", n), ("eval_stop", n)]
    assert per_epoch == expected
    lrs = [e["value"] for e in log if e["key"] == "opt_learning_rate"]
    assert lrs == pytest.approx([3e-3 / 1.1 ** n for n in range(epochs)])
    accuracy = [e["value"] for e in log if e["key"] == "eval_accuracy"]
    assert accuracy == [e["value"] for e in tiny_run["summary"]["evals"]] and accuracy[-1] <= 25.0


def shuffled_transcripts_copy(src: str, dst: str) -> str:
    """A copy of the tiny data whose training transcripts are permuted across all files and chapters."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("manifests"))
    files = sorted(os.path.join(folder, f) for folder, _, names in os.walk(os.path.join(dst, "LibriSpeech",
                                                                                         "train-tiny"))
                   for f in names if f.endswith(".trans.txt"))
    lines = {path: open(path).read().splitlines() for path in files}
    texts = [line.split(" ", 1)[1] for path in files for line in lines[path]]
    random.Random(0).shuffle(texts)
    it = iter(texts)
    for path in files:
        with open(path, "w") as f:
            f.writelines(f"{line.split(' ', 1)[0]} {next(it)}\n" for line in lines[path])
    os.remove(os.path.join(dst, "tiny.md5"))  # the copy is no longer what make_tiny_dataset.py wrote
    open(os.path.join(dst, "tiny.md5"), "w").close()
    assert preprocess.main([dst]) == 0
    return dst


def test_shuffled_transcripts_stay_far_above_the_target(tiny_run, tiny_data, tmp_path):
    budget = tiny_run["summary"]["epochs"]  # what the correct run needed
    d = shuffled_transcripts_copy(tiny_data, str(tmp_path / "data"))
    assert data.read_manifests(d, ["train-tiny"]) != data.read_manifests(tiny_data, ["train-tiny"])
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", d, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu", "--max-epochs", str(budget)])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 1 and not summary["success"] and summary["epochs"] == budget
    assert min(e["value"] for e in summary["evals"]) > 80  # the correct run reached 25 in the same epochs
    assert read_mllog(os.path.join(out, "mlperf.log"))[-1]["metadata"]["status"] == "aborted"


@pytest.mark.parametrize("config", ["reference", "v05"])
def test_full_presets_refuse_tiny_data(tiny_data, tmp_path, capsys, config):
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", config,
                     "--device", "cpu"])
    assert rc == 2 and "holds tiny.md5" in capsys.readouterr().err


def test_missing_manifest_is_a_clear_error(tmp_path, capsys):
    rc = train.main(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--config", "tiny",
                     "--device", "cpu"])
    assert rc == 2 and "train-tiny.csv: missing (run ./preprocess.py" in capsys.readouterr().err


def test_new_run_moves_the_old_log_aside(tmp_path):
    path = tmp_path / "mlperf.log"
    for text in ("first", "second", "third"):
        train.rotate_log(str(path))
        path.write_text(text)
    assert [(tmp_path / n).read_text() for n in ("mlperf.log", "mlperf.log.1", "mlperf.log.2")] == \
        ["third", "second", "first"]
