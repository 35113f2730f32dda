"""Bad input through the whole of train.py (test_data.py covers each DataError of data.py on its own): a
clear error naming the file, exit status 2, and nothing already there lost."""

import hashlib
import json
import os
import shutil

import pytest

import train


def corrupt_jpeg(d: str) -> str:
    with open(os.path.join(d, "annotations", "instances_train2014.json")) as f:
        coco = json.load(f)
    image_id = coco["annotations"][0]["image_id"]  # an image with objects: training reads it
    name = next(img["file_name"] for img in coco["images"] if img["id"] == image_id)
    path = os.path.join(d, "train2014", name)
    with open(path, "r+b") as f:
        f.truncate(200)  # a JPEG header, then nothing
    return path


def missing_image(d: str) -> str:
    path = os.path.join(d, "val2014", sorted(os.listdir(os.path.join(d, "val2014")))[0])
    os.remove(path)  # minival or valminusminival: both are read (training or evaluation)
    return path


def unknown_category(d: str) -> str:
    path = os.path.join(d, "annotations", "instances_train2014.json")
    with open(path) as f:
        coco = json.load(f)
    coco["annotations"][3]["category_id"] = 99
    with open(path, "w") as f:
        json.dump(coco, f)
    return path


def unknown_image(d: str) -> str:
    path = os.path.join(d, "annotations", "instances_valminusminival2014.json")
    with open(path) as f:
        coco = json.load(f)
    coco["annotations"][0]["image_id"] = 10**9
    with open(path, "w") as f:
        json.dump(coco, f)
    return path


def not_coco(d: str) -> str:
    path = os.path.join(d, "annotations", "instances_minival2014.json")
    with open(path, "w") as f:
        json.dump([{"caption": "a json, but not COCO instances"}], f)
    return path


def tree_digest(d: str) -> dict[str, str]:
    return {os.path.relpath(os.path.join(root, n), d): hashlib.md5(open(os.path.join(root, n), "rb").read())
            .hexdigest() for root, _, names in os.walk(d) for n in names}


@pytest.mark.parametrize("corrupt, message", [
    (corrupt_jpeg, "cannot decode image"), (missing_image, "image file missing"),
    (unknown_category, "refers to unknown category_id 99"), (unknown_image, "refers to unknown image_id"),
    (not_coco, "not a COCO instances file")])
def test_bad_input_stops_the_run_naming_the_file(tiny_data, tmp_path, capsys, corrupt, message):
    d = str(tmp_path / "data")
    shutil.copytree(tiny_data, d)
    path = corrupt(d)
    before = tree_digest(d)
    rc = train.main(["--data-dir", d, "--output-dir", str(tmp_path / "out"), "--config", "tiny",
                     "--seed", "1", "--device", "cpu", "--max-epochs", "2"])
    err = capsys.readouterr().err
    error = [line for line in err.splitlines() if line.startswith("train.py: error: ")]
    assert rc == 2 and error and path in error[0] and message in error[0], err[-2000:]
    assert tree_digest(d) == before  # the data is left as it was
