"""Tests of the top-level tools: the demo's table and plot, bench's parsing, the range server,
install_cuda_docker.sh's refusals and plan. No training here: the folders' suites do that."""

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402
import demo  # noqa: E402


def _row(name, ok, evals, target=0.5, higher=True):
    summary = {"benchmark": name, "metric": "acc", "higher_is_better": higher, "target": target,
               "reached": evals[-1]["value"], "success": ok, "epochs": len(evals), "seconds": 12.5,
               "evals": evals}
    return {"benchmark": name, "ok": ok, "summary": summary, "error": "" if ok else "missed",
            "data_seconds": 1.0, "run_seconds": 14.0, "seed": 7}


def test_demo_table_and_plot(tmp_path):
    rows = [_row("a", True, [{"epoch": 1, "seconds": 3.0, "value": 0.3}, {"epoch": 2, "seconds": 6.0,
                                                                         "value": 0.6}]),
            _row("b", False, [{"epoch": 1, "seconds": 2.0, "value": 40.0}], target=23.0, higher=False),
            {"benchmark": "c", "ok": False, "summary": None, "error": "make_tiny_dataset.py exited 1"}]
    table = demo.demo_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["benchmark", "metric", "tiny"]
    assert re.search(r"^a\s+acc\s+≥ 0.5\s+0.6000\s+2\s+1.0\s+14.0\s+12.5\s+7\s+pass$", lines[2])
    assert "≤ 23" in lines[3] and "FAIL (missed)" in lines[3]
    assert lines[4].startswith("c") and "FAIL (make_tiny_dataset.py exited 1)" in lines[4]
    png = tmp_path / "plot.png"
    demo.plot(rows, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_unknown_benchmark(capsys):
    assert demo.main(["--bench", "no_such_folder"]) == 2
    assert "unknown benchmark folder" in capsys.readouterr().err


def test_bench_parses_json_lines_only():
    out = "warming up\n{\"benchmark\": \"x\", \"device\": \"cpu\", \"batch_size\": 8, " \
          "\"samples_per_s\": 10.5, \"tflops\": 0.01, \"amp\": false}\n{not json\n[1, 2]\n"
    rows = bench.parse_results(out)
    assert rows == [{"benchmark": "x", "device": "cpu", "batch_size": 8, "samples_per_s": 10.5,
                     "tflops": 0.01, "amp": False}]
    table = bench.bench_table(rows)
    assert "10.5" in table and "0.010" in table and "amp=False" in table


@pytest.fixture
def server(tmp_path):
    (tmp_path / "srv").mkdir()
    payload = os.urandom(50_000)
    (tmp_path / "srv" / "blob.zip").write_bytes(payload)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "range_http_server.py"),
                             str(tmp_path / "srv"), "--cut-after", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}", payload, proc
    proc.terminate()
    proc.wait(timeout=10)


def test_range_server_cuts_then_resumes(server):
    base, payload, proc = server
    with urllib.request.urlopen(f"{base}/blob.zip") as r:
        # The server drops the first transfer after 20,000 of the 50,000 bytes.
        with pytest.raises(http.client.IncompleteRead) as cut:
            r.read()
        first = cut.value.partial
    assert 0 < len(first) <= 20_000
    req = urllib.request.Request(f"{base}/blob.zip", headers={"Range": f"bytes={len(first)}-"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes {len(first)}-{len(payload) - 1}/{len(payload)}"
        rest = r.read()
    assert first + rest == payload
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{base}/missing.zip")
    assert e.value.code == 404


def _install(args, os_release: str, tmp_path):
    path = tmp_path / "os-release"
    path.write_text(os_release)
    env = dict(os.environ, OS_RELEASE=str(path))
    return subprocess.run(["bash", str(ROOT / "install_cuda_docker.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_script_refuses_other_systems(tmp_path):
    debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    proc = _install([], debian, tmp_path)
    assert proc.returncode == 1
    assert "Ubuntu 22.04 and 24.04 only" in proc.stderr and "Debian GNU/Linux 12" in proc.stderr
    assert "Nothing was changed" in proc.stderr
    old = 'PRETTY_NAME="Ubuntu 20.04"\nID=ubuntu\nVERSION_ID="20.04"\nVERSION_CODENAME=focal\n'
    assert _install(["--dry-run"], old, tmp_path).returncode == 1


def test_install_script_dry_run_prints_plan(tmp_path):
    noble = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n'
    proc = _install(["--dry-run", "--no-check"], noble, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "host: Ubuntu 24.04.1 LTS" in proc.stdout
    # Whatever is already on this machine, every change is only printed, never made.
    for line in proc.stdout.splitlines():
        if line.startswith("+ "):
            assert not line.startswith("+ docker run")  # --no-check
    if "Docker Engine present" not in proc.stdout:
        assert "https://download.docker.com/linux/ubuntu noble stable" in proc.stdout
    assert _install(["--bogus"], noble, tmp_path).returncode == 2
    helptext = _install(["--help"], noble, tmp_path)
    assert helptext.returncode == 0 and "Usage:" in helptext.stdout


def test_bench_tool_reports_a_failing_folder(tmp_path, monkeypatch):
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "bench.py").write_text(
        "import json\nprint(json.dumps({'benchmark': 'fake', 'device': 'cpu', 'batch_size': 1,"
        " 'samples_per_s': 1.0, 'tflops': 0.0}))\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bench.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    assert bench.main(["--bench", "fake"]) == 0
    assert json.loads((tmp_path / ".demo" / "bench.jsonl").read_text())["benchmark"] == "fake"
    assert bench.main([]) == 1
