"""The optimizers and schedules of train.py: LARS as tf.contrib.opt.LARSOptimizer computes it, its parameter
groups and polynomial schedule, and a tiny LARS run whose log passes the 0.7.0 closed_resnet_lars rules."""

import json
import os

import pytest
import torch
from conftest import SEED, TARGET, read_mllog
from test_tiny_run import TARGET_CHECK, compliance

import train
from config import PRESETS
from model import resnet50


def test_lars_step_matches_the_tf_formula():
    torch.manual_seed(0)
    w, b = torch.randn(4, 3), torch.randn(4)
    g_w, g_b = torch.randn(4, 3), torch.randn(4)
    pw, pb = torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())
    opt = train.LARS([{"params": [pw], "lars": True, "l2": 1e-4}, {"params": [pb], "lars": False, "l2": 0.0}],
                     lr=2.0, momentum=0.9, weight_decay=1e-4, eta=0.001, epsilon=0.0)
    vw, vb = torch.zeros_like(w), torch.zeros_like(b)
    for _ in range(2):
        pw.grad, pb.grad = g_w.clone(), g_b.clone()
        opt.step()
        g = g_w + 1e-4 * w  # the L2 term of the loss
        trust = 0.001 * w.norm() / (g.norm() + 1e-4 * w.norm())
        vw = 0.9 * vw + 2.0 * trust * (g + 1e-4 * w)
        w = w - vw
        vb = 0.9 * vb + 2.0 * g_b
        b = b - vb
        assert torch.allclose(pw, w, atol=1e-6) and torch.allclose(pb, b, atol=1e-6)


def test_lars_groups_skip_batch_norm_and_the_dense_bias():
    model = resnet50(10, width=8)
    kernels, bias, bn = train.lars_param_groups(model, 1e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in bias["params"]] == ["fc.bias"] and not bias["lars"] and bias["l2"] == 1e-4
    assert all(names[id(p)].endswith("weight") and p.ndim in (2, 4) for p in kernels["params"])
    assert kernels["lars"] and all(p.ndim == 1 for p in bn["params"]) and bn["l2"] == 0.0
    assert len(kernels["params"]) + 1 + len(bn["params"]) == len(list(model.parameters()))


def test_poly_schedule_and_the_batch_table():
    assert train.lars_peak_lr(2048) == (5.0, 5) and train.lars_peak_lr(8192) == (10.0, 5)
    assert train.lars_peak_lr(16384) == (25.0, 5) and train.lars_peak_lr(65536) == (32.0, 14)
    s = train.schedule(PRESETS["reference_lars"])
    assert s["warmup_steps"] == int(5 * 1281167 / 2048) and s["train_steps"] == int(90 * 1281167 / 2048)
    lr = train.learning_rate_fn(PRESETS["reference_lars"])
    assert lr(0) == 0 and lr(s["warmup_steps"]) == 5.0
    assert lr(s["warmup_steps"] + 1) == pytest.approx(5.0, rel=1e-4) and lr(s["train_steps"] + 10) == 1e-4
    mid = (s["warmup_steps"] + s["train_steps"] + 1) // 2
    assert lr(mid) == pytest.approx((5.0 - 1e-4) * 0.25 + 1e-4, rel=1e-3)  # power 2 at half way


def test_tiny_lars_run_reaches_the_target_and_logs_the_lars_keys(tiny_data, tmp_path):
    out = str(tmp_path / "out")
    rc = train.main(["--data-dir", tiny_data, "--output-dir", out, "--config", "tiny_lars",
                     "--seed", str(SEED), "--device", "cpu"])
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert rc == 0 and summary["success"] and summary["reached"] >= TARGET
    values = {e["key"]: e["value"] for e in read_mllog(os.path.join(out, "mlperf.log"))}
    assert values["opt_name"] == "lars" and values["lars_opt_base_learning_rate"] == 5.0
    assert values["lars_opt_end_learning_rate"] == 1e-4
    assert values["lars_opt_learning_rate_decay_steps"] == 400  # 16 epochs x 25 steps
    assert values["lars_epsilon"] == 0.0 and values["lars_opt_learning_rate_decay_poly_power"] == 2.0
    assert not any(k.startswith("sgd_") for k in values)
    code, problems = compliance(os.path.join(out, "mlperf.log"), tmp_path)
    assert problems in ([], [f"WARNING -  {TARGET_CHECK}"]), problems
