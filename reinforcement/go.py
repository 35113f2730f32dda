"""Go rules in plain numpy: the Minigo go.py of MLPerf v0.5 with the board size as a parameter.

Rules (spec section 1.1): black moves first; suicide is illegal; simple ko (a single-stone recapture
point is forbidden for one move); a pass is always legal; the game ends after two consecutive passes
(callers also stop at `max_depth`, 1.4 * N * N moves); area scoring Tromp-Taylor style, stones plus empty
regions bordered by one colour only, minus komi, no dead-stone removal.

Moves are flat indices: row * N + col (row 0 = top line, as in SGF), and N * N is the pass, the same index
the policy head uses; from_sgf/to_sgf/from_gtp/to_gtp convert. Nothing here imports torch or the network.

SGF points: two letters, column then row, from "a" at the top-left; "" (or "tt" up to 19x19) is a pass.
GTP vertices: a column letter that skips I, then the row number counted from the bottom; "pass".

    >>> p = Position(5).play_move(12)    # black at the centre of a 5x5 board
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

EMPTY, BLACK, WHITE = 0, 1, -1
GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


def from_sgf(s: str, size: int) -> int:
    if s == "" or (s == "tt" and size <= 19):
        return size * size
    if len(s) != 2:
        raise ValueError(f"bad SGF point {s!r}")
    col, row = ord(s[0]) - ord("a"), ord(s[1]) - ord("a")
    if not (0 <= col < size and 0 <= row < size):
        raise ValueError(f"SGF point {s!r} is off a {size}x{size} board")
    return row * size + col


def to_sgf(move: int, size: int) -> str:
    if move == size * size:
        return ""
    row, col = divmod(move, size)
    return chr(ord("a") + col) + chr(ord("a") + row)


def from_gtp(s: str, size: int) -> int:
    s = s.strip().upper()
    if s == "PASS":
        return size * size
    if len(s) < 2 or s[0] not in GTP_COLUMNS[:size] or not s[1:].isdigit():
        raise ValueError(f"bad GTP vertex {s!r}")
    col, number = GTP_COLUMNS.index(s[0]), int(s[1:])
    if not 1 <= number <= size:
        raise ValueError(f"GTP vertex {s!r} is off a {size}x{size} board")
    return (size - number) * size + col


def to_gtp(move: int, size: int) -> str:
    if move == size * size:
        return "pass"
    row, col = divmod(move, size)
    return f"{GTP_COLUMNS[col]}{size - row}"


HISTORY = 7  # previous boards kept for the 17 input planes (spec 1.2: current board + 7)


class IllegalMove(Exception):
    """A move the rules forbid (occupied point, suicide, ko retake, off the board)."""


class PlayerMove(NamedTuple):
    color: int  # BLACK or WHITE
    move: int  # flat index, N * N = pass


@functools.cache
def neighbors(size: int) -> tuple[tuple[int, ...], ...]:
    """neighbors(N)[p]: the flat indices of the up to 4 points next to p."""
    out = []
    for p in range(size * size):
        r, c = divmod(p, size)
        out.append(tuple(rr * size + cc for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                         if 0 <= rr < size and 0 <= cc < size))
    return tuple(out)


def group_at(board: np.ndarray, size: int, p: int) -> tuple[list[int], set[int]]:
    """The stones of the chain through p and its liberties (board is flat, length N * N)."""
    color = board[p]
    nbrs = neighbors(size)
    stones, libs, stack, seen = [], set(), [p], {p}
    while stack:
        q = stack.pop()
        stones.append(q)
        for r in nbrs[q]:
            if board[r] == EMPTY:
                libs.add(r)
            elif board[r] == color and r not in seen:
                seen.add(r)
                stack.append(r)
    return stones, libs


def chain_liberties(board: np.ndarray, size: int) -> np.ndarray:
    """For every stone, the liberty count of its chain (0 on empty points). Shape (N * N,)."""
    out = np.zeros(size * size, dtype=np.int32)
    done = np.zeros(size * size, dtype=bool)
    for p in np.flatnonzero(board):
        if not done[p]:
            stones, libs = group_at(board, size, p)
            done[stones] = True
            out[stones] = len(libs)
    return out


def area_counts(board: np.ndarray, size: int) -> tuple[int, int]:
    """(black, white) area: stones plus empty regions that touch only that colour (Tromp-Taylor)."""
    black = int(np.sum(board == BLACK))
    white = int(np.sum(board == WHITE))
    nbrs = neighbors(size)
    seen = np.zeros(size * size, dtype=bool)
    for p in np.flatnonzero(board == EMPTY):
        if seen[p]:
            continue
        region, borders, stack = [], set(), [p]
        seen[p] = True
        while stack:
            q = stack.pop()
            region.append(q)
            for r in nbrs[q]:
                if board[r] == EMPTY:
                    if not seen[r]:
                        seen[r] = True
                        stack.append(r)
                else:
                    borders.add(int(board[r]))
        if borders == {BLACK}:
            black += len(region)
        elif borders == {WHITE}:
            white += len(region)
    return black, white


def board_from_ascii(text: str) -> np.ndarray:
    """A square board drawn as rows of X (black), O (white) and . (empty); blank lines and spaces ignored.

    Returns the flat int8 board, row 0 = the first line drawn (the top, as in SGF)."""
    rows = [line.replace(" ", "") for line in text.strip().splitlines() if line.strip()]
    size = len(rows)
    if any(len(r) != size for r in rows):
        raise ValueError(f"board is not square: {[len(r) for r in rows]} columns in {size} rows")
    table = {"X": BLACK, "O": WHITE, ".": EMPTY}
    return np.array([table[ch] for r in rows for ch in r], dtype=np.int8)


class Position:
    """A Go position: the board, whose turn it is, the ko point and the recent history.

    Immutable in use: play_move returns a new Position (Minigo's mutate=False default)."""

    def __init__(self, size: int = 9, komi: float = 7.5, board: np.ndarray | None = None,
                 to_play: int = BLACK, n: int = 0, ko: int | None = None,
                 recent: tuple[PlayerMove, ...] = (), history: tuple[np.ndarray, ...] = (),
                 caps: tuple[int, int] = (0, 0)):
        self.size = size
        self.komi = komi
        self.board = np.zeros(size * size, dtype=np.int8) if board is None else board.astype(np.int8)
        if self.board.shape != (size * size,):
            raise ValueError(f"board has shape {self.board.shape}, expected ({size * size},)")
        self.to_play = to_play
        self.n = n  # moves played (passes count)
        self.ko = ko  # the point the side to move may not play now, or None
        self.recent = recent  # every PlayerMove so far
        self.history = history  # previous boards, newest first, at most HISTORY
        self.caps = caps  # stones captured by (black, white)

    @property
    def pass_move(self) -> int:
        return self.size * self.size

    @property
    def max_depth(self) -> int:
        """Move count at which search and self-play stop a game (spec 1.1: n >= 1.4 * N * N)."""
        return int(1.4 * self.size * self.size) + 1

    def copy(self) -> Position:
        return Position(self.size, self.komi, self.board.copy(), self.to_play, self.n, self.ko,
                        self.recent, self.history, self.caps)

    def is_game_over(self) -> bool:
        """Two consecutive passes."""
        return (len(self.recent) >= 2 and self.recent[-1].move == self.pass_move
                and self.recent[-2].move == self.pass_move)

    def check_move(self, move: int, color: int | None = None) -> None:
        """Raise IllegalMove with the reason if `move` is not legal for `color` (default: side to move)."""
        color = self.to_play if color is None else color
        if move == self.pass_move:
            return
        if not 0 <= move < self.pass_move:
            raise IllegalMove(f"move {move} is off a {self.size}x{self.size} board")
        if self.board[move] != EMPTY:
            raise IllegalMove("point is occupied")
        if move == self.ko and color == self.to_play:
            raise IllegalMove("ko: the stone just captured may not be retaken at once")
        board = self.board.copy()
        board[move] = color
        for q in neighbors(self.size)[move]:
            if board[q] == -color and not group_at(board, self.size, q)[1]:
                return  # captures something, so it has a liberty
        if not group_at(board, self.size, move)[1]:
            raise IllegalMove("suicide")

    def is_move_legal(self, move: int) -> bool:
        try:
            self.check_move(move)
        except IllegalMove:
            return False
        return True

    def all_legal_moves(self) -> np.ndarray:
        """0/1 array of length N * N + 1 (pass last) of the legal moves of the side to move."""
        size, color = self.size, self.to_play
        board = self.board
        libs = chain_liberties(board, size)
        nbrs = neighbors(size)
        legal = np.zeros(size * size + 1, dtype=np.int8)
        legal[-1] = 1
        for p in np.flatnonzero(board == EMPTY):
            if p == self.ko:
                continue
            for q in nbrs[p]:
                # An empty neighbour, a friendly chain with another liberty, or an enemy chain in atari
                # (captured by this move) each leave the new stone a liberty.
                if board[q] == EMPTY or (board[q] == color and libs[q] > 1) or (board[q] == -color
                                                                                   and libs[q] == 1):
                    legal[p] = 1
                    break
        return legal

    def play_move(self, move: int, color: int | None = None) -> Position:
        """The position after `color` (default: side to move) plays `move`; raises IllegalMove.

        Playing out of turn (e.g. SGF setup or a GTP `play` of the other colour) is allowed; the side to
        move becomes the opponent of `color`."""
        color = self.to_play if color is None else color
        self.check_move(move, color)
        pos = self.copy()
        pos.history = (self.board,) + self.history[:HISTORY - 1]
        pos.n = self.n + 1
        pos.recent = self.recent + (PlayerMove(color, move),)
        pos.to_play = -color
        pos.ko = None
        if move == self.pass_move:
            return pos
        board = pos.board
        board[move] = color
        captured = []
        for q in neighbors(self.size)[move]:
            if board[q] == -color:
                stones, libs = group_at(board, self.size, q)
                if not libs:
                    board[stones] = EMPTY
                    captured.extend(stones)
        stones, libs = group_at(board, self.size, move)
        if len(captured) == 1 and len(stones) == 1 and libs == {captured[0]}:
            pos.ko = captured[0]  # a lone stone that took a lone stone: retaking at once is ko
        b, w = self.caps
        pos.caps = (b + len(captured), w) if color == BLACK else (b, w + len(captured))
        return pos

    def score(self) -> float:
        """Area score from black's view: black area - white area - komi."""
        black, white = area_counts(self.board, self.size)
        return black - white - self.komi

    def result(self) -> int:
        """+1 black wins, -1 white wins, 0 a draw (integer komi only)."""
        return int(np.sign(self.score()))

    def result_string(self) -> str:
        s = self.score()
        if s > 0:
            return f"B+{s:g}"
        if s < 0:
            return f"W+{-s:g}"
        return "0"

    def __str__(self) -> str:
        """The board with GTP coordinates (columns skip I, row 1 at the bottom)."""
        letters = "ABCDEFGHJKLMNOPQRSTUVWXYZ"[:self.size]
        chars = {BLACK: "X", WHITE: "O", EMPTY: "."}
        lines = ["   " + " ".join(letters)]
        for r in range(self.size):
            row = " ".join(chars[int(v)] for v in self.board[r * self.size:(r + 1) * self.size])
            lines.append(f"{self.size - r:2d} {row} {self.size - r:2d}")
        lines.append(lines[0])
        lines.append(f"to play: {'black' if self.to_play == BLACK else 'white'}, move {self.n}, "
                     f"captures B {self.caps[0]} W {self.caps[1]}, komi {self.komi:g}")
        return "\n".join(lines)
