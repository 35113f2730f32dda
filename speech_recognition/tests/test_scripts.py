"""download_dataset.sh against a local Range-capable server; verify_dataset.sh; every script's --help."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
from conftest import FOLDER

SERVER = os.path.join(os.path.dirname(FOLDER), "tools", "range_http_server.py")


def script(name, *args, env=None, **kw):
    path = os.path.join(FOLDER, name)
    cmd = [sys.executable, path] if name.endswith(".py") else [path]  # this interpreter, not the shebang's
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})}, **kw)


@pytest.fixture
def mirror(tmp_path):
    """Serve tmp_path/mirror over HTTP on 127.0.0.1, cutting the first transfer of each file after 100 kB."""
    root = tmp_path / "mirror"
    root.mkdir()
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen([sys.executable, SERVER, str(root), "--cut-after", "100000"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(server.stdout.readline().split()[1])
    yield root, f"http://127.0.0.1:{port}", log
    server.terminate()
    server.wait()
    log.close()


def fake_dev_clean(tiny_data, path):
    """A small dev-clean.tar.gz in OpenSLR's layout: LibriSpeech/dev-clean/<speaker>/... from dev-tiny."""
    with tarfile.open(path, "w:gz") as tf:
        tf.add(os.path.join(tiny_data, "LibriSpeech", "README.TXT"), "LibriSpeech/README.TXT")
        for speaker in ("2000", "2001"):
            src = os.path.join(tiny_data, "LibriSpeech", "dev-tiny", speaker)
            tf.add(src, f"LibriSpeech/dev-clean/{speaker}")


def test_download_resumes_extracts_and_verify_rejects_the_md5(tiny_data, mirror, tmp_path):
    root, url, log = mirror
    fake_dev_clean(tiny_data, root / "dev-clean.tar.gz")
    dest = str(tmp_path / "data")
    r = script("download_dataset.sh", dest, env={"DATASET_MIRROR": url, "SUBSETS": "dev-clean"})
    assert r.returncode == 1  # the served archive is not OpenSLR's dev-clean.tar.gz
    assert "100.0%" in r.stderr and "#" in r.stderr  # curl's progress bar
    assert "transfer interrupted (attempt 1 of 5); resuming" in r.stderr
    log.seek(0)
    requests = [line for line in log.read().splitlines() if line.startswith("GET")]
    assert requests == ["GET /dev-clean.tar.gz range=None status=200",
                        "GET /dev-clean.tar.gz range=bytes=100000- status=206"]  # the second: a range
    got = open(os.path.join(dest, "dev-clean.tar.gz"), "rb").read()
    assert got == (root / "dev-clean.tar.gz").read_bytes()
    assert not os.path.exists(os.path.join(dest, "dev-clean.tar.gz.part"))
    flac = "LibriSpeech/dev-clean/2001/20011/2001-20011-0003.flac"
    assert open(os.path.join(dest, flac), "rb").read() == \
        open(os.path.join(tiny_data, flac.replace("dev-clean", "dev-tiny")), "rb").read()
    assert os.path.exists(os.path.join(dest, "LibriSpeech", "README.TXT"))
    md5 = hashlib.md5(got).hexdigest()
    want = "42e2234ba48799c1f50f24a7926300a1"
    assert f"FAILED: {dest}/dev-clean.tar.gz has md5 {md5}, expected {want}" in r.stderr
    assert f"FAILED: {dest}/LibriSpeech/dev-clean has 32 .flac files, expected 2703" in r.stderr
    # The extracted tree is what preprocess.py reads.
    assert script("preprocess.py", dest).returncode == 0
    assert len(open(os.path.join(dest, "manifests", "dev-clean.csv")).read().splitlines()) == 33


def test_download_refuses_unsafe_archive_members(mirror, tmp_path):
    root, url, _ = mirror
    with tarfile.open(root / "dev-clean.tar.gz", "w:gz") as tf:
        for name in ("LibriSpeech/dev-clean/1/2/1-2.trans.txt", "LibriSpeech/dev-clean/../../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    dest = tmp_path / "data"
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url, "SUBSETS": "dev-clean"})
    # tarfile's "data" filter refuses the member; nothing is left extracted.
    assert r.returncode == 1 and "escaped.txt', which is outside the destination" in r.stderr
    assert not (dest / "LibriSpeech").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (dest / ".extract-dev-clean").exists()


def test_verify_checks_tiny_md5_and_names_bad_files(tiny_data, tmp_path):
    r = script("verify_dataset.sh", tiny_data)
    assert r.returncode == 0 and "checking the synthetic tiny dataset" in r.stdout and "PASSED" in r.stdout
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    trans = d / "LibriSpeech" / "dev-tiny" / "2003" / "20031" / "2003-20031.trans.txt"
    trans.write_text(trans.read_text().lower())
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and "LibriSpeech/dev-tiny/2003/20031/2003-20031.trans.txt: FAILED" in r.stdout
    r = script("verify_dataset.sh", str(tmp_path / "empty"), env={"SUBSETS": "dev-clean dev-other"})
    assert r.returncode == 1
    for subset in ("dev-clean", "dev-other"):
        assert f"MISSING: {tmp_path / 'empty' / subset}.tar.gz" in r.stderr
        assert f"MISSING: {tmp_path / 'empty' / 'LibriSpeech' / subset}" in r.stderr


def test_run_and_time_preprocesses_trains_and_prints_result(tiny_data, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d, ignore=shutil.ignore_patterns("manifests"))  # run_and_time.sh writes them
    env = {"DATA_DIR": str(d), "OUTPUT_DIR": str(tmp_path / "out"), "CONFIG": "tiny", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    # No epoch: this checks the wrapper (preprocessing, launch, RESULT line, exit status), not training.
    r = script("run_and_time.sh", "--device", "cpu", "--max-epochs", "0", env=env)
    assert r.returncode == 1, r.stderr[-3000:]  # the target was not reached: train.py's status
    assert "preprocess.py: wrote" in r.stderr and (d / "manifests" / "train-tiny.csv").exists()
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1
    fields = result[0].split(",")
    assert fields[:3] == ["RESULT", "speech_recognition", "7"] and float(fields[3]) > 0 and len(fields) == 6
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary["seed"] == 7 and summary["epochs"] == 0 and not summary["success"]


@pytest.mark.parametrize("name", ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "train.py",
                                  "preprocess.py", "make_tiny_dataset.py", "bench.py"])
def test_help(name, tmp_path):
    r = script(name, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower() and os.listdir(tmp_path) == []
