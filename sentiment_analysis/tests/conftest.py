"""Shared fixtures: the folder on sys.path, and one tiny dataset per test session."""

import sys
from pathlib import Path

import pytest
import torch

# In-process tiny runs share 2 cores with everything else: one thread avoids OpenMP
# oversubscription (which slowed tiny epochs 20x on a loaded machine) and costs nothing at
# these sizes.
torch.set_num_threads(1)

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

import make_tiny_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """DATA_DIR holding the seed-0 tiny aclImdb_v1.tar.gz and tiny.md5."""
    d = tmp_path_factory.mktemp("tiny_data")
    make_tiny_dataset.make(d, seed=0)
    return d
