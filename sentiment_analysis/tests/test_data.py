"""Paddle's tokeniser, vocabulary, labels and reader order; archive errors; length buckets."""

import gzip
import io
import tarfile

import pytest
import torch

import make_tiny_dataset
from data import (
    DataError,
    DevicePlan,
    Split,
    bucket_by_length,
    build_vocab,
    load_imdb,
    read_reviews,
    tokenize,
    unk_id,
)


def test_tokenize_literal_bytes():
    # `<br />` loses its punctuation and leaves "br"; with no space before it, it glues onto the
    # previous word, exactly as paddle.dataset.imdb does (spec §8's "great br movie" example
    # assumed a space there).
    assert tokenize(b"Great<br />movie, isn't it?\n") == [b"greatbr", b"movie", b"isnt", b"it"]
    assert tokenize(b"Great <br /><br /> movie") == [b"great", b"br", b"br", b"movie"]
    assert tokenize(b"a well-made, don't-miss film!!\r\n") == [b"a", b"wellmade", b"dontmiss",
                                                                 b"film"]
    # ASCII-only lower-casing and punctuation removal; non-ASCII bytes are kept as they are.
    assert tokenize(b"Caf\xc3\xa9 \xc3\x89T\xc3\x89 \xe9t\xe9") == [
        b"caf\xc3\xa9", b"\xc3\x89t\xc3\x89", b"\xe9t\xe9"]
    assert tokenize(b"A\tB\x0bC  D\n\n") == [b"a", b"b", b"c", b"d"]


def test_vocab_order_and_unk():
    docs = [[b"b", b"a", b"c"] * 3, [b"a", b"d"], [b"c", b"b"]]   # a:4, b:4, c:4, d:1
    vocab = build_vocab(docs, cutoff=1)
    assert list(vocab) == [b"a", b"b", b"c"]        # count desc, then bytewise
    assert unk_id(vocab) == 3
    docs = [[b"x"] * 3 + [b"y"] * 5 + [b"z"] * 2]
    assert list(build_vocab(docs, cutoff=2)) == [b"y", b"x"]     # strictly more than the cutoff


def _tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


MINI = [("aclImdb/test/neg/0_2.txt", b"bad bad"), ("aclImdb/train/neg/5_1.txt", b"awful film"),
        ("aclImdb/train/pos/9_8.txt", b"good film"), ("aclImdb/train/unsup/0_0.txt", b"ignored"),
        ("aclImdb/train/pos/1_10.txt", b"great film"), ("aclImdb/test/pos/3_7.txt", b"fine")]


def test_labels_order_and_encoding(tmp_path):
    train, test, vocab = load_imdb(_tarball(tmp_path / "a.tar.gz", MINI), cutoff=0)
    # pos = 0 first (tar member order: 9_8 before 1_10), then neg = 1.
    assert train.labels.tolist() == [0, 0, 1] and test.labels.tolist() == [0, 1]
    assert list(vocab)[:2] == [b"film", b"bad"]     # film 3, bad 2, then the rest bytewise
    ids, lengths, labels = train.pad([0, 1, 2])
    assert [[list(vocab)[i] for i in row] for row in ids.tolist()] == [
        [b"good", b"film"], [b"great", b"film"], [b"awful", b"film"]]
    assert b"ignored" not in vocab                  # train/unsup is not read
    _, _, vocab = load_imdb(tmp_path / "a.tar.gz", cutoff=1)
    assert list(vocab) == [b"film", b"bad"]
    train, _, _ = load_imdb(tmp_path / "a.tar.gz", cutoff=1)
    assert train.tokens.tolist().count(unk_id(vocab)) == 3   # good, great, awful -> <unk>


def test_tiny_dataset_is_deterministic_and_matches_its_md5(tmp_path, tiny_data):
    make_tiny_dataset.make(tmp_path, seed=0)
    assert (tmp_path / "aclImdb_v1.tar.gz").read_bytes() == (
        tiny_data / "aclImdb_v1.tar.gz").read_bytes()
    reviews = read_reviews(tiny_data / "aclImdb_v1.tar.gz")
    assert {k: len(v) for k, v in reviews.items()} == {
        (s, lab): 1250 for s in ("train", "test") for lab in ("pos", "neg")}


def test_missing_truncated_and_corrupt_archives(tmp_path, tiny_data):
    with pytest.raises(DataError, match="not found"):
        read_reviews(tmp_path / "aclImdb_v1.tar.gz")
    blob = (tiny_data / "aclImdb_v1.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"cut\.tar\.gz: truncated or corrupt"):
        read_reviews(cut)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(blob[:1000] + bytes(200) + blob[1200:])
    with pytest.raises(DataError, match=r"bad\.tar\.gz: truncated or corrupt"):
        read_reviews(bad)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match=r"junk\.tar\.gz: truncated or corrupt"):
        read_reviews(junk)


@pytest.mark.parametrize("name,data,problem", [
    ("aclImdb/train/pos/4_9.txt", b"ok\x00\x01\x02binary", "not a text file"),
    ("aclImdb/train/pos/4_3.txt", b"a fine film", "pos rating"),
    ("aclImdb/test/neg/review.txt", b"a bad film", "<id>_<rating>.txt"),
    ("aclImdb/test/neg/4_1.txt", b" ,.!\n", "empty review"),
])
def test_bad_review_file_is_named(tmp_path, name, data, problem):
    path = _tarball(tmp_path / "x.tar.gz", [*MINI, (name, data)])
    with pytest.raises(DataError) as e:
        read_reviews(path)
    assert str(path) in str(e.value) and name in str(e.value) and problem in str(e.value)


def test_missing_class_is_reported(tmp_path):
    path = _tarball(tmp_path / "x.tar.gz", [m for m in MINI if "/test/pos/" not in m[0]])
    with pytest.raises(DataError, match="no reviews under aclImdb/test/pos/"):
        read_reviews(path)


def test_gzip_of_not_a_tar(tmp_path):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(b"plain text, not a tar archive" * 100))
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_reviews(path)


def test_bucket_by_length():
    lengths = [5, 100, 7, 30, 31, 6, 2, 99]
    chunks = bucket_by_length(range(8), lengths, max_tokens=100)
    assert sorted(i for c in chunks for i in c) == list(range(8))
    for c in chunks:
        assert len(c) == 1 or len(c) * max(lengths[i] for i in c) <= 100
    assert chunks[0] == [1] and chunks[1] == [7]         # longest first, alone
    assert bucket_by_length([3, 0], lengths, 10**6) == [[3, 0]]


def test_pad_uses_lengths():
    s = Split(tokens=torch.tensor([5, 6, 7]), offsets=torch.tensor([0, 1]),
              lengths=torch.tensor([1, 2]), labels=torch.tensor([1, 0]))
    ids, lengths, labels = s.pad([0, 1], pad_id=9)
    assert ids.tolist() == [[5, 9], [6, 7]] and lengths.tolist() == [1, 2]
    assert labels.tolist() == [1, 0]
    ids, _, _ = s.pad([0])
    assert ids.tolist() == [[5]]


def test_device_plan_slices_are_the_chunks():
    lengths = [5, 100, 7, 30, 31, 6, 2, 99]
    steps = [bucket_by_length(b, lengths, 100) for b in ([0, 1, 2, 3], [4, 5, 6, 7], [2])]
    plan = DevicePlan.build(steps, lengths, "cpu")
    assert plan.index.dtype == torch.int64 and len(plan.steps) == 3
    for s, chunks in enumerate(steps):
        got = plan.chunks(s)
        assert [idx.tolist() for idx, _ in got] == chunks
        assert [L for _, L in got] == [max(lengths[i] for i in c) for c in chunks]


def test_pad_from_device_indices_equals_pad_from_a_list():
    s = Split(tokens=torch.arange(10, 20), offsets=torch.tensor([0, 2, 7]),
              lengths=torch.tensor([2, 5, 3]), labels=torch.tensor([1, 0, 1]))
    plan = DevicePlan.build([[[1, 2], [0]]], s.length_list, "cpu")
    for (idx, L), chunk in zip(plan.chunks(0), [[1, 2], [0]]):
        for a, b in zip(s.pad(idx, L), s.pad(chunk)):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="max_len"):
        s.pad(torch.tensor([0]))
