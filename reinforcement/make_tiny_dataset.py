#!/usr/bin/env python3
"""Write the tiny quality set: GNU Go games as SGF files in the reference format (spec section 8.3).

    ./make_tiny_dataset.py DATA_DIR [--seed N] [--board-size 5] [--games 8]

GNU Go (Debian package gnugo, installed by the top-level Makefile; /usr/games/gnugo) plays both sides at
level 1 with Chinese rules and komi 7.5, game g using GNU Go seed N * games + g + 1, until two passes or a
resignation. The move list is written as `<B>x<B>_gnugo_<seed>.sgf` (GNU Go's own printsgf writes only the
final position as setup stones, which a replay cannot use) next to where download_dataset.sh puts the
professional 9x9 games, plus DATA_DIR/tiny.md5. GNU Go is deterministic for a seed, level and version.
"""

import argparse
import hashlib
import os
import sys

import data
import go
from gtp import GtpClient, find_gnugo


def play_gnugo_game(gnugo_path: str, size: int, seed: int, komi: float = 7.5,
                    level: int = 1) -> tuple[list[go.PlayerMove], str]:
    """One GNU Go self-play game: (moves, result string)."""
    argv = [gnugo_path, "--mode", "gtp", "--level", str(level), "--seed", str(seed), "--chinese-rules",
            "--komi", str(komi), "--boardsize", str(size)]
    moves: list[go.PlayerMove] = []
    pos = go.Position(size, komi)
    with GtpClient(argv) as gnugo:
        while not pos.is_game_over() and pos.n < 4 * size * size:
            color = "black" if pos.to_play == go.BLACK else "white"
            vertex = gnugo.send(f"genmove {color}")
            if vertex.lower() == "resign":
                return moves, ("W+R" if pos.to_play == go.BLACK else "B+R")
            move = go.from_gtp(vertex, size)
            pos = pos.play_move(move)  # our rules check every GNU Go move
            moves.append(go.PlayerMove(-pos.to_play, move))
        result = gnugo.send("final_score")
    return moves, result


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="where to write the SGF files (default: $DATA_DIR or ./data)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--board-size", type=int, default=5, help="board size (the tiny preset's: 5)")
    p.add_argument("--games", type=int, default=8, help="number of games (default 8)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    gnugo_path = find_gnugo()
    if gnugo_path is None:
        print("make_tiny_dataset.py: GNU Go not found (looked on PATH and in /usr/games); install it with "
              "`apt-get install gnugo` (the top-level `make system-packages` does)", file=sys.stderr)
        return 1
    os.makedirs(args.data_dir, exist_ok=True)
    names = []
    for g in range(args.games):
        seed = args.seed * args.games + g + 1
        moves, result = play_gnugo_game(gnugo_path, args.board_size, seed)
        name = f"{args.board_size}x{args.board_size}_gnugo_{seed:04d}.sgf"
        player = "GNU Go 3.8 level 1"
        text = data.write_sgf(args.board_size, moves, komi=7.5, result=result, black_name=player,
                              white_name=player, comment=f"gnugo --seed {seed}")
        with open(os.path.join(args.data_dir, name), "w") as f:
            f.write(text)
        names.append(name)
    with open(os.path.join(args.data_dir, "tiny.md5"), "w") as f:
        for name in names:
            with open(os.path.join(args.data_dir, name), "rb") as g:
                f.write(f"{hashlib.md5(g.read()).hexdigest()}  {name}\n")
    print(f"wrote {len(names)} GNU Go games ({args.board_size}x{args.board_size}) and tiny.md5 to "
          f"{args.data_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
