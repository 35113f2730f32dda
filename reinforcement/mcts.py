"""Monte Carlo tree search with PUCT, virtual loss, Dirichlet noise, resignation and temperature (spec 1.5).

A port of the MLPerf v0.5 Minigo mcts.py and strategies.py (MCTSPlayer) with the board size taken from the
position. It never imports the network: the player is given any object with

    run_many(positions) -> (probs (B, N*N+1) float, values (B,) float, value from BLACK's view)

Notation of the AlphaGo Zero paper: N visit counts, W total values, Q = W / (1 + N) (Minigo's form), P the
priors, U = c_puct * sqrt(1 + N_parent) * P / (1 + N_child). Selection maximises Q * to_play + U, so every
node's W stays from black's point of view and the side to move flips the sign.

    player = MCTSPlayer(network, readouts=200, num_parallel=8)
    player.initialize_game(go.Position(9))
    move = player.suggest_move(player.root.position); player.play_move(move)
"""

from __future__ import annotations

import math

import numpy as np

import go

C_PUCT = 1.38  # mcts.py @ v0.5
DIRICHLET_NOISE_WEIGHT = 0.25  # P <- 0.75 P + 0.25 Dir(alpha)


def dirichlet_alpha(size: int) -> float:
    """0.03 * 361 / N^2 (0.134 at 9x9): the 19x19 AlphaGo Zero alpha scaled by the number of points."""
    return 0.03 * 361 / (size * size)


def temperature_cutoff(size: int) -> int:
    """Moves sampled by visit count while position.n <= N^2 // 12 (6 at 9x9), argmax after."""
    return size * size // 12


class _Root:
    """The parent of a root node: holds its N and W (Minigo's DummyNode)."""

    def __init__(self, n_moves: int):
        self.parent = None
        self.child_N = np.zeros(n_moves, dtype=np.float32)
        self.child_W = np.zeros(n_moves, dtype=np.float32)


class MCTSNode:
    """A node of the search tree; its own N and W live in the parent's child arrays (one numpy op per
    selection step instead of a Python loop over children)."""

    def __init__(self, position: go.Position, fmove: int | None = None, parent: MCTSNode | None = None):
        n_moves = position.size * position.size + 1
        self.parent = parent if parent is not None else _Root(n_moves)
        self.fmove = fmove  # the move that led here (index in the parent's arrays)
        self.position = position
        self.is_expanded = False
        self.losses_applied = 0
        self.illegal_moves = 1 - position.all_legal_moves().astype(np.float32)
        self.child_N = np.zeros(n_moves, dtype=np.float32)
        self.child_W = np.zeros(n_moves, dtype=np.float32)
        self.original_prior = np.zeros(n_moves, dtype=np.float32)
        self.child_prior = np.zeros(n_moves, dtype=np.float32)
        self.children: dict[int, MCTSNode] = {}

    @property
    def _index(self) -> int:
        return 0 if self.fmove is None else self.fmove

    @property
    def N(self) -> float:
        return self.parent.child_N[self._index]

    @N.setter
    def N(self, value: float) -> None:
        self.parent.child_N[self._index] = value

    @property
    def W(self) -> float:
        return self.parent.child_W[self._index]

    @W.setter
    def W(self, value: float) -> None:
        self.parent.child_W[self._index] = value

    @property
    def Q(self) -> float:
        return self.W / (1 + self.N)

    @property
    def Q_perspective(self) -> float:
        """Q from the side to move's point of view."""
        return self.Q * self.position.to_play

    def child_action_score(self, c_puct: float = C_PUCT) -> np.ndarray:
        child_Q = self.child_W / (1 + self.child_N)
        child_U = c_puct * math.sqrt(1 + self.N) * self.child_prior / (1 + self.child_N)
        return child_Q * self.position.to_play + child_U - 1000 * self.illegal_moves

    def is_done(self) -> bool:
        """Game over: two passes or the depth cap (spec 1.1)."""
        return self.position.is_game_over() or self.position.n >= self.position.max_depth

    def maybe_add_child(self, fmove: int) -> MCTSNode:
        if fmove not in self.children:
            self.children[fmove] = MCTSNode(self.position.play_move(fmove), fmove, self)
        return self.children[fmove]

    def select_leaf(self, c_puct: float = C_PUCT) -> MCTSNode:
        """Walk down by max(Q * to_play + U), counting a visit at every node on the way."""
        current = self
        pass_move = self.position.pass_move
        while True:
            current.N += 1
            if not current.is_expanded:
                return current
            # The pass hack: after a pass, look at the answering pass first, so a search that is ahead
            # does not lose by passing into a lost count or play on after a winning double pass.
            recent = current.position.recent
            if recent and recent[-1].move == pass_move and current.child_N[pass_move] == 0:
                current = current.maybe_add_child(pass_move)
                continue
            current = current.maybe_add_child(int(np.argmax(current.child_action_score(c_puct))))

    def add_virtual_loss(self, up_to: MCTSNode) -> None:
        """Count this path as a loss for the player choosing it, so parallel selections spread out."""
        self.losses_applied += 1
        self.W += self.position.to_play  # a "win" for the node's side to move = a loss for its parent
        if self.parent is not None and self is not up_to and isinstance(self.parent, MCTSNode):
            self.parent.add_virtual_loss(up_to)

    def revert_virtual_loss(self, up_to: MCTSNode) -> None:
        self.losses_applied -= 1
        self.W -= self.position.to_play
        if self.parent is not None and self is not up_to and isinstance(self.parent, MCTSNode):
            self.parent.revert_virtual_loss(up_to)

    def revert_visits(self, up_to: MCTSNode) -> None:
        """Undo the visit counts of a selection whose leaf was already expanded (a batched duplicate)."""
        self.N -= 1
        if self is not up_to and isinstance(self.parent, MCTSNode):
            self.parent.revert_visits(up_to)

    def incorporate_results(self, move_probabilities: np.ndarray, value: float, up_to: MCTSNode) -> None:
        if self.is_expanded:
            self.revert_visits(up_to)
            return
        self.is_expanded = True
        self.original_prior = self.child_prior = np.asarray(move_probabilities, dtype=np.float32)
        # Every child starts with the parent's value as W ("init Q to parent"), so a winning side does not
        # explore a single move and a losing side every move.
        self.child_W = np.full(self.child_W.shape, value, dtype=np.float32)
        self.backup_value(value, up_to)

    def backup_value(self, value: float, up_to: MCTSNode) -> None:
        self.W += value
        if self is not up_to and isinstance(self.parent, MCTSNode):
            self.parent.backup_value(value, up_to)

    def inject_noise(self, rng: np.random.Generator, alpha: float | None = None) -> None:
        alpha = dirichlet_alpha(self.position.size) if alpha is None else alpha
        noise = rng.dirichlet([alpha] * len(self.child_prior)).astype(np.float32)
        self.child_prior = self.child_prior * (1 - DIRICHLET_NOISE_WEIGHT) + noise * DIRICHLET_NOISE_WEIGHT

    def children_as_pi(self, squash: bool = False) -> np.ndarray:
        """The training target: visit counts, normalised (raised to 0.95 first in the opening)."""
        probs = self.child_N.astype(np.float64)
        if squash:
            probs = probs ** 0.95
        total = probs.sum()
        if total == 0:
            return np.full(len(probs), 1 / len(probs), dtype=np.float32)
        return (probs / total).astype(np.float32)


class MCTSPlayer:
    """Chooses moves by search with a network passed in (Minigo's strategies.MCTSPlayer).

    two_player_mode (gating, prediction, GTP): no noise, always the most visited move, no training data.
    Self-play: Dirichlet noise at the root before every move, moves sampled by visit count while
    position.n <= temperature_cutoff, and the search distribution of every move kept as the target pi."""

    def __init__(self, network, readouts: int = 200, num_parallel: int = 8, resign_threshold: float = -0.95,
                 two_player_mode: bool = False, c_puct: float = C_PUCT, seed: int | None = None,
                 reuse_tree: bool = True):
        self.network = network
        self.readouts = readouts
        self.num_parallel = num_parallel
        self.resign_threshold = resign_threshold
        self.two_player_mode = two_player_mode
        self.c_puct = c_puct
        self.reuse_tree = reuse_tree
        self.rng = np.random.default_rng(seed)
        self.root: MCTSNode | None = None
        self.searches_pi: list[np.ndarray] = []
        self.positions: list[go.Position] = []

    def initialize_game(self, position: go.Position) -> None:
        self.root = MCTSNode(position)
        self.searches_pi = []
        self.positions = []

    def collect_leaves(self) -> list[MCTSNode]:
        """The selection half of one round of search: up to num_parallel leaves (2x tries) to evaluate
        together, left under virtual loss; a finished game found on the way backs up its true result."""
        leaves = []
        failsafe = 0
        while len(leaves) < self.num_parallel and failsafe < self.num_parallel * 2:
            failsafe += 1
            leaf = self.root.select_leaf(self.c_puct)
            if leaf.is_done():
                # A finished game backs up its true result instead of a network value.
                leaf.backup_value(1.0 if leaf.position.score() > 0 else -1.0, up_to=self.root)
                continue
            leaf.add_virtual_loss(up_to=self.root)
            leaves.append(leaf)
        return leaves

    def incorporate(self, leaves: list[MCTSNode], probs, values) -> None:
        """The backup half of a round: the network's answers for collect_leaves' leaves."""
        for leaf, p, v in zip(leaves, probs, values):
            leaf.revert_virtual_loss(up_to=self.root)
            leaf.incorporate_results(p, float(v), up_to=self.root)

    def search(self, readouts: int | None = None, noise: bool = False) -> None:
        """`readouts` more simulations from the root (the reference's "additional" readouts): search_many
        with this player alone."""
        search_many([self], readouts, noise)

    def should_resign(self) -> bool:
        return self.resign_threshold is not None and self.root.Q_perspective < self.resign_threshold

    def pick_move(self) -> int:
        """Most visited move, or (self-play opening) a move sampled in proportion to visits, pass included.

        As strategies.MCTSPlayerMixin.pick_move @ v0.5: the cumulative sum runs over all N * N + 1 children,
        pass last, so a pass is drawn as often as its share of the visits. side="right" never lands on a
        child with no visits (the reference's searchsorted(side="left") could, when the uniform draw is
        exactly 0.0 and the first children are unvisited; its assert names that case)."""
        n_visits = self.root.child_N
        if self.two_player_mode or self.root.position.n > temperature_cutoff(self.root.position.size):
            return int(np.argmax(n_visits))
        cdf = np.cumsum(n_visits, dtype=np.float64)  # (N*N+1,), pass last
        if cdf[-1] <= 0:  # no search yet
            return int(np.argmax(n_visits))
        return int(np.searchsorted(cdf / cdf[-1], self.rng.random(), side="right").clip(0, len(cdf) - 1))

    def suggest_move(self, position: go.Position) -> int:
        if self.root is None or not self.reuse_tree or self.root.position is not position:
            self.initialize_game(position)
        self.search(noise=not self.two_player_mode)
        return self.pick_move()

    def select_move(self, position: go.Position) -> int | None:
        """The player interface of gtp.py and selfplay.py: a move, or None to resign."""
        move = self.suggest_move(position)
        if self.should_resign():
            return None
        return move

    def play_move(self, move: int) -> None:
        """Advance the root (keeping the subtree of the move) and record the search target pi."""
        if not self.two_player_mode:
            squash = self.root.position.n < temperature_cutoff(self.root.position.size)
            self.searches_pi.append(self.root.children_as_pi(squash))
            self.positions.append(self.root.position)
        child = self.root.maybe_add_child(move)
        n, w = child.N, child.W
        child.parent = _Root(len(child.child_N))  # detach: the old tree can be freed
        child.fmove = None
        child.N, child.W = n, w
        self.root = child


def search_many(players: list[MCTSPlayer], readouts: int | None = None, noise: bool = False) -> None:
    """MCTSPlayer.search for several players at once, each in its own tree: `readouts` more simulations
    (default: each player's own count) from every root. Each tree goes through the steps of a search alone:
    the root expanded first (so that even the first move gets noise), noise if asked, then rounds of
    num_parallel leaves under virtual loss until the root has its visits. Only the network calls are
    shared: every round, the leaves of all players that hold the same network go to it in one run_many
    call (self-play and gating games in lockstep, the positions of move prediction), up to
    num_parallel x len(players) positions per call instead of num_parallel."""
    fresh = [(p, [p.root.select_leaf(p.c_puct)]) for p in players if not p.root.is_expanded]
    for (p, (leaf,)), (probs, values) in zip(fresh, _evaluate(fresh)):
        leaf.incorporate_results(probs[0], float(values[0]), up_to=p.root)
    if noise:
        for p in players:
            p.root.inject_noise(p.rng)
    targets = [p.root.N + (p.readouts if readouts is None else readouts) for p in players]
    active = [(p, t) for p, t in zip(players, targets) if p.root.N < t]
    while active:
        requests = [(p, p.collect_leaves()) for p, _ in active]
        for (p, leaves), (probs, values) in zip(requests, _evaluate(requests)):
            p.incorporate(leaves, probs, values)
        active = [(p, t) for p, t in active if p.root.N < t]


def _evaluate(requests: list[tuple[MCTSPlayer, list[MCTSNode]]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(probs (n, N*N+1), values (n,)) for each (player, n leaves) request: one run_many call per network
    held by the players (the leaves of every request on it, in order); an empty request gets empty arrays."""
    answers: list = [(np.zeros((0, 0), np.float32), np.zeros(0, np.float32))] * len(requests)
    by_network: dict[int, list[int]] = {}
    for i, (player, leaves) in enumerate(requests):
        if leaves:
            by_network.setdefault(id(player.network), []).append(i)
    for indices in by_network.values():
        network = requests[indices[0]][0].network
        probs, values = network.run_many([leaf.position for i in indices for leaf in requests[i][1]])
        k = 0
        for i in indices:
            n = len(requests[i][1])
            answers[i] = (probs[k:k + n], values[k:k + n])
            k += n
    return answers
