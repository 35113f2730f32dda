#!/usr/bin/env python3
"""`make gpu-wheels`: the wheels a GPU machine without network needs to run `make gpu-check`.

On a machine with pip access, downloads (never builds) the binary wheels of every folder's
requirements.txt and of what they depend on, for another Python version and manylinux x86_64 (a GPU
machine's), then drops what any machine with PyTorch already has: torch and torchvision and their own
dependencies (numpy and pillow among them), and whatever --exclude names (packages known to be on the
GPU machine). Test-only packages live in the folders' requirements-test.txt and are not fetched. Prints
what it kept and the total size; `make gpu-check WHEELS=<folder>` installs them there.

    python tools/gpu_wheels.py --python-version 3.12 --out .gpu-wheels [--exclude pandas scipy]
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A PyTorch install brings these (torch's and torchvision's requirements, CUDA wheels included).
TORCH_CLOSURE = {"torch", "torchvision", "numpy", "pillow", "filelock", "typing-extensions", "sympy",
                 "mpmath", "networkx", "jinja2", "markupsafe", "fsspec", "setuptools", "triton"}
TORCH_PREFIXES = ("nvidia-", "cuda-")
# manylinux tags pip should accept for the GPU machine (pip matches each tag exactly).
PLATFORMS = ["manylinux1_x86_64", "manylinux2014_x86_64"] + [f"manylinux_2_{n}_x86_64" for n in range(5, 40)]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(path: Path) -> str:
    """The distribution name of a wheel file (name-version-...-platform.whl)."""
    return normalize(path.name.split("-")[0])


def dropped(name: str, exclude: set[str]) -> bool:
    return name in TORCH_CLOSURE or name.startswith(TORCH_PREFIXES) or name in exclude


def requirement_lines(files: list[Path]) -> list[str]:
    """Every pinned requirement of the files, once each, torch's closure left out."""
    lines = {}
    for f in files:
        for raw in f.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name = normalize(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0])
            if name not in TORCH_CLOSURE:
                lines[name] = line
    return sorted(lines.values())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Wheels for make gpu-check on a GPU machine without network.")
    p.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    p.add_argument("--out", type=Path, default=ROOT / ".gpu-wheels")
    p.add_argument("--exclude", nargs="*", default=[], help="packages the GPU machine already has")
    p.add_argument("--requirements", type=Path, nargs="*", default=None,
                   help="requirements files (default: every folder's requirements.txt)")
    p.add_argument("--pip-args", default="", help="more arguments for pip download (e.g. a --find-links)")
    args = p.parse_args(argv)

    files = args.requirements or sorted(ROOT.glob("*/requirements.txt"))
    reqs = requirement_lines(files)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("\n".join(reqs) + "\n")
        f.flush()
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--python-version", args.python_version, "--implementation", "cp",
               *[a for plat in PLATFORMS for a in ("--platform", plat)], "-d", str(args.out), "-r", f.name,
               *args.pip_args.split()]
        print(f"pip download for Python {args.python_version}, manylinux x86_64: {' '.join(reqs)}",
              flush=True)
        proc = subprocess.run(cmd)
    if proc.returncode != 0:
        print(f"gpu_wheels: pip download exited {proc.returncode}", file=sys.stderr)
        return proc.returncode
    exclude = {normalize(x) for x in args.exclude}
    kept, total = [], 0
    for whl in sorted(args.out.glob("*.whl")):
        if dropped(wheel_name(whl), exclude):
            whl.unlink()
            continue
        kept.append(whl)
        total += whl.stat().st_size
    for whl in kept:
        print(f"  {whl.stat().st_size / 2**20:7.2f} MiB  {whl.name}")
    print(f"{len(kept)} wheels, {total / 2**20:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
