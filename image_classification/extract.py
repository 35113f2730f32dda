#!/usr/bin/env python3
"""Extract the ILSVRC-2012 archives into train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (untimed preprocessing).

    ./extract.py [DATA_DIR]        (DATA_DIR also from $DATA_DIR; default ./data)

Reads DATA_DIR/ILSVRC2012_img_train.tar (1000 inner <wnid>.tar, each extracted to train/<wnid>/),
ILSVRC2012_img_val.tar (50,000 flat ILSVRC2012_val_%08d.JPEG) and ILSVRC2012_devkit_t12.tar.gz, whose
data/ILSVRC2012_validation_ground_truth.txt gives each val file's ILSVRC2012_ID (1..1000, in file-number
order) and data/meta.mat maps those IDs to wnids (the ID order is not the sorted-wnid order), as torchvision's
ImageNet does (spec section 2). Each val file goes to val/<wnid>/. Every member is extracted with tarfile's
"data" filter (no absolute paths, no "..", no links out). Each folder is written under a temporary name and
renamed when complete, so an interrupted run leaves no half-extracted train/ or val/; a folder that already
exists is kept (delete it to extract again). Images are copied as they are: the PNG named .JPEG, the CMYK and
the grayscale JPEGs are converted to RGB when they are decoded (data.py), not here. Needs scipy (meta.mat).
"""

import argparse
import os
import shutil
import sys
import tarfile
import time

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
DEVKIT_META = "ILSVRC2012_devkit_t12/data/meta.mat"
DEVKIT_GROUND_TRUTH = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"


class ExtractError(Exception):
    """A missing or malformed archive; the message names the file."""


def _open(path: str) -> tarfile.TarFile:
    if not os.path.isfile(path):
        raise ExtractError(f"{path}: missing (run ./download_dataset.sh, or make_tiny_dataset.py for tiny "
                           "data)")
    try:
        return tarfile.open(path)
    except tarfile.TarError as e:
        raise ExtractError(f"{path}: not a readable tar archive ({e})") from e


def val_wnids(devkit_path: str) -> list[str]:
    """The wnid of each val image, in file-number order (index 0 = ILSVRC2012_val_00000001.JPEG)."""
    import io

    import scipy.io

    with _open(devkit_path) as tar:
        try:
            meta = scipy.io.loadmat(io.BytesIO(tar.extractfile(DEVKIT_META).read()),
                                    squeeze_me=True)["synsets"]
            ground_truth = tar.extractfile(DEVKIT_GROUND_TRUTH).read().decode().split()
        except KeyError as e:
            raise ExtractError(f"{devkit_path}: no {e.args[0]} inside") from e
    # Leaves (num_children == 0) are the classes; row fields: ILSVRC2012_ID, WNID, words, gloss, num_children.
    id_to_wnid = {int(row[0]): str(row[1]) for row in meta if int(row[4]) == 0}
    try:
        return [id_to_wnid[int(i)] for i in ground_truth]
    except (KeyError, ValueError) as e:
        raise ExtractError(f"{devkit_path}: {DEVKIT_GROUND_TRUTH} names an unknown class id {e}") from e


def extract_train(data_dir: str, log) -> None:
    dest = os.path.join(data_dir, "train")
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    path = os.path.join(data_dir, TRAIN_TAR)
    n_images, tic = 0, time.time()
    with _open(path) as outer:
        classes = 0
        for member in outer:  # streamed: the real archive is 138 GB
            wnid, ext = os.path.splitext(member.name)
            if not member.isfile() or ext != ".tar" or "/" in member.name:
                raise ExtractError(f"{path}: unexpected member {member.name!r} (want <wnid>.tar files only)")
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                names = []
                for m in inner:
                    names.append(m.name)
                    inner.extract(m, os.path.join(tmp, wnid), filter="data")
            n_images += len(names)
            classes += 1
            if classes % 50 == 0:
                log(f"extract.py: train: {classes} classes, {n_images} images, {time.time() - tic:.0f} s")
    if classes == 0:
        raise ExtractError(f"{path}: holds no <wnid>.tar")
    os.replace(tmp, dest)
    log(f"extract.py: wrote {dest}: {classes} classes, {n_images} images")


def extract_val(data_dir: str, log) -> None:
    labels = val_wnids(os.path.join(data_dir, DEVKIT))
    dest = os.path.join(data_dir, "val")
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for wnid in set(labels):
        os.makedirs(os.path.join(tmp, wnid))
    path = os.path.join(data_dir, VAL_TAR)
    seen = 0
    with _open(path) as tar:
        for member in tar:
            name = member.name
            try:  # ILSVRC2012_val_00000001.JPEG -> index 0
                index = int(name.removeprefix("ILSVRC2012_val_").removesuffix(".JPEG")) - 1
                wnid = labels[index]
            except (ValueError, IndexError):
                raise ExtractError(f"{path}: member {name!r} is not ILSVRC2012_val_<1..{len(labels)}>.JPEG "
                                   f"of the devkit's ground truth") from None
            tar.extract(member, os.path.join(tmp, wnid), filter="data")
            seen += 1
    if seen != len(labels):
        raise ExtractError(f"{path}: {seen} images, but the devkit's ground truth lists {len(labels)}")
    os.replace(tmp, dest)
    log(f"extract.py: wrote {dest}: {len(set(labels))} classes, {seen} images")


def extract(data_dir: str, log=print) -> None:
    """Extract whatever of train/ and val/ is missing."""
    for name, step in (("train", extract_train), ("val", extract_val)):
        if os.path.isdir(os.path.join(data_dir, name)):
            log(f"extract.py: {os.path.join(data_dir, name)} exists; kept")
        else:
            step(data_dir, log)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds the three archives (default: $DATA_DIR or ./data)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        extract(args.data_dir, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (ExtractError, tarfile.TarError, OSError) as e:
        print(f"extract.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
