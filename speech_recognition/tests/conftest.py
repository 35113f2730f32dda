"""Shared fixtures: the folder on sys.path, one tiny dataset and one in-process tiny run per test session."""

import json
import os
import shutil
import sys

import pytest
import torch

# In-process tiny runs share 2 cores with everything else: one thread avoids OpenMP oversubscription (10x
# slower measured on a loaded machine) and costs little at these sizes. Subprocess runs get the same from the
# tiny preset's cpu_threads.
torch.set_num_threads(1)

FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, FOLDER)

import data  # noqa: E402
import make_tiny_dataset  # noqa: E402
import preprocess  # noqa: E402
import train  # noqa: E402

SEED = 1  # run seed of the session's tiny run; tests that compare with it use the same


def read_mllog(path: str) -> list[dict]:
    prefix = ":::MLLOG "
    with open(path) as f:
        return [json.loads(line[len(prefix):]) for line in f if line.startswith(prefix)]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """make_tiny_dataset.py --seed 0, preprocessed: the DATA_DIR of every tiny run."""
    d = str(tmp_path_factory.mktemp("tiny_data"))
    assert make_tiny_dataset.main([d, "--seed", "0"]) == 0
    assert preprocess.main([d]) == 0
    return d


@pytest.fixture(scope="session")
def small_data(tiny_data, tmp_path_factory) -> str:
    """A DATA_DIR whose training manifest lists only the first 48 utterances of the tiny data (6 steps of 8;
    the audio linked, the dev set whole): for tests of mechanics (resume, ranks agreeing), not of learning."""
    d = str(tmp_path_factory.mktemp("small_data"))
    os.makedirs(os.path.join(d, data.MANIFEST_DIR))
    os.symlink(os.path.join(tiny_data, "LibriSpeech"), os.path.join(d, "LibriSpeech"))
    shutil.copy(os.path.join(tiny_data, "tiny.md5"), d)
    shutil.copy(data.manifest_path(tiny_data, "dev-tiny"), data.manifest_path(d, "dev-tiny"))
    data.write_manifest(d, "train-tiny", data.read_manifests(tiny_data, ["train-tiny"])[:48])
    return d


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> dict:
    """The tiny preset trained in-process on CPU until the target: rc, output dir, summary and log events."""
    out = str(tmp_path_factory.mktemp("tiny_run"))
    rc = train.main(["--data-dir", tiny_data, "--output-dir", out, "--config", "tiny", "--seed", str(SEED),
                     "--device", "cpu"])
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return {"rc": rc, "out": out, "data_dir": tiny_data, "summary": summary,
            "log": read_mllog(os.path.join(out, "mlperf.log"))}
