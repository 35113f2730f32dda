"""download_dataset.sh against a local Range-capable server; verify_dataset.sh; --help of every script."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import FOLDER

SERVER = os.path.join(os.path.dirname(FOLDER), "tools", "range_http_server.py")
PRO_GAMES = ["9x9_pro_YKSH.sgf", "9x9_pro_IYMD.sgf", "9x9_pro_YSIY.sgf", "9x9_pro_IYHN.sgf"]


def script(name, *args, env=None, **kw):
    path = os.path.join(FOLDER, name)
    cmd = [sys.executable, path] if name.endswith(".py") else [path]  # this interpreter, not the shebang's
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})}, **kw)


@pytest.fixture
def mirror(tmp_path):
    """Serve tmp_path/mirror on 127.0.0.1, cutting the first transfer of each file after 200 bytes."""
    root = tmp_path / "mirror"
    root.mkdir()
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen([sys.executable, SERVER, str(root), "--cut-after", "200"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(server.stdout.readline().split()[1])
    yield root, f"http://127.0.0.1:{port}", log
    server.terminate()
    server.wait()
    log.close()


def test_download_resumes_and_verify_names_every_bad_file(tiny_data, mirror, tmp_path):
    root, url, log = mirror
    games = sorted(n for n in os.listdir(tiny_data) if n.endswith(".sgf"))
    for name, src in zip(PRO_GAMES, games):  # stand-ins in the real names: not the professional games
        shutil.copy(os.path.join(tiny_data, src), root / name)
    dest = tmp_path / "data"
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url})
    assert r.returncode == 1
    assert "transfer of 9x9_pro_YKSH.sgf interrupted (attempt 1 of 5); resuming" in r.stderr
    log.seek(0)
    requests = [line for line in log.read().splitlines() if line.startswith("GET /9x9_pro_YKSH")]
    assert requests == ["GET /9x9_pro_YKSH.sgf range=None status=200",
                        "GET /9x9_pro_YKSH.sgf range=bytes=200- status=206"]
    for name in PRO_GAMES:
        assert (dest / name).read_bytes() == (root / name).read_bytes()
        assert f"FAILED: {dest / name} does not have sha256" in r.stderr
    assert not list(dest.glob("*.part"))
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url})  # nothing fetched again
    assert r.stdout.count("already downloaded") == 4


def test_verify_missing_files_and_the_tiny_set(tiny_data, tmp_path):
    r = script("verify_dataset.sh", str(tmp_path))
    assert r.returncode == 1
    for name in PRO_GAMES:
        assert f"MISSING: {tmp_path / name}" in r.stderr
    r = script("verify_dataset.sh", tiny_data)
    assert r.returncode == 0 and "checking the GNU Go tiny set" in r.stdout and "PASSED" in r.stdout
    d = tmp_path / "tiny"
    shutil.copytree(tiny_data, d)
    with open(d / "5x5_gnugo_0003.sgf", "a") as f:
        f.write("\n")
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and f"FAILED: {d / '5x5_gnugo_0003.sgf'} does not have md5" in r.stderr
    assert r.stderr.count(": FAILED: ") == 1 + 1  # that file, then the summary line


def tiny_copy(tiny_data, tmp_path):
    d = tmp_path / "tiny"
    shutil.copytree(tiny_data, d)
    return d, (d / "tiny.md5").read_text().splitlines()


def verify_fails(d) -> str:
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and "PASSED" not in r.stdout, r.stdout + r.stderr
    return r.stderr


@pytest.mark.parametrize("cut", ["at a line end", "inside a line"])
def test_verify_tiny_manifest_cut_in_half(tiny_data, tmp_path, cut):
    """A tiny.md5 cut in half (the issue's case: md5sum --check passed it): the games it no longer lists are
    extra files, and a line cut in the middle is a damaged manifest line."""
    d, lines = tiny_copy(tiny_data, tmp_path)
    half = len(lines) // 2
    text = "\n".join(lines[:half]) + "\n" + ("" if cut == "at a line end" else lines[half][:20])
    (d / "tiny.md5").write_text(text)
    err = verify_fails(d)
    damaged = f"DAMAGED MANIFEST: {d / 'tiny.md5'} line {half + 1} is not '<md5>  <file name>'"
    assert (damaged in err) == (cut == "inside a line")
    unlisted = [line.split()[1] for line in lines[half:]]
    for name in unlisted:
        assert f"EXTRA: {d / name} is not one of tiny.md5" in err
    assert err.count("EXTRA: ") == len(unlisted) and "MISSING" not in err


def test_verify_tiny_manifest_with_a_bad_or_repeated_line(tiny_data, tmp_path):
    d, lines = tiny_copy(tiny_data, tmp_path)
    (d / "tiny.md5").write_text("\n".join([lines[0], lines[0], "not a checksum line", *lines[1:]]) + "\n")
    err = verify_fails(d)
    assert f"line 2 lists {lines[0].split()[1]} a second time" in err
    assert "line 3 is not '<md5>  <file name>': 'not a checksum line'" in err
    (d / "tiny.md5").write_text("")
    assert f"DAMAGED MANIFEST: {d / 'tiny.md5'} lists no file" in verify_fails(d)


def test_verify_tiny_missing_listed_file(tiny_data, tmp_path):
    d, lines = tiny_copy(tiny_data, tmp_path)
    name = lines[2].split()[1]
    (d / name).unlink()
    err = verify_fails(d)
    assert f"MISSING: {d / name} (run ./make_tiny_dataset.py {d} again)" in err
    assert err.count("MISSING") == 1 and "EXTRA" not in err


@pytest.mark.parametrize("extra", ["5x5_gnugo_0099.sgf", "notes.txt", ".hidden"])
def test_verify_extra_unlisted_file(tiny_data, tmp_path, extra):
    d, _ = tiny_copy(tiny_data, tmp_path)
    (d / extra).write_text("(;GM[1]FF[4]SZ[5];B[cc])")
    err = verify_fails(d)
    assert f"EXTRA: {d / extra} is not one of tiny.md5 (remove it)" in err and err.count("EXTRA") == 1
    pro = tmp_path / "pro"  # the professional set: the same rule
    pro.mkdir()
    (pro / extra).write_text("x")
    assert f"EXTRA: {pro / extra} is not one of the 4 professional games" in verify_fails(pro)


@pytest.mark.parametrize("name", ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "train.py",
                                  "make_tiny_dataset.py", "gtp.py", "bench.py"])
def test_help(name, tmp_path):
    r = script(name, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower() and os.listdir(tmp_path) == []


def test_run_and_time_verifies_trains_and_prints_result(tiny_data, tmp_path):
    env = {"DATA_DIR": tiny_data, "OUTPUT_DIR": str(tmp_path / "out"), "CONFIG": "tiny", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    r = script("run_and_time.sh", "--device", "cpu", "--max-epochs", "1", "--target", "1.01", env=env)
    assert r.returncode == 1, r.stderr[-3000:]  # one generation cannot reach an accuracy above 1
    assert "PASSED (tiny dataset)" in r.stdout
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1
    fields = result[0].split(",")
    assert fields[:3] == ["RESULT", "reinforcement", "7"] and float(fields[3]) > 0 and len(fields) == 6
    r = script("run_and_time.sh", "--help")
    assert r.returncode == 0 and "RESULT,reinforcement" in r.stdout


def test_run_and_time_refuses_damaged_data(tiny_data, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    (d / "5x5_gnugo_0001.sgf").write_text("(;GM[1])")
    r = script("run_and_time.sh", env={"DATA_DIR": str(d), "OUTPUT_DIR": str(tmp_path / "out"),
                                       "CONFIG": "tiny"})
    assert r.returncode == 1 and f"FAILED: {d / '5x5_gnugo_0001.sgf'} does not have md5" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing ran
