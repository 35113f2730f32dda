"""MCTS with fixed fake networks (Minigo tests/test_mcts.py style): it takes the obvious capture and makes
the obvious save for both colours (a value-perspective bug fails one colour), batches leaves under virtual
loss, adds Dirichlet noise, resigns, and follows the temperature schedule."""

import numpy as np
import pytest

import mcts
from go import BLACK, WHITE, Position, board_from_ascii


class MaterialNet:
    """Uniform priors; value = tanh((black stones - white stones) / 6), black's view, as the network's is."""

    def __init__(self):
        self.calls = 0
        self.batch_sizes = []

    def run_many(self, positions):
        self.calls += 1
        self.batch_sizes.append(len(positions))
        n = positions[0].size ** 2 + 1
        probs = np.full((len(positions), n), 1 / n, dtype=np.float32)
        values = np.array([np.tanh((np.sum(p.board == BLACK) - np.sum(p.board == WHITE)) / 6)
                           for p in positions], dtype=np.float32)
        return probs, values


class ConstantNet:
    def __init__(self, value, size=5):
        self.value = value

    def run_many(self, positions):
        n = positions[0].size ** 2 + 1
        return np.full((len(positions), n), 1 / n, dtype=np.float32), np.full(len(positions), self.value)


def position(text, to_play, swap_colors):
    board = board_from_ascii(text)
    if swap_colors:  # the same problem for the other colour
        board, to_play = -board, -to_play
    return Position(int(round(len(board) ** 0.5)), komi=0.5, board=board, to_play=to_play)


SAVE = """
    .OO..
    OXXO.
    .O...
    .....
    ....."""  # black's two stones have one liberty, (2,2): extend there


def search_move(pos, readouts, seed=0):
    player = mcts.MCTSPlayer(MaterialNet(), readouts=readouts, num_parallel=4, two_player_mode=True,
                             resign_threshold=None, seed=seed)
    player.initialize_game(pos)
    return player.suggest_move(pos)


@pytest.mark.parametrize("swap", [False, True])
def test_takes_the_obvious_capture(swap):
    # Two white stones at (0,1),(0,2) have one liberty left, (0,3); taking them is the only capture.
    pos = position("""
        XOO..
        .XXX.
        .....
        .....
        .....""", BLACK, swap)
    assert search_move(pos, readouts=150) == 3


@pytest.mark.parametrize("swap", [False, True])
def test_makes_the_obvious_save(swap):
    pos = position(SAVE, BLACK, swap)
    assert search_move(pos, readouts=600) == 12  # (2,2): otherwise the opponent takes two stones there


def test_virtual_loss_batches_distinct_leaves():
    net = MaterialNet()
    player = mcts.MCTSPlayer(net, readouts=16, num_parallel=8, two_player_mode=True, resign_threshold=None)
    player.initialize_game(Position(5))
    player.search()
    assert net.batch_sizes[0] == 1  # the root's expansion
    assert max(net.batch_sizes[1:]) == 8  # then 8 leaves at a time
    root = player.root
    assert root.N >= 17 and root.child_N.sum() == root.N - 1  # every visit but the root's own is below it
    assert all(node.losses_applied == 0 for node in root.children.values())  # virtual losses reverted
    assert root.child_N[:-1].max() <= 2  # virtual loss spread the first batches over different moves


def test_dirichlet_noise_and_alpha():
    assert mcts.dirichlet_alpha(9) == pytest.approx(0.03 * 361 / 81)
    player = mcts.MCTSPlayer(MaterialNet(), readouts=1, two_player_mode=False, seed=1)
    player.initialize_game(Position(9))
    player.search(readouts=0, noise=True)
    prior = player.root.child_prior
    assert prior.sum() == pytest.approx(1, abs=1e-5)
    assert not np.allclose(prior, player.root.original_prior)
    assert prior.min() >= 0.75 / 82 - 1e-6  # 0.75 of the uniform prior stays


def test_temperature_schedule():
    assert mcts.temperature_cutoff(9) == 6
    picks = set()
    for seed in range(8):
        player = mcts.MCTSPlayer(MaterialNet(), readouts=40, num_parallel=4, seed=seed)
        player.initialize_game(Position(5))
        picks.add(player.suggest_move(player.root.position))
    assert len(picks) > 1  # the opening move is sampled in proportion to visits
    player = mcts.MCTSPlayer(MaterialNet(), readouts=40, num_parallel=4, two_player_mode=True, seed=0)
    player.initialize_game(Position(5))
    move = player.suggest_move(player.root.position)
    assert player.root.child_N[move] == player.root.child_N.max()  # two-player mode: the most visited


def test_opening_moves_sampled_by_visits_pass_included():
    """The reference's cumulative sum runs over every child, pass last: pass is drawn at its share of the
    visits (a build that samples only board points never passes in the opening), unvisited moves never."""
    player = mcts.MCTSPlayer(MaterialNet(), readouts=8, num_parallel=4, seed=0)
    player.initialize_game(Position(5))
    player.root.child_N[:] = 0
    player.root.child_N[[3, 12, 25]] = [10, 20, 10]  # visits: C5 1/4, C3 1/2, pass 1/4
    picks = np.array([player.pick_move() for _ in range(4000)])
    assert set(picks) == {3, 12, 25}
    assert np.mean(picks == 25) == pytest.approx(0.25, abs=0.03)
    assert np.mean(picks == 12) == pytest.approx(0.5, abs=0.03)
    player.root.child_N[:] = 0
    player.root.child_N[25] = 5  # only pass was searched
    assert player.pick_move() == 25


def test_pi_targets_and_tree_reuse():
    player = mcts.MCTSPlayer(MaterialNet(), readouts=30, num_parallel=4, seed=0)
    player.initialize_game(Position(5))
    move = player.suggest_move(player.root.position)
    kept = player.root.child_N[move]
    player.play_move(move)
    assert len(player.searches_pi) == 1 and player.searches_pi[0].sum() == pytest.approx(1)
    assert player.root.N == kept  # the subtree of the played move is kept
    assert player.root.position.n == 1


@pytest.mark.parametrize("to_play", [BLACK, WHITE])
def test_resigns_when_lost_from_the_movers_view(to_play):
    # The network says black wins: white (only) should resign, whoever is to move in the tree.
    pos = Position(5, to_play=to_play)
    player = mcts.MCTSPlayer(ConstantNet(1.0), readouts=8, num_parallel=4, two_player_mode=True,
                             resign_threshold=-0.5)
    player.initialize_game(pos)
    move = player.select_move(pos)
    assert (move is None) == (to_play == WHITE)


def test_terminal_leaf_uses_the_true_score():
    # White passed; black is ahead on the board, so passing back ends the game with a win for black.
    board = board_from_ascii("""
        .XXO.
        XX.OO
        .XXO.
        XX.OO
        .XXO.""")  # black 13 points, white 10, dame (1,2) and (3,2)
    pos = Position(5, komi=0.5, board=board, to_play=WHITE).play_move(25)
    # The net thinks black is losing; the search must still see the winning double pass.
    player = mcts.MCTSPlayer(ConstantNet(-0.5), readouts=60, num_parallel=4, two_player_mode=True,
                             resign_threshold=None)
    player.initialize_game(pos)
    assert player.suggest_move(pos) == 25
