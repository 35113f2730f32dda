"""Two gloo processes under torchrun (as on several GPUs or nodes, on CPU): same global batch, disjoint
shares of every epoch, all-reduced metric. The run reaches the tiny target and both ranks see the same
value at every evaluation."""

import json
import os
import re
import subprocess
import sys

from conftest import FOLDER, SEED


def test_two_processes_reach_the_target_and_agree(tiny_data, tmp_path):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(FOLDER, "train.py"), "--data-dir", tiny_data, "--output-dir", out, "--config", "tiny",
           "--seed", str(SEED), "--device", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["success"] and summary["world_size"] == 2 and summary["reached"] >= 0.45
    evals = {0: [], 1: []}
    for rank, epoch, hr in re.findall(r"\[rank (\d)\] epoch (\d+) eval HR@10 ([\d.]+)", result.stderr):
        evals[int(rank)].append((int(epoch), float(hr)))
    assert evals[0] == evals[1] == [(e["epoch"], round(e["value"], 4)) for e in summary["evals"]]
    # Only rank 0 logs: one RUN_START on stdout and in the file.
    assert result.stdout.count('"key": "run_start"') == 1
    assert open(os.path.join(out, "mlperf.log")).read().count('"key": "run_start"') == 1
    assert '"submission_platform", "value": "2x' in result.stdout
