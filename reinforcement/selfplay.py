"""Players, the games of the loop, and the network as the search sees it.

A player is any object with `select_move(position) -> int | None` (a flat move, N * N = pass, None = resign):
RandomPlayer here (spec section 8's baseline), mcts.MCTSPlayer with a network; gtp.py and the games take a
player passed in. NetworkEvaluator wraps a model.DualNet for mcts.py: features, one random dihedral
symmetry per position (inverted on the policy), softmax (spec 1.3, Minigo's DualNetwork.run_many).
The *_task functions are what the loop's worker processes run (self-play, gating, move prediction).
"""

import os

import numpy as np
import torch

import data
import features
import go
import mcts
import metrics
import model as model_lib


def own_eyes(position: go.Position, color: int) -> np.ndarray:
    """0/1 per point: empty points whose every neighbour is a `color` stone (single-point eyes)."""
    board, nbrs = position.board, go.neighbors(position.size)
    out = np.zeros(position.size * position.size, dtype=np.int8)
    for p in np.flatnonzero(board == go.EMPTY):
        if all(board[q] == color for q in nbrs[p]):
            out[p] = 1
    return out


class RandomPlayer:
    """A uniformly random legal move that does not fill one of its own single-point eyes; passes when
    there is none, so two of them play a game to a finished position without dead stones inside eyes."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def select_move(self, position: go.Position) -> int:
        legal = position.all_legal_moves()[:-1] & (1 - own_eyes(position, position.to_play))
        moves = np.flatnonzero(legal)
        if len(moves) == 0:
            return position.pass_move
        return int(self.rng.choice(moves))


class NetworkEvaluator:
    """run_many(positions) -> (probs (B, N*N+1), values (B,), black's view) with the model in eval mode."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu",
                 random_symmetry: bool = True, seed: int | None = None):
        self.model = model
        self.device = torch.device(device)
        self.random_symmetry = random_symmetry
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def run_many(self, positions: list[go.Position]) -> tuple[np.ndarray, np.ndarray]:
        size = positions[0].size
        planes = np.stack([features.extract_features(p) for p in positions])  # (B, 17, N, N)
        syms = (self.rng.integers(0, features.NUM_SYMMETRIES, len(positions)) if self.random_symmetry
                else np.zeros(len(positions), dtype=np.int64))
        planes = np.stack([features.apply_symmetry_planes(int(s), x) for s, x in zip(syms, planes)])
        self.model.eval()
        logits, values = self.model(torch.from_numpy(planes).to(self.device, torch.float32))
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()  # (B, N*N+1), in the turned frame
        probs = np.stack([features.apply_symmetry_policy(features.invert_symmetry(int(s)), p, size)
                          for s, p in zip(syms, probs)])
        return probs, values.float().cpu().numpy()


def play_selfplay_game(network, cfg, seed: int, resign_enabled: bool) -> tuple[dict[str, np.ndarray], str]:
    """One self-play game (spec 1.5): noise before every move, sampled opening moves, tree reuse, resignation
    unless disabled for this game. Returns the training examples (one per move) and the SGF result string."""
    return play_selfplay_games(network, cfg, [seed], [resign_enabled])[0]


def play_selfplay_games(network, cfg, seeds: list[int], resign_enabled: list[bool]) -> list[tuple[dict, str]]:
    """Self-play games played in lockstep, one per seed: every move, the games in flight search together
    (mcts.search_many: each tree as MCTSPlayer.search alone, the leaves of all games in one network call per
    round, up to num_parallel x len(seeds) positions), then each resigns or plays its move. Each game is
    the plain loop of the reference's selfplay_mcts.play: noise before every move, `selfplay_readouts` more
    simulations, resignation check, move."""
    players = []
    for seed, resign in zip(seeds, resign_enabled):
        p = mcts.MCTSPlayer(network, readouts=cfg.selfplay_readouts, num_parallel=cfg.parallel_readouts,
                            resign_threshold=cfg.resign_threshold if resign else None, seed=seed)
        p.initialize_game(go.Position(cfg.board_size, cfg.komi))
        players.append(p)
    results: list[str | None] = [None] * len(players)
    active = list(range(len(players)))
    while True:
        for g in active:
            if players[g].root.is_done():
                results[g] = players[g].root.position.result_string()
        active = [g for g in active if results[g] is None]
        if not active:
            break
        mcts.search_many([players[g] for g in active], noise=True)
        for g in active:
            p = players[g]
            if p.should_resign():
                results[g] = "W+R" if p.root.position.to_play == go.BLACK else "B+R"
            else:
                p.play_move(p.pick_move())
    return [_examples(p, result, cfg) for p, result in zip(players, results)]


def _examples(player, result: str, cfg) -> tuple[dict[str, np.ndarray], str]:
    z = np.float32(1.0 if result.startswith("B+") else -1.0 if result.startswith("W+") else 0.0)
    planes = np.stack([features.extract_features(p) for p in player.positions]) if player.positions else \
        np.zeros((0, features.NUM_PLANES, cfg.board_size, cfg.board_size), np.uint8)
    pi = np.stack(player.searches_pi) if player.searches_pi else \
        np.zeros((0, cfg.board_size ** 2 + 1), np.float32)
    return {"planes": planes, "pi": pi, "z": np.full(len(pi), z, np.float32)}, result


def play_match_games(pairs: list[tuple[mcts.MCTSPlayer, mcts.MCTSPlayer]], cfg) -> list[int]:
    """Gating games, one per (black, white) pair of players in two-player mode (no noise, most visited move),
    each player keeping its own tree, played in lockstep: every move, the players to move in all games in
    flight search together (mcts.search_many: one network call per model per round). Returns each game's
    winner: go.BLACK or go.WHITE (a draw, possible only with integer komi, is 0)."""
    games = [{go.BLACK: black, go.WHITE: white} for black, white in pairs]
    positions = [go.Position(cfg.board_size, cfg.komi) for _ in games]
    for players, pos in zip(games, positions):
        for p in players.values():
            p.initialize_game(pos)
    winners: list[int | None] = [None] * len(games)
    active = list(range(len(games)))
    while True:
        for g in active:
            if positions[g].is_game_over() or positions[g].n >= positions[g].max_depth:
                winners[g] = positions[g].result()
        active = [g for g in active if winners[g] is None]
        if not active:
            return winners
        movers = [games[g][positions[g].to_play] for g in active]
        mcts.search_many(movers)
        for g, mover in zip(active, movers):
            if mover.should_resign():
                winners[g] = -positions[g].to_play
                continue
            move = mover.pick_move()
            for p in games[g].values():
                p.play_move(move)
            positions[g] = mover.root.position


# ---- Worker processes: one pool per run, the network weights sent with every task ----

_WORKER: dict = {}


def worker_threads(workers: int, local_processes: int = 1, cpus: int | None = None) -> int:
    """Torch threads of one worker: its share of this machine's CPUs, at least one.

    The reference ran NUM_PARALLEL_SELFPLAY = 16 workers on its 16 CPUs, one CPU each; left alone, each
    worker's OpenMP would use every core (16 x 16 threads thrashing). `local_processes` ranks on one
    machine (torchrun's LOCAL_WORLD_SIZE) each start `workers` workers."""
    cpus = cpus or len(os.sched_getaffinity(0))
    return max(1, cpus // (workers * local_processes))


def worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _network(cfg, state_dict, seed: int, device: str = "cpu") -> NetworkEvaluator:
    net = model_lib.DualNet(cfg.board_size, cfg.filters, cfg.fc_width, cfg.blocks, cfg.bn_momentum)
    net.load_state_dict(state_dict)
    return NetworkEvaluator(net.to(device), device, seed=seed)


def selfplay_task(cfg, state_dict, seeds: list[int], resign_disable_pct: float,
                  device: str = "cpu") -> tuple[dict, list[str]]:
    """Play one game per seed with the given weights, all in lockstep (play_selfplay_games):
    (concatenated examples, results). `device` runs the network's batched calls (train.py
    --selfplay-device); the tree search stays in this worker process."""
    resign = [np.random.default_rng(seed).random() >= resign_disable_pct for seed in seeds]
    games = play_selfplay_games(_network(cfg, state_dict, seeds[0], device), cfg, seeds, resign)
    return {k: np.concatenate([ex[k] for ex, _ in games]) for k in ("planes", "pi", "z")}, \
        [result for _, result in games]


def gating_task(cfg, new_state, best_state, games: list[tuple[int, int]], device: str = "cpu",
                resign: bool = True) -> tuple[int, int]:
    """Play (seed, colour of the new model) games, all in lockstep (play_match_games) with one network per
    model on `device`, eval_readouts per move; returns the new model's wins (as black, as white). The
    gating match (new against the best) resigns at eval_resign_threshold; the tiny preset's quality match
    (newest against generation 0) plays every game out (resign=False)."""
    new_net = _network(cfg, new_state, games[0][0], device)
    best_net = _network(cfg, best_state, games[0][0] + 1, device)
    threshold = cfg.eval_resign_threshold if resign else None

    def player(network, seed: int) -> mcts.MCTSPlayer:
        return mcts.MCTSPlayer(network, cfg.eval_readouts, cfg.parallel_readouts, threshold,
                               two_player_mode=True, seed=seed)

    pairs = []
    for seed, new_color in games:
        new, best = player(new_net, seed), player(best_net, seed + 1)
        pairs.append((new, best) if new_color == go.BLACK else (best, new))
    wins = {go.BLACK: 0, go.WHITE: 0}
    for (_, new_color), winner in zip(games, play_match_games(pairs, cfg)):
        wins[new_color] += int(winner == new_color)
    return wins[go.BLACK], wins[go.WHITE]


def prediction_task(cfg, state_dict, paths: list[str], round_seed: int,
                    device: str = "cpu") -> tuple[int, int]:
    """Move prediction (metrics.py) on some SGF files with the network on `device`: (correct, attempted)."""
    records = [data.read_sgf(p, size=cfg.board_size) for p in paths]
    attempted = sum(len(r.moves) for r in records)
    acc = metrics.move_prediction_accuracy(_network(cfg, state_dict, round_seed, device), records,
                                           cfg.prediction_readouts, cfg.prediction_parallel, rounds=1,
                                           seed=round_seed)
    return round(acc * attempted), attempted
