"""download_dataset.sh against a local Range-capable server; verify_dataset.sh; run_and_time.sh (tiny)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import FOLDER, read_mllog

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


def test_download_resumes_extracts_and_verify_rejects_the_md5(tiny_data, mirror, tmp_path):
    root, url, log = mirror
    shutil.copy(os.path.join(tiny_data, "ml-20m.zip"), root / "ml-20m.zip")  # small zip in the real layout
    dest = str(tmp_path / "data")
    r = script("download_dataset.sh", dest, env={"DATASET_MIRROR": url})
    assert r.returncode != 0  # the served zip is not GroupLens' ml-20m.zip
    assert "100.0%" in r.stderr and "#" in r.stderr  # curl's progress bar
    assert "transfer interrupted (attempt 1 of 5); resuming" in r.stderr
    log.seek(0)
    requests = [line for line in log.read().splitlines() if line.startswith("GET")]
    assert requests == ["GET /ml-20m.zip range=None status=200",
                        "GET /ml-20m.zip range=bytes=100000- status=206"]  # the second asked for a range
    got = open(os.path.join(dest, "ml-20m.zip"), "rb").read()
    assert got == (root / "ml-20m.zip").read_bytes()
    assert not os.path.exists(os.path.join(dest, "ml-20m.zip.part"))
    assert open(os.path.join(dest, "ml-20m", "ratings.csv")).read() == \
        open(os.path.join(tiny_data, "ml-20m", "ratings.csv")).read()
    md5 = hashlib.md5(got).hexdigest()
    assert (f"FAILED: {dest}/ml-20m.zip has md5 {md5}, expected cd245b17a1ae2cc31bb14903e1204af3"
            in r.stderr)


def test_download_refuses_unsafe_zip_members(mirror, tmp_path):
    root, url, _ = mirror
    with zipfile.ZipFile(root / "ml-20m.zip", "w") as zf:
        zf.writestr("ml-20m/ratings.csv", "userId,movieId,rating,timestamp\n")
        zf.writestr("ml-20m/../../escaped.txt", "outside")
    dest = tmp_path / "data"
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url})
    assert r.returncode != 0 and "unsafe member path 'ml-20m/../../escaped.txt'" in r.stderr
    assert not (dest / "ml-20m").exists() and not (tmp_path / "escaped.txt").exists()


def test_verify_checks_tiny_md5_and_names_bad_files(tiny_data, tmp_path):
    r = script("verify_dataset.sh", tiny_data)
    assert r.returncode == 0 and "checking the synthetic tiny dataset" in r.stdout and "PASSED" in r.stdout
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    with open(d / "ml-20m" / "movies.csv", "a") as f:
        f.write("1,extra,line\n")
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and "ml-20m/movies.csv: FAILED" in r.stdout + r.stderr
    r = script("verify_dataset.sh", str(tmp_path / "empty"))
    assert r.returncode == 1
    assert "MISSING: " + str(tmp_path / "empty" / "ml-20m.zip") in r.stderr
    assert "MISSING: " + str(tmp_path / "empty" / "ml-20m" / "ratings.csv") in r.stderr


@pytest.mark.parametrize("extra, rc", [([], 0), (["--max-epochs", "1"], 1)])
def test_run_and_time_converts_trains_and_prints_result(tiny_data, tmp_path, extra, rc):
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    os.remove(d / "ml-20m-converted.npz")  # run_and_time.sh converts when the output is missing
    env = {"DATA_DIR": str(d), "OUTPUT_DIR": str(tmp_path / "out"), "CONFIG": "tiny", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    r = script("run_and_time.sh", "--device", "cpu", *extra, env=env)
    assert r.returncode == rc, r.stderr[-3000:]
    assert "convert.py: wrote" in r.stderr and (d / "ml-20m-converted.npz").exists()
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1
    fields = result[0].split(",")
    assert fields[:3] == ["RESULT", "recommendation", "7"] and float(fields[3]) > 0 and len(fields) == 6


def test_large_batch_recipe_reaches_the_tiny_target_through_run_and_time(tiny_data, tmp_path):
    """tiny_large_batch: NVIDIA's v0.5 Adam (lr 0.0045, betas 0.25/0.5, eps 1e-8) with the batch scaled
    down to 4096 (config.py says why); its log carries those values under the MLPerf keys."""
    out = tmp_path / "out"
    env = {"DATA_DIR": tiny_data, "OUTPUT_DIR": str(out), "CONFIG": "tiny_large_batch", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    r = script("run_and_time.sh", "--device", "cpu", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len([line for line in r.stdout.splitlines() if line.startswith("RESULT,recommendation,7,")]) == 1
    values = {e["key"]: e["value"] for e in read_mllog(str(out / "mlperf.log"))}
    assert {k: values[k] for k in ("global_batch_size", "opt_base_learning_rate", "opt_adam_beta_1",
                                    "opt_adam_beta_2", "opt_adam_epsilon", "opt_name", "eval_target")} == {
        "global_batch_size": 4096, "opt_base_learning_rate": 0.0045, "opt_adam_beta_1": 0.25,
        "opt_adam_beta_2": 0.5, "opt_adam_epsilon": 1e-8, "opt_name": "adam", "eval_target": 0.45}
    summary = json.load(open(out / "summary.json"))
    assert summary["success"] and summary["reached"] >= 0.45


@pytest.mark.parametrize("name", ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "train.py",
                                  "convert.py", "make_tiny_dataset.py", "bench.py"])
def test_help(name, tmp_path):
    r = script(name, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower() and os.listdir(tmp_path) == []
