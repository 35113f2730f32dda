#!/usr/bin/env python3
"""Unpack the COCO archives in DATA_DIR into the folders data.py reads (untimed, like the reference's unzip).

    ./extract.py [DATA_DIR]        (DATA_DIR also from $DATA_DIR; default ./data)

COCO 2014 (the v0.5 reference's names): train2014.zip -> train2014/, val2014.zip -> val2014/,
annotations_trainval2014.zip and coco_annotations_minival.tgz -> annotations/instances_{train,val,minival,
valminusminival}2014.json (and the captions/keypoints files that come with them). COCO 2017: train2017.zip,
val2017.zip, annotations_trainval2017.zip likewise. Only what is missing is unpacked: a folder that exists is
kept (delete it to unpack again). Each image folder and each annotation archive is unpacked under a temporary
name and moved into place when complete, so an interrupted run leaves nothing half-written; the archives are
never changed. run_and_time.sh runs this before the clock starts; train.py runs it too (before INIT_START)
when it is started on its own.
"""

import argparse
import os
import shutil
import sys
import tarfile
import zipfile

YEARS = {
    2014: {"images": {"train2014.zip": "train2014", "val2014.zip": "val2014"},
           "annotations": ("annotations_trainval2014.zip", "coco_annotations_minival.tgz"),
           "jsons": ("instances_train2014.json", "instances_valminusminival2014.json",
                     "instances_minival2014.json")},
    2017: {"images": {"train2017.zip": "train2017", "val2017.zip": "val2017"},
           "annotations": ("annotations_trainval2017.zip",),
           "jsons": ("instances_train2017.json", "instances_val2017.json")},
}


class ExtractError(Exception):
    """A damaged archive; the message names the file."""


def _unpack(archive: str, dest: str) -> None:
    """Every member of a zip or tgz into dest (zipfile drops absolute paths and "..", tarfile's "data"
    filter refuses them and links out of dest)."""
    try:
        if archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise ExtractError(f"{archive}: cannot be unpacked ({e}); run ./verify_dataset.sh, delete the file "
                           "and download it again") from e


def unpack_archives(data_dir: str, log=None) -> bool:
    """Unpack what is missing in DATA_DIR -> whether anything was unpacked."""
    done = False
    for year in YEARS.values():
        for archive, folder in year["images"].items():
            path, dest = os.path.join(data_dir, archive), os.path.join(data_dir, folder)
            if os.path.isdir(dest) or not os.path.isfile(path):
                continue
            tmp = os.path.join(data_dir, f".{folder}.unpacking")
            shutil.rmtree(tmp, ignore_errors=True)
            _unpack(path, tmp)
            if not os.path.isdir(os.path.join(tmp, folder)):
                shutil.rmtree(tmp)
                raise ExtractError(f"{path}: holds no {folder}/ folder")
            os.replace(os.path.join(tmp, folder), dest)
            shutil.rmtree(tmp)
            done = True
            if log:
                log(f"unpacked {path} -> {dest}/ ({len(os.listdir(dest))} files)")
        annotations = os.path.join(data_dir, "annotations")
        if all(os.path.isfile(os.path.join(annotations, j)) for j in year["jsons"]):
            continue
        for archive in year["annotations"]:
            path = os.path.join(data_dir, archive)
            if not os.path.isfile(path):
                continue
            tmp = os.path.join(data_dir, ".annotations.unpacking")
            shutil.rmtree(tmp, ignore_errors=True)
            _unpack(path, tmp)
            inner = os.path.join(tmp, "annotations")
            if not os.path.isdir(inner):
                shutil.rmtree(tmp)
                raise ExtractError(f"{path}: holds no annotations/ folder")
            os.makedirs(annotations, exist_ok=True)
            for name in os.listdir(inner):  # each json complete before it appears under its name
                os.replace(os.path.join(inner, name), os.path.join(annotations, name))
            shutil.rmtree(tmp)
            done = True
            if log:
                log(f"unpacked {path} -> {annotations}/")
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="the folder with the archives (default: $DATA_DIR or ./data)")
    args = p.parse_args(argv)

    def log(msg):
        print(f"extract.py: {msg}", file=sys.stderr, flush=True)

    try:
        if not unpack_archives(args.data_dir, log):
            log(f"nothing to unpack in {args.data_dir}")
    except ExtractError as e:
        print(f"extract.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
