"""`make gpu-check` and `make gpu-wheels`, run here on the CPU: the harness, the probe that counts steps and
syncs, the report's fields, a failing benchmark, and wheels installed from a local folder (no network)."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "gpu_probe"))

import gpu_check  # noqa: E402
import gpu_probe  # noqa: E402
import gpu_wheels  # noqa: E402

S = gpu_probe.STEP


def test_probe_counts_syncs_between_steps():
    # Setup syncs, then 4 steps with 2 syncs each at one site (+1 at another every other step), then an
    # evaluation between epochs with many syncs, then 3 more steps.
    events = ["setup"] * 3
    for k in range(4):
        events += [S, "train.py:10", "train.py:10"] + (["data.py:5"] if k % 2 else [])
    events += ["eval.py:1"] * 50
    for _ in range(3):
        events += [S, "train.py:10", "train.py:10"]
    out = gpu_probe.summarize(events)
    assert out["steps"] == 7 and out["gaps"] == 6 and out["syncs_before_first_step"] == 3
    assert out["syncs_per_step_median"] == 2  # gaps: 2, 3, 2, 53, 2, 2
    assert out["per_step_sites"] == {"train.py:10": 2.0}  # data.py:5 is in 2 of 6 gaps, eval.py in 1
    assert out["other_sites"] == {"eval.py:1": 50, "data.py:5": 2}
    assert gpu_probe.summarize([])["syncs_per_step_median"] is None


def test_mfu_uses_the_peak_of_the_precision_used():
    assert gpu_check.precision_of({"amp": "bfloat16"}) == "bf16"
    assert gpu_check.precision_of({"amp": "float16"}) == "fp16"
    assert gpu_check.precision_of({"amp": "off"}) == gpu_check.precision_of({}) == "fp32"
    assert gpu_check.peak_for("NVIDIA H200", "bf16") == 989.4
    assert gpu_check.peak_for("NVIDIA H100 PCIe", "bf16") == 756.0  # not the SXM part's
    assert gpu_check.peak_for("Tesla P100-PCIE-16GB", "fp16") == 18.7
    assert gpu_check.peak_for("Tesla P100-PCIE-16GB", "bf16") is None  # no bf16 on Pascal: no made-up MFU
    assert gpu_check.peak_for("cpu (2 threads)", "fp32") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_plain_gpu_check_refuses_a_machine_without_cuda(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not (tmp_path / "report.json").exists()


def test_gpu_check_names_an_unknown_benchmark(tmp_path, capsys):
    assert gpu_check.main(["--device", "cpu", "--bench", "nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark folder(s): nosuch" in capsys.readouterr().err


def test_gpu_check_on_cpu_reports_bench_and_tiny_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu",
                           "--bench", "recommendation", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and report["device"] == "cpu" and report["torch"] == torch.__version__
    r = report["benchmarks"]["recommendation"]
    bench = r["bench"]
    assert bench["ok"] and bench["rows"] and bench["peak_rss_gib"] > 0
    for row in bench["rows"]:
        assert row["samples_per_s"] > 0 and row["tflops"] > 0 and row["precision"] == "fp32"
        assert row["mfu"] is None  # no peak for a CPU
    run = r["run"]
    # Launched by torchrun with one rank (DDP and gloo collectives), to the tiny target.
    assert run["ok"] and run["success"] and run["world_size"] == 1 and run["reached"] >= run["target"]
    probe = run["probe"]
    assert probe["script"] == "train.py" and probe["rank"] == 0 and probe["steps"] > 10
    assert probe["sync_debug"] is False  # no CUDA: syncs not measured, and the table says "-"
    assert "recommendation" in proc.stdout and " ok" in proc.stdout.splitlines()[-3]


FAKE_TRAIN = '''\
#!/usr/bin/env python3
import json, os, sys, warnings
import torch
args = sys.argv[1:]
out = args[args.index("--output-dir") + 1]
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(5):
    model(torch.randn(4, 2)).sum().backward()
    opt.step()
    warnings.warn("called a synchronizing CUDA operation")  # what PyTorch says in sync debug mode
    if os.environ.get("BROKEN"):
        raise SystemExit("broken build")
os.makedirs(out, exist_ok=True)
json.dump({"success": True, "reached": 1.0, "target": 1.0, "world_size": int(os.environ["WORLD_SIZE"])},
          open(os.path.join(out, "summary.json"), "w"))
'''
FAKE_RUN = '''\
#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
[ "$TORCHRUN" = 1 ] || exit 9
"$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC_PER_NODE" --master_addr "$MASTER_ADDR" \\
  --master_port "$MASTER_PORT" train.py --data-dir "$DATA_DIR" --output-dir "$OUTPUT_DIR" "$@"
'''
FAKE_BENCH = 'import json, sys\nif "--broken" in sys.argv: sys.exit(3)\n' \
             'rate = 5.0 if "--compile" in sys.argv else 3.0\n' \
             'print(json.dumps({"benchmark": "fake", "device": "cpu", "batch_size": 1, ' \
             '"samples_per_s": rate, "tflops": rate / 6}))\n'
FAKE_DATA = 'import sys, os\nos.makedirs(sys.argv[1], exist_ok=True)\n' \
            'open(os.path.join(sys.argv[1], "tiny.md5"), "w")\n'


def _fake_folder(root: Path) -> None:
    (root / "fake").mkdir(parents=True)
    for name, text in [("train.py", FAKE_TRAIN), ("run_and_time.sh", FAKE_RUN), ("bench.py", FAKE_BENCH),
                       ("make_tiny_dataset.py", FAKE_DATA)]:
        (root / "fake" / name).write_text(text)


def test_gpu_check_counts_syncs_at_their_line_and_fails_a_broken_build(tmp_path, monkeypatch, capsys):
    _fake_folder(tmp_path / "repo")
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path / "repo")
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    probe = report["benchmarks"]["fake"]["run"]["probe"]
    # The warning is raised on line 11 of train.py after each of 5 steps: 4 gaps of one sync each.
    assert probe["steps"] == 5 and probe["gaps"] == 4 and probe["syncs"] == 5
    assert probe["syncs_per_step_median"] == 1 and probe["per_step_sites"] == {"train.py:11 (<module>)": 1.0}
    assert report["benchmarks"]["fake"]["bench"]["rows"][0]["samples_per_s"] == 3.0

    monkeypatch.setenv("BROKEN", "1")
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out2")]) == 1
    run = json.loads((tmp_path / "out2" / "report.json").read_text())["benchmarks"]["fake"]["run"]
    assert not run["ok"] and run["error"] == "no summary.json" and "broken build" in run["tail"]
    assert "FAIL: run no summary.json" in capsys.readouterr().out


def test_gpu_check_runs_bench_variants_as_their_own_rows(tmp_path, monkeypatch, capsys):
    # A folder's variant (object_detection's --compile on CUDA) is a second bench.py run whose rows are
    # tagged and tabled on their own line; the eager row stays the benchmark's main figure; a failing
    # variant fails the check, naming the variant.
    assert "--compile" in gpu_check.CHECKS["object_detection"]["bench_variants"]["compile"]
    _fake_folder(tmp_path / "repo")
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path / "repo")
    monkeypatch.setattr(gpu_check, "CPU_BENCH_VARIANTS", {"fake": {"compile": ["--compile"]}})
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    bench = json.loads((tmp_path / "out" / "report.json").read_text())["benchmarks"]["fake"]["bench"]
    assert [(r["samples_per_s"], r.get("variant")) for r in bench["rows"]] == [(3.0, None), (5.0, "compile")]
    assert bench["commands"][1].endswith("--compile")
    assert (tmp_path / "out" / "fake" / "bench-compile.log").exists()
    table = capsys.readouterr().out.splitlines()
    assert any(line.startswith("fake ") and " 3.0 " in line and " ok" in line for line in table)
    assert any(line.startswith("fake compile") and " 5.0 " in line for line in table)

    monkeypatch.setattr(gpu_check, "CPU_BENCH_VARIANTS", {"fake": {"compile": ["--broken"]}})
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out2")]) == 1
    bench = json.loads((tmp_path / "out2" / "report.json").read_text())["benchmarks"]["fake"]["bench"]
    assert not bench["ok"] and bench["error"] == "compile exit 3"
    assert "FAIL: bench compile exit 3" in capsys.readouterr().out


def _wheel(folder: Path, name: str, requires: list[str]) -> Path:
    """A pure-Python wheel made by hand (no build tools, no network)."""
    mod, dist = name.replace("-", "_"), f"{name.replace('-', '_')}-1.0.dist-info"
    files = {f"{mod}/__init__.py": f"NAME = {name!r}\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = ""
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text.encode())}\n"
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    path = folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return path


def test_gpu_wheels_and_offline_install(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "mlpx-app", ["mlpx-dep", "numpy"])
    _wheel(index, "mlpx-dep", [])
    _wheel(index, "numpy", [])  # stands for torchvision's own numpy: never carried
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# a comment\nmlpx-app==1.0\ntorch==9.9\n")
    out = tmp_path / "wheels"
    assert gpu_wheels.main(["--python-version", "3.12", "--out", str(out), "--requirements", str(reqs),
                            "--pip-args", f"--no-index --find-links {index}"]) == 0
    assert sorted(p.name for p in out.glob("*.whl")) == ["mlpx_app-1.0-py3-none-any.whl",
                                                          "mlpx_dep-1.0-py3-none-any.whl"]
    assert gpu_wheels.requirement_lines([reqs]) == ["mlpx-app==1.0"]
    assert gpu_wheels.main(["--out", str(tmp_path / "w2"), "--requirements", str(reqs),
                            "--exclude", "MLPX_dep",
                            "--pip-args", f"--no-index --find-links {index}"]) == 0
    assert [p.name for p in (tmp_path / "w2").glob("*.whl")] == ["mlpx_app-1.0-py3-none-any.whl"]

    site = tmp_path / "site"
    gpu_check.install_wheels(out, site, sys.executable)
    env = dict(os.environ, PYTHONPATH=str(site))
    code = "import mlpx_app, mlpx_dep; print(mlpx_app.NAME, mlpx_dep.NAME)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == ["mlpx-app", "mlpx-dep"], proc.stderr
    with pytest.raises(SystemExit, match="holds no .whl"):
        gpu_check.install_wheels(tmp_path / "index" / "..", tmp_path / "s2", sys.executable)


def test_sitecustomize_leaves_other_processes_alone(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools" / "gpu_probe"), GPU_CHECK_PROBE_DIR=str(tmp_path))
    script = tmp_path / "convert.py"
    script.write_text(textwrap.dedent("""\
        import sys
        print("gpu_probe" in sys.modules)
    """))
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert proc.stdout.strip() == "False" and not list(tmp_path.glob("*.json"))
