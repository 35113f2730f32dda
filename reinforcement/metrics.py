"""The quality metric: move prediction on SGF games through MCTS (MLPerf v0.5 predict_games.py, spec 3.2).

For every round and every game, every position before each move (the empty board first) gets a fresh
search tree in two-player mode (no noise, most visited move), `readouts` simulations with `num_parallel`
leaves under virtual loss; a prediction is correct when it equals the move played. Accuracy = correct /
attempted over all predictions of all rounds (move-weighted, not a per-game mean). The network is passed in.
"""

import data
import mcts


def move_prediction_accuracy(network, records: list[data.GameRecord], readouts: int, num_parallel: int = 4,
                             rounds: int = 2, seed: int = 0) -> float:
    correct = attempted = 0
    for r in range(rounds):
        for rec in records:
            for pos, move in data.replay(rec):
                player = mcts.MCTSPlayer(network, readouts=readouts, num_parallel=num_parallel,
                                         two_player_mode=True, resign_threshold=None, seed=seed + r)
                player.initialize_game(pos)
                correct += int(player.suggest_move(pos) == move)
                attempted += 1
    return correct / max(attempted, 1)
