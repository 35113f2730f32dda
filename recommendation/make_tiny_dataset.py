#!/usr/bin/env python3
"""Write a small synthetic MovieLens dataset in ml-20m's real on-disk format, for tiny runs and tests.

    ./make_tiny_dataset.py [DATA_DIR] [--seed N]      (DATA_DIR also from $DATA_DIR; default ./data)

Writes what download_dataset.sh leaves for the real data -- DATA_DIR/ml-20m.zip and its extracted ml-20m/
folder with the real file names and headers -- plus DATA_DIR/tiny.md5 (md5sum format) of every file written.
Only ratings.csv carries data that the benchmark reads; movies.csv lists the movies, the other files hold
their headers only. ratings.csv (spec section 8): 1,000 users (userId 1..1000) rate 20 + Poisson(20) distinct
movies each, out of 2,000 movieIds drawn from 1..20000, with probability proportional to
exp(2 U.V / sqrt(8) + b) for latent U, V ~ N(0, I_8) and popularity b ~ N(0, 0.5^2): learnable, so a working
model passes HR@10 0.45 within a few epochs while item popularity alone stays near 0.23. Timestamps are sorted
random seconds assigned in random order, so a user's latest movie is a fresh draw from its taste. Also:
50 users with 5-19 ratings (the >= 20 filter must drop them), every 25th user's two latest ratings share one
timestamp (the stable tie rule), and the rows are shuffled (the id remap follows first appearance).
"""

import argparse
import csv
import hashlib
import io
import os
import sys
import zipfile

import numpy as np

N_USERS, N_ITEMS, DIM, N_SHORT_USERS = 1000, 2000, 8, 50
# Header lines of the ml-20m files this script does not fill (README.txt of ml-20m describes them).
OTHER_FILES = {
    "tags.csv": "userId,movieId,tag,timestamp\n",
    "links.csv": "movieId,imdbId,tmdbId\n",
    "genome-scores.csv": "movieId,tagId,relevance\n",
    "genome-tags.csv": "tagId,tag\n",
}


def make_ratings(seed: int) -> list[tuple[int, int, float, int]]:
    """(userId, movieId, rating, timestamp) rows in shuffled order."""
    rng = np.random.default_rng(seed)
    movie_ids = rng.choice(np.arange(1, 20001), N_ITEMS, replace=False)
    user_vec = rng.standard_normal((N_USERS, DIM))
    item_vec = rng.standard_normal((N_ITEMS, DIM))
    popularity = rng.normal(0.0, 0.5, N_ITEMS)
    rows = []
    for u in range(N_USERS + N_SHORT_USERS):
        if u < N_USERS:
            n = 20 + rng.poisson(20)
            logit = 2.0 * item_vec @ user_vec[u] / np.sqrt(DIM) + popularity
        else:  # short users: random tastes, fewer than 20 ratings
            n = int(rng.integers(5, 20))
            logit = popularity
        p = np.exp(logit - logit.max())
        items = rng.choice(N_ITEMS, n, replace=False, p=p / p.sum())
        times = np.sort(rng.integers(1_000_000_000, 1_100_000_000, n))
        if u % 25 == 0:
            times[-1] = times[-2]  # the two latest ratings share one second
        times = rng.permutation(times)  # time order independent of the (preference-biased) draw order
        ratings = rng.integers(1, 11, n) * 0.5
        rows += [(u + 1, int(movie_ids[i]), float(r), int(t)) for i, r, t in zip(items, ratings, times)]
    return [rows[i] for i in rng.permutation(len(rows))]


def make_files(seed: int) -> dict[str, bytes]:
    """File name inside ml-20m/ -> content."""
    out = io.StringIO()
    out.write("userId,movieId,rating,timestamp\n")
    for user, movie, rating, ts in make_ratings(seed):
        out.write(f"{user},{movie},{rating:.1f},{ts}\n")
    files = {"ratings.csv": out.getvalue().encode()}
    movies = io.StringIO()
    writer = csv.writer(movies, lineterminator="\n")
    writer.writerow(["movieId", "title", "genres"])
    for movie in sorted({int(line.split(b",")[1]) for line in files["ratings.csv"].splitlines()[1:]}):
        writer.writerow([movie, f"Synthetic movie {movie} (2000)", "(no genres listed)"])
    files["movies.csv"] = movies.getvalue().encode()
    files.update({name: header.encode() for name, header in OTHER_FILES.items()})
    files["README.txt"] = ("Synthetic stand-in for MovieLens ml-20m written by make_tiny_dataset.py "
                           f"--seed {seed}.\n"
                           "Same layout and ratings.csv format; not MovieLens data.\n").encode()
    return files


def write_dataset(data_dir: str, seed: int) -> list[str]:
    files = make_files(seed)
    os.makedirs(os.path.join(data_dir, "ml-20m"), exist_ok=True)
    written = {}
    for name, content in files.items():
        path = os.path.join("ml-20m", name)
        with open(os.path.join(data_dir, path), "wb") as f:
            f.write(content)
        written[path] = content
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("ml-20m/", date_time=(2016, 10, 17, 0, 0, 0)), b"")
        for name, content in files.items():  # fixed dates: the same seed gives the same bytes
            zf.writestr(zipfile.ZipInfo(f"ml-20m/{name}", date_time=(2016, 10, 17, 0, 0, 0)), content,
                        compress_type=zipfile.ZIP_DEFLATED)
    with open(os.path.join(data_dir, "ml-20m.zip"), "wb") as f:
        f.write(buf.getvalue())
    written["ml-20m.zip"] = buf.getvalue()
    with open(os.path.join(data_dir, "tiny.md5"), "w") as f:
        for path, content in sorted(written.items()):
            f.write(f"{hashlib.md5(content).hexdigest()}  {path}\n")
    return sorted(written)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
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
