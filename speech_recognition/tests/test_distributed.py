"""Two gloo processes under torchrun (as on several GPUs or nodes, on CPU): each rank trains on its own
batches of the preset's 8 (global batch 16, learning rate x 2, BatchNorm per rank as on one GPU), both ranks
end the epoch with the same weights (BatchNorm running statistics included), every validation utterance is
scored on exactly one rank and the WER all-reduced so both ranks decide alike. On 48 training utterances:
tests/test_parallel.py shows 16 ranks learning."""

import json
import os
import re
import subprocess
import sys

from conftest import FOLDER, SEED


def test_two_processes_train_and_agree(small_data, tmp_path):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(FOLDER, "train.py"), "--data-dir", small_data, "--output-dir", out, "--config",
           "tiny", "--seed", str(SEED), "--device", "cpu", "--max-epochs", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-4000:]  # 1 epoch misses the target: exit 1, no crash
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["world_size"] == 2 and summary["epochs"] == 1 and not summary["success"]
    digests = re.findall(r"\[rank (\d)\] epoch 1 weights sha256 (\w+)", result.stderr)
    assert sorted(r for r, _ in digests) == ["0", "1"] and digests[0][1] == digests[1][1]
    assert '"key": "global_batch_size", "value": 16' in result.stdout and '"factor": 2' in result.stdout
    evals = {0: [], 1: []}
    for rank, epoch, wer in re.findall(r"\[rank (\d)\] epoch (\d+) eval WER ([\d.]+)", result.stderr):
        evals[int(rank)].append((int(epoch), float(wer)))
    assert evals[0] == evals[1] == [(e["epoch"], round(e["value"], 2)) for e in summary["evals"]]
    assert "global batch 16 (8 per rank x 2), 3 steps per epoch" in result.stderr
    # Only rank 0 logs: one RUN_START on stdout and in the file; the platform names both processes.
    assert result.stdout.count('"key": "run_start"') == 1
    assert open(os.path.join(out, "mlperf.log")).read().count('"key": "run_start"') == 1
    assert '"submission_platform", "value": "2xcpu"' in result.stdout
    assert '"key": "eval_samples", "value": 80' in result.stdout  # all of dev-tiny, split over the ranks
