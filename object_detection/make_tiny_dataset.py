#!/usr/bin/env python3
"""Write a small synthetic COCO in the real COCO-2014 archive format, for tiny runs and tests.

    ./make_tiny_dataset.py [DATA_DIR] [--seed N]      (DATA_DIR also from $DATA_DIR; default ./data)

Writes what the real downloads are (spec section 8), with the real names and inner paths:
  train2014.zip                   train2014/COCO_train2014_%012d.jpg   (144 images)
  val2014.zip                     val2014/COCO_val2014_%012d.jpg       (56 images)
  annotations_trainval2014.zip    annotations/instances_train2014.json, annotations/instances_val2014.json
  coco_annotations_minival.tgz    annotations/instances_minival2014.json (40 val images, the eval set),
                                  annotations/instances_valminusminival2014.json (the other 16)
  R-50.pkl                        backbone weights in the Detectron blob format of the real R-50.pkl (a
                                  pickled dict of float32 arrays, same names) for the tiny preset's width /8
                                  ResNet-50 (stem 8, stage outputs 32/64/128/256): He-normal convs, BN shift
                                  0 and scale 1 except res_conv1_bn_s = 0.05 (mean-subtracted 0-255 pixels
                                  have std ~50: this brings the stem's output to std ~1, as the real file's
                                  scales do) and *_branch2c_bn_s = 0.2 (frozen BN cannot renormalise: this
                                  keeps the residual stream small), plus the unused blobs: a zero bias
                                  beside every conv weight (X_b) and fc1000_*
plus DATA_DIR/tiny.md5 (md5sum format) of these five files. The archives unpacked in DATA_DIR give the layout
data.py reads.

Images: 128x96, 96x128 (both orientations) and a few 120x90, JPEG quality 90, a dark background with a
faint gradient and mild noise. Each has 1-3 non-overlapping objects, 16-56 px across (circumcircle), so that
a polygon is its visible mask. Three categories with COCO-like non-contiguous ids, each a distinct shape and
colour: 1 "disc" (a 24-gon, red), 3 "square" (rotated, green), 18 "triangle" (blue). Objects may cross the
border; their polygons are clipped to the image. Annotations: segmentation [[x1, y1, ...]], bbox = the
polygon's bounds as [x, y, w, h], area = the polygon's area, iscrowd 0, unique ids; image ids are random
and non-contiguous. Edge cases: 3 train images without annotations, one crowd object (iscrowd 1, RLE with a
counts list, as in the real files) in a train image and one in a minival image, and one degenerate object
(w <= 1) in a train image. Deterministic: one seed, the same bytes.
"""

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import pickle
import sys
import tarfile
import zipfile

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [{"id": 1, "name": "disc", "supercategory": "shape"},
              {"id": 3, "name": "square", "supercategory": "shape"},
              {"id": 18, "name": "triangle", "supercategory": "shape"}]
COLOURS = {1: (220, 60, 50), 3: (60, 200, 70), 18: (60, 90, 230)}
N_TRAIN, N_MINIVAL, N_VALMINUSMINIVAL = 144, 40, 16
N_EMPTY = 3  # train images without annotations
SIZES = [(128, 96)] * 5 + [(96, 128)] * 5 + [(120, 90)]  # (width, height), drawn at random
ZIP_TIME = (2014, 9, 1, 0, 0, 0)  # fixed archive times, so one seed gives the same bytes
TAR_MTIME = 1_409_529_600  # 2014-09-01


def clip_polygon(points: list[tuple[float, float]], w: int, h: int) -> list[tuple[float, float]]:
    """Sutherland-Hodgman: the part of a convex polygon inside [0, w] x [0, h]."""
    def clip(pts, inside, cross):
        out = []
        for i, p in enumerate(pts):
            q = pts[i - 1]
            if inside(p):
                if not inside(q):
                    out.append(cross(q, p))
                out.append(p)
            elif inside(q):
                out.append(cross(q, p))
        return out

    def at_x(x0):
        return lambda a, b: (x0, a[1] + (b[1] - a[1]) * (x0 - a[0]) / (b[0] - a[0]))

    def at_y(y0):
        return lambda a, b: (a[0] + (b[0] - a[0]) * (y0 - a[1]) / (b[1] - a[1]), y0)

    for inside, cross in ((lambda p: p[0] >= 0, at_x(0.0)), (lambda p: p[0] <= w, at_x(float(w))),
                          (lambda p: p[1] >= 0, at_y(0.0)), (lambda p: p[1] <= h, at_y(float(h)))):
        points = clip(points, inside, cross)
        if not points:
            break
    return points


def shape_points(category: int, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    """The polygon of one object: a 24-gon disc, a square or a triangle of circumradius r, rotated."""
    n = {1: 24, 3: 4, 18: 3}[category]
    return [(cx + r * math.cos(rot + 2 * math.pi * k / n), cy + r * math.sin(rot + 2 * math.pi * k / n))
            for k in range(n)]


def polygon_area(points) -> float:
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def uncompressed_rle(mask: np.ndarray) -> dict:
    """A binary mask -> COCO RLE with a counts list (column-major runs, zeros first), as crowds have."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def draw_image(rng: np.random.Generator, n_objects: int, crowd: bool, degenerate: bool):
    """One image and its objects: [(category, polygon or None, box xywh, area, rle or None), ...]."""
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / max(w, h)
    bg = rng.uniform(15, 40, 3) + 25 * t[..., None] + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    placed: list[tuple[float, float, float]] = []  # circles (cx, cy, r) already used
    objects = []
    for k in range(n_objects + int(crowd)):
        for _ in range(200):  # rejection sampling: no overlap between the objects' circumcircles
            r = rng.uniform(8, 28)
            cx, cy = rng.uniform(-0.3 * r, w + 0.3 * r), rng.uniform(-0.3 * r, h + 0.3 * r)
            if all(math.hypot(cx - x, cy - y) > r + s + 2 for x, y, s in placed):
                break
        else:
            continue
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]["id"]
        points = clip_polygon(shape_points(category, cx, cy, r, rng.uniform(0, 2 * math.pi)), w, h)
        if len(points) < 3 or polygon_area(points) < 30:
            continue
        placed.append((cx, cy, r))
        draw.polygon(points, fill=COLOURS[category])
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if crowd and k == n_objects:  # the crowd: its drawn pixels as an RLE with a counts list
            layer = Image.new("L", (w, h))
            ImageDraw.Draw(layer).polygon(points, fill=1)
            rle = uncompressed_rle(np.asarray(layer))
            objects.append((category, None, box, float(np.asarray(layer).sum()), rle))
        else:
            objects.append((category, points, box, polygon_area(points), None))
    if degenerate:  # a 1-pixel-wide sliver (w <= 1, which training filters out) away from the others
        for _ in range(200):
            x, y = float(rng.integers(2, w - 2)), float(rng.integers(2, h - 20))
            if all(math.hypot(x - cx, y + 6 - cy) > s + 10 for cx, cy, s in placed):
                break
        points = [(x, y), (x + 1, y), (x + 1, y + 12), (x, y + 12)]
        draw.polygon(points, fill=COLOURS[1])
        objects.append((1, points, [x, y, 1.0, 12.0], 12.0, None))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), w, h, objects


def make_split(rng: np.random.Generator, prefix: str, image_ids: list[int], ann_ids, empty: set[int],
               crowd: set[int], degenerate: set[int]):
    """Images (name -> JPEG bytes) and the COCO images/annotations lists of one image folder."""
    files, images, annotations = {}, [], []
    for i, image_id in enumerate(image_ids):
        n = 0 if i in empty else int(rng.integers(1, 4))
        jpeg, w, h, objects = draw_image(rng, n, i in crowd, i in degenerate)
        name = f"COCO_{prefix}_{image_id:012d}.jpg"
        files[f"{prefix}/{name}"] = jpeg
        images.append({"id": image_id, "file_name": name, "width": w, "height": h, "license": 1,
                       "date_captured": "2014-09-01 00:00:00"})
        for category, points, box, area, rle in objects:
            seg = rle if rle is not None else [[round(float(v), 2) for p in points for v in p]]
            annotations.append({"id": next(ann_ids), "image_id": image_id, "category_id": category,
                                "segmentation": seg, "area": round(area, 2),
                                "bbox": [round(float(v), 2) for v in box], "iscrowd": int(rle is not None)})
    return files, images, annotations


def instances_json(images: list[dict], annotations: list[dict], description: str) -> bytes:
    info = {"description": description, "version": "1.0", "year": 2014}
    return json.dumps({"info": info, "licenses": [{"id": 1, "name": "synthetic", "url": ""}],
                       "images": images, "annotations": annotations, "categories": CATEGORIES}).encode()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, content in files.items():
            zf.writestr(zipfile.ZipInfo(name, ZIP_TIME), content)
    return buf.getvalue()


def tgz_bytes(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), TAR_MTIME
            tf.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)  # mtime 0 in the gzip header: the same bytes every time


def backbone_blobs(rng: np.random.Generator, stem_width: int = 8) -> dict[str, np.ndarray]:
    """Detectron R-50 blobs (names as in the real R-50.pkl) for a ResNet-50 of the given stem width."""
    def conv(out_channels, in_channels, k):
        std = math.sqrt(2.0 / (out_channels * k * k))  # He-normal, fan_out (Caffe2's MSRAFill)
        return (rng.standard_normal((out_channels, in_channels, k, k)) * std).astype(np.float32)

    def conv_biases():  # the real file's zero bias beside every conv weight (tests/fixtures/R-50.pkl.blobs)
        for name in [k for k in blobs if k.endswith("_w") and not k.startswith("fc")]:
            blobs.setdefault(name[:-2] + "_b", np.zeros(len(blobs[name]), np.float32))

    def bn(name, channels, scale=1.0):
        blobs[name + "_s"] = np.full(channels, scale, np.float32)
        blobs[name + "_b"] = np.zeros(channels, np.float32)

    blobs = {"conv1_w": conv(stem_width, 3, 7), "conv1_b": np.zeros(stem_width, np.float32)}
    bn("res_conv1_bn", stem_width, scale=0.05)  # pixel std ~50 -> stem output std ~1
    in_channels = stem_width
    for stage, n_blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        width = stem_width * 2 ** (stage - 2)
        for i in range(n_blocks):
            p = f"res{stage}_{i}_"
            if i == 0:
                blobs[p + "branch1_w"] = conv(4 * width, in_channels, 1)
                bn(p + "branch1_bn", 4 * width)
            blobs[p + "branch2a_w"] = conv(width, in_channels, 1)
            bn(p + "branch2a_bn", width)
            blobs[p + "branch2b_w"] = conv(width, width, 3)
            bn(p + "branch2b_bn", width)
            blobs[p + "branch2c_w"] = conv(4 * width, width, 1)
            bn(p + "branch2c_bn", 4 * width, scale=0.2)
            in_channels = 4 * width
    conv_biases()
    blobs["fc1000_w"] = (rng.standard_normal((1000, in_channels)) * 0.01).astype(np.float32)
    blobs["fc1000_b"] = np.zeros(1000, np.float32)
    return blobs


def make_files(seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 600_000), N_TRAIN + N_MINIVAL + N_VALMINUSMINIVAL, replace=False)
    train_ids = sorted(int(i) for i in ids[:N_TRAIN])
    val_ids = [int(i) for i in ids[N_TRAIN:]]  # minival first, then valminusminival (unsorted: mixed in val)
    ann_ids = iter(range(1000, 10**7, 7))
    train_files, train_images, train_anns = make_split(
        rng, "train2014", train_ids, ann_ids, empty={5, 50, 100}, crowd={7}, degenerate={9})
    val_files, val_images, val_anns = make_split(
        rng, "val2014", val_ids, ann_ids, empty=set(), crowd={3}, degenerate=set())
    minival = set(val_ids[:N_MINIVAL])

    def subset(keep: set[int]):
        return ([im for im in val_images if im["id"] in keep],
                [a for a in val_anns if a["image_id"] in keep])

    annotations = {
        "annotations/instances_train2014.json": instances_json(train_images, train_anns, "tiny train2014"),
        "annotations/instances_val2014.json": instances_json(val_images, val_anns, "tiny val2014"),
    }
    minival_files = {
        "annotations/instances_minival2014.json": instances_json(*subset(minival), "tiny minival2014"),
        "annotations/instances_valminusminival2014.json": instances_json(
            *subset(set(val_ids) - minival), "tiny valminusminival2014"),
    }
    return {"train2014.zip": zip_bytes(train_files), "val2014.zip": zip_bytes(val_files),
            "annotations_trainval2014.zip": zip_bytes(annotations),
            "coco_annotations_minival.tgz": tgz_bytes(minival_files),
            "R-50.pkl": pickle.dumps(backbone_blobs(rng), protocol=2)}


def write_dataset(data_dir: str, seed: int) -> list[str]:
    os.makedirs(data_dir, exist_ok=True)
    files = make_files(seed)
    for name, content in files.items():
        with open(os.path.join(data_dir, name), "wb") as f:
            f.write(content)
    with open(os.path.join(data_dir, "tiny.md5"), "w") as f:
        for name, content in sorted(files.items()):
            f.write(f"{hashlib.md5(content).hexdigest()}  {name}\n")
    return sorted(files)


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
