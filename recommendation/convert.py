#!/usr/bin/env python3
"""Deterministic preprocessing of ml-20m: DATA_DIR/ml-20m/ratings.csv -> DATA_DIR/ml-20m-converted.npz.

    ./convert.py [DATA_DIR]          (DATA_DIR also from $DATA_DIR; default ./data)

run_and_time.sh runs it before the timed region; it does nothing when the output is up to date with
ratings.csv. It reproduces convert.py @ c097c799 step for step, except where noted:
  1. read ratings.csv (userId, movieId, timestamp; the rating is ignored: implicit feedback);
  2. drop users with fewer than 20 ratings (removes nobody on ml-20m);
  3. remap user and item ids to 0..n-1 in order of first appearance in the filtered file (pandas unique());
  4. sort by timestamp and make the last item of each user's list the test item, the rest training positives.
     The reference used pandas' default quicksort, which is not stable: users whose latest ratings share one
     second got an arbitrary test item. Here the sort is stable (ties keep file order, so the later line
     wins).
The reference drew the evaluation negatives here too; that is random preprocessing, which the rules require to
be timed, so train.py draws them after RUN_START (data.eval_negatives, same RNG stream as the reference).
Every input line is checked: a malformed or truncated ratings.csv stops with the file and line named.
"""

import argparse
import os
import sys
import zipfile

import numpy as np
import pandas as pd

from config import PRESETS
from data import CONVERTED_NAME, RATINGS_CSV, DataError, Ratings, is_fresh, save_converted

HEADER = "userId,movieId,rating,timestamp"
COLUMNS = {"userId": np.int64, "movieId": np.int64, "rating": np.float64, "timestamp": np.int64}


def find_bad_line(path: str) -> None:
    """Slow scan that raises DataError naming the first line that does not parse (pandas does not say)."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        if not line.strip():
            continue
        truncated = " (the file ends here without a newline: truncated?)" if lineno == len(lines) else ""
        fields = line.split(",")
        if len(fields) != len(COLUMNS):
            raise DataError(f"{path} line {lineno}: expected {len(COLUMNS)} fields ({HEADER}), "
                            f"got {len(fields)}: {line!r}{truncated}")
        for (name, dtype), value in zip(COLUMNS.items(), fields):
            try:
                dtype(int(value) if dtype is np.int64 else float(value))
            except (ValueError, OverflowError):
                kind = "an integer" if dtype is np.int64 else "a number"
                raise DataError(f"{path} line {lineno}: {name} is not {kind}: {value!r}{truncated}") from None


def read_ratings(path: str) -> pd.DataFrame:
    """ratings.csv -> DataFrame with the four columns; DataError naming file and line on any bad row."""
    if not os.path.exists(path):
        raise DataError(f"{path}: missing; run ./download_dataset.sh (or ./make_tiny_dataset.py) first")
    with open(path, "rb") as f:
        header = f.readline().rstrip(b"\r\n").decode("utf-8", errors="replace")
    if header != HEADER:
        raise DataError(f"{path} line 1: expected the header {HEADER!r}, got {header!r}")
    try:
        df = pd.read_csv(path, dtype=COLUMNS, engine="c")
    except (ValueError, pd.errors.ParserError) as e:
        find_bad_line(path)
        raise DataError(f"{path}: {e}") from None
    if df.empty:
        raise DataError(f"{path}: no ratings after the header")
    dup = df.duplicated(["userId", "movieId"])
    if dup.any():
        i = int(np.argmax(dup.to_numpy()))
        raise DataError(f"{path} line {i + 2}: user {df.userId[i]} rated movie {df.movieId[i]} twice")
    return df


def check_size_against_zip(path: str, data_dir: str) -> None:
    """A ratings.csv shorter than its entry in ml-20m.zip was cut off (e.g. an interrupted extraction)."""
    archive = os.path.join(data_dir, "ml-20m.zip")
    if not os.path.exists(archive):
        return
    with zipfile.ZipFile(archive) as zf:
        try:
            expected = zf.getinfo("ml-20m/ratings.csv").file_size
        except KeyError:
            return
    actual = os.path.getsize(path)
    if actual != expected:
        raise DataError(f"{path}: {actual} bytes, but ml-20m.zip holds {expected}: truncated or modified; "
                        f"run ./download_dataset.sh {data_dir} again to re-extract it")


def leave_one_out(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, min_ratings: int) -> Ratings:
    """Steps 2-4 above on the raw columns (file order). Returns the converted dataset."""
    _, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    keep = counts[inverse] >= min_ratings  # keeps file order, like DataFrame.groupby().filter()
    users, items, timestamps = users[keep], items[keep], timestamps[keep]
    user, user_ids = pd.factorize(users)  # codes in order of first appearance == pandas unique()
    item, item_ids = pd.factorize(items)
    # Stable sort by timestamp, grouped by user: lexsort sorts by the last key first; file position breaks
    # ties.
    order = np.lexsort((np.arange(len(user)), timestamps, user))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = user[order][1:] != user[order][:-1]
    test = order[last]  # one row per user, in user-id order
    train = order[~last]
    train = train[np.lexsort((item[train], user[train]))]
    return Ratings(train_users=user[train].astype(np.int64), train_items=item[train].astype(np.int64),
                   test_items=item[test].astype(np.int64), user_ids=np.asarray(user_ids, np.int64),
                   item_ids=np.asarray(item_ids, np.int64))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds ml-20m/ratings.csv; the output goes next to it (default: $DATA_DIR or ./data)")
    p.add_argument("--force", action="store_true", help="convert even when the output is up to date")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    csv = os.path.join(args.data_dir, RATINGS_CSV)
    out = os.path.join(args.data_dir, CONVERTED_NAME)
    try:
        if not args.force and os.path.exists(csv) and is_fresh(out, os.stat(csv)):
            print(f"convert.py: {out} is up to date with {csv}", file=sys.stderr)
            return 0
        source = os.stat(csv) if os.path.exists(csv) else None
        df = read_ratings(csv)
        check_size_against_zip(csv, args.data_dir)
        ratings = leave_one_out(df.userId.to_numpy(), df.movieId.to_numpy(), df.timestamp.to_numpy(),
                                PRESETS["reference"].min_ratings)
    except DataError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    save_converted(out, ratings, source)
    dropped = len(df) - len(ratings.train_users) - ratings.n_users
    print(f"convert.py: wrote {out}: {ratings.n_users} users, {ratings.n_items} items, "
          f"{len(ratings.train_users)} training positives, {dropped} ratings of users with "
          f"< {PRESETS['reference'].min_ratings} dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
