"""Shared fixtures: one tiny dataset (written and preprocessed once) and one tiny run to the target."""

import sys
from pathlib import Path

import pytest
import torch

FOLDER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(FOLDER))
# One intra-op thread for the in-process runs: the tiny model's ops are too small to gain from a second
# thread, and on a busy 2-core machine two spinning OpenMP threads per process slow a run down ~10x.
torch.set_num_threads(1)

import make_tiny_dataset  # noqa: E402
import preprocess  # noqa: E402
import train  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """make_tiny_dataset.py + preprocess.py --config tiny, as run_and_time.sh would do."""
    data_dir = tmp_path_factory.mktemp("tiny_data")
    make_tiny_dataset.write_tiny_dataset(data_dir, seed=0)
    preprocess.preprocess(data_dir, "tiny", log=lambda m: None)
    return data_dir


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> tuple[int, Path]:
    """One in-process run of train.main with the tiny preset on CPU: (exit code, output dir)."""
    out = tmp_path_factory.mktemp("tiny_run")
    rc = train.main(["--data-dir", str(tiny_data), "--output-dir", str(out), "--config", "tiny",
                     "--seed", "0", "--device", "cpu"])
    return rc, out
