"""Two gloo processes under torchrun (as on several GPUs or nodes, on CPU): the same global batch split in
two, disjoint shares of every epoch and of the validation set, an all-reduced top-1 both ranks agree on."""

import json
import os
import re
import subprocess
import sys

from conftest import FOLDER, SEED


def test_two_processes_agree_on_every_evaluation(tiny_data, tmp_path):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(FOLDER, "train.py"), "--data-dir", tiny_data, "--output-dir", out, "--config", "tiny",
           "--seed", str(SEED), "--device", "cpu", "--max-epochs", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode in (0, 1), result.stderr[-4000:]  # 4 epochs need not reach the target
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["world_size"] == 2 and summary["epochs"] == 4 and summary["evals"][0]["epoch"] == 4
    evals = {0: [], 1: []}
    for rank, epoch, top1, correct in re.findall(
            r"\[rank (\d)\] epoch (\d+) eval top-1 ([\d.]+) \((\d+)/200", result.stderr):
        evals[int(rank)].append((int(epoch), float(top1), int(correct)))
    assert evals[0] == evals[1] and len(evals[0]) == 1  # all 200 images counted once, over both ranks
    assert evals[0][0][1] == round(summary["evals"][0]["value"], 4)
    # Only rank 0 logs: one RUN_START on stdout and in the file; BN statistics span one rank's 16 images.
    assert result.stdout.count('"key": "run_start"') == 1
    log = open(os.path.join(out, "mlperf.log")).read()
    assert log.count('"key": "run_start"') == 1
    assert '"submission_platform", "value": "2xcpu"' in result.stdout
    assert '"key": "model_bn_span", "value": 16' in log and '"key": "global_batch_size", "value": 32' in log
