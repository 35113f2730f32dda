"""Preprocessing (filter, remap, leave-one-out), input validation, evaluation and training negatives."""

import os
import shutil
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch

import convert
import data


def write_csv(path, rows, header=convert.HEADER):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(header + "\n" + "".join(f"{r}\n" for r in rows))


def reference_convert(csv_path: str):
    """convert.py @ c097c799 without the negatives, with the stable sort of our Decisions (see convert.py)."""
    df = pd.read_csv(csv_path).rename(columns={"userId": "user_id", "movieId": "item_id"})
    df = df.groupby("user_id").filter(lambda x: len(x) >= 20)
    original_users, original_items = df.user_id.unique(), df.item_id.unique()
    user_map = {user: index for index, user in enumerate(original_users)}
    item_map = {item: index for index, item in enumerate(original_items)}
    df["user_id"] = df.user_id.apply(lambda u: user_map[u])
    df["item_id"] = df.item_id.apply(lambda i: item_map[i])
    df = df.sort_values(by="timestamp", kind="stable")
    all_ratings = set(zip(df.user_id, df.item_id))
    user_to_items = defaultdict(list)
    for row in df.itertuples():
        user_to_items[row.user_id].append(row.item_id)
    test_items = []
    for user in range(len(original_users)):
        test_item = user_to_items[user].pop()
        all_ratings.remove((user, test_item))
        test_items.append(test_item)
    return original_users, original_items, sorted(all_ratings), test_items, user_to_items


def test_leave_one_out_filter_remap_and_stable_ties():
    # user 7: 2 ratings (dropped); user 5: latest two tie at t=300 -> the later line (item 40) is its test
    # item; user 9: latest is item 10 (t=500). Ids are remapped in order of first appearance after the filter.
    users = np.array([9, 7, 5, 9, 5, 5, 7, 9])
    items = np.array([30, 99, 20, 10, 50, 40, 98, 20])
    times = np.array([100, 1, 300, 500, 200, 300, 2, 400])
    r = convert.leave_one_out(users, items, times, min_ratings=3)
    assert r.user_ids.tolist() == [9, 5] and r.item_ids.tolist() == [30, 20, 10, 50, 40]
    assert r.test_items.tolist() == [2, 4]  # user 9 -> movie 10, user 5 -> movie 40 (tie: later line)
    assert list(zip(r.train_users.tolist(), r.train_items.tolist())) == [(0, 0), (0, 1), (1, 1), (1, 3)]


def test_the_20_ratings_filter_drops_the_short_users(tiny_data):
    df = pd.read_csv(os.path.join(tiny_data, data.RATINGS_CSV))
    counts = df.userId.value_counts()
    assert (counts < 20).sum() == 50  # make_tiny_dataset.py's short users
    r = data.load_converted(tiny_data)
    assert sorted(r.user_ids.tolist()) == sorted(counts.index[counts >= 20].tolist())


def test_conversion_matches_the_reference_on_the_tiny_data(tiny_data):
    users, items, train_pairs, test_items, _ = reference_convert(os.path.join(tiny_data, data.RATINGS_CSV))
    r = data.load_converted(tiny_data)
    assert r.user_ids.tolist() == users.tolist() and r.item_ids.tolist() == items.tolist()
    assert r.test_items.tolist() == test_items
    assert list(zip(r.train_users.tolist(), r.train_items.tolist())) == train_pairs
    # make_tiny_dataset.py gives every 25th user two latest ratings in one second: the tie rule is exercised.
    df = pd.read_csv(os.path.join(tiny_data, data.RATINGS_CSV))
    latest = df[df.timestamp == df.groupby("userId").timestamp.transform("max")]
    assert (latest.userId.value_counts() > 1).sum() >= 30


def test_eval_negatives_are_the_reference_draws(tiny_data):
    r = data.load_converted(tiny_data)
    _, _, _, _, user_to_items = reference_convert(os.path.join(tiny_data, data.RATINGS_CSV))
    np.random.seed(0)  # convert.py @ c097c799: np.random.seed(args.seed) with --seed 0
    all_items = set(range(r.n_items))
    expected = [np.random.choice(sorted(all_items - set(user_to_items[u])), 100) for u in range(r.n_users)]
    negatives = data.eval_negatives(r, 100, seed=0, users_per_chunk=300).numpy()  # chunks change nothing
    np.testing.assert_array_equal(negatives, np.array(expected))
    # With replacement, and the test item stays eligible, as in the reference.
    assert (negatives == r.test_items[:, None]).any(axis=1).sum() > 0
    assert sum(len(set(row)) < len(row) for row in negatives) > 0


def test_eval_negatives_drawn_on_the_device_follow_the_same_rule(tiny_data):
    """exact=False (the run seed; NVIDIA drew on the GPU): with replacement, never an item the user rated
    in training, the test item eligible, uniform over the unrated items, reproducible for a seed."""
    r = data.load_converted(tiny_data)
    negatives = data.eval_negatives(r, 100, seed=5, exact=False, users_per_chunk=300)
    assert negatives.shape == (r.n_users, 100)
    assert torch.equal(negatives, data.eval_negatives(r, 100, seed=5, exact=False))  # chunks change nothing
    assert not torch.equal(negatives, data.eval_negatives(r, 100, seed=6, exact=False))
    users = torch.arange(r.n_users)[:, None].expand_as(negatives)
    keys = torch.from_numpy(r.train_users * r.n_items + r.train_items)
    assert not data.is_train_positive(users.reshape(-1), negatives.reshape(-1), keys, r.n_items).any()
    assert (negatives == torch.from_numpy(r.test_items)[:, None]).any(dim=1).sum() > 0
    assert sum(len(set(row)) < len(row) for row in negatives.tolist()) > 0
    # Uniform: how often an item is drawn, against the expectation sum over users of 100 / (unrated items).
    n_unrated = r.n_items - np.bincount(r.train_users, minlength=r.n_users)
    rated = np.zeros((r.n_users, r.n_items), dtype=bool)
    rated[r.train_users, r.train_items] = True
    expected = ((~rated) * (100 / n_unrated)[:, None]).sum(axis=0)
    counts = np.bincount(negatives.reshape(-1).numpy(), minlength=r.n_items)
    assert abs(counts - expected).max() < 6 * np.sqrt(expected.max())  # ~50 draws an item
    assert ((counts - expected) ** 2 / expected).mean() < 1.3  # chi-square per item: 1 +- 0.03 if uniform


@pytest.mark.parametrize("rows, message", [
    (["1,2,3.5,100", "1,3,4.0"], "line 3: expected 4 fields"),
    (["1,2,3.5,100", "1,x,4.0,100"], "line 3: movieId is not an integer: 'x'"),
    (["1,2,3.5,100", "1,3,4.0,100,7"], "line 3"),
    (["1,2,3.5,100", "1,2,4.0,101"], "line 3: user 1 rated movie 2 twice"),
])
def test_malformed_rows_name_file_and_line(tmp_path, rows, message):
    path = str(tmp_path / "ml-20m" / "ratings.csv")
    write_csv(path, rows)
    with pytest.raises(data.DataError, match=message) as e:
        convert.read_ratings(path)
    assert path in str(e.value)


def test_bad_header_and_truncated_file(tmp_path, tiny_data, capsys):
    path = str(tmp_path / "ml-20m" / "ratings.csv")
    write_csv(path, ["1,2,3.5,100"], header="user,movie,rating,timestamp")
    with pytest.raises(data.DataError, match="line 1: expected the header"):
        convert.read_ratings(path)
    # A copy of the tiny data cut in the middle of a row: convert.py names the line and exits non-zero.
    d = str(tmp_path / "cut")
    shutil.copytree(tiny_data, d)
    csv = os.path.join(d, data.RATINGS_CSV)
    content = open(csv, "rb").read()
    with open(csv, "wb") as f:
        f.write(content[:content.index(b"\n", 500_000) + 6])
    n_lines = content[:500_000].count(b"\n") + 2
    assert convert.main([d]) == 1
    err = capsys.readouterr().err
    assert f"{csv} line {n_lines}: expected 4 fields" in err and "truncated?" in err
    # Cut at a line boundary every row parses, but the size differs from the zip's entry.
    with open(csv, "wb") as f:
        f.write(content[:content.index(b"\n", 500_000) + 1])
    assert convert.main([d]) == 1
    assert "bytes, but ml-20m.zip holds" in capsys.readouterr().err


def test_stale_or_missing_conversion_is_refused(tmp_path, tiny_data):
    with pytest.raises(data.DataError, match="missing; run ./convert.py"):
        data.load_converted(str(tmp_path))
    d = str(tmp_path / "stale")
    shutil.copytree(tiny_data, d)
    os.utime(os.path.join(d, data.RATINGS_CSV))  # ratings.csv changed after the conversion
    with pytest.raises(data.DataError, match="run ./convert.py .* again"):
        data.load_converted(d)


def tensors(r):
    users, items = torch.from_numpy(r.train_users), torch.from_numpy(r.train_items)
    return users, items, users * r.n_items + items


def test_training_negatives_follow_the_reference_distribution(tiny_data):
    r = data.load_converted(tiny_data)
    users_t, items_t, keys = tensors(r)
    users, items, labels = data.epoch_samples(users_t, items_t, keys, r.n_items, 4, seed=3, epoch=1)
    assert len(users) == 5 * len(users_t) and labels.sum() == len(users_t)
    positive = labels == 1
    # Every positive exactly once per epoch; no negative is a training positive (the test item may be drawn).
    pos_keys = (users[positive] * r.n_items + items[positive]).sort().values
    assert torch.equal(pos_keys, keys)
    assert not data.is_train_positive(users[~positive], items[~positive], keys, r.n_items).any()
    assert (items[~positive] == torch.from_numpy(r.test_items)[users[~positive]]).sum() > 0
    # Uniform over the other items: item counts of the ~155k negatives are close to their expectation.
    counts = torch.bincount(items[~positive], minlength=r.n_items).double()
    assert counts.std() / counts.mean() < 0.15
    # Shuffled (not positives first), and fresh every epoch, yet reproducible for a given (seed, epoch).
    assert 0.15 < positive[: len(positive) // 2].double().mean() < 0.25
    again = data.epoch_samples(users_t, items_t, keys, r.n_items, 4, seed=3, epoch=1)
    other = data.epoch_samples(users_t, items_t, keys, r.n_items, 4, seed=3, epoch=2)
    assert torch.equal(again[1], items) and not torch.equal(other[1], items)


def test_ranks_draw_disjoint_shares_of_the_epoch(tiny_data):
    r = data.load_converted(tiny_data)
    users_t, items_t, keys = tensors(r)
    shares = [data.epoch_samples(users_t, items_t, keys, r.n_items, 4, seed=3, epoch=1, rank=k, world_size=2)
              for k in range(2)]
    assert len(shares[0][0]) == len(shares[1][0]) == (5 * len(users_t)) // 2
    positives = torch.cat([(u * r.n_items + i)[lab == 1] for u, i, lab in shares])
    assert len(positives) >= len(keys) - 1 and len(positives.unique()) == len(positives)
    assert not torch.equal(shares[0][1][:100], shares[1][1][:100])
