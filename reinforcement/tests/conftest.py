"""Shared set-up: the folder on sys.path, one torch thread (two OpenMP threads thrash on 2 shared cores)."""

import os
import sys

FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, FOLDER)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

import make_tiny_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """make_tiny_dataset.py --seed 0: the GNU Go 5x5 games of every tiny test and run."""
    d = str(tmp_path_factory.mktemp("tiny_data"))
    assert make_tiny_dataset.main([d, "--seed", "0"]) == 0
    return d


import json  # noqa: E402

import train  # noqa: E402

SEED = 1  # run seed of the session's tiny run


def read_mllog(path: str) -> list[dict]:
    prefix = ":::MLLOG "
    with open(path) as f:
        return [json.loads(line[len(prefix):]) for line in f if line.startswith(prefix)]


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> dict:
    """The whole tiny loop in-process on CPU until its (smoke) target: rc, output dir, summary, log events."""
    out = str(tmp_path_factory.mktemp("tiny_run"))
    rc = train.main(["--data-dir", tiny_data, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu"])
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return {"rc": rc, "out": out, "data_dir": tiny_data, "summary": summary,
            "log": read_mllog(os.path.join(out, "mlperf.log"))}
