"""The data path: archive structure, extraction and val reorganisation, odd image files, the crop sampler,
the train/eval transforms, and clear errors for damaged input."""

import io
import os
import shutil
import sys
import tarfile

import numpy as np
import pytest
import scipy.io
import torch
from conftest import FOLDER

import data
import extract
import make_tiny_dataset
from config import PRESETS

TINY = PRESETS["tiny"]


def test_archives_have_the_real_structure(tiny_data):
    with tarfile.open(os.path.join(tiny_data, "ILSVRC2012_img_train.tar")) as tar:
        names = tar.getnames()
        assert names == [f"n{k:08d}.tar" for k in range(10)]
        with tarfile.open(fileobj=tar.extractfile(names[3])) as inner:
            files = inner.getnames()
    assert len(files) == 80 and all(f.startswith("n00000003_") and f.endswith(".JPEG") for f in files)
    with tarfile.open(os.path.join(tiny_data, "ILSVRC2012_img_val.tar")) as tar:
        assert tar.getnames() == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 201)]
    with tarfile.open(os.path.join(tiny_data, "ILSVRC2012_devkit_t12.tar.gz")) as tar:
        assert extract.DEVKIT_META in tar.getnames() and extract.DEVKIT_GROUND_TRUTH in tar.getnames()
    lines = open(os.path.join(tiny_data, "tiny.md5")).read().splitlines()
    assert [line.split()[1] for line in lines] == sorted(
        ["ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"])


def test_same_seed_same_bytes(tmp_path):
    a, b = make_tiny_dataset.make_archives(0), make_tiny_dataset.make_archives(0)
    other = make_tiny_dataset.make_archives(1)
    assert a == b and a["ILSVRC2012_img_val.tar"] != other["ILSVRC2012_img_val.tar"]
    assert sum(len(v) for v in a.values()) < 10_000_000


def test_val_reorganisation_puts_each_file_under_its_wnid(tiny_data):
    # Independently of extract.py: the devkit's ground truth gives IDs, meta.mat maps them to wnids.
    with tarfile.open(os.path.join(tiny_data, "ILSVRC2012_devkit_t12.tar.gz")) as tar:
        meta = scipy.io.loadmat(io.BytesIO(tar.extractfile(extract.DEVKIT_META).read()))["synsets"]
        truth = tar.extractfile(extract.DEVKIT_GROUND_TRUTH).read().split()
    id_to_wnid = {int(row[0][0][0][0]): str(row[0][1][0]) for row in meta if int(row[0][4][0][0]) == 0}
    assert len(id_to_wnid) == 10  # the two non-leaf synsets are not classes
    sorted_wnids = sorted(id_to_wnid.values())
    assert any(id_to_wnid[i] != sorted_wnids[i - 1] for i in id_to_wnid)  # IDs are not sorted-wnid order
    for i, class_id in enumerate(truth, 1):
        name = f"ILSVRC2012_val_{i:08d}.JPEG"
        assert os.path.isfile(os.path.join(tiny_data, "val", id_to_wnid[int(class_id)], name)), name
    classes, samples = data.list_images(os.path.join(tiny_data, "val"))
    assert classes == sorted_wnids and len(samples) == 200
    assert np.bincount([label for _, label in samples]).tolist() == [20] * 10


def test_val_images_show_their_class(tiny_data):
    """The val images' hues follow the wnid they were filed under (the reorganisation used the right map)."""
    from PIL import Image
    ds = data.ImageSet(os.path.join(tiny_data, "val"), TINY, train=False)
    hits = 0
    for index in range(0, 200, 5):
        img, label, _ = ds[index]
        hsv = np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).convert("HSV")).reshape(-1, 3)
        hue = hsv[hsv[:, 1] > 170, 0].astype(float) * 360 / 256  # saturated pixels: mostly the shape
        mode = np.argmax(np.bincount((hue // 10).astype(int), minlength=36)) * 10 + 5
        hits += abs((mode - 36.0 * label + 180) % 360 - 180) <= 25
    assert hits >= 36  # of 40


def test_train_extraction_and_the_three_odd_files_decode_to_rgb(tiny_data):
    classes, samples = data.list_images(os.path.join(tiny_data, "train"))
    assert classes == [f"n{k:08d}" for k in range(10)] and len(samples) == 800
    folder = os.path.join(tiny_data, "train", "n00000000")
    odd = {kind: os.path.join(folder, f"n00000000_{n}.JPEG") for kind, n in make_tiny_dataset.ODD.items()}
    assert open(odd["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"  # really a PNG under a .JPEG name
    from PIL import Image
    assert Image.open(odd["cmyk"]).mode == "CMYK" and Image.open(odd["gray"]).mode == "L"
    for kind, path in odd.items():
        raw = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
        img = data.decode(raw, path)
        assert img.dtype == torch.uint8 and img.ndim == 3 and img.shape[0] == 3, kind
        pil = np.asarray(Image.open(path).convert("RGB"))
        assert img.shape[1:] == pil.shape[:2]
        assert np.abs(img.permute(1, 2, 0).numpy().astype(int) - pil).mean() < 3, kind
        # The batch decoder (nvJPEG on CUDA) takes the same files; on the CPU it is the same function.
        assert torch.equal(data.decode_on_device([raw], [path], torch.device("cpu"))[0], img)


def test_crop_sampler_keeps_area_and_aspect_in_range():
    rng = np.random.default_rng(0)
    for width, height in [(500, 375), (160, 72), (72, 160), (100, 100)]:
        for _ in range(500):
            left, top, w, h = data.sample_crop(width, height, rng, (0.1, 1.0), (0.75, 1.33), 100)
            assert 0 <= left and left + w <= width and 0 <= top and top + h <= height
            if (w, h) == (width, height):
                continue  # the fallback (or a draw that matched the whole image)
            area = w * h / (width * height)
            assert 0.1 - 0.02 <= area <= 1.0
            # rounding to whole pixels moves the ratio by at most ~1/min(w, h) relative
            slack = 1.5 / min(w, h)
            assert 0.75 * (1 - slack) <= w / h <= 1.33 * (1 + slack)
    # No window fits (a 1-pixel-high image): fall back to the whole image.
    assert data.sample_crop(300, 1, rng, (0.1, 1.0), (0.75, 1.33), 100) == (0, 0, 300, 1)


def test_crop_sampler_draws_spread_over_the_ranges():
    rng = np.random.default_rng(1)
    crops = [data.sample_crop(1000, 1000, rng) for _ in range(2000)]
    areas = np.array([w * h / 1e6 for _, _, w, h in crops])
    ratios = np.array([w / h for _, _, w, h in crops])
    assert areas.min() < 0.12 and areas.max() > 0.95 and ratios.min() < 0.77 and ratios.max() > 1.3


def test_transforms_shapes_determinism_and_flip():
    img = torch.randint(0, 256, (3, 90, 150), dtype=torch.uint8)
    out = data.eval_transform(img, 73, 64)
    assert out.shape == (3, 64, 64) and out.dtype == torch.uint8
    # shorter side 90 -> 73, longer 150 -> int(150 * 73 / 90) = 121; central crop
    resized = data.resize(img, 73, 121)
    assert torch.equal(out, resized[:, 4:68, 28:92])
    a = data.train_transform(img, data.sample_rng(5, 2, 17), 64, (0.1, 1), (0.75, 1.33), 100)
    b = data.train_transform(img, data.sample_rng(5, 2, 17), 64, (0.1, 1), (0.75, 1.33), 100)
    c = data.train_transform(img, data.sample_rng(5, 3, 17), 64, (0.1, 1), (0.75, 1.33), 100)
    assert a.shape == (3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)
    flips = [data.sample_rng(0, 0, i).random() < 0.5 for i in range(200)]  # the draw after the crop's
    assert 70 < sum(flips) < 130


def test_normalize_subtracts_the_means_without_std():
    x = torch.full((1, 3, 2, 2), 200, dtype=torch.uint8)
    y = data.normalize(x, (123.68, 116.78, 103.94))
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([76.32, 83.22, 96.06]))


def _truncate(tiny_data: str, dest: str) -> str:
    shutil.copytree(os.path.join(tiny_data, "train"), os.path.join(dest, "train"))
    shutil.copytree(os.path.join(tiny_data, "val"), os.path.join(dest, "val"))
    folder = os.path.join(dest, "train", "n00000004")
    path = os.path.join(folder, sorted(os.listdir(folder))[5])
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])
    return path


@pytest.mark.parametrize("workers", [0, 1])
def test_a_truncated_jpeg_is_a_clear_error_naming_the_file(tiny_data, tmp_path, workers):
    path = _truncate(tiny_data, str(tmp_path))
    ds = data.ImageSet(os.path.join(tmp_path, "train"), TINY, train=True)
    loader = data.make_loader(ds, 800, 0, 1, workers, False)  # one batch: every file
    with pytest.raises(data.DataError, match="cannot decode image") as e:
        next(iter(loader))
    assert path in str(e.value)


def test_train_exits_2_on_a_truncated_jpeg(tiny_data, tmp_path, capsys):
    import train
    path = _truncate(tiny_data, str(tmp_path / "data"))
    rc = train.main(["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"),
                     "--config", "tiny", "--seed", "1", "--device", "cpu", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and path in err and "cannot decode image" in err


def test_extract_refuses_unsafe_members(tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "n00000000.tar", "w") as inner:
        info = tarfile.TarInfo("../../escaped.JPEG")
        info.size = 3
        inner.addfile(info, io.BytesIO(b"abc"))
    with tarfile.open(evil / extract.TRAIN_TAR, "w") as outer:
        outer.add(evil / "n00000000.tar", arcname="n00000000.tar")
    assert extract.main([str(evil)]) == 1
    assert not (tmp_path / "escaped.JPEG").exists() and not (evil / "train").exists()


def test_extract_names_a_missing_archive(tmp_path, capsys):
    assert extract.main([str(tmp_path)]) == 1
    assert f"{tmp_path}/ILSVRC2012_img_train.tar: missing" in capsys.readouterr().err


def test_extract_keeps_existing_folders(tiny_data, capsys):
    assert extract.main([tiny_data]) == 0
    assert "exists; kept" in capsys.readouterr().err


def test_loader_splits_eval_over_ranks_exactly_once(tiny_data):
    ds = data.ImageSet(os.path.join(tiny_data, "val"), TINY, train=False, decode=False)  # bytes: the GPU path
    seen = []
    for rank in range(3):
        for _, _, indices in data.make_loader(ds, 64, rank, 3, 0, False):
            seen += indices.tolist()
    assert sorted(seen) == list(range(200))
    assert os.path.basename(FOLDER) == "image_classification"


def test_data_py_imports_only_what_a_bare_gpu_machine_has():
    """bench.py measures the loader through data.py, and `make bench PYTHON=python3` has no extra packages."""
    import ast
    tree = ast.parse(open(os.path.join(FOLDER, "data.py")).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names - set(sys.stdlib_module_names) <= {"torch", "torchvision", "numpy"}
