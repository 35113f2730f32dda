"""download_dataset.sh against a local Range-capable server; verify_dataset.sh; extract.py; run_and_time.sh
(tiny, unpacking first); bench.py's pieces; every script's --help."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import FOLDER

import bench
import extract
import model
from config import PRESETS, model_kwargs

SERVER = os.path.join(os.path.dirname(FOLDER), "tools", "range_http_server.py")
FILES = ["coco_annotations_minival.tgz", "R-50.pkl", "annotations_trainval2014.zip", "val2014.zip",
         "train2014.zip"]  # the download order: smallest first
OFFICIAL_MD5 = dict(line.split()[::-1] for line in open(os.path.join(FOLDER, "checksums.md5")))


def script(name, *args, env=None, **kw):
    path = os.path.join(FOLDER, name)
    cmd = [sys.executable, path] if name.endswith(".py") else [path]  # this interpreter, not the shebang's
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})}, **kw)


def copy_archives(tiny_data, dest) -> None:
    """What make_tiny_dataset.py writes: the archives, R-50.pkl and tiny.md5, nothing unpacked."""
    os.makedirs(dest, exist_ok=True)
    for name in FILES + ["tiny.md5"]:
        shutil.copy(os.path.join(tiny_data, name), os.path.join(dest, name))


@pytest.fixture
def mirror(tmp_path):
    """Serve tmp_path/mirror over HTTP on 127.0.0.1, cutting the first transfer of each file after 100 kB."""
    root = tmp_path / "mirror"
    root.mkdir()
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen([sys.executable, SERVER, str(root), "--cut-after", "100000"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(server.stdout.readline().split()[1])
    yield root, f"http://127.0.0.1:{port}", log
    server.terminate()
    server.wait()
    log.close()


def test_checksums_are_the_specs():
    assert OFFICIAL_MD5 == {"train2014.zip": "0da8c0bd3d6becc4dcb32757491aca88",
                            "val2014.zip": "a3d79f5ed8d289b7a7554ce06a5782b3",
                            "annotations_trainval2014.zip": "0a379cfc70b0e71301e0f377548639bd",
                            "coco_annotations_minival.tgz": "2d2b9d2283adb5e3b8d25eec88e65064",
                            "R-50.pkl": "b19105fdd7baafb40480251377de18f2"}
    md5_2017 = dict(line.split()[::-1] for line in open(os.path.join(FOLDER, "checksums_2017.md5")))
    assert md5_2017 == {"train2017.zip": "cced6f7f71b7629ddf16f17bbcfab6b2",
                        "val2017.zip": "442b8da7639aecaf257c1dceb8ba8c80",
                        "annotations_trainval2017.zip": "f4bbac642086de4f52a3fdda2de5fa2c",
                        "R-50.pkl": "b19105fdd7baafb40480251377de18f2"}


def test_download_resumes_and_verify_rejects_the_md5(tiny_data, mirror, tmp_path):
    root, url, log = mirror
    for name in FILES:  # small files in the real format, under the real names
        shutil.copy(os.path.join(tiny_data, name), root / name)
    dest = tmp_path / "data"
    dest.mkdir()
    shutil.copy(root / FILES[0], dest / FILES[0])  # one is already there: kept, not fetched
    r = script("download_dataset.sh", str(dest), env={"DATASET_MIRROR": url})
    assert r.returncode == 1  # the served files are not COCO's
    assert f"{dest}/{FILES[0]} already there" in r.stdout
    assert "100.0%" in r.stderr and "#" in r.stderr  # curl's progress bar
    assert "transfer of R-50.pkl interrupted (attempt 1 of 5); resuming" in r.stderr
    log.seek(0)
    requests = [line for line in log.read().splitlines() if line.startswith("GET")]
    expected = []
    for name in FILES[1:]:  # files over 100 kB are cut once and resumed with a Range request
        expected.append(f"GET /{name} range=None status=200")
        if (root / name).stat().st_size > 100_000:
            expected.append(f"GET /{name} range=bytes=100000- status=206")
    assert requests == expected and len(expected) == 8
    for name in FILES:
        got = (dest / name).read_bytes()
        assert got == (root / name).read_bytes() and not (dest / f"{name}.part").exists()
        md5 = hashlib.md5(got).hexdigest()
        assert f"FAILED: {dest}/{name} has md5 {md5}, expected {OFFICIAL_MD5[name]}" in r.stderr


def test_download_hides_credentials_keeps_partial_files_and_knows_2017(tmp_path):
    # Nothing listens on port 9: every attempt fails; the URL's password must not be printed.
    env = {"DATASET_MIRROR": "http://someone:secret@127.0.0.1:9/coco", "DOWNLOAD_ATTEMPTS": "2"}
    r = script("download_dataset.sh", str(tmp_path / "data"), env=env)
    assert r.returncode == 1 and "secret" not in r.stdout + r.stderr and "//***@127.0.0.1:9" in r.stdout
    assert "could not download coco_annotations_minival.tgz; rerun to resume" in r.stderr
    assert "(attempt 2 of 2)" in r.stderr and "R-50.pkl" not in r.stderr  # it stops at the first failure
    r = script("download_dataset.sh", str(tmp_path / "data"), env={**env, "COCO_YEAR": "2017"})
    assert r.returncode == 1 and "could not download R-50.pkl" in r.stderr
    r = script("download_dataset.sh", str(tmp_path / "data"), env={**env, "COCO_YEAR": "2015"})
    assert r.returncode == 2 and "COCO_YEAR=2015: expected 2014 or 2017" in r.stderr


def test_verify_checks_tiny_md5_and_names_bad_files(tiny_data, tmp_path):
    r = script("verify_dataset.sh", tiny_data)
    assert r.returncode == 0 and "checking the synthetic tiny dataset" in r.stdout and "PASSED" in r.stdout
    assert f"{tiny_data}/train2014: 144 images" in r.stdout and f"{tiny_data}/val2014: 56 images" in r.stdout
    d = tmp_path / "data"
    copy_archives(tiny_data, d)
    with open(d / "val2014.zip", "r+b") as f:
        f.truncate(1000)
    r = script("verify_dataset.sh", str(d))
    assert r.returncode == 1 and f"FAILED: {d}/val2014.zip has md5" in r.stderr
    assert f"{d}/R-50.pkl: OK" in r.stdout
    # Without tiny.md5 the official sums apply: every real file is named, for either year.
    for year, names in (("2014", FILES), ("2017", ["train2017.zip", "val2017.zip",
                                                   "annotations_trainval2017.zip", "R-50.pkl"])):
        r = script("verify_dataset.sh", str(tmp_path / "empty"), env={"COCO_YEAR": year})
        assert r.returncode == 1
        for name in names:
            assert f"MISSING: {tmp_path}/empty/{name}" in r.stderr


def test_verify_counts_the_real_image_folders(tmp_path):
    d = tmp_path / "data"
    (d / "val2017").mkdir(parents=True)
    for i in range(3):
        (d / "val2017" / f"{i:012d}.jpg").write_bytes(b"")
    r = script("verify_dataset.sh", str(d), env={"COCO_YEAR": "2017"})
    assert r.returncode == 1 and f"FAILED: {d}/val2017 holds 3 images, expected 5000" in r.stderr


def test_extract_unpacks_only_what_is_missing_and_names_a_damaged_archive(tiny_data, tmp_path):
    d = tmp_path / "data"
    copy_archives(tiny_data, d)
    (d / ".train2014.unpacking").mkdir()  # left by an interrupted run: redone
    r = script("extract.py", str(d))
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(d / "train2014")) == 144 and len(os.listdir(d / "val2014")) == 56
    assert sorted(os.listdir(d / "annotations")) == sorted(
        ["instances_train2014.json", "instances_val2014.json", "instances_minival2014.json",
         "instances_valminusminival2014.json"])
    assert not [n for n in os.listdir(d) if n.endswith(".unpacking")]
    r = script("extract.py", str(d))
    assert r.returncode == 0 and "nothing to unpack" in r.stderr
    # A damaged archive: an error naming it, exit 1, the archive and the other folders untouched.
    shutil.rmtree(d / "val2014")
    with open(d / "val2014.zip", "r+b") as f:
        f.truncate(5000)
    before = (d / "val2014.zip").read_bytes()
    r = script("extract.py", str(d))
    assert r.returncode == 1 and f"{d}/val2014.zip: cannot be unpacked" in r.stderr
    assert (d / "val2014.zip").read_bytes() == before and not (d / "val2014").exists()
    assert len(os.listdir(d / "train2014")) == 144


def test_extract_refuses_an_archive_without_its_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "val2014.zip", "w") as zf:
        zf.writestr("images/COCO_val2014_000000000001.jpg", b"x")
    with pytest.raises(extract.ExtractError, match="val2014.zip: holds no val2014/ folder"):
        extract.unpack_archives(str(tmp_path))
    assert not (tmp_path / "val2014").exists()


@pytest.mark.parametrize("extra, rc", [(["--max-epochs", "1", "--target", "0.001", "0.001"], 0),
                                       (["--max-epochs", "1"], 1)])
def test_run_and_time_unpacks_trains_and_prints_result(tiny_data, tmp_path, extra, rc):
    d = tmp_path / "data"
    copy_archives(tiny_data, d)
    env = {"DATA_DIR": str(d), "OUTPUT_DIR": str(tmp_path / "out"), "CONFIG": "tiny", "SEED": "7",
           "NPROC_PER_NODE": "1"}
    r = script("run_and_time.sh", "--device", "cpu", *extra, env=env)
    assert r.returncode == rc, r.stderr[-3000:]
    assert f"extract.py: unpacked {d}/train2014.zip" in r.stderr
    assert len(os.listdir(d / "train2014")) == 144 and len(os.listdir(d / "val2014")) == 56
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1
    fields = result[0].split(",")
    assert fields[:3] == ["RESULT", "object_detection", "7"] and float(fields[3]) > 0 and len(fields) == 6
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary["success"] == (rc == 0) and summary["seed"] == 7


def test_bench_calibration_gives_real_proposals_and_full_detections():
    """bench.py times the reference model with random weights; calibrate() must make its proposals and
    detections what they are with R-50.pkl (checked here on the tiny topology, which is fast)."""
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    net = model.build_model(**model_kwargs(cfg)).eval()
    images = [torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8) for _ in range(2)]
    bench.calibrate(net, images)
    net.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        image_list, _ = net.transform([im.flip(0).float() for im in images])
        features = net.backbone.body(image_list.tensors)
        std = features["3"].std().item()
        proposals, _ = net.rpn(image_list, net.backbone(image_list.tensors))
        detections = net(images)
    assert 0.3 < std < 10
    widths = proposals[0][:, 2] - proposals[0][:, 0]
    assert (widths > 1).float().mean() > 0.9  # not collapsed onto the image corner
    assert all(len(d["boxes"]) == cfg.box_detections_per_img for d in detections)


def test_bench_batch_is_in_the_models_format():
    images, targets = bench.random_batch(1, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert images[0].shape == (3, 800, 1333) and images[0].dtype == torch.uint8
    boxes, masks = targets[0]["boxes"], targets[0]["masks"]
    assert boxes.shape == (bench.OBJECTS, 4) and (boxes[:, 2:] > boxes[:, :2]).all()
    assert (boxes[:, 2] <= 1333).all() and (boxes[:, 3] <= 800).all()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert torch.allclose(masks.sum(dim=(1, 2)).float(), areas, rtol=0.05)
    assert targets[0]["labels"].min() >= 1 and targets[0]["labels"].max() <= 80


@pytest.mark.parametrize("name", ["download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "train.py",
                                  "extract.py", "make_tiny_dataset.py", "bench.py"])
def test_help(name, tmp_path):
    r = script(name, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower() and os.listdir(tmp_path) == []
