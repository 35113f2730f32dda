"""Two gloo processes under torchrun (as on several GPUs or nodes, on CPU): each global batch of 8 split
4 + 4, every validation utterance scored on exactly one rank, the WER all-reduced so both ranks decide
alike."""

import json
import os
import re
import subprocess
import sys

from conftest import FOLDER, SEED


def test_two_processes_train_and_agree(tiny_data, tmp_path):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(FOLDER, "train.py"), "--data-dir", tiny_data, "--output-dir", out, "--config", "tiny",
           "--seed", str(SEED), "--device", "cpu", "--max-epochs", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-4000:]  # 1 epoch misses the target: exit 1, no crash
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["world_size"] == 2 and summary["epochs"] == 1 and not summary["success"]
    evals = {0: [], 1: []}
    for rank, epoch, wer in re.findall(r"\[rank (\d)\] epoch (\d+) eval WER ([\d.]+)", result.stderr):
        evals[int(rank)].append((int(epoch), float(wer)))
    assert evals[0] == evals[1] == [(e["epoch"], round(e["value"], 2)) for e in summary["evals"]]
    # It learned (gradients averaged over the ranks): after one epoch the words are still wrong, but most
    # characters are right already (an untrained model's CER is ~100).
    cer = re.findall(r"\[rank 0\] epoch 1 eval WER [\d.]+ \(corpus [\d.]+\) CER ([\d.]+)", result.stderr)
    assert len(cer) == 1 and float(cer[0]) < 85
    # Only rank 0 logs: one RUN_START on stdout and in the file; the platform names both processes.
    assert result.stdout.count('"key": "run_start"') == 1
    assert open(os.path.join(out, "mlperf.log")).read().count('"key": "run_start"') == 1
    assert '"submission_platform", "value": "2xcpu"' in result.stdout
    assert '"key": "eval_samples", "value": 80' in result.stdout  # all of dev-tiny, split over the ranks
