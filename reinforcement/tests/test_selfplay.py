"""Self-play and gating games: lockstep games batch their leaves yet play exactly as MCTSPlayer alone."""

import dataclasses

import numpy as np
import pytest
import torch

import go
import mcts
import selfplay
from config import PRESETS

CFG = dataclasses.replace(PRESETS["tiny"], selfplay_readouts=16, resign_threshold=-0.8)


class MaterialNet:
    """Deterministic: priors favour the centre a little; value = tanh(material / 4), black's view."""

    def __init__(self):
        self.batch_sizes = []

    def run_many(self, positions):
        self.batch_sizes.append(len(positions))
        n = positions[0].size
        r, c = np.divmod(np.arange(n * n), n)
        board_prior = 1.0 / (1 + abs(r - n // 2) + abs(c - n // 2))
        probs = np.append(board_prior, 0.2)
        probs = np.tile(probs / probs.sum(), (len(positions), 1)).astype(np.float32)
        values = np.array([np.tanh(int(p.board.sum()) / 4) for p in positions], dtype=np.float32)
        return probs, values


def sequential_game(network, seed, resign):
    """The plain MCTSPlayer loop (the reference's selfplay_mcts.play)."""
    player = mcts.MCTSPlayer(network, readouts=CFG.selfplay_readouts, num_parallel=CFG.parallel_readouts,
                             resign_threshold=CFG.resign_threshold if resign else None, seed=seed)
    player.initialize_game(go.Position(CFG.board_size, CFG.komi))
    while not player.root.is_done():
        player.search(noise=True)
        if player.should_resign():
            return player, "W+R" if player.root.position.to_play == go.BLACK else "B+R"
        player.play_move(player.pick_move())
    return player, player.root.position.result_string()


@pytest.mark.parametrize("resign", [True, False])
def test_lockstep_games_play_exactly_like_single_games(resign):
    seeds = [11, 12, 13]
    net = MaterialNet()
    games = selfplay.play_selfplay_games(net, CFG, seeds, [resign] * 3)
    assert max(net.batch_sizes) > CFG.parallel_readouts  # leaves of several games in one batch
    for seed, (ex, result) in zip(seeds, games):
        player, want = sequential_game(MaterialNet(), seed, resign)
        assert result == want
        assert len(ex["z"]) == len(player.searches_pi) == len(ex["planes"])
        assert np.allclose(ex["pi"], np.stack(player.searches_pi))
        z = 1.0 if result.startswith("B+") else -1.0
        assert (ex["z"] == z).all() and np.allclose(ex["pi"].sum(1), 1, atol=1e-5)


def test_match_game_and_tasks_run_with_a_real_network():
    import train

    state = train.build_model(CFG).state_dict()
    wins_black, wins_white = selfplay.gating_task(CFG, state, state, [(1, go.BLACK), (2, go.WHITE)])
    assert wins_black in (0, 1) and wins_white in (0, 1)
    ex, results = selfplay.selfplay_task(CFG, state, [5, 6], 0.05)
    assert len(results) == 2 and ex["planes"].shape[1:] == (17, 5, 5) and len(ex["pi"]) == len(ex["z"])
    # train.py --selfplay-device passes the device on: the same games wherever the network runs.
    ex_dev, results_dev = selfplay.selfplay_task(CFG, state, [5, 6], 0.05, "cpu")
    assert results_dev == results and all(np.array_equal(ex[k], ex_dev[k]) for k in ex)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_selfplay_device_cuda_without_cuda_is_a_usage_error(capsys):
    import train

    with pytest.raises(SystemExit) as e:
        train.main(["--selfplay-device", "cuda", "--config", "tiny"])
    assert e.value.code == 2
    assert "--selfplay-device cuda: no CUDA device is available" in capsys.readouterr().err
