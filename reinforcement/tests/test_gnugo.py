"""The rules engine agrees with GNU Go (over GTP) on every legal move and on the final score of random games.

The games are played by two random players that never fill their own single-point eyes (spec Decisions),
so they end, after two passes, in positions without dead stones: Tromp-Taylor area scoring and GNU Go's
Chinese-rules final_score must then give exactly the same result. One exception: a player that passes
because a ko ban leaves it nothing else may leave a capturable stone in atari, which GNU Go scores as dead
and simple ko (spec 1.1) lets some random games cycle forever (e.g. A1, pass, C5, B1, pass, D5, A1, ...),
so those are cut at 4 * N * N moves; the scores are compared on the games that end by two passes without a
chain in atari, which must be most of them."""

import numpy as np
import pytest

import go
from gtp import GtpClient, find_gnugo
from selfplay import RandomPlayer

GNUGO = find_gnugo()
if GNUGO is None:  # CI installs it (the top-level Makefile's system-packages); say how, never skip silently
    pytest.fail("GNU Go is not installed: run `make system-packages` at the top level "
                "(apt-get install gnugo)", pytrace=False)


def play_against_gnugo(size: int, seed: int) -> tuple[int, go.Position]:
    komi = 7.5 if seed % 2 else 0.5
    players = RandomPlayer(seed)
    pos = go.Position(size, komi)
    checked = 0
    with GtpClient([GNUGO, "--mode", "gtp", "--chinese-rules", "--level", "0"]) as gnugo:
        gnugo.send(f"boardsize {size}")
        gnugo.send("clear_board")
        gnugo.send(f"komi {komi}")
        while not pos.is_game_over() and pos.n < 4 * size * size:
            color = "black" if pos.to_play == go.BLACK else "white"
            ours = {go.to_gtp(int(m), size).upper() for m in np.flatnonzero(pos.all_legal_moves()[:-1])}
            theirs = set(gnugo.send(f"all_legal {color}").split())
            assert ours == theirs, f"size {size} seed {seed} move {pos.n}:\n{pos}"
            checked += 1
            move = players.select_move(pos)
            gnugo.send(f"play {color} {go.to_gtp(move, size)}")
            pos = pos.play_move(move)
        scored = pos.is_game_over() and 1 not in go.chain_liberties(pos.board, size)[pos.board != go.EMPTY]
        if scored:
            assert gnugo.send("final_score") == pos.result_string(), f"size {size} seed {seed}:\n{pos}"
    return checked, pos, scored


@pytest.mark.parametrize("size,seeds", [(5, range(8)), (9, [0, 5, 6, 8, 9])])
def test_legal_moves_and_final_score_agree_with_gnugo(size, seeds):
    scored = 0
    for seed in seeds:
        checked, pos, compared = play_against_gnugo(size, seed)
        assert checked > size * size  # real games, with captures and refilled points
        scored += compared
    assert scored >= len(seeds) - 1
