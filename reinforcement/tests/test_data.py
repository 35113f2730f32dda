"""The tiny dataset (GNU Go games as SGF) and the training-example files."""

import hashlib
import os

import numpy as np
import pytest

import data
import make_tiny_dataset


def test_tiny_dataset_layout_and_checksums(tiny_data):
    names = sorted(n for n in os.listdir(tiny_data) if n.endswith(".sgf"))
    assert names == [f"5x5_gnugo_{s:04d}.sgf" for s in range(1, 9)]
    lines = open(os.path.join(tiny_data, "tiny.md5")).read().splitlines()
    for line in lines:
        digest, name = line.split("  ")
        assert hashlib.md5(open(os.path.join(tiny_data, name), "rb").read()).hexdigest() == digest
    assert len(lines) == 8
    records = data.read_sgf_dir(tiny_data, 5)  # every move is legal under our rules
    assert all(r.komi == 7.5 and r.root["RU"] == ["Chinese"] and r.moves for r in records)
    assert len({tuple(r.moves) for r in records}) >= 4  # GNU Go's seeds give distinct games
    text = open(os.path.join(tiny_data, names[0])).read()
    assert text.startswith("(;GM[1]FF[4]") and "SZ[5]" in text and ";B[cc]" in text


def test_gnugo_is_deterministic(tiny_data, tmp_path):
    assert make_tiny_dataset.main([str(tmp_path), "--seed", "0", "--games", "2"]) == 0
    for name in ("5x5_gnugo_0001.sgf", "5x5_gnugo_0002.sgf"):
        assert (tmp_path / name).read_text() == open(os.path.join(tiny_data, name)).read()


def test_examples_of_a_record():
    rec = data.parse_sgf("(;GM[1]FF[4]SZ[5]KM[7.5]RE[W+3.5];B[cc];W[bb];B[])")
    ex = data.examples_from_record(rec)
    assert ex["planes"].shape == (3, 17, 5, 5) and ex["pi"].shape == (3, 26)
    assert list(ex["pi"].argmax(1)) == [12, 6, 25] and (ex["z"] == -1).all()
    with pytest.raises(data.SGFError, match="RE"):
        data.examples_from_record(data.parse_sgf("(;GM[1]SZ[5]RE[?];B[cc])"))


def test_window_keeps_the_newest_examples(tmp_path):
    def ex(n, value):
        return {"planes": np.zeros((n, 17, 5, 5), np.uint8), "pi": np.full((n, 26), 1 / 26, np.float32),
                "z": np.full(n, value, np.float32)}

    for gen in range(3):
        data.write_examples(str(tmp_path / f"{gen:06d}-games.npz"), ex(10, gen))
    w = data.load_window(str(tmp_path), 15)
    assert len(w["z"]) == 15 and list(w["z"][:5]) == [1] * 5 and list(w["z"][5:]) == [2] * 10
    (tmp_path / "000009-bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="000009-bad.npz: not a training-example file"):
        data.load_window(str(tmp_path), 15)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no training examples"):
        data.load_window(str(empty), 1)


def test_make_tiny_dataset_help(capsys):
    with pytest.raises(SystemExit) as e:
        make_tiny_dataset.main(["--help"])
    assert e.value.code == 0 and "GNU Go" in capsys.readouterr().out
