"""Data parallelism: per-rank batches for many ranks (the reference preset on 8 GPUs, the tiny preset on 16
gloo processes through run_and_time.sh), the learning-rate rule, refused settings, and BatchNorm statistics
synchronised over the ranks."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from conftest import FOLDER, SEED

import data
import train
from config import PRESETS

LIBRISPEECH_960_UTTERANCES = 28_539 + 104_014 + 148_688  # train-clean-100, -clean-360, -other-500


def test_reference_preset_on_8_ranks_gets_batches_on_every_rank():
    """The split that used to give 8 ranks nothing: every rank gets full batches of the preset's 5, the
    ranks' batches are disjoint, cover the manifest in order, and agree in number (DDP steps in lockstep)."""
    n, world = LIBRISPEECH_960_UTTERANCES, 8
    batch = PRESETS["reference"].batch_size
    per_rank = [data.batches(n, batch, r, world) for r in range(world)]
    steps = n // (batch * world)  # 7,031 global batches of 40; the last utterance alone is dropped
    assert steps == 7031 and all(len(b) == steps for b in per_rank)
    assert all(len(step) == batch for b in per_rank for step in b)
    seen = sorted(i for b in per_rank for step in b for i in step)
    assert seen == list(range(steps * batch * world))
    for k in (0, 1, steps - 1):  # global batch k is 40 consecutive utterances in manifest order
        assert sorted(i for b in per_rank for i in b[k]) == list(range(k * 40, (k + 1) * 40))
    assert data.global_batch_sizes(n, batch, world) == [40] * steps


def test_a_last_global_batch_is_split_when_every_rank_gets_an_utterance():
    per_rank = [data.batches(600, 8, r, 16) for r in range(16)]  # tiny data on 16 ranks: 4 x 128 + 88
    assert all(len(b) == 5 for b in per_rank)
    assert [len(per_rank[r][-1]) for r in (0, 7, 8, 15)] == [6, 6, 5, 5]
    assert data.global_batch_sizes(600, 8, 16) == [128] * 4 + [88]


def test_learning_rate_rule_and_sync_batch_norm_choice():
    # r = global batch / preset batch, an integer >= 1 (v0.5 rules), by linear scaling.
    assert train.learning_rate_factor(5, 5) == 1 and train.learning_rate_factor(40, 5) == 8
    assert train.learning_rate_factor(16, 8) == 2 and train.learning_rate_factor(24, 5) == 5
    assert train.learning_rate_factor(2, 5) == 1
    assert not train.use_sync_batch_norm(5, 5, 8)  # each rank's statistics over the reference's 5
    assert train.use_sync_batch_norm(1, 8, 16) and not train.use_sync_batch_norm(1, 8, 1)


def test_impossible_settings_are_refused():
    with pytest.raises(train.SettingsError, match="--batch-size 0: each rank needs at least one utterance"):
        train.check_settings(0, 2)
    with pytest.raises(train.SettingsError, match="16 ranks but 10 training utterances"):
        train.check_settings(8, 16, 10)
    train.check_settings(1, 16, 16)


def test_zero_batch_size_exits_2_with_a_message(tiny_data, tmp_path, capsys):
    rc = train.main(["--data-dir", tiny_data, "--output-dir", str(tmp_path), "--config", "tiny", "--device",
                     "cpu", "--batch-size", "0"])
    assert rc == 2 and "--batch-size 0: each rank needs at least one utterance" in capsys.readouterr().err


def torchrun(nproc: int, script: str, *args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), script, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_sync_batch_norm_equals_batch_norm_over_the_global_batch():
    r = torchrun(2, os.path.join(FOLDER, "tests", "sync_batch_norm_worker.py"))
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count("SyncBatchNorm agrees with BatchNorm on the whole batch") == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_16_ranks_train_through_run_and_time(tiny_data, tmp_path):
    """More ranks than the tiny preset's batch of 8 (a global batch of 8 split over 16 ranks left half of
    them without data): 16 gloo processes, one utterance each per step (global batch 16, learning rate x 2,
    BatchNorm synchronised), two epochs. The WER falls, every rank ends each epoch with the same weights,
    and every rank evaluates its share and agrees on the WER."""
    out = tmp_path / "out"
    env = {"DATA_DIR": tiny_data, "OUTPUT_DIR": str(out), "CONFIG": "tiny", "SEED": str(SEED),
           "NPROC_PER_NODE": "16", "MASTER_PORT": str(free_port()), "PYTHON": sys.executable}
    r = subprocess.run([os.path.join(FOLDER, "run_and_time.sh"), "--device", "cpu", "--batch-size", "1",
                        "--max-epochs", "2"], capture_output=True, text=True, timeout=900,
                       env={**os.environ, **env})
    summary = json.loads((out / "summary.json").read_text())
    assert r.returncode == (0 if summary["success"] else 1), r.stderr[-4000:]
    assert summary["world_size"] == 16 and summary["epochs"] == 2
    assert f"RESULT,speech_recognition,{SEED}," in r.stdout
    assert '"key": "global_batch_size", "value": 16' in r.stdout
    assert '"sync_batch_norm": true' in r.stdout and '"factor": 2' in r.stdout
    assert "global batch 16 (1 per rank x 16), 37 steps per epoch, learning rate 0.006" in r.stderr
    wers = [e["value"] for e in summary["evals"]]
    assert wers[1] < wers[0] < 100.5, wers  # it learns
    for epoch in (1, 2):
        digests = re.findall(rf"\[rank (\d+)\] epoch {epoch} weights sha256 (\w+)", r.stderr)
        assert sorted(int(rank) for rank, _ in digests) == list(range(16))
        assert len({d for _, d in digests}) == 1  # one model on all ranks
        ranks_wer = re.findall(rf"\[rank \d+\] epoch {epoch} eval WER ([\d.]+)", r.stderr)
        assert len(ranks_wer) == 16 and len(set(ranks_wer)) == 1
