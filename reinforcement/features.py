"""Network input planes and the 8 board symmetries, in numpy (spec sections 1.2 and 1.3).

17 planes of N x N (PyTorch layout, channels first): plane 2i = stones of the player to move at time t-i,
plane 2i+1 = the opponent's stones at t-i, i = 0..7 (the current board first; when fewer moves exist the
oldest board is repeated; a pass is a history step with no change); plane 16 = all ones if black is to
move. The policy index is row * N + col with N * N = pass, so a symmetry moves the 81 board entries and
keeps the pass entry.
"""

import numpy as np

import go

NUM_PLANES = 17
NUM_SYMMETRIES = 8


def extract_features(position: go.Position) -> np.ndarray:
    """(17, N, N) uint8 planes of one position, from the side to move's point of view."""
    size = position.size
    boards = [position.board] + list(position.history[:go.HISTORY])
    boards += [boards[-1]] * (go.HISTORY + 1 - len(boards))
    stacked = np.stack(boards).reshape(go.HISTORY + 1, size, size)  # (8, N, N), newest first
    out = np.zeros((NUM_PLANES, size, size), dtype=np.uint8)
    out[0:16:2] = stacked == position.to_play
    out[1:16:2] = stacked == -position.to_play
    if position.to_play == go.BLACK:
        out[16] = 1
    return out


def apply_symmetry_planes(s: int, planes: np.ndarray) -> np.ndarray:
    """Symmetry s (0..7: s % 4 quarter turns, then a left-right flip when s >= 4) of (..., N, N) arrays."""
    out = np.rot90(planes, k=s % 4, axes=(-2, -1))
    if s >= 4:
        out = np.flip(out, axis=-1)
    return np.ascontiguousarray(out)


def invert_symmetry(s: int) -> int:
    """The symmetry undoing s: quarter turns turn back; a turn then a flip is its own inverse."""
    return (4 - s) % 4 if s < 4 else s


def apply_symmetry_policy(s: int, pi: np.ndarray, size: int) -> np.ndarray:
    """Symmetry s of policies (..., N * N + 1): the board part moves with the planes, pass stays."""
    board = pi[..., :size * size].reshape(pi.shape[:-1] + (size, size))
    moved = apply_symmetry_planes(s, board).reshape(pi.shape[:-1] + (size * size,))
    return np.concatenate([moved, pi[..., size * size:]], axis=-1)
