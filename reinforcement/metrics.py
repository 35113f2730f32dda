"""The quality metric: move prediction on SGF games through MCTS (MLPerf v0.5 predict_games.py, spec 3.2).

For every round and every game, every position before each move (the empty board first) gets a fresh
search tree in two-player mode (no noise, most visited move), `readouts` simulations with `num_parallel`
leaves under virtual loss; a prediction is correct when it equals the move played. Accuracy = correct /
attempted over all predictions of all rounds (move-weighted, not a per-game mean). The network is passed in.
policy_lift is the policy network's share of the same task without search (the tiny preset's policy check).
The searches of LOCKSTEP_POSITIONS positions run together (mcts.search_many): each tree as alone, their
network calls shared.
"""

import numpy as np
import torch

import data
import features
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


@torch.no_grad()
def policy_lift(model: torch.nn.Module, records: list[data.GameRecord]) -> float:
    """How much better than chance the policy network alone predicts the games' moves: the mean probability
    it gives to the move played (no search, the board as it is: no random symmetry, so no randomness;
    renormalised over the legal moves, pass included), divided by the same mean for a uniform pick among the
    legal moves. 1.0 = no better than a uniform policy; a network trained to a uniform policy target scores
    about 1.0 whatever its value head, so this is the policy's half of the tiny preset's stop rule (README,
    "The tiny loop learns"). Not averaged over the 8 symmetries: the network is trained on the board as it
    is (no augmentation, as the reference). Neither form catches a policy trained on transposed targets on
    the tiny GNU Go games (6.1 here, 4.9 averaged, against 18.2 correct): 23 % of their moves lie on the
    diagonal. Runs the model on its own device in eval mode, all positions of all records in one call."""
    cases = [(pos, move) for rec in records for pos, move in data.replay(rec)]
    if not cases:
        raise ValueError("policy_lift: the games have no moves")
    planes = np.stack([features.extract_features(pos) for pos, _ in cases])  # (P, 17, N, N)
    legal = np.stack([pos.all_legal_moves() for pos, _ in cases]).astype(np.float64)  # (P, N*N+1)
    moves = np.array([move for _, move in cases])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits = model(torch.from_numpy(planes).to(device, torch.float32))[0]
    model.train(was_training)
    probs = torch.softmax(logits.double(), dim=1).cpu().numpy() * legal  # (P, N*N+1)
    probs /= probs.sum(axis=1, keepdims=True)
    played = probs[np.arange(len(moves)), moves]  # (P,)
    return float(played.mean() / (1.0 / legal.sum(axis=1)).mean())
