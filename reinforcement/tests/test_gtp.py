"""The GTP front end: every command, errors for unknown commands and bad arguments, a real pipe session."""

import os
import subprocess
import sys

import pytest

import go
from gtp import COMMANDS, GtpClient, GtpEngine, GtpError, find_gnugo
from selfplay import RandomPlayer

FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FixedPlayer:
    """Plays the given moves in order, then resigns (None)."""

    def __init__(self, moves):
        self.moves = list(moves)

    def select_move(self, position):
        return self.moves.pop(0) if self.moves else None


def test_session():
    e = GtpEngine(FixedPlayer([12]), size=9)
    assert e.handle("protocol_version") == "= 2\n\n"
    assert e.handle("7 name").startswith("=7 ")
    assert e.handle("boardsize 5") == "=\n\n"
    assert e.handle("komi 0.5") == "=\n\n" and e.position.komi == 0.5
    assert e.handle("play black a1") == "=\n\n"
    assert e.handle("genmove w") == "= C3\n\n"  # the player's move, as a GTP vertex
    assert e.position.board[12] == go.WHITE and e.position.to_play == go.BLACK
    assert e.handle("genmove b") == "= resign\n\n"
    assert e.handle("final_score") == "= W+0.5\n\n"  # one stone each, komi 0.5
    board = e.handle("showboard")
    assert board.startswith("= \n") and " 1 X . . . .  1" in board and " 3 . . O . .  3" in board
    assert e.handle("undo") == "=\n\n" and e.position.board[12] == go.EMPTY
    assert e.handle("clear_board") == "=\n\n" and not e.position.board.any()
    assert e.handle("known_command genmove") == "= true\n\n"
    assert e.handle("known_command frobnicate") == "= false\n\n"
    assert e.handle("list_commands").split() == ["="] + COMMANDS
    assert e.handle("# just a comment") == "" and e.handle("   ") == ""
    assert e.handle("quit") == "=\n\n" and e.done


@pytest.mark.parametrize("line,error", [
    ("frobnicate", "? unknown command"), ("3 frobnicate", "?3 unknown command"),
    ("boardsize 99", "? unacceptable size"), ("boardsize x", "? boardsize needs an integer"),
    ("komi", "? komi needs a number"), ("play black", "? play needs a color"),
    ("play green a1", "? invalid color"), ("play black z9", "? invalid vertex"),
    ("genmove", "? genmove needs a color"), ("undo", "? cannot undo"),
])
def test_errors_are_gtp_errors(line, error):
    e = GtpEngine(RandomPlayer(0), size=9)
    assert e.handle(line).startswith(error)


def test_illegal_moves_are_refused_and_the_position_kept():
    e = GtpEngine(RandomPlayer(0), size=5)
    e.handle("play b b5")
    e.handle("play b a4")
    before = e.position
    assert e.handle("play w a5").startswith("? illegal move: suicide")
    assert e.handle("play w b5").startswith("? illegal move: point is occupied")
    assert e.position is before


def test_player_exception_is_an_error_not_a_crash():
    class Broken:
        def select_move(self, position):
            raise RuntimeError("boom")

    e = GtpEngine(Broken(), size=5)
    assert e.handle("genmove b") == "? internal error: RuntimeError: boom\n\n"
    assert e.handle("play b c3") == "=\n\n"  # still serving


def test_gtp_script_over_a_pipe():
    argv = [sys.executable, os.path.join(FOLDER, "gtp.py"), "--random", "--size", "9", "--seed", "3"]
    with GtpClient(argv) as engine:
        assert engine.send("boardsize 5") == ""
        move = engine.send("genmove black")
        assert move == "PASS" or len(move) == 2
        with pytest.raises(GtpError, match="unknown command"):
            engine.send("frobnicate")
        assert engine.send("final_score")[:2] in ("B+", "W+")


def test_gtp_help():
    out = subprocess.run([sys.executable, os.path.join(FOLDER, "gtp.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "genmove" in out and "usage" in out


def test_plays_a_whole_game_against_gnugo():
    """Our engine (random player) against GNU Go, refereed by our rules: every move GNU Go makes is legal
    here, and the game ends by two passes or resignation."""
    gnugo_path = find_gnugo()
    assert gnugo_path, "GNU Go is not installed: run `make system-packages` at the top level"
    ours = GtpEngine(RandomPlayer(1), size=5)
    with GtpClient([gnugo_path, "--mode", "gtp", "--level", "0", "--chinese-rules"]) as gnugo:
        gnugo.send("boardsize 5")
        gnugo.send("clear_board")
        for _ in range(200):
            if ours.position.is_game_over():
                break
            if ours.position.to_play == go.BLACK:
                move = ours.handle("genmove black").split()[1]
                gnugo.send(f"play black {move}")
            else:
                move = gnugo.send("genmove white")
                if move.lower() == "resign":
                    break
                assert ours.handle(f"play white {move}") == "=\n\n"
        assert ours.position.n > 4
