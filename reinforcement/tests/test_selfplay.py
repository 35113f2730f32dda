"""Self-play and gating games, and move prediction: searches in lockstep (mcts.search_many) batch their
leaves yet play exactly as MCTSPlayer alone."""

import dataclasses

import numpy as np
import pytest
import torch

import data
import features
import go
import mcts
import metrics
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


def test_selfplay_examples_pair_each_position_with_its_own_search_and_read_back_exactly(tmp_path):
    """Example i = (the planes of the position before move i, the search made there, the result from black's
    view), the same arrays after the window on disk: a pi shifted by one move, planes from the other
    colour's view, z from the mover's view or a dtype/plane-order change on the way to the trainer fail."""
    seed = 21
    (ex, result), = selfplay.play_selfplay_games(MaterialNet(), CFG, [seed], [False])
    player, _ = sequential_game(MaterialNet(), seed, False)  # the same game (test above), with its moves
    moves = [m.move for m in player.root.position.recent]
    assert len(moves) == len(ex["z"]) >= 10
    pos = go.Position(CFG.board_size, CFG.komi)
    for i, move in enumerate(moves):
        assert np.array_equal(ex["planes"][i], features.extract_features(pos)), i
        assert ex["pi"][i][move] > 0, i  # the move played was searched at this position
        if pos.n > mcts.temperature_cutoff(CFG.board_size):
            assert int(np.argmax(ex["pi"][i])) == move, i  # most visited = played after the opening
        pos = pos.play_move(move)
    assert pos.is_game_over() or pos.n >= pos.max_depth
    assert (ex["z"] == np.sign(pos.score())).all()  # black's view, every position, both colours to move
    assert {int(p[16, 0, 0]) for p in ex["planes"]} == {0, 1}
    data.write_examples(str(tmp_path / "000001-selfplay.npz"), ex)
    back = data.load_window(str(tmp_path), 10_000)
    for k, dtype in (("planes", np.uint8), ("pi", np.float32), ("z", np.float32)):
        assert back[k].dtype == dtype and np.array_equal(back[k], ex[k]), k


class LeaningNet(MaterialNet):
    """MaterialNet with priors that favour the last points: a second model that plays other moves."""

    def run_many(self, positions):
        probs, values = super().run_many(positions)
        probs = probs * np.linspace(0.5, 1.5, probs.shape[1], dtype=np.float32)
        return probs / probs.sum(1, keepdims=True), values


def test_search_many_builds_the_trees_of_searches_alone():
    rng = np.random.default_rng(0)
    positions = [go.Position(CFG.board_size, CFG.komi)]
    for _ in range(6):
        positions.append(positions[-1].play_move(int(rng.choice(np.flatnonzero(
            positions[-1].all_legal_moves()[:-1])))))
    nets = [MaterialNet(), LeaningNet()]

    def players():
        out = []
        for i, pos in enumerate(positions):
            p = mcts.MCTSPlayer(nets[i % 2], readouts=20 + 3 * i, num_parallel=4, two_player_mode=i % 3 == 0,
                                seed=i)
            p.initialize_game(pos)
            out.append(p)
        return out

    together, alone = players(), players()
    calls = len(nets[0].batch_sizes)
    mcts.search_many(together, noise=True)
    assert max(nets[0].batch_sizes[calls:]) > 4  # several trees' leaves in one call
    for p in alone:
        p.search(noise=True)
    for a, b in zip(together, alone):
        assert a.root.N == b.root.N and np.array_equal(a.root.child_N, b.root.child_N)
        assert np.array_equal(a.root.child_W, b.root.child_W) and a.pick_move() == b.pick_move()


def sequential_match(black, white):
    """The plain gating loop (the reference's play_match): one game, one search at a time."""
    players = {go.BLACK: black, go.WHITE: white}
    pos = go.Position(CFG.board_size, CFG.komi)
    for p in players.values():
        p.initialize_game(pos)
    while not (pos.is_game_over() or pos.n >= pos.max_depth):
        mover = players[pos.to_play]
        mover.search()
        if mover.should_resign():
            return -pos.to_play, pos
        move = mover.pick_move()
        for p in players.values():
            p.play_move(move)
        pos = mover.root.position
    return pos.result(), pos


def test_lockstep_match_games_play_exactly_like_single_games():
    def pairs(new, best):
        out = []
        for seed in range(4):
            a = mcts.MCTSPlayer(new, 12, CFG.parallel_readouts, -0.8, two_player_mode=True, seed=seed)
            b = mcts.MCTSPlayer(best, 12, CFG.parallel_readouts, -0.8, two_player_mode=True, seed=seed + 1)
            out.append((a, b) if seed % 2 == 0 else (b, a))
        return out

    new, best = MaterialNet(), LeaningNet()
    lockstep = pairs(new, best)
    winners = selfplay.play_match_games(lockstep, CFG)
    assert max(new.batch_sizes) > CFG.parallel_readouts
    for (black, white), winner in zip(pairs(MaterialNet(), LeaningNet()), winners):
        assert winner == sequential_match(black, white)[0]
    ends = [max(b.root.position.n, w.root.position.n) for b, w in lockstep]
    assert len(set(ends)) > 1 or len(set(winners)) > 1  # the games differ: not one game four times


def test_move_prediction_in_lockstep_counts_as_searches_alone(monkeypatch):
    rng = np.random.default_rng(3)
    records = []
    for _ in range(2):  # games of 5 moves: the network's own choice every other move, else a random one
        pos = go.Position(CFG.board_size, CFG.komi)
        for k in range(5):
            if k % 2:
                move = int(rng.choice(np.flatnonzero(pos.all_legal_moves()[:-1])))
            else:
                move = mcts.MCTSPlayer(MaterialNet(), readouts=10, num_parallel=4, two_player_mode=True,
                                       resign_threshold=None).suggest_move(pos)
            pos = pos.play_move(move)
        records.append(data.GameRecord(size=CFG.board_size, komi=CFG.komi, moves=list(pos.recent)))
    correct = attempted = 0
    alone = MaterialNet()
    for rec in records:
        for pos, move in data.replay(rec):
            p = mcts.MCTSPlayer(alone, readouts=10, num_parallel=4, two_player_mode=True,
                                resign_threshold=None)
            correct += int(p.suggest_move(pos) == move)
            attempted += 1
    assert 0 < correct < attempted
    monkeypatch.setattr(metrics, "LOCKSTEP_POSITIONS", 3)  # chunks of 3, 3, 3, 1 positions
    net = MaterialNet()
    assert metrics.move_prediction_accuracy(net, records, readouts=10, num_parallel=4, rounds=2) == \
        correct / attempted
    # Per round: 4 chunks x (1 root expansion + 3 rounds of leaves) = 16 calls instead of 10 x 4 = 40.
    assert max(net.batch_sizes) == 12 and len(net.batch_sizes) == 2 * 16 and len(alone.batch_sizes) == 40


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


@pytest.mark.parametrize("cpus,workers,local,threads", [(16, 16, 1, 1), (64, 16, 1, 4), (64, 16, 2, 2),
                                                        (2, 2, 1, 1), (2, 16, 1, 1), (8, 3, 1, 2)])
def test_worker_threads_share_the_cpus(cpus, workers, local, threads):
    # The reference's 16 workers on 16 CPUs: one thread each, never all cores each (16 x 16 threads).
    assert selfplay.worker_threads(workers, local, cpus) == threads


def _threads(_):
    return torch.get_num_threads()


def test_pool_workers_run_their_share_of_threads(monkeypatch):
    """train.py's pool: spawned workers (which would start with all cores) run the threads they are given,
    even when OMP_NUM_THREADS says otherwise."""
    import multiprocessing

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2, initializer=selfplay.worker_init, initargs=(1,)) as pool:
        assert pool.map(_threads, range(4)) == [1, 1, 1, 1]
