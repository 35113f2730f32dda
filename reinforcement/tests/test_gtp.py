"""The GTP front end: every command, errors for unknown commands and bad arguments, a real pipe session."""

import os
import re
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
    assert e.handle("boardsize 5") == "= \n\n"
    assert e.handle("komi 0.5") == "= \n\n" and e.position.komi == 0.5
    assert e.handle("play black a1") == "= \n\n"
    assert e.handle("genmove w") == "= C3\n\n"  # the player's move, as a GTP vertex
    assert e.position.board[12] == go.WHITE and e.position.to_play == go.BLACK
    assert e.handle("genmove b") == "= resign\n\n"
    assert e.handle("final_score") == "= W+0.5\n\n"  # one stone each, komi 0.5
    board = e.handle("showboard")
    assert board.startswith("= \n") and " 1 X . . . .  1" in board and " 3 . . O . .  3" in board
    assert e.handle("undo") == "= \n\n" and e.position.board[12] == go.EMPTY
    assert e.handle("clear_board") == "= \n\n" and not e.position.board.any()
    assert e.handle("known_command genmove") == "= true\n\n"
    assert e.handle("known_command frobnicate") == "= false\n\n"
    assert e.handle("list_commands").split() == ["="] + COMMANDS
    assert e.handle("# just a comment") == "" and e.handle("   ") == ""
    assert e.handle("quit") == "= \n\n" and e.done


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
    assert e.handle("play b c3") == "= \n\n"  # still serving


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
                assert ours.handle(f"play white {move}") == "= \n\n"
        assert ours.position.n > 4


# Commands whose answers GNU Go and this engine give with the same text: the whole byte streams must be equal
# (empty successes "= \n\n", "=id \n\n", errors "? text\n\n" and "?id text\n\n", comment and empty lines
# unanswered). GTP 2's response structure: "=" or "?", the id, one space, the text, a blank line.
SAME_TEXT = ["protocol_version", "7 protocol_version", "boardsize 5", "3 boardsize 5", "komi 0.5",
             "play black c3", "4 play white b2", "frobnicate", "9 frobnicate", "boardsize 99",
             "known_command genmove", "5 known_command frobnicate", "# a comment", "", "undo", "6 undo",
             "clear_board", "11 clear_board", "undo", "12 undo", "quit"]
# Commands whose text is each engine's own (name, moves, the board, the score, error wording): the framing
# (status, id, the space, no blank line inside, the blank line at the end) must be equal.
SAME_FRAMING = ["boardsize 5", "name", "2 version", "showboard", "8 showboard", "play black c3",
                "play black c3", "13 play white c3", "genmove white", "8 genmove black", "final_score",
                "14 final_score", "list_commands", "quit"]


def gtp_session(argv: list[str], commands: list[str]) -> str:
    return subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True,
                          timeout=120, check=True).stdout


def framing(stream: str) -> list[tuple[str, str, str]]:
    """(status and id, the separator after them, the text's last character) of every response."""
    assert stream.endswith("\n\n")
    out = []
    for response in stream[:-2].split("\n\n"):
        head = re.match(r"[=?]\d*", response)
        assert head, response
        rest = response[head.end():]
        out.append((head.group(), rest[:1], "\n" if rest.endswith("\n") else ""))
    return out


def test_framing_is_byte_for_byte_gnugos():
    gnugo_path = find_gnugo()
    assert gnugo_path, "GNU Go is not installed: run `make system-packages` at the top level"
    gnugo = [gnugo_path, "--mode", "gtp", "--level", "0", "--seed", "1"]
    ours = [sys.executable, os.path.join(FOLDER, "gtp.py"), "--random", "--size", "5", "--seed", "1"]
    theirs = gtp_session(gnugo, SAME_TEXT)
    assert "= \n\n=3 \n\n" in theirs  # what GNU Go writes for empty successes
    assert gtp_session(ours, SAME_TEXT) == theirs
    theirs, mine = gtp_session(gnugo, SAME_FRAMING), gtp_session(ours, SAME_FRAMING)
    assert framing(mine) == framing(theirs) and len(framing(mine)) == len(SAME_FRAMING)
    assert framing(mine)[3] == ("=", " ", "")  # showboard: "= " then the board on the next lines
