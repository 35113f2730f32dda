"""download_dataset.sh against a local Range-capable HTTP server (a cut first transfer must be
resumed with a byte range), verify_dataset.sh failing loudly, and bench.py's output line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).resolve().parents[2] / "tools" / "range_http_server.py"


@pytest.fixture
def mirror(tiny_data, tmp_path):
    """Serve a copy of the tiny archive on 127.0.0.1, cutting the first GET after 100 kB."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(tiny_data / "aclImdb_v1.tar.gz", served)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(SERVER), str(served), "--cut-after", "100000"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        port = int(proc.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}", served, tmp_path / "server.log"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _download(data_dir, url, **env):
    return subprocess.run([str(HERE / "download_dataset.sh"), str(data_dir)],
                          env={"PATH": "/usr/bin:/bin", "DATASET_MIRROR": url, **env},
                          capture_output=True, text=True, timeout=120)


def test_download_resumes_a_cut_transfer_and_verifies(mirror, tiny_data, tmp_path):
    url, served, server_log = mirror
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_data / "tiny.md5", data)    # verify checks the tiny checksum
    p = _download(data, url)
    assert p.returncode == 0, p.stderr
    assert (data / "aclImdb_v1.tar.gz").read_bytes() == (served / "aclImdb_v1.tar.gz").read_bytes()
    assert not (data / "aclImdb_v1.tar.gz.part").exists()
    requests = [line for line in server_log.read_text().splitlines() if line.startswith("GET")]
    assert len(requests) >= 2 and "range=None" in requests[0]
    assert "range=bytes=100000-" in requests[1] and "status=206" in requests[1]
    assert "PASSED" in p.stdout and "tiny.md5" in p.stderr


def test_download_of_a_wrong_file_fails_verification(mirror, tmp_path):
    url, _, _ = mirror
    p = _download(tmp_path / "data", url)    # no tiny.md5: the official checksum applies
    assert p.returncode != 0
    assert "aclImdb_v1.tar.gz: checksum mismatch" in p.stderr
    assert (tmp_path / "data" / "aclImdb_v1.tar.gz").exists()     # kept, not deleted


def test_failed_download_keeps_partial_file_and_next_run_resumes(mirror, tiny_data, tmp_path):
    url, served, server_log = mirror
    data = tmp_path / "data"
    p = _download(data, url, DOWNLOAD_ATTEMPTS="1")
    assert p.returncode != 0 and "failed to download" in p.stderr
    assert (data / "aclImdb_v1.tar.gz.part").stat().st_size == 100000
    shutil.copy(tiny_data / "tiny.md5", data)
    p = _download(data, url, DOWNLOAD_ATTEMPTS="1")
    assert p.returncode == 0, p.stderr
    assert (data / "aclImdb_v1.tar.gz").read_bytes() == (served / "aclImdb_v1.tar.gz").read_bytes()
    assert "range=bytes=100000-" in server_log.read_text().splitlines()[-1]


def test_verify_names_damaged_and_missing_files(tiny_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    p = subprocess.run([str(HERE / "verify_dataset.sh"), str(data)], capture_output=True,
                       text=True)
    assert p.returncode == 1 and "aclImdb_v1.tar.gz: missing" in p.stderr
    shutil.copy(tiny_data / "tiny.md5", data)
    blob = (tiny_data / "aclImdb_v1.tar.gz").read_bytes()
    (data / "aclImdb_v1.tar.gz").write_bytes(blob[:-10])
    p = subprocess.run([str(HERE / "verify_dataset.sh")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(data)})
    assert p.returncode == 1 and "aclImdb_v1.tar.gz: checksum mismatch" in p.stderr
    assert "FAILED" in p.stderr


def test_bench_prints_one_json_line():
    p = subprocess.run([sys.executable, str(HERE / "bench.py"), "--device", "cpu", "--steps",
                        "1", "--warmup", "0", "--batch-size", "2", "--seq-len", "8"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    line = json.loads(p.stdout.strip())
    assert line["benchmark"] == "sentiment_analysis" and line["batch_size"] == 2
    assert line["samples_per_s"] > 0 and line["tflops"] > 0 and line["device"] == "cpu"
