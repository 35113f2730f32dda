"""Every benchmark folder keeps the DESIGN.md contract (see CONTRIBUTING.md for the details).

A benchmark folder is a top-level folder with a run_and_time.sh. Checked here, per folder: the files
are present, scripts are executable and answer --help, requirements are pinned and agree across
folders, the Dockerfile takes a pinned BASE_IMAGE, bench.py/model.py/config.py import nothing a bare
GPU machine lacks, config.py has both presets, and the top-level README lists the folder.

    .venv/bin/python -m pytest tests
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent.name for p in ROOT.glob("*/run_and_time.sh"))

REQUIRED_FILES = [
    "README.md", "Dockerfile", ".dockerignore", "requirements.txt", "download_dataset.sh",
    "verify_dataset.sh", "run_and_time.sh", "make_tiny_dataset.py", "config.py", "data.py", "model.py",
    "train.py", "bench.py",
]
SHELL_SCRIPTS = ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh"]
PYTHON_SCRIPTS = ["make_tiny_dataset.py", "train.py", "bench.py"]
# What `make bench PYTHON=python3` can count on: a GPU machine with torch, torchvision and numpy only.
BARE_MODULES = {"torch", "torchvision", "numpy"}

folder_param = pytest.mark.parametrize("folder", FOLDERS)


def test_there_is_at_least_one_benchmark():
    assert FOLDERS, "no top-level folder has a run_and_time.sh"


@folder_param
def test_required_files(folder):
    d = ROOT / folder
    missing = [f for f in REQUIRED_FILES if not (d / f).is_file()]
    assert not missing, f"{folder}: missing {missing}"
    tests = list((d / "tests").glob("test_*.py"))
    assert tests, f"{folder}: no tests/test_*.py"


@folder_param
def test_scripts_are_executable_with_shebang(folder):
    d = ROOT / folder
    for name in SHELL_SCRIPTS + PYTHON_SCRIPTS:
        path = d / name
        assert os.access(path, os.X_OK), f"{folder}/{name} is not executable"
        first = path.read_text().splitlines()[0]
        want = "#!/usr/bin/env bash" if name.endswith(".sh") else "#!/usr/bin/env python3"
        assert first == want, f"{folder}/{name}: first line {first!r}, expected {want!r}"


def _help(folder: str, name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHON=sys.executable)
    cmd = ["bash", name, "--help"] if name.endswith(".sh") else [sys.executable, name, "--help"]
    return subprocess.run(cmd, cwd=ROOT / folder, env=env, capture_output=True, text=True, timeout=120)


@folder_param
@pytest.mark.parametrize("name", SHELL_SCRIPTS + PYTHON_SCRIPTS)
def test_help_works_and_changes_nothing(folder, name):
    before = sorted(p.name for p in (ROOT / folder).iterdir())
    proc = _help(folder, name)
    assert proc.returncode == 0, f"{folder}/{name} --help exited {proc.returncode}:\n{proc.stderr}"
    assert "usage" in (proc.stdout + proc.stderr).lower(), f"{folder}/{name} --help printed no usage"
    after = sorted(p.name for p in (ROOT / folder).iterdir() if p.name != "__pycache__")
    assert after == [n for n in before if n != "__pycache__"], f"{folder}/{name} --help created files"


def _requirements(path: Path) -> dict[str, str]:
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"{path.relative_to(ROOT)}:{n}: not an exact pin (name==version): {line!r}"
        name = re.sub(r"[-_.]+", "-", m.group(1).split("[")[0]).lower()
        pins[name] = m.group(2)
    return pins


def test_requirements_are_pinned_and_agree():
    seen: dict[str, tuple[str, str]] = {}
    # Every folder's pins, finished or not, test-only ones included: make test installs them into one venv.
    files = ([ROOT / "requirements-dev.txt"] + sorted(ROOT.glob("*/requirements.txt"))
             + sorted(ROOT.glob("*/requirements-test.txt")))
    for path in files:
        where = str(path.relative_to(ROOT))
        for name, version in _requirements(path).items():
            assert name not in ("torch", "torchvision"), (
                f"{where} pins {name}: torch and torchvision come from the Makefile / the base image")
            if name in seen:
                assert seen[name][1] == version, (
                    f"{name} is pinned to {version} in {where} but {seen[name][1]} in {seen[name][0]}")
            else:
                seen[name] = (where, version)


@folder_param
def test_requirements_include_mlperf_logging(folder):
    assert "mlperf-logging" in _requirements(ROOT / folder / "requirements.txt")


@folder_param
def test_dockerfile_base_image_is_pinned(folder):
    text = (ROOT / folder / "Dockerfile").read_text()
    m = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert m, f"{folder}/Dockerfile: no `ARG BASE_IMAGE=<image>` line"
    image = m.group(1)
    assert re.fullmatch(r"pytorch/pytorch:\d+\.\d+\.\d+-cuda\d+\.\d+-cudnn\d+-runtime", image), (
        f"{folder}/Dockerfile: BASE_IMAGE {image!r} is not a pinned official PyTorch CUDA runtime image")
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M), f"{folder}/Dockerfile: FROM ${{BASE_IMAGE}}"
    # Every image reads /data and writes /output, so one `docker run` line fits all seven.
    for env in ("DATA_DIR=/data", "OUTPUT_DIR=/output"):
        assert re.search(rf"^ENV .*\b{env}\b", text, re.M), f"{folder}/Dockerfile lacks ENV {env}"
    ignore = (ROOT / folder / ".dockerignore").read_text().split()
    for entry in ("data", "output"):
        assert any(e.strip("/") == entry for e in ignore), f"{folder}/.dockerignore does not exclude {entry}/"
    readme = (ROOT / folder / "README.md").read_text()
    assert "cuda12.6" in readme, f"{folder}/README.md does not name the CUDA 12.6 image for P100/V100"


def _top_level_imports(path: Path) -> set[str]:
    """The modules `path` imports when it is imported: everywhere but inside function bodies, where an
    import runs only on the path that calls it (bench.py's optional real-data loader, for one)."""
    names = set()

    def visit(node):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for child in ast.iter_child_nodes(node):
                visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return names


def _non_bare_imports(folder: Path, name: str, seen: set[str]) -> set[str]:
    """What `name` needs, directly or through the folder's own modules, beyond a bare GPU machine's."""
    seen.add(name)
    missing = set()
    for module in _top_level_imports(folder / name):
        if (folder / f"{module}.py").is_file():
            if f"{module}.py" not in seen:
                missing |= _non_bare_imports(folder, f"{module}.py", seen)
        elif module not in BARE_MODULES and module not in sys.stdlib_module_names:
            missing.add(module)
    return missing


@folder_param
@pytest.mark.parametrize("name", ["bench.py", "model.py", "config.py"])
def test_bench_path_imports_only_what_a_bare_gpu_machine_has(folder, name):
    extra = _non_bare_imports(ROOT / folder, name, set())
    assert not extra, f"{folder}/{name} needs {sorted(extra)}; make bench PYTHON=python3 cannot run it"


def test_import_check_follows_local_modules(tmp_path):
    (tmp_path / "bench.py").write_text("import json\nimport torch\nimport helper\n")
    (tmp_path / "helper.py").write_text("import numpy\nfrom mlperf_logging import mllog\nimport bench\n"
                                        "try:\n    import pandas\nexcept ImportError:\n    pass\n"
                                        "class A:\n    import yaml\n"
                                        "def real_data():\n    import soundfile\n")
    # Module level, in a try and in a class body count; inside a function (run only when called) not.
    assert _non_bare_imports(tmp_path, "bench.py", set()) == {"mlperf_logging", "pandas", "yaml"}


@folder_param
def test_config_has_reference_and_tiny_presets(folder):
    spec = importlib.util.spec_from_file_location(f"{folder}_config", ROOT / folder / "config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {"reference", "tiny"} <= set(module.PRESETS), f"{folder}/config.py PRESETS lacks a preset"


@folder_param
def test_readme_sections(folder):
    text = (ROOT / folder / "README.md").read_text()
    for needle in ("docker build", "docker run", "run_and_time.sh", "CONFIG=tiny", "NPROC_PER_NODE",
                   "bench.py"):
        assert needle in text, f"{folder}/README.md does not mention {needle!r}"


@folder_param
def test_top_level_readme_lists_folder(folder):
    table_rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("|")]
    assert any(f"[{folder}]" in row or f"`{folder}`" in row for row in table_rows), (
        f"README.md's benchmark table has no row for {folder}")
