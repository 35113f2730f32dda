"""bench.py: the self-play measurement plays the folder's own lockstep games and reports a sane JSON line."""

import dataclasses
import json

import torch

import bench
import mcts
from config import PRESETS
from model import DualNet

TINY = PRESETS["tiny"]
REAL_PLAYER = mcts.MCTSPlayer


def tiny_net():
    torch.manual_seed(0)
    return DualNet(TINY.board_size, TINY.filters, TINY.fc_width, TINY.blocks, TINY.bn_momentum)


def test_selfplay_measurement_counts_moves_and_batches_across_games():
    r = bench.measure_selfplay(TINY, tiny_net(), torch.device("cpu"), games=3, moves=2)
    assert mcts.MCTSPlayer is REAL_PLAYER  # the real player is back
    assert r["moves"] == 6 and r["games"] == 3 and r["readouts"] == TINY.selfplay_readouts
    assert r["positions_per_s"] > 0 and r["evaluations_per_s"] > r["positions_per_s"]
    # One call per lockstep step: the leaves of all 3 games (up to 8 each) together.
    assert TINY.parallel_readouts < r["max_batch"] <= 3 * TINY.parallel_readouts
    assert r["network_calls"] <= r["evaluations"] <= r["network_calls"] * r["max_batch"]
    # The time cap ends the games at the first move after it.
    r = bench.measure_selfplay(TINY, tiny_net(), torch.device("cpu"), games=2, moves=50, seconds=0)
    assert r["moves"] == 1 and mcts.MCTSPlayer is REAL_PLAYER


def test_selfplay_games_that_end_before_the_budget():
    cfg = dataclasses.replace(TINY, selfplay_readouts=2)  # short searches: both games end by themselves
    r = bench.measure_selfplay(cfg, tiny_net(), torch.device("cpu"), games=2, moves=1000)
    assert 2 <= r["moves"] < 2000 and r["positions_per_s"] > 0


def test_bench_prints_a_selfplay_line_at_the_reference_settings(capsys):
    args = ["--device", "cpu", "--steps", "1"]
    assert bench.main([*args, "--selfplay-games", "2", "--selfplay-moves", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["mode"] for r in lines] == ["train", "inference", "selfplay"]
    sp = lines[2]
    assert sp["benchmark"] == "reinforcement" and sp["device"] == "cpu"
    assert sp["games"] == 2 and sp["moves"] == 2 and sp["readouts"] == 200 and sp["virtual_losses"] == 8
    assert sp["samples_per_s"] > 0 and sp["tflops"] > 0 and 1 <= sp["batch_size"] <= sp["max_batch"] <= 16
    assert bench.main([*args, "--selfplay-games", "0"]) == 0  # 0 skips self-play
    modes = [json.loads(line)["mode"] for line in capsys.readouterr().out.splitlines()]
    assert modes == ["train", "inference"]
