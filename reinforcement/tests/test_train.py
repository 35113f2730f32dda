"""The trainer's pieces: learning-rate schedule, loss terms, divergence stop, work split over ranks."""

import dataclasses

import numpy as np
import pytest
import torch

import train
from config import PRESETS

CFG = PRESETS["tiny"]


def test_learning_rate_schedule():
    ref = PRESETS["reference"]
    assert [train.learning_rate(ref, s) for s in (0, 999_999, 1_000_000, 1_999_999, 2_000_000, 10**8)] == \
        [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    assert ref.examples_per_generation // ref.batch_size == 6250  # SGD steps per generation (spec 3.1)


def test_loss_terms_and_steps_change_the_weights():
    torch.manual_seed(0)
    net = train.build_model(CFG)
    n = 5
    ex = {"planes": np.random.default_rng(0).integers(0, 2, (32, 17, n, n)).astype(np.uint8),
          "pi": np.eye(n * n + 1, dtype=np.float32)[np.arange(32) % (n * n + 1)],
          "z": np.where(np.arange(32) % 2, 1.0, -1.0).astype(np.float32)}
    pol, val, l2 = train.loss_terms(net, torch.from_numpy(ex["planes"]).float(), torch.from_numpy(ex["pi"]),
                                    torch.from_numpy(ex["z"]), CFG)
    assert pol.item() == pytest.approx(np.log(26), rel=0.2) and 0 < val.item() < 2 and 0 < l2.item() < 0.1
    before = [p.detach().clone() for p in net.parameters()]
    opt = train.make_optimizer(net, CFG)
    losses = train.train_steps(net, opt, ex, 20, CFG, np.random.default_rng(0))
    assert set(losses) == {"policy_loss", "value_loss", "l2"}
    assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert opt.param_groups[0]["momentum"] == 0.9 and not opt.param_groups[0]["nesterov"]


def test_non_finite_loss_stops_training():
    net = train.build_model(CFG)
    ex = {"planes": np.zeros((4, 17, 5, 5), np.uint8), "pi": np.full((4, 26), np.nan, np.float32),
          "z": np.zeros(4, np.float32)}
    with pytest.raises(FloatingPointError, match="non-finite"):
        train.train_steps(net, train.make_optimizer(net, CFG), ex, 2, CFG, np.random.default_rng(0))


def test_share_deals_every_item_once():
    items = list(range(11))
    dealt = [x for rank in range(2) for chunk in train.share(items, rank, 2, 3) for x in chunk]
    assert sorted(dealt) == items
    assert all(train.share(items, 1, 2, 3))  # no empty tasks
    assert train.share([1], 0, 1, 4) == [[1]]


def test_presets():
    ref, tiny = PRESETS["reference"], PRESETS["tiny"]
    assert (ref.board_size, ref.selfplay_readouts, ref.games_per_generation, ref.gating_win_pct,
            ref.termination_accuracy, ref.window_size) == (9, 200, 2000, 0.55, 0.40, 2_000_000)
    assert tiny.board_size == 5 and tiny.min_generations == 3 and tiny.cpu_threads == 1
    assert ref.quality_metric == "move_prediction_accuracy" and ref.winrate_games_per_side == 0
    assert tiny.quality_metric == "win_rate_vs_generation_0" and tiny.winrate_games_per_side >= 40
    assert dataclasses.replace(tiny, max_generations=1).max_generations == 1
