"""Game records on disk: an SGF (FF[4], GM[1] Go) reader and writer; setup stones, moves, komi, result.

Reading follows the main line (the first variation at every branch), checks every property name against
the FF[4] list, the board size against the expected one, and replays the moves through go.py, so a bad
file fails with one SGFError naming the file, the move and the problem. Writing produces the reference
format (spec section 2): `(;GM[1]FF[4]SZ[9]KM[7.5]RU[Chinese]...RE[B+8.5];B[cc];W[gg]...)`, pass = `[]`.

    rec = read_sgf("data/9x9_pro_YKSH.sgf", size=9)
    for position, move in replay(rec): ...     # every position before each move, with that move
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

import features
import go

# Every property of the FF[4] standard (red.bean.com/sgf/properties.html), Go-specific ones included.
KNOWN_PROPERTIES = frozenset("""
    B KO MN W  AB AE AW PL  C DM GB GW HO N UC V  BM DO IT TE  AR CR DD LB LN MA SL SQ TR
    AP CA FF GM ST SZ  AN BR BT CP DT EV GN GC ON OT PB PC PW RE RO RU SO TM US WR WT
    BL OB OW WL  FG PM VW  HA KM TB TW""".split())


class SGFError(ValueError):
    """A malformed or illegal game record; the message names the file and the move."""


@dataclass
class GameRecord:
    size: int
    komi: float
    result: str = ""
    black_setup: list[int] = field(default_factory=list)  # AB points (flat indices)
    white_setup: list[int] = field(default_factory=list)  # AW points
    first_to_play: int = go.BLACK  # PL, else the colour of the first move
    moves: list[go.PlayerMove] = field(default_factory=list)
    root: dict[str, list[str]] = field(default_factory=dict)  # every root property, raw
    path: str = "<string>"


def _parse_nodes(text: str, path: str) -> list[dict[str, list[str]]]:
    """The main line of the first game tree as a list of {property: [values]}."""
    nodes: list[dict[str, list[str]]] = []
    i, n, depth, done_branch = 0, len(text), 0, []  # done_branch[d]: the main line left depth d
    started = False
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            if started and depth == 0:
                break  # a second game tree in the file: ignored
            depth += 1
            started = True
            done_branch.append(False)
            i += 1
        elif ch == ")":
            if depth == 0:
                raise SGFError(f"{path}: unbalanced ')' at character {i}")
            depth -= 1
            done_branch.pop()
            if done_branch:
                done_branch[-1] = True  # later sibling variations are not the main line
            i += 1
        elif ch == ";":
            if not started:
                raise SGFError(f"{path}: node before '(' at character {i}")
            on_main = not any(done_branch)
            i += 1
            node: dict[str, list[str]] = {}
            while True:
                while i < n and text[i].isspace():
                    i += 1
                j = i
                while j < n and text[j].isalpha():
                    j += 1
                if j == i:
                    break
                name = text[i:j]
                if not name.isupper():
                    raise SGFError(f"{path}: bad property name {name!r} in node {len(nodes)}")
                i = j
                values = []
                while True:
                    while i < n and text[i].isspace():
                        i += 1
                    if i >= n or text[i] != "[":
                        break
                    value, i = _read_value(text, i + 1, path)
                    values.append(value)
                if not values:
                    raise SGFError(f"{path}: property {name} without a value in node {len(nodes)}")
                node[name] = values
            if on_main:
                nodes.append(node)
        else:
            raise SGFError(f"{path}: unexpected {ch!r} at character {i}")
    if not started or depth != 0:
        raise SGFError(f"{path}: not a complete SGF game tree")
    return nodes


def _read_value(text: str, i: int, path: str) -> tuple[str, int]:
    out = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == "]":
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise SGFError(f"{path}: unterminated property value")


def _points(values: list[str], size: int) -> list[int]:
    """SGF point lists, compressed rectangles ("aa:cc") included."""
    out = []
    for v in values:
        if ":" in v:
            a, b = (go.from_sgf(x, size) for x in v.split(":"))
            (r0, c0), (r1, c1) = divmod(a, size), divmod(b, size)
            out += [r * size + c for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
        else:
            out.append(go.from_sgf(v, size))
    return out


def parse_sgf(text: str, path: str = "<string>", size: int | None = None) -> GameRecord:
    """Parse and check one game; `size` (if given) is the board size the file must have."""
    nodes = _parse_nodes(text, path)
    if not nodes:
        raise SGFError(f"{path}: no nodes")
    root = nodes[0]
    for k, node in enumerate(nodes):
        for name in node:
            if name not in KNOWN_PROPERTIES:
                where = "the root node" if k == 0 else f"move {k}"
                raise SGFError(f"{path}: unknown property {name} at {where}")
    if root.get("GM", ["1"])[0] != "1":
        raise SGFError(f"{path}: GM[{root['GM'][0]}] is not a Go game")
    try:
        file_size = int(root.get("SZ", ["19"])[0].split(":")[0])
        komi = float(root.get("KM", ["0"])[0] or 0)
    except ValueError as e:
        raise SGFError(f"{path}: bad SZ or KM in the root node: {e}") from None
    if size is not None and file_size != size:
        raise SGFError(f"{path}: board size {file_size} (SZ) does not match the expected {size}")
    rec = GameRecord(size=file_size, komi=komi, result=root.get("RE", [""])[0], root=root, path=path)
    move_no = 0
    for node in nodes:
        setup = [p for p in ("AB", "AW", "AE") if p in node]
        if setup and move_no:
            raise SGFError(f"{path}: setup {setup} after move {move_no} is not supported")
        try:
            rec.black_setup += _points(node.get("AB", []), file_size)
            rec.white_setup += _points(node.get("AW", []), file_size)
        except ValueError as e:
            raise SGFError(f"{path}: setup stones: {e}") from None
        if "PL" in node:
            rec.first_to_play = go.BLACK if node["PL"][0].upper() == "B" else go.WHITE
        for color_name, color in (("B", go.BLACK), ("W", go.WHITE)):
            if color_name in node:
                move_no += 1
                value = node[color_name][0]
                try:
                    move = go.from_sgf(value, file_size)
                except ValueError as e:
                    raise SGFError(f"{path}: move {move_no} ({color_name}[{value}]): {e}") from None
                if move_no == 1 and "PL" not in root:
                    rec.first_to_play = color
                rec.moves.append(go.PlayerMove(color, move))
    # Replaying checks every move against the rules.
    for _ in replay(rec):
        pass
    return rec


def read_sgf(path: str | os.PathLike, size: int | None = None) -> GameRecord:
    path = str(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise SGFError(f"{path}: cannot read: {e.strerror}") from None
    return parse_sgf(text, path, size)


def initial_position(rec: GameRecord) -> go.Position:
    board = go.Position(rec.size, rec.komi).board
    board[rec.black_setup] = go.BLACK
    board[rec.white_setup] = go.WHITE
    return go.Position(rec.size, rec.komi, board=board, to_play=rec.first_to_play)


def replay(rec: GameRecord):
    """Yield (position, move) for every move: the position before it (the empty board first) and the move
    played there; the final position is not yielded (Minigo's replay_sgf)."""
    pos = initial_position(rec)
    for k, (color, move) in enumerate(rec.moves, start=1):
        name = "B" if color == go.BLACK else "W"
        try:
            nxt = pos.play_move(move, color)
        except go.IllegalMove as e:
            raise SGFError(f"{rec.path}: move {k} ({name}[{go.to_sgf(move, rec.size)}] = "
                           f"{go.to_gtp(move, rec.size)}): illegal: {e}") from None
        yield pos, move
        pos = nxt


def final_position(rec: GameRecord) -> go.Position:
    pos = initial_position(rec)
    for color, move in rec.moves:
        pos = pos.play_move(move, color)
    return pos


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("]", "\\]")


def write_sgf(size: int, moves: list[go.PlayerMove] | list[tuple[int, int]], komi: float = 7.5,
              result: str = "", black_setup: list[int] = (), white_setup: list[int] = (),
              black_name: str = "", white_name: str = "", program: str = "mlperf-v05-reinforcement",
              comment: str = "") -> str:
    """One game in the reference format; handicap stones as AB (with HA) and AW."""
    root = f"(;GM[1]FF[4]CA[UTF-8]AP[{_escape(program)}]RU[Chinese]SZ[{size}]KM[{komi:g}]"
    if black_name:
        root += f"PB[{_escape(black_name)}]"
    if white_name:
        root += f"PW[{_escape(white_name)}]"
    if result:
        root += f"RE[{_escape(result)}]"
    if black_setup:
        root += f"HA[{len(black_setup)}]" if not white_setup else ""
        root += "AB" + "".join(f"[{go.to_sgf(p, size)}]" for p in black_setup)
    if white_setup:
        root += "AW" + "".join(f"[{go.to_sgf(p, size)}]" for p in white_setup)
    if comment:
        root += f"C[{_escape(comment)}]"
    body = "".join(f";{'B' if c == go.BLACK else 'W'}[{go.to_sgf(m, size)}]" for c, m in moves)
    return root + body + ")\n"


# Training examples: (17 input planes, search or played-move distribution pi, result z from black's view).
# On disk one .npz per self-play game or per chunk: planes uint8 (n, 17, N, N), pi float32 (n, N*N+1),
# z float32 (n,). The newest files up to window_size examples form the training window (spec 3.2).

def result_sign(result: str) -> float:
    """+1 for "B+...", -1 for "W+...", 0 for a draw ("0", "Draw"); anything else is an error."""
    r = result.strip().upper()
    if r.startswith("B+"):
        return 1.0
    if r.startswith("W+"):
        return -1.0
    if r in ("0", "DRAW"):
        return 0.0
    raise ValueError(f"result {result!r} does not parse")


def examples_from_record(rec: GameRecord) -> dict[str, np.ndarray]:
    """Every position of a game with the move played there as a one-hot pi and the game result as z."""
    try:
        z = result_sign(rec.result)
    except ValueError as e:
        raise SGFError(f"{rec.path}: RE: {e}") from None
    planes, pis = [], []
    n_moves = rec.size * rec.size + 1
    for pos, move in replay(rec):
        planes.append(features.extract_features(pos))
        pi = np.zeros(n_moves, dtype=np.float32)
        pi[move] = 1
        pis.append(pi)
    return {"planes": np.stack(planes), "pi": np.stack(pis), "z": np.full(len(pis), z, dtype=np.float32)}


def concat_examples(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in ("planes", "pi", "z")}


def write_examples(path: str, examples: dict[str, np.ndarray]) -> None:
    """Atomic: a temporary file, then rename, so a reader never sees half a file."""
    tmp = path + ".tmp.npz"
    np.savez(tmp, planes=examples["planes"].astype(np.uint8), pi=examples["pi"].astype(np.float32),
             z=examples["z"].astype(np.float32))
    os.replace(tmp, path)


def read_examples(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as f:
            ex = {k: f[k] for k in ("planes", "pi", "z")}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a training-example file: {e}") from None
    if not len(ex["planes"]) == len(ex["pi"]) == len(ex["z"]):
        raise ValueError(f"{path}: planes, pi and z have different lengths")
    return ex


def load_window(directory: str, window_size: int) -> dict[str, np.ndarray]:
    """The newest example files (by name: generation-prefixed) holding up to window_size examples."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".npz") and not n.endswith(".tmp.npz"))
    parts, total = [], 0
    for name in reversed(names):
        ex = read_examples(os.path.join(directory, name))
        parts.append(ex)
        total += len(ex["z"])
        if total >= window_size:
            break
    if not parts:
        raise ValueError(f"{directory}: no training examples (*.npz)")
    out = concat_examples(parts[::-1])
    return {k: v[-window_size:] for k, v in out.items()}


def read_sgf_dir(directory: str, size: int) -> list[GameRecord]:
    """Every *.sgf in a directory (sorted by name), checked against the board size."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".sgf"))
    if not names:
        raise SGFError(f"{directory}: no .sgf files")
    return [read_sgf(os.path.join(directory, n), size=size) for n in names]
