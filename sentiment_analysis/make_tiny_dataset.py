#!/usr/bin/env python3
"""Write a tiny synthetic IMDB in the real on-disk format: DATA_DIR/aclImdb_v1.tar.gz + tiny.md5.

    python3 make_tiny_dataset.py [DATA_DIR] [--seed N]    (DATA_DIR: else $DATA_DIR, else ./data)

The archive has the real layout (aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, plus an
unused README, imdb.vocab and train/unsup/ review as in the real one), so train.py reads it
through the same code as the 84 MB original. 1,250 reviews per class per split. Each review is
20-60 filler tokens drawn Zipf-like (exponent 1) from 15 common English words and 300 nonsense
words w000..w299, with 2 + Poisson(2) sentiment cues inserted at random places. A cue agrees with
the review's label with probability 0.85; it is a polar word ("great", "awful", ...) or, for a
quarter of cues, "not" + a word of the opposite polarity ("not awful" in a positive review), so
a window of width >= 2 helps and "not" alone says nothing. Surface noise exercises the
tokeniser: 5 % of tokens capitalised, 5 % followed by one of `, . ! ? 's`, 2 % followed by
`<br /><br />`. The real > 150-occurrence cutoff keeps ~230 words; rare fillers become <unk>.
A correct Seq-CNN reaches ~0.91 test accuracy (the 15 % contrary cues cap it); shuffled training
labels give ~0.5. Same seed -> byte-identical archive.
"""

import argparse
import gzip
import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path

import numpy as np

TARBALL = "aclImdb_v1.tar.gz"
COMMON = ["the", "a", "film", "movie", "not", "only", "but", "and", "of", "to", "is", "it",
          "this", "was", "in"]
FILLERS = COMMON + [f"w{i:03d}" for i in range(300)]
POSITIVE = ["great", "excellent", "superb", "wonderful", "brilliant", "amazing", "enjoyable",
            "touching", "beautiful", "masterpiece", "fantastic", "delightful"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "horrible", "waste", "poor", "stupid",
            "worst", "bad", "lame", "pointless"]
PER_CLASS = 1250


def review_text(rng: np.random.Generator, label: str) -> str:
    zipf = 1.0 / np.arange(1, len(FILLERS) + 1)
    words = list(rng.choice(FILLERS, size=int(rng.integers(20, 61)), p=zipf / zipf.sum()))
    for _ in range(2 + int(rng.poisson(2))):
        polarity = label if rng.random() < 0.85 else ("neg" if label == "pos" else "pos")
        same, other = (POSITIVE, NEGATIVE) if polarity == "pos" else (NEGATIVE, POSITIVE)
        cue = (["not", str(rng.choice(other))] if rng.random() < 0.25 else [str(rng.choice(same))])
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = cue
    out = []
    for w in words:
        if rng.random() < 0.05:
            w = w.capitalize()
        if rng.random() < 0.05:
            w += str(rng.choice([",", ".", "!", "?", "'s"]))
        if rng.random() < 0.02:
            w += "<br /><br />"
        out.append(w)
    return " ".join(out) + "\n"


def write_tarball(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Deterministic .tar.gz: fixed mtimes and owners, gzip header without a timestamp."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs_done = set()
        for name, data in members:
            parts = name.split("/")
            for d in ("/".join(parts[:i]) for i in range(1, len(parts))):
                if d not in dirs_done:
                    dirs_done.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1300000000
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1300000000
            tar.addfile(info, io.BytesIO(data))


def make(data_dir: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    members = [("aclImdb/README", b"Synthetic tiny IMDB written by make_tiny_dataset.py.\n"),
               ("aclImdb/imdb.vocab", ("\n".join(FILLERS + POSITIVE + NEGATIVE) + "\n").encode())]
    for split in ("test", "train"):              # the real archive lists test/ first
        for label in ("neg", "pos"):
            for i in range(PER_CLASS):
                rating = int(rng.integers(7, 11) if label == "pos" else rng.integers(1, 5))
                name = f"aclImdb/{split}/{label}/{i}_{rating}.txt"
                members.append((name, review_text(rng, label).encode()))
    # An unlabeled review, as in the real train/unsup/: the loader must skip it.
    members.append(("aclImdb/train/unsup/0_0.txt", b"an unlabeled review\n"))
    data_dir.mkdir(parents=True, exist_ok=True)
    out = data_dir / TARBALL
    tmp = out.with_name(out.name + ".tmp")
    write_tarball(tmp, members)
    os.replace(tmp, out)
    digest = hashlib.md5(out.read_bytes()).hexdigest()
    (data_dir / "tiny.md5").write_text(f"{digest}  {TARBALL}\n")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Writes DATA_DIR/aclImdb_v1.tar.gz and DATA_DIR/tiny.md5.")
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="output folder (default: $DATA_DIR or ./data)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    out = make(Path(args.data_dir), args.seed)
    print(f"wrote {out} ({out.stat().st_size} bytes) and {out.parent / 'tiny.md5'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
