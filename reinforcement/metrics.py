"""The quality metric: move prediction on SGF games through MCTS (MLPerf v0.5 predict_games.py, spec 3.2).

For every round and every game, every position before each move (the empty board first) gets a fresh
search tree in two-player mode (no noise, most visited move), `readouts` simulations with `num_parallel`
leaves under virtual loss; a prediction is correct when it equals the move played. Accuracy = correct /
attempted over all predictions of all rounds (move-weighted, not a per-game mean). The network is passed in.
The searches of LOCKSTEP_POSITIONS positions run together (mcts.search_many): each tree as alone, their
network calls shared.
"""

import data
import mcts

# Positions searched together: calls of up to 64 x num_parallel positions, and 64 trees of `readouts` nodes
# in memory at once (about 100 MB at 1,000 readouts on 9x9).
LOCKSTEP_POSITIONS = 64


def move_prediction_accuracy(network, records: list[data.GameRecord], readouts: int, num_parallel: int = 4,
                             rounds: int = 2, seed: int = 0) -> float:
    correct = attempted = 0
    cases = [(pos, move) for rec in records for pos, move in data.replay(rec)]
    for r in range(rounds):
        for start in range(0, len(cases), LOCKSTEP_POSITIONS):
            chunk = cases[start:start + LOCKSTEP_POSITIONS]
            players = []
            for pos, _ in chunk:
                player = mcts.MCTSPlayer(network, readouts=readouts, num_parallel=num_parallel,
                                         two_player_mode=True, resign_threshold=None, seed=seed + r)
                player.initialize_game(pos)
                players.append(player)
            mcts.search_many(players)
            correct += sum(int(p.pick_move() == move) for p, (_, move) in zip(players, chunk))
            attempted += len(chunk)
    return correct / max(attempted, 1)
