#!/usr/bin/env python3
"""Go Text Protocol (GTP v2) front end, and a small client for other GTP engines such as GNU Go.

    ./gtp.py                           # the newest model in $OUTPUT_DIR/models (else ./output/models)
    ./gtp.py --model output/models/000012.pt --readouts 400
    gogui -program "./gtp.py"          # or any GTP GUI / match tool (gogui-twogtp, Sabaki, ...)

Commands: protocol_version name version known_command list_commands quit boardsize clear_board komi play
genmove undo final_score showboard. Unknown commands and bad arguments get a GTP error (`? ...`), never
a crash. final_score is Tromp-Taylor area scoring of the board as it stands (no dead-stone removal), the
rule the benchmark uses.

The engine plays with whatever player object it is given (`select_move(position)`): from the command
line, MCTS (two-player mode: no noise, most visited move, resigns below -0.90) with the network of a
saved model (the board size is the model's). Without a model it plays with a random network and says
so on stderr; --random plays uniformly random legal moves instead.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys

import go
import mcts
from selfplay import NetworkEvaluator, RandomPlayer

COMMANDS = ["protocol_version", "name", "version", "known_command", "list_commands", "quit", "boardsize",
            "clear_board", "komi", "play", "genmove", "undo", "final_score", "showboard"]
MAX_SIZE = 25  # GTP column letters (A..Z without I)


class GtpError(Exception):
    """An error answer (`? message`) from a GTP engine, or a command this engine refuses."""


def parse_color(s: str) -> int:
    s = s.lower()
    if s in ("b", "black"):
        return go.BLACK
    if s in ("w", "white"):
        return go.WHITE
    raise GtpError(f"invalid color {s!r}")


class GtpEngine:
    """The protocol state: one game position (with undo history) and the player that answers genmove."""

    def __init__(self, player, size: int = 9, komi: float = 7.5, name: str = "mlperf-v05-minigo",
                 fixed_size: bool = False):
        self.player = player
        self.fixed_size = fixed_size  # a network plays one board size only
        self.name = name
        self.komi = komi
        self.size = size
        self.position = go.Position(size, komi)
        self.undo_stack: list[go.Position] = []
        self.done = False

    def handle(self, line: str) -> str:
        """One command line in, one full GTP response out ("=..." or "?...", ending in a blank line)."""
        line = line.split("#", 1)[0].strip()
        if not line:
            return ""
        words = line.split()
        ident = ""
        if words[0].isdigit():
            ident, words = words[0], words[1:]
            if not words:
                return f"?{ident} empty command\n\n"
        cmd, args = words[0].lower(), words[1:]
        try:
            if cmd not in COMMANDS:
                raise GtpError("unknown command")
            out = getattr(self, "cmd_" + cmd)(args)
        except GtpError as e:
            return f"?{ident} {e}\n\n"
        except Exception as e:  # noqa: BLE001 - a GTP engine answers errors, it does not crash
            return f"?{ident} internal error: {type(e).__name__}: {e}\n\n"
        # GTP 2 response structure: "=" and the id, one space, the text (empty for most commands, so an empty
        # success is "= \n\n", as GNU Go writes it), and a blank line; the text itself never ends the
        # response early with a blank line of its own.
        text = out.rstrip("\n")
        return f"={ident} {text}\n\n"

    def run(self, stdin=sys.stdin, stdout=sys.stdout) -> None:
        for line in stdin:
            response = self.handle(line)
            if response:
                stdout.write(response)
                stdout.flush()
            if self.done:
                break

    # One method per command; each returns the answer text or raises GtpError.
    def cmd_protocol_version(self, args):
        return "2"

    def cmd_name(self, args):
        return self.name

    def cmd_version(self, args):
        return "0.5"

    def cmd_known_command(self, args):
        return "true" if args and args[0].lower() in COMMANDS else "false"

    def cmd_list_commands(self, args):
        return "\n".join(COMMANDS)

    def cmd_quit(self, args):
        self.done = True
        return ""

    def cmd_boardsize(self, args):
        try:
            size = int(args[0])
        except (IndexError, ValueError):
            raise GtpError("boardsize needs an integer") from None
        if not 2 <= size <= MAX_SIZE or (self.fixed_size and size != self.size):
            raise GtpError("unacceptable size")
        self.size = size
        return self.cmd_clear_board([])

    def cmd_clear_board(self, args):
        self.position = go.Position(self.size, self.komi)
        self.undo_stack = []
        return ""

    def cmd_komi(self, args):
        try:
            self.komi = float(args[0])
        except (IndexError, ValueError):
            raise GtpError("komi needs a number") from None
        self.position.komi = self.komi
        return ""

    def cmd_play(self, args):
        if len(args) != 2:
            raise GtpError("play needs a color and a vertex")
        color = parse_color(args[0])
        try:
            move = go.from_gtp(args[1], self.size)
        except ValueError as e:
            raise GtpError(f"invalid vertex: {e}") from None
        self._play(move, color)
        return ""

    def _play(self, move: int, color: int) -> None:
        try:
            new = self.position.play_move(move, color)
        except go.IllegalMove as e:
            raise GtpError(f"illegal move: {e}") from None
        self.undo_stack.append(self.position)
        self.position = new

    def cmd_genmove(self, args):
        if len(args) != 1:
            raise GtpError("genmove needs a color")
        color = parse_color(args[0])
        if color != self.position.to_play:
            self.position = self.position.copy()
            self.position.to_play = color
            self.position.ko = None
        move = self.player.select_move(self.position)
        if move is None:
            return "resign"
        self._play(move, color)
        return go.to_gtp(move, self.size).upper()

    def cmd_undo(self, args):
        if not self.undo_stack:
            raise GtpError("cannot undo")
        self.position = self.undo_stack.pop()
        return ""

    def cmd_final_score(self, args):
        return self.position.result_string()

    def cmd_showboard(self, args):
        return "\n" + str(self.position)


class GtpClient:
    """Drive another GTP engine (GNU Go in the tests and in make_tiny_dataset.py) over pipes."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise GtpError(f"engine exited during {command!r}")
            if line.strip() == "" and lines:
                break
            if line.strip():
                lines.append(line.rstrip("\n"))
        text = "\n".join(lines)
        if text.startswith("?"):
            raise GtpError(f"{command!r}: {text[1:].strip()}")
        return text[1:].strip()

    def close(self) -> None:
        try:
            self.send("quit")
        except (GtpError, BrokenPipeError):
            pass
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def find_gnugo() -> str | None:
    """GNU Go's path: on PATH, or /usr/games/gnugo where Debian installs it."""
    return shutil.which("gnugo") or shutil.which("gnugo", path="/usr/games")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a saved model (OUTPUT_DIR/models/NNNNNN.pt or "
                                                 "checkpoint.pt); default: the newest in OUTPUT_DIR/models")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="where train.py wrote models/ (default: $OUTPUT_DIR or ./output)")
    p.add_argument("--readouts", type=int, default=200, help="MCTS simulations per move (gating's: 200)")
    p.add_argument("--size", type=int, default=9, help="board size when there is no model")
    p.add_argument("--komi", type=float, default=7.5, help="initial komi (spec section 1.1)")
    p.add_argument("--random", action="store_true", help="play uniformly random legal moves, no network")
    p.add_argument("--seed", type=int, default=None, help="seed of the search and the random player")
    return p


def load_player(args):
    """(player, board size or None) from the flags; messages go to stderr (stdout is the protocol)."""
    import torch  # here, so that --random and --help start without it

    import model as model_lib

    if args.random:
        print("gtp.py: playing uniformly random legal moves", file=sys.stderr)
        return RandomPlayer(args.seed), None
    path = args.model
    if path is None:
        found = sorted(glob.glob(os.path.join(args.output_dir, "models", "*.pt")))
        path = found[-1] if found else None
    if path is None:
        print(f"gtp.py: no model in {args.output_dir}/models: playing with a RANDOM network",
              file=sys.stderr)
        net = model_lib.DualNet(args.size)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("best_model", state)  # a checkpoint.pt holds the best model too
        net = model_lib.from_state_dict(state)
        print(f"gtp.py: playing with {path} ({net.board_size}x{net.board_size}, {args.readouts} readouts)",
              file=sys.stderr)
    torch.set_num_threads(1)
    player = mcts.MCTSPlayer(NetworkEvaluator(net, seed=args.seed), readouts=args.readouts, num_parallel=8,
                             resign_threshold=-0.90, two_player_mode=True, seed=args.seed)
    return player, net.board_size


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    player, size = load_player(args)
    GtpEngine(player, size or args.size, args.komi, fixed_size=size is not None).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
