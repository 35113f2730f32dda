"""Shared fixtures: the tiny dataset, written by make_tiny_dataset.py and unpacked like the real archives."""

import os
import sys

import pytest
import torch

FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, FOLDER)

import extract  # noqa: E402
import make_tiny_dataset  # noqa: E402

# One intra-op thread: two threads thrash on a busy 2-core box.
torch.set_num_threads(1)


def pytest_configure(config):
    # data.py silences this pycocotools warning for runs; pytest resets warning filters per test, so here too.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """make_tiny_dataset.py --seed 0, unpacked: a DATA_DIR with train2014/, val2014/ and annotations/."""
    d = str(tmp_path_factory.mktemp("tiny_data"))
    assert make_tiny_dataset.main([d, "--seed", "0"]) == 0
    assert extract.unpack_archives(d)  # as run_and_time.sh does for the real downloads
    return d
