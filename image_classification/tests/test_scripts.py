"""download_dataset.sh against a local Range-capable server; verify_dataset.sh; run_and_time.sh (tiny,
extracting first); every script's --help."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import FOLDER

SERVER = os.path.join(os.path.dirname(FOLDER), "tools", "range_http_server.py")
ARCHIVES = ["ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_val.tar", "ILSVRC2012_img_train.tar"]
OFFICIAL_MD5 = {"ILSVRC2012_img_train.tar": "1d675b47d978889d74fa0da5fadfb00e",
                "ILSVRC2012_img_val.tar": "29b22e2961454d5413ddabcf34fc5622",
                "ILSVRC2012_devkit_t12.tar.gz": "fa75699e90414af021442c21a62c3abf"}


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


def test_download_resumes_and_verify_rejects_the_md5(tiny_data, mirror, tmp_path):
    root, url, log = mirror
    for name in ARCHIVES:  # small archives in the real layout, under the real names
        shutil.copy(os.path.join(tiny_data, name), root / name)
    dest = tmp_path / "data"
    dest.mkdir()
    shutil.copy(root / ARCHIVES[0], dest / ARCHIVES[0])  # one is already there: kept, not fetched
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url})
    assert r.returncode == 1  # the served archives are not ImageNet's
    assert f"{dest}/{ARCHIVES[0]} already there" in r.stdout
    assert "100.0%" in r.stderr and "#" in r.stderr  # curl's progress bar
    assert "transfer of ILSVRC2012_img_train.tar interrupted (attempt 1 of 5); resuming" in r.stderr
    log.seek(0)
    requests = [line for line in log.read().splitlines() if line.startswith("GET")]
    assert requests == ["GET /ILSVRC2012_img_val.tar range=None status=200",
                        "GET /ILSVRC2012_img_val.tar range=bytes=100000- status=206",
                        "GET /ILSVRC2012_img_train.tar range=None status=200",
                        "GET /ILSVRC2012_img_train.tar range=bytes=100000- status=206"]
    for name in ARCHIVES:
        got = (dest / name).read_bytes()
        assert got == (root / name).read_bytes() and not (dest / f"{name}.part").exists()
        md5 = hashlib.md5(got).hexdigest()
        assert f"FAILED: {dest}/{name} has md5 {md5}, expected {OFFICIAL_MD5[name]}" in r.stderr


def test_download_hides_credentials_and_keeps_partial_files(tmp_path):
    # Nothing listens on port 9: every attempt fails; the URL's password must not be printed.
    r = script("download_dataset.sh", str(tmp_path / "data"),
               env={"DATASET_MIRROR": "http://someone:secret@127.0.0.1:9/imagenet", "DOWNLOAD_ATTEMPTS": "2"})
    assert r.returncode == 1 and "secret" not in r.stdout + r.stderr and "//***@127.0.0.1:9" in r.stdout
    assert "could not download ILSVRC2012_devkit_t12.tar.gz; rerun to resume" in r.stderr
    assert "(attempt 2 of 2)" in r.stderr and "img_val" not in r.stderr  # it stops at the first failure


def test_verify_checks_tiny_md5_and_names_bad_files(tiny_data, tmp_path):
    r = script("verify_dataset.sh", tiny_data)
    assert r.returncode == 0 and "checking the synthetic tiny dataset" in r.stdout and "PASSED" in r.stdout
    assert f"{tiny_data}/train: 10 classes, 800 images" in r.stdout
    d = tmp_path / "data"
    d.mkdir()
    for name in ARCHIVES + ["tiny.md5"]:
        shutil.copy(os.path.join(tiny_data, name), d / name)
    with open(d / "ILSVRC2012_img_val.tar", "r+b") as f:
        f.truncate(1000)
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and f"FAILED: {d}/ILSVRC2012_img_val.tar has md5" in r.stderr
    r = script("verify_dataset.sh", str(tmp_path / "empty"))
    assert r.returncode == 1
    for name in ARCHIVES:
        assert f"MISSING: {tmp_path}/empty/{name}" in r.stderr


@pytest.mark.parametrize("extra, rc", [(["--max-epochs", "4", "--target", "0.0"], 0),
                                       (["--max-epochs", "1"], 1)])
def test_run_and_time_extracts_trains_and_prints_result(tiny_data, tmp_path, extra, rc):
    d = tmp_path / "data"
    d.mkdir()
    for name in ARCHIVES + ["tiny.md5"]:  # what make_tiny_dataset.py writes: archives, nothing extracted
        shutil.copy(os.path.join(tiny_data, name), d / name)
    env = {"DATA_DIR": str(d), "OUTPUT_DIR": str(tmp_path / "out"), "CONFIG": "tiny", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    r = script("run_and_time.sh", "--device", "cpu", *extra, env=env)
    assert r.returncode == rc, r.stderr[-3000:]
    assert "extracting the archives" in r.stdout and "extract.py: wrote" in r.stderr
    assert len(os.listdir(d / "train")) == 10 and len(os.listdir(d / "val")) == 10
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1
    fields = result[0].split(",")
    assert fields[:3] == ["RESULT", "image_classification", "7"] and float(fields[3]) > 0 and len(fields) == 6
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary["success"] == (rc == 0) and summary["seed"] == 7


@pytest.mark.parametrize("name", ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "train.py",
                                  "extract.py", "make_tiny_dataset.py", "bench.py"])
def test_help(name, tmp_path):
    r = script(name, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower() and os.listdir(tmp_path) == []
