"""make_tiny_dataset.py: real file names and inner paths, tiny.md5, backbone blobs, determinism, --help."""

import hashlib
import json
import os
import pickle
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
import torch

import data
import make_tiny_dataset
import model

FILES = ["R-50.pkl", "annotations_trainval2014.zip", "coco_annotations_minival.tgz", "train2014.zip",
         "val2014.zip"]


def test_archives_and_md5(tiny_data):
    lines = open(os.path.join(tiny_data, "tiny.md5")).read().splitlines()
    assert [line.split("  ")[1] for line in lines] == FILES
    for line in lines:
        digest, name = line.split("  ")
        with open(os.path.join(tiny_data, name), "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == digest
    with zipfile.ZipFile(os.path.join(tiny_data, "train2014.zip")) as zf:
        names = zf.namelist()
    assert len(names) == 144 and all(n.startswith("train2014/COCO_train2014_") and n.endswith(".jpg")
                                     for n in names)
    with tarfile.open(os.path.join(tiny_data, "coco_annotations_minival.tgz")) as tf:
        assert sorted(tf.getnames()) == ["annotations/instances_minival2014.json",
                                         "annotations/instances_valminusminival2014.json"]


def test_annotations_have_the_edge_cases(tiny_data):
    def load(name):
        with open(os.path.join(tiny_data, "annotations", f"instances_{name}.json")) as f:
            return json.load(f)

    train, val = load("train2014"), load("val2014")
    minival, rest = load("minival2014"), load("valminusminival2014")
    assert (len(train["images"]), len(minival["images"]), len(rest["images"])) == (144, 40, 16)
    assert {i["id"] for i in minival["images"]} | {i["id"] for i in rest["images"]} == {i["id"] for i in
                                                                                            val["images"]}
    assert not {i["id"] for i in minival["images"]} & {i["id"] for i in rest["images"]}
    annotated = {a["image_id"] for a in train["annotations"]}
    assert len(train["images"]) - len(annotated) == 3  # images without annotations
    assert sum(a["iscrowd"] for a in train["annotations"]) == 1
    assert sum(a["iscrowd"] for a in minival["annotations"]) == 1
    assert sum(a["bbox"][2] <= 1 for a in train["annotations"]) == 1  # the degenerate object
    assert [c["id"] for c in train["categories"]] == [1, 3, 18]  # non-contiguous ids
    sizes = {(i["width"], i["height"]) for i in train["images"]}
    assert {(128, 96), (96, 128)} <= sizes
    clipped = [a for a in train["annotations"]
               if a["bbox"][0] <= 0 or a["bbox"][1] <= 0 or a["bbox"][0] + a["bbox"][2] >= 95.99]
    assert clipped  # some objects cross the border


def test_backbone_weights_load_into_the_tiny_body(tiny_data):
    blobs = data.read_detectron_weights(os.path.join(tiny_data, "R-50.pkl"))
    body = model.ResNetBody(stem_width=8)
    model.load_c2_backbone(body, blobs)  # every conv and BN has its blob, every blob but the unused is used
    assert torch.equal(body.layer4[2].bn3.weight, torch.full((256,), 0.2))
    assert torch.equal(body.bn1.weight, torch.full((8,), 0.05))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 128) * 50  # about the scale of mean-subtracted 0-255 pixels
    with torch.no_grad():
        c5 = body(x)
    assert c5.shape == (2, 256, 3, 4)
    assert 0.01 < float(c5.std()) < 10  # about unit scale: the stem's BN absorbs the pixel scale


def test_bad_weights_files_are_named(tmp_path):
    with pytest.raises(data.DataError, match=r"R-50\.pkl: backbone weights file missing"):
        data.read_detectron_weights(str(tmp_path / "R-50.pkl"))
    (tmp_path / "R-50.pkl").write_bytes(b"<html>404</html>")
    with pytest.raises(data.DataError, match=r"R-50\.pkl: not a Detectron weights pickle"):
        data.read_detectron_weights(str(tmp_path / "R-50.pkl"))
    (tmp_path / "R-50.pkl").write_bytes(pickle.dumps({"conv1_w": [1, 2]}))
    with pytest.raises(data.DataError, match=r"R-50\.pkl: not a Detectron weights pickle \(expected a dict"):
        data.read_detectron_weights(str(tmp_path / "R-50.pkl"))
    nested = {"blobs": {"conv1_w": np.ones((2, 3), np.float32)}}
    (tmp_path / "R-50.pkl").write_bytes(pickle.dumps(nested))
    assert list(data.read_detectron_weights(str(tmp_path / "R-50.pkl"))) == ["conv1_w"]


def test_deterministic(tmp_path):
    assert make_tiny_dataset.main([str(tmp_path / "a"), "--seed", "3"]) == 0
    assert make_tiny_dataset.main([str(tmp_path / "b"), "--seed", "3"]) == 0
    assert make_tiny_dataset.main([str(tmp_path / "c"), "--seed", "4"]) == 0
    md5 = {d: (tmp_path / d / "tiny.md5").read_text() for d in "abc"}
    assert md5["a"] == md5["b"] and md5["a"] != md5["c"]


def test_help_touches_nothing(tmp_path):
    for flag in ("--help", "-h"):
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(make_tiny_dataset.__file__),
                                                           "make_tiny_dataset.py"), flag],
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert out.startswith("usage:") and "DATA_DIR" in out
    assert not os.listdir(tmp_path)


def test_backbone_weights_have_the_real_files_blob_names(tiny_data):
    """The tiny R-50.pkl holds the blobs of the real one (tests/fixtures/R-50.pkl.blobs), at width / 8."""
    from test_model import real_r50_blobs
    blobs = data.read_detectron_weights(os.path.join(tiny_data, "R-50.pkl"))
    assert set(blobs) == set(real_r50_blobs())
    assert all(not blobs[k].any() for k in blobs if k.endswith("_b") and k[:-2] + "_w" in blobs)
