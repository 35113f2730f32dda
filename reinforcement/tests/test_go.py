"""Rules on ASCII boards (Minigo tests/test_go.py style): captures, suicide, ko, snapback, scoring, seki.

Boards are drawn with row 0 at the top; X = black, O = white; at(r, c) is the flat move index."""

import numpy as np
import pytest

import go
from go import BLACK, EMPTY, WHITE, Position, board_from_ascii


def pos_from(text: str, to_play: int = BLACK, komi: float = 0.0) -> Position:
    board = board_from_ascii(text)
    size = int(round(len(board) ** 0.5))
    return Position(size, komi, board=board, to_play=to_play)


def at(r: int, c: int, size: int = 5) -> int:
    return r * size + c


def test_single_capture():
    p = pos_from("""
        .X...
        XOX..
        .....
        .....
        .....""")
    q = p.play_move(at(2, 1))
    assert q.board[at(1, 1)] == EMPTY
    assert q.caps == (1, 0) and q.to_play == WHITE and q.n == 1
    assert p.board[at(1, 1)] == WHITE  # play_move does not change the old position


def test_multi_stone_capture():
    p = pos_from("""
        OO...
        XX...
        .....
        .....
        .....""")
    q = p.play_move(at(0, 2))
    assert q.board[at(0, 0)] == EMPTY and q.board[at(0, 1)] == EMPTY
    assert q.caps == (2, 0)
    assert q.ko is None  # two stones taken: no ko


def test_suicide_is_illegal_but_the_same_point_captures_for_the_other_side():
    p = pos_from("""
        .X...
        X....
        .....
        .....
        .....""", to_play=WHITE)
    with pytest.raises(go.IllegalMove, match="suicide"):
        p.play_move(at(0, 0))
    assert p.all_legal_moves()[at(0, 0)] == 0
    # Multi-stone suicide: white filling the last liberty of its own five stones.
    p = pos_from("""
        O.OX.
        OOOX.
        XXXX.
        .....
        .....""", to_play=WHITE)
    assert not p.is_move_legal(at(0, 1))
    assert p.all_legal_moves()[at(0, 1)] == 0
    p.to_play = BLACK
    assert p.all_legal_moves()[at(0, 1)] == 1
    assert p.play_move(at(0, 1)).caps == (5, 0)


def test_occupied_point_and_pass():
    p = Position(5).play_move(12)
    with pytest.raises(go.IllegalMove, match="occupied"):
        p.play_move(12)
    q = p.play_move(p.pass_move)
    assert q.to_play == BLACK and not q.is_game_over()
    assert q.play_move(q.pass_move).is_game_over()


def test_ko_retake_forbidden_for_one_move():
    p = pos_from("""
        .XO..
        XO.O.
        .XO..
        .....
        .....""")
    q = p.play_move(at(1, 2))  # black takes the white stone at (1, 1)
    assert q.board[at(1, 1)] == EMPTY and q.ko == at(1, 1)
    with pytest.raises(go.IllegalMove, match="ko"):
        q.play_move(at(1, 1))
    assert q.all_legal_moves()[at(1, 1)] == 0
    # White plays elsewhere, black answers elsewhere: now the retake is legal and takes back one stone.
    r = q.play_move(at(4, 4)).play_move(at(4, 0))
    assert r.ko is None
    s = r.play_move(at(1, 1))
    assert s.board[at(1, 2)] == EMPTY and s.ko == at(1, 2)


def test_snapback_is_not_ko():
    p = pos_from("""
        ..XO.
        XXXO.
        OOOO.
        .....
        .....""", to_play=WHITE)
    q = p.play_move(at(0, 1))  # white throws in one stone, in atari
    r = q.play_move(at(0, 0))  # black takes it ...
    assert r.board[at(0, 1)] == EMPTY and r.caps == (1, 0)
    assert r.ko is None  # ... with a stone that joins a chain: not a ko
    s = r.play_move(at(0, 1))  # so white may retake at once, capturing five
    assert s.caps == (1, 5)
    assert all(s.board[at(rr, cc)] == EMPTY for rr, cc in [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)])


def test_area_scoring_with_komi():
    p = pos_from("""
        .X.O.
        .X.O.
        XX.OO
        .....
        .....""", komi=7.5)
    # Each side: 4 stones + a corner region of 2 that touches only its colour; the rest touches both.
    assert go.area_counts(p.board, 5) == (6, 6)
    assert p.score() == pytest.approx(-7.5)
    assert p.result() == WHITE and p.result_string() == "W+7.5"
    full = pos_from("""
        XXXXX
        XXXXX
        XXXXX
        XXXOO
        XXXO.""", komi=7.5)
    assert full.score() == pytest.approx(21 - 4 - 7.5)
    assert full.result() == BLACK and full.result_string() == "B+9.5"
    even = pos_from(".X\nO.", komi=0)
    assert even.result() == 0 and even.result_string() == "0"


SEKI = """
    .X.O.O
    XXOOOO
    OOXXXX
    .OX...
    OOX...
    .OX..."""


def test_seki_shared_liberty_counts_for_nobody():
    p = pos_from(SEKI, komi=0.5)
    # Black: 10 stones, eye (0,0), the lower right 3x3; white: 12 stones, eyes (0,4), (3,0), (5,0).
    # The shared liberty (0,2) touches both colours: dame.
    assert go.area_counts(p.board, 6) == (10 + 1 + 9, 12 + 3)
    assert p.score() == pytest.approx(5 - 0.5)


@pytest.mark.parametrize("mover", [BLACK, WHITE])
def test_seki_filling_the_shared_liberty_is_self_atari(mover):
    p = pos_from(SEKI, to_play=mover)
    q = p.play_move(at(0, 2, 6))  # legal, but it leaves the mover's chain one liberty
    own_libs = go.group_at(q.board, 6, at(0, 2, 6))[1]
    assert len(own_libs) == 1
    r = q.play_move(own_libs.pop())
    assert r.board[at(0, 2, 6)] == EMPTY  # and the opponent captures it


def test_all_legal_moves_matches_check_move_on_random_games():
    rng = np.random.default_rng(0)
    for size in (5, 7):
        p = Position(size)
        for _ in range(60):
            legal = p.all_legal_moves()
            assert [int(legal[m]) for m in range(size * size + 1)] == \
                [int(p.is_move_legal(m)) for m in range(size * size + 1)]
            moves = np.flatnonzero(legal)
            p = p.play_move(int(rng.choice(moves)))


def test_history_and_str():
    p = Position(5).play_move(0).play_move(24)
    assert len(p.history) == 2 and p.history[0][0] == BLACK and p.history[1].sum() == 0
    text = str(p)
    assert " 5 X . . . .  5" in text and " 1 . . . . O  1" in text
    assert "to play: black" in text
    with pytest.raises(ValueError, match="square"):
        board_from_ascii("..\n...")
