"""The precision policy (a function of the compute capability), both of its training branches run
on the CPU through train.main, and evaluation in fp32 whatever the training precision."""

import json

import pytest
import torch

import bench
import model as model_module
import train
from config import amp_dtype_for


@pytest.mark.parametrize("capability,dtype", [
    ((6, 0), "float16"),     # P100: no bf16 units (torch.cuda.is_bf16_supported() says True)
    ((7, 0), "float16"),     # V100
    ((7, 5), "float16"),     # T4
    ((8, 0), "bfloat16"),    # A100
    ((9, 0), "bfloat16"),    # H100/H200
    ((10, 0), "bfloat16"),   # B200
    (None, "bfloat16"),      # CPU autocast
])
def test_amp_dtype_by_compute_capability(capability, dtype):
    assert amp_dtype_for(capability) == dtype
    assert isinstance(getattr(torch, dtype), torch.dtype)


def _record_autocast(monkeypatch):
    """Wrap SeqCNN.forward to record (training?, autocast dtype or None) for every call."""
    calls = []
    forward = model_module.SeqCNN.forward

    def recording(self, ids, lengths):
        on = torch.is_autocast_enabled("cpu")
        calls.append((self.training, torch.get_autocast_dtype("cpu") if on else None))
        return forward(self, ids, lengths)

    monkeypatch.setattr(model_module.SeqCNN, "forward", recording)
    return calls


@pytest.mark.parametrize("policy", ["bfloat16", "float16"])
def test_training_branch_of_each_policy_runs_and_eval_stays_fp32(policy, tiny_data, tmp_path,
                                                                 monkeypatch):
    """The CPU stands in for a GPU of each branch: bf16 autocast (capability >= 8.0) and fp16
    autocast with a GradScaler (below 8.0, whose LazyAdam and fused-Adam path take the scale
    and the overflow flag from GradScaler). One epoch must train (accuracy far above chance),
    every training forward runs under the policy's autocast and every eval forward in fp32."""
    monkeypatch.setattr(train, "amp_dtype_for", lambda capability: policy)
    calls = _record_autocast(monkeypatch)
    rc = train.main(["--data-dir", str(tiny_data), "--output-dir", str(tmp_path), "--config",
                     "tiny", "--seed", "2", "--device", "cpu", "--amp", "--max-epochs", "1",
                     "--target", "0"])
    assert rc == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["evals"][0]["value"] > 0.7
    dtype = getattr(torch, policy)
    assert {d for training, d in calls if training} == {dtype}
    assert {d for training, d in calls if not training} == {None}
    scaler = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["scaler"]
    assert bool(scaler) == (policy == "float16")        # a disabled GradScaler saves {}
    log = (tmp_path / "mlperf.log").read_text()
    assert f'"key": "train_precision", "value": "{policy}"' in log


def test_no_amp_trains_and_evaluates_in_fp32(tiny_data, tmp_path, monkeypatch):
    calls = _record_autocast(monkeypatch)
    assert train.main(["--data-dir", str(tiny_data), "--output-dir", str(tmp_path), "--config",
                       "tiny", "--seed", "2", "--device", "cpu", "--max-epochs", "1",
                       "--target", "0"]) == 0
    assert calls and {d for _, d in calls} == {None}


def test_bench_reports_the_policy_dtype(capsys, monkeypatch):
    monkeypatch.setattr(bench, "amp_dtype_for", lambda capability: "float16")
    assert bench.main(["--device", "cpu", "--steps", "1", "--warmup", "1", "--batch-size", "2",
                       "--seq-len", "8", "--amp"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["amp"] == "float16" and row["embedding_adam"] == "lazy" and row["tflops"] > 0
