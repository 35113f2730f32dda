"""Tests that a broken build fails, through the real code paths (spec section 8.2).

1. Policy: the network trained by supervision on the GNU Go games (training window -> the loop's trainer),
   then scored by the real move-prediction evaluation (metrics.py: SGF replay, fresh MCTS per position,
   random symmetries, most visited move), beats a threshold that a random network and a build whose policy
   targets are transposed (a coordinate bug) do not. The network was trained without symmetries (as the
   reference), so the random symmetry of each call makes the score noisy: 6 rounds instead of the preset's
   2. Measured on 5x5 with these seeds: 41.5 % correct, 26.8 % transposed, 6.0 % random (spec 8.1: 48.8 /
   27.4 / 3.0); over evaluator seeds 0-4, 41.3-44.6 / 26.8-30.8 / 4.2-7.1 (2 rounds: 38.7-49.4 /
   25.6-33.9 / 3.0-7.7); threshold 36 %.
2. Value: trained on finished games (random players, exact Tromp-Taylor results), the value head predicts
   the winner's sign on held-out late positions; with z stored from the mover's view instead of black's
   (the classic AlphaZero perspective bug) it does not. Measured: 77.8 % vs 54.4 %; threshold 70 %.
Perturbations are made on a copy of the examples, never by flags in the code."""

import numpy as np
import pytest
import torch

import data
import go
import metrics
import train
from config import PRESETS
from selfplay import NetworkEvaluator, RandomPlayer

CFG = PRESETS["tiny"]
POLICY_THRESHOLD = 0.36
PREDICTION_ROUNDS = 6
VALUE_THRESHOLD = 0.70
STEPS = 300


@pytest.fixture(scope="module")
def window(tiny_data, tmp_path_factory):
    """The GNU Go games' examples written as a training-window file and read back as the loop does."""
    records = data.read_sgf_dir(tiny_data, CFG.board_size)
    d = str(tmp_path_factory.mktemp("window"))
    data.write_examples(f"{d}/000000-gnugo.npz",
                        data.concat_examples([data.examples_from_record(r) for r in records]))
    return records, data.load_window(d, CFG.window_size)


def transposed_targets(ex):
    pi = ex["pi"].copy()
    n = CFG.board_size
    pi[:, :n * n] = pi[:, :n * n].reshape(-1, n, n).transpose(0, 2, 1).reshape(-1, n * n)
    return {**ex, "pi": pi}


def accuracy_after_training(records, examples, steps):
    torch.manual_seed(0)
    net = train.build_model(CFG)
    train.train_steps(net, train.make_optimizer(net, CFG), examples, steps, CFG, np.random.default_rng(0))
    return metrics.move_prediction_accuracy(NetworkEvaluator(net, seed=0), records, CFG.prediction_readouts,
                                            CFG.prediction_parallel, PREDICTION_ROUNDS)


def test_window_holds_every_position(window):
    records, ex = window
    assert len(ex["z"]) == sum(len(r.moves) for r in records) >= 60
    assert ex["planes"].shape[1:] == (17, 5, 5) and np.allclose(ex["pi"].sum(1), 1)


@pytest.mark.parametrize("build,steps,passes", [("correct", STEPS, True), ("transposed", STEPS, False),
                                                 ("random network", 0, False)])
def test_move_prediction_separates_correct_from_broken(window, build, steps, passes):
    records, ex = window
    if build == "transposed":
        ex = transposed_targets(ex)
    acc = accuracy_after_training(records, ex, steps)
    assert (acc >= POLICY_THRESHOLD) == passes, f"{build}: move prediction {acc:.3f}"


def random_game(seed):
    player = RandomPlayer(seed)
    pos = go.Position(CFG.board_size, komi=0.5)
    while not pos.is_game_over() and pos.n < pos.max_depth:
        pos = pos.play_move(player.select_move(pos))
    return data.GameRecord(size=pos.size, komi=0.5, result=pos.result_string(), moves=list(pos.recent))


@pytest.fixture(scope="module")
def value_data():
    records = [random_game(s) for s in range(160)]
    train_ex = data.concat_examples([data.examples_from_record(r) for r in records[:120]])
    held = []
    for r in records[120:]:
        e = data.examples_from_record(r)
        held.append({k: v[len(v) // 2:] for k, v in e.items()})  # the second half of each game
    return train_ex, data.concat_examples(held)


def mover_view(ex):
    mover = np.where(ex["planes"][:, 16, 0, 0] == 1, 1.0, -1.0).astype(np.float32)
    return {**ex, "z": ex["z"] * mover}


@pytest.mark.parametrize("build,passes", [("black's view", True), ("mover's view", False)])
def test_value_head_predicts_the_winner(value_data, build, passes):
    train_ex, held = value_data
    majority = max(np.mean(held["z"] > 0), np.mean(held["z"] < 0))
    assert majority < VALUE_THRESHOLD  # guessing one colour does not pass
    if build == "mover's view":
        train_ex = mover_view(train_ex)
    torch.manual_seed(0)
    net = train.build_model(CFG)
    train.train_steps(net, train.make_optimizer(net, CFG), train_ex, 400, CFG, np.random.default_rng(0))
    net.eval()
    with torch.no_grad():
        _, v = net(torch.from_numpy(held["planes"]).float())
    acc = float(np.mean(np.sign(v.numpy()) == held["z"]))
    assert (acc >= VALUE_THRESHOLD) == passes, f"{build}: winner predicted on {acc:.3f} of positions"
