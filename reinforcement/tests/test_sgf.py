"""Coordinates and the SGF reader/writer: round trips and bad files that must name the file and the move."""

import pytest

import data
import go
from go import BLACK, WHITE, PlayerMove


@pytest.mark.parametrize("size", [5, 9, 19])
def test_coords_round_trip(size):
    for m in range(size * size + 1):
        assert go.from_sgf(go.to_sgf(m, size), size) == m
        assert go.from_gtp(go.to_gtp(m, size), size) == m


def test_coords_known_values():
    # 9x9: SGF "aa" is the top-left corner = GTP A9; GTP skips I, so the ninth column is J.
    assert go.from_sgf("aa", 9) == 0 and go.to_gtp(0, 9) == "A9"
    assert go.to_gtp(8, 9) == "J9" and go.to_gtp(80, 9) == "J1"
    assert go.from_gtp("c3", 5) == go.from_sgf("cc", 5) == 12
    assert go.from_sgf("", 9) == go.from_sgf("tt", 9) == 81
    assert go.to_sgf(81, 9) == "" and go.to_gtp(81, 9) == "pass"
    for bad in ("I5", "Z1", "A0", "A10", "5"):
        with pytest.raises(ValueError):
            go.from_gtp(bad, 9)
    with pytest.raises(ValueError, match="off"):
        go.from_sgf("jj", 9)


def test_round_trip_with_passes_handicap_and_komi(tmp_path):
    size = 9
    ab = [go.from_gtp(v, size) for v in ("C3", "G7")]
    aw = [go.from_gtp("E5", size)]
    moves = [PlayerMove(WHITE, go.from_gtp("C7", size)), PlayerMove(BLACK, 81),
             PlayerMove(WHITE, go.from_gtp("G3", size)), PlayerMove(BLACK, go.from_gtp("D4", size)),
             PlayerMove(WHITE, 81), PlayerMove(BLACK, 81)]
    text = data.write_sgf(size, moves, komi=0.5, result="B+R", black_setup=ab, white_setup=aw,
                            black_name="b", white_name="w]x")
    assert "KM[0.5]" in text and "AB[cg][gc]" in text and "AW[ee]" in text and ";B[]" in text
    path = tmp_path / "g.sgf"
    path.write_text(text)
    rec = data.read_sgf(path, size=9)
    assert rec.komi == 0.5 and rec.result == "B+R" and rec.size == 9
    assert rec.black_setup == ab and rec.white_setup == aw
    assert rec.moves == moves and rec.first_to_play == WHITE
    assert rec.root["PW"] == ["w]x"]
    positions = list(data.replay(rec))
    assert len(positions) == len(moves)
    first, move = positions[0]
    assert first.to_play == WHITE and move == moves[0].move and first.komi == 0.5
    assert first.board[ab[0]] == BLACK and first.board[aw[0]] == WHITE
    final = data.final_position(rec)
    assert final.is_game_over()
    # Writing what was read gives the same text back.
    assert data.write_sgf(size, rec.moves, rec.komi, rec.result, rec.black_setup, rec.white_setup,
                            "b", "w]x") == text


def test_reads_reference_format_and_main_line_only():
    text = ("(;GM[1]FF[4]SZ[9]KM[7.5]RU[Chinese]AP[Minigo_sgfgenerator]PB[000001-helped-husky]\n"
            "PW[000001-helped-husky]RE[B+8.5];B[ee];W[cc]\n(;B[gg];W[gc])(;B[aa]))")
    rec = data.parse_sgf(text, size=9)
    assert [go.to_sgf(m, 9) for _, m in rec.moves] == ["ee", "cc", "gg", "gc"]
    assert rec.first_to_play == BLACK and rec.komi == 7.5


def test_compressed_point_list():
    rec = data.parse_sgf("(;GM[1]FF[4]SZ[5]AB[aa:bb]AW[ee])")
    assert sorted(rec.black_setup) == [0, 1, 5, 6]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_illegal_move_names_file_and_move(tmp_path):
    # Move 3 plays on an occupied point.
    path = write(tmp_path, "bad_move.sgf", "(;GM[1]FF[4]SZ[9]KM[7.5];B[ee];W[cc];B[cc])")
    with pytest.raises(data.SGFError, match=r"bad_move\.sgf: move 3 \(B\[cc\] = C7\): illegal: point is "
                                              r"occupied"):
        data.read_sgf(path, size=9)
    ko = write(tmp_path, "ko.sgf", "(;GM[1]FF[4]SZ[5]AB[ba][ab][bc]AW[ca][bb][db][cc];B[cb];W[bb])")
    with pytest.raises(data.SGFError, match=r"ko\.sgf: move 2 .*ko"):
        data.read_sgf(ko, size=5)


def test_unknown_property_names_file_and_move(tmp_path):
    path = write(tmp_path, "unknown.sgf", "(;GM[1]FF[4]SZ[9];B[ee];W[cc]XY[1];B[gg])")
    with pytest.raises(data.SGFError, match=r"unknown\.sgf: unknown property XY at move 2"):
        data.read_sgf(path)
    root = write(tmp_path, "root.sgf", "(;GM[1]FF[4]SZ[9]QQ[x];B[ee])")
    with pytest.raises(data.SGFError, match=r"root\.sgf: unknown property QQ at the root node"):
        data.read_sgf(root)


def test_wrong_board_size_names_file(tmp_path):
    path = write(tmp_path, "big.sgf", "(;GM[1]FF[4]SZ[19]KM[7.5];B[pd])")
    with pytest.raises(data.SGFError, match=r"big\.sgf: board size 19 \(SZ\) does not match the expected 9"):
        data.read_sgf(path, size=9)
    off = write(tmp_path, "off.sgf", "(;GM[1]FF[4]SZ[5];B[cc];W[hh])")
    with pytest.raises(data.SGFError, match=r"off\.sgf: move 2 \(W\[hh\]\): .*off a 5x5 board"):
        data.read_sgf(off)


@pytest.mark.parametrize("text,message", [
    ("", "not a complete"), ("(;GM[1]SZ[9];B[ee]", "not a complete"), ("(;GM[2])", "not a Go game"),
    ("(;GM[1]SZ[9]C[open", "unterminated"), ("(;GM[1]SZ[x])", "bad SZ"), ("(;GM[1]B)", "without a value"),
])
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(data.SGFError, match=message):
        data.read_sgf(write(tmp_path, "m.sgf", text))


def test_missing_file(tmp_path):
    with pytest.raises(data.SGFError, match="nothere.sgf: cannot read"):
        data.read_sgf(tmp_path / "nothere.sgf")


def test_position_komi_and_size_from_file():
    rec = data.parse_sgf("(;GM[1]FF[4]SZ[7]KM[6];B[dd])")
    pos = data.initial_position(rec)
    assert isinstance(pos, go.Position) and pos.size == 7 and pos.komi == 6
