#!/usr/bin/env python3
"""Write a small synthetic ImageNet in the real ILSVRC-2012 archive format, for tiny runs and tests.

    ./make_tiny_dataset.py [DATA_DIR] [--seed N]      (DATA_DIR also from $DATA_DIR; default ./data)

Writes what download_dataset.sh leaves for the real data (spec section 8), with the real names:
  ILSVRC2012_img_train.tar     10 inner <wnid>.tar (wnids n00000000..n00000009), each with 80
                               <wnid>_<k>.JPEG
  ILSVRC2012_img_val.tar       200 flat ILSVRC2012_val_%08d.JPEG (20 per class, shuffled order)
  ILSVRC2012_devkit_t12.tar.gz ILSVRC2012_devkit_t12/data/meta.mat (the synsets, with ILSVRC2012_IDs that are
                               NOT in sorted-wnid order, plus two non-leaf synsets, as in the real file) and
                               data/ILSVRC2012_validation_ground_truth.txt (one ILSVRC2012_ID per val image)
plus DATA_DIR/tiny.md5 (md5sum format) of the three archives. extract.py turns them into train/<wnid>/ and
val/<wnid>/ exactly as for the real data.

Images: each has a random size in [72, 160] x [72, 160], a smooth random-gradient background of muted colours
with Gaussian noise, and one filled shape (disc, square, triangle, ring or cross, drawn at random: a nuisance)
covering 50-90 % of the short side at a random position and rotation, saved as JPEG quality 90. The class is
the shape's hue: 36 * class degrees, jittered +-10, saturated. (Spec section 8 suggested shape x colour family
classes; calibrated here, the shapes were not learned within the 16-epoch budget by ResNet-50 with the
reference's initialisation, no zero-init of the last BN gamma, while hue is.) The three odd files of the
real train set are imitated in class 0: a PNG under a .JPEG name (<wnid>_2933.JPEG, as n02105855_2933.JPEG),
a CMYK JPEG (<wnid>_1001.JPEG) and a grayscale JPEG (<wnid>_1002.JPEG; its class is then unrecognisable,
as a grayscale photo's colour would be). Deterministic: one seed, the same bytes.
"""

import argparse
import colorsys
import gzip
import hashlib
import io
import math
import os
import sys
import tarfile

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("disc", "square", "triangle", "ring", "cross")
HUES = [36.0 * k for k in range(10)]  # centre hue of each class, degrees
N_CLASSES, N_TRAIN, N_VAL = 10, 80, 20
WNIDS = [f"n{k:08d}" for k in range(N_CLASSES)]
ODD = {"png": 2933, "cmyk": 1001, "gray": 1002}  # image numbers of the odd files in class 0
MTIME = 1_335_830_400  # 2012-05-01: fixed tar times, so one seed gives the same bytes


def draw_image(rng: np.random.Generator, label: int) -> Image.Image:
    """One RGB image of class `label`: a shape of any kind whose hue is near HUES[label]."""
    w, h = (int(v) for v in rng.integers(72, 161, 2))
    # Background: a linear gradient between two random muted colours, plus noise.
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / max(w, h)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    bg = c0 * (1 - t[..., None]) + c1 * t[..., None] + rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    # Shape colour: the class's hue, jittered +-10 degrees, saturated.
    hue = (HUES[label] + rng.uniform(-10, 10)) % 360
    rgb = colorsys.hsv_to_rgb(hue / 360, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0))
    colour = tuple(int(255 * c) for c in rgb)
    size = rng.uniform(0.5, 0.9) * min(w, h)  # the shape's extent
    r = size / 2
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    rot = rng.uniform(0, 2 * math.pi)
    draw = ImageDraw.Draw(img)

    def polygon(points):  # rotate by `rot` about the centre
        return [(cx + x * math.cos(rot) - y * math.sin(rot), cy + x * math.sin(rot) + y * math.cos(rot))
                for x, y in points]

    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    if shape == "disc":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "ring":  # the background shows through the hole
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(2, int(r * 0.45)))
    elif shape == "square":
        s = r / math.sqrt(2) * 1.3
        draw.polygon(polygon([(-s, -s), (s, -s), (s, s), (-s, s)]), fill=colour)
    elif shape == "triangle":
        draw.polygon(polygon([(r * math.cos(a), r * math.sin(a))
                              for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]), fill=colour)
    else:  # cross: two bars
        a = r * 0.3
        draw.polygon(polygon([(-r, -a), (r, -a), (r, a), (-r, a)]), fill=colour)
        draw.polygon(polygon([(-a, -r), (a, -r), (a, r), (-a, r)]), fill=colour)
    return img


def encode(img: Image.Image, kind: str = "jpeg") -> bytes:
    buf = io.BytesIO()
    if kind == "png":
        img.save(buf, format="PNG")
    elif kind == "cmyk":
        img.convert("CMYK").save(buf, format="JPEG", quality=90)
    elif kind == "gray":
        img.convert("L").save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def tar_bytes(files: list[tuple[str, bytes]], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), MTIME, 0o644
            tar.addfile(info, io.BytesIO(content))
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def mat_meta(wnid_ids: dict[str, int]) -> bytes:
    """devkit data/meta.mat: the `synsets` struct array as scipy.io.loadmat reads the real one."""
    import scipy.io  # only here: make_tiny_dataset needs scipy, as extract.py does for the real devkit

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height",
              "num_train_images"]
    rows = [(i, wnid, f"synthetic class {wnid}", "a shape in a colour family", 0, np.zeros((1, 0)), 0,
             N_TRAIN) for wnid, i in sorted(wnid_ids.items(), key=lambda kv: kv[1])]
    # Non-leaf synsets (num_children > 0) follow the 1000 leaves in the real file; they are not classes.
    n = len(rows)
    rows += [(n + 1, "n90000001", "shape", "a non-leaf synset", 5, np.arange(1, 6)[None], 1, 0),
             (n + 2, "n90000002", "colour", "a non-leaf synset", 2, np.arange(6, 8)[None], 1, 0)]
    synsets = np.empty((len(rows), 1), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        synsets[k, 0] = row
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"synsets": synsets})
    # The 116-byte text header carries the creation time; a fixed one keeps the bytes deterministic.
    return b"MATLAB 5.0 MAT-file, written by make_tiny_dataset.py".ljust(116) + buf.getvalue()[116:]


def make_archives(seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    train_tars = []
    for label, wnid in enumerate(WNIDS):
        numbers = sorted(rng.choice(np.arange(1, 3000), N_TRAIN, replace=False).tolist())
        if label == 0:  # the odd files take three of class 0's numbers
            numbers = sorted(set(numbers[: N_TRAIN - 3]) | set(ODD.values()))
        files = []
        for k in numbers:
            kind = next((name for name, num in ODD.items() if label == 0 and num == k), "jpeg")
            files.append((f"{wnid}_{k}.JPEG", encode(draw_image(rng, label), kind)))
        train_tars.append((f"{wnid}.tar", tar_bytes(files)))
    val_labels = rng.permutation(np.repeat(np.arange(N_CLASSES), N_VAL))
    val_files = [(f"ILSVRC2012_val_{i + 1:08d}.JPEG", encode(draw_image(rng, int(label))))
                 for i, label in enumerate(val_labels)]
    # ILSVRC2012_IDs 1..10 in an order that is not the sorted-wnid order (as in the real meta.mat).
    ids = {wnid: int(i) + 1 for wnid, i in zip(WNIDS, rng.permutation(N_CLASSES))}
    ground_truth = "".join(f"{ids[WNIDS[label]]}\n" for label in val_labels).encode()
    devkit = [("ILSVRC2012_devkit_t12/data/meta.mat", mat_meta(ids)),
              ("ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", ground_truth),
              ("ILSVRC2012_devkit_t12/readme.txt", b"Synthetic devkit written by make_tiny_dataset.py.\n")]
    return {"ILSVRC2012_img_train.tar": tar_bytes(train_tars),
            "ILSVRC2012_img_val.tar": tar_bytes(val_files),
            "ILSVRC2012_devkit_t12.tar.gz": tar_bytes(devkit, gz=True)}


def write_dataset(data_dir: str, seed: int) -> list[str]:
    os.makedirs(data_dir, exist_ok=True)
    archives = make_archives(seed)
    for name, content in archives.items():
        with open(os.path.join(data_dir, name), "wb") as f:
            f.write(content)
    with open(os.path.join(data_dir, "tiny.md5"), "w") as f:
        for name, content in sorted(archives.items()):
            f.write(f"{hashlib.md5(content).hexdigest()}  {name}\n")
    return sorted(archives)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="where to write (default: $DATA_DIR or ./data)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    written = write_dataset(args.data_dir, args.seed)
    print(f"make_tiny_dataset.py: wrote {', '.join(written)} and tiny.md5 in {args.data_dir}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
