"""Data: the tiny corpus, parallel-file checks, preprocessing, token buckets, sentencepiece, scripts."""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

import data
import make_tiny_dataset
import preprocess

FOLDER = Path(__file__).resolve().parents[1]
TOOLS = Path(__file__).resolve().parents[2] / "tools"


def test_tiny_dataset_uses_the_real_names_and_reorders(tmp_path):
    written = make_tiny_dataset.write_tiny_dataset(tmp_path, seed=3)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    for prefix in data.TRAIN_CORPORA + [data.DEV_CORPUS, data.TEST_CORPUS]:
        assert {f"{prefix}.en", f"{prefix}.de"} <= names
    lines = (tmp_path / "tiny.md5").read_text().splitlines()
    for line in lines:
        digest, name = line.split("  ")
        assert hashlib.md5((tmp_path / name).read_bytes()).hexdigest() == digest
    # adjective after the noun and verb at the end, first word capitalised, on a drawn pair
    lex = make_tiny_dataset.make_lexicon()
    rng = np.random.default_rng(0)
    for _ in range(50):
        en, de = make_tiny_dataset.sentence_pair(rng, lex)
        en_w, de_w = en.lower().split(), de.lower().split()
        verb = next(w for w in en_w if w in make_tiny_dataset.VERBS)
        assert de_w[-2] == lex[verb] and de_w[-1] == "." and de[0].isupper() and en[0].isupper()
        if en_w[1] in make_tiny_dataset.ADJS:
            assert de_w[1:3] == [lex[en_w[2]], lex[en_w[1]]]
    again = tmp_path / "again"
    make_tiny_dataset.write_tiny_dataset(again, seed=3)
    assert (again / "tiny.md5").read_text() == (tmp_path / "tiny.md5").read_text()


def test_read_parallel_drops_empty_pairs_with_a_count(tmp_path):
    (tmp_path / "c.en").write_text("a b\n\n  c  \nd\n")
    (tmp_path / "c.de").write_text("x\ny\nz\n   \n")
    src, tgt, dropped = data.read_parallel(tmp_path / "c")
    assert (src, tgt, dropped) == (["a b", "c"], ["x", "z"], 2)


def test_read_parallel_unequal_counts_name_both_files(tmp_path):
    (tmp_path / "c.en").write_text("a\nb\nc\n")
    (tmp_path / "c.de").write_text("x\ny\n")
    with pytest.raises(data.DataError, match=r"c\.en has 3 lines but .*c\.de has 2.*line 3"):
        data.read_parallel(tmp_path / "c")


def test_read_lines_errors_name_file_and_line(tmp_path):
    with pytest.raises(data.DataError, match=r"missing\.en: file is missing"):
        data.read_lines(tmp_path / "missing.en")
    (tmp_path / "bad.de").write_bytes(b"gut\n\xc3\xbcber\n\xff\xfe kaputt\n")
    with pytest.raises(data.DataError, match=r"bad\.de: line 3: not valid UTF-8"):
        data.read_lines(tmp_path / "bad.de")
    # CommonCrawl has U+2028 inside lines: only '\n' ends a line
    (tmp_path / "u.en").write_text("one\u2028still one\ntwo\n")
    assert data.read_lines(tmp_path / "u.en") == ["one\u2028still one", "two"]


def test_preprocess_reports_a_broken_corpus(tiny_data, tmp_path):
    shutil.copytree(tiny_data / "raw_data", tmp_path / "raw_data")
    for f in ("newstest2014.en", "newstest2014.de"):
        shutil.copy(tiny_data / f, tmp_path / f)
    cc = tmp_path / "raw_data/commoncrawl.de-en.de"
    cc.write_text("".join(cc.read_text().splitlines(keepends=True)[:-5]))
    with pytest.raises(data.DataError, match=r"commoncrawl\.de-en\.en has 6000 lines but .*\.de has 5995"):
        preprocess.preprocess(tmp_path, "tiny", log=lambda m: None)
    assert not (tmp_path / "preprocessed" / data.MANIFEST).exists()
    (tmp_path / "tiny.md5").write_text("")
    with pytest.raises(data.DataError, match="tiny.md5"):
        preprocess.preprocess(tmp_path, "reference", log=lambda m: None)


def test_preprocessed_shards_hold_every_pair(tiny_data):
    manifest = data.load_manifest(tiny_data)
    assert manifest["train_pairs"] == 20000 and manifest["dev_pairs"] == 300
    assert manifest["vocab_size"] == 640
    train = data.load_encoded(tiny_data, "train")
    assert len(train) == 20000
    src_len, tgt_len = train.lengths()
    s, t = train.pair(123)
    assert s[-1] == data.EOS_ID and t[-1] == data.EOS_ID and data.PAD_ID not in s
    assert src_len.min() >= 2 and tgt_len.min() >= 2
    # the pairing survives: decoding both sides of a pair gives a line pair of the raw corpus
    sp = spm.SentencePieceProcessor(model_file=str(data.preprocessed_dir(tiny_data) / data.SPM_MODEL))
    pairs = set()
    for corpus in data.TRAIN_CORPORA:
        src, tgt, _ = data.read_parallel(tiny_data / corpus)
        pairs |= set(zip(src, tgt))
    for i in (0, 777, 19999):
        s, t = train.pair(i)
        assert (sp.decode(s[:-1].tolist()), sp.decode(t[:-1].tolist())) in pairs


def test_sentencepiece_round_trip_on_mixed_text(tiny_data):
    sp = spm.SentencePieceProcessor(model_file=str(data.preprocessed_dir(tiny_data) / data.SPM_MODEL))
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id()) == (data.PAD_ID, data.EOS_ID, data.UNK_ID)
    for text in ['Hallo_Welt, 3.5 % über\\ „Zitat“ "quotes" \'x\' Größe 1.000,50 € – naïve Straße 42!',
                 "Every robot knows this horse behind every city .", "Ünïcödé: ÄÖÜ äöü ß 0123456789"]:
        ids = sp.encode(text)
        assert data.UNK_ID not in ids
        assert sp.decode(ids) == text


def test_bucket_bounds_are_the_references():
    bounds = data.bucket_upper_bounds(256)
    assert len(bounds) == 42
    assert bounds[:15] == list(range(8, 21)) + [22, 24] and bounds[-2:] == [236, 257]
    assert [4096 // b for b in (bounds[0], bounds[-1])] == [512, 15]


def test_batches_cover_every_pair_once_within_the_token_budget():
    rng = np.random.default_rng(0)
    src_len = rng.integers(1, 300, size=5000)
    tgt_len = rng.integers(1, 300, size=5000)
    batches, too_long = data.make_batches(src_len, tgt_len, 4096, 256, np.random.default_rng(1))
    longest = np.maximum(src_len, tgt_len)
    assert too_long == int((longest > 256).sum()) > 0
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == np.flatnonzero(longest <= 256).tolist()
    for b in batches:
        assert len(b) * max(src_len[b].max(), tgt_len[b].max()) <= 4096


def test_epoch_batches_split_ranks_evenly_and_repeat_per_epoch(tiny_data):
    train = data.load_encoded(tiny_data, "train")
    full, _ = data.epoch_batches(train, 2048, 256, seed=5, epoch=2)
    again, _ = data.epoch_batches(train, 2048, 256, seed=5, epoch=2)
    other, _ = data.epoch_batches(train, 2048, 256, seed=5, epoch=3)
    assert all((a == b).all() for a, b in zip(full, again))
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(full, other))
    r0, _ = data.epoch_batches(train, 2048, 256, seed=5, epoch=2, rank=0, world_size=2)
    r1, _ = data.epoch_batches(train, 2048, 256, seed=5, epoch=2, rank=1, world_size=2)
    assert len(r0) == len(r1) == len(full) // 2
    assert not set(np.concatenate(r0).tolist()) & set(np.concatenate(r1).tolist())
    src, tgt = data.collate(train, full[0])
    assert src.shape[0] == tgt.shape[0] == len(full[0]) and src.dtype == tgt.dtype


def _run(cmd, **kw):
    env = dict(os.environ, PYTHON=sys.executable, **kw.pop("env", {}))
    return subprocess.run(cmd, cwd=FOLDER, env=env, capture_output=True, text=True, timeout=300, **kw)


def test_verify_dataset(tiny_data, tmp_path):
    ok = _run(["bash", "verify_dataset.sh", str(tiny_data)])
    assert ok.returncode == 0, ok.stderr
    assert "tiny.md5" in ok.stderr
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken, ignore=shutil.ignore_patterns("preprocessed"))
    with open(broken / "newstest2014.de", "a") as f:
        f.write("extra\n")
    bad = _run(["bash", "verify_dataset.sh", str(broken)])
    assert bad.returncode != 0 and "newstest2014.de" in bad.stdout + bad.stderr
    (broken / "tiny.md5").unlink()  # now it is checked as real data: wrong checksums and counts
    real = _run(["bash", "verify_dataset.sh", str(broken)])
    assert real.returncode != 0
    assert "newstest2014.en: MD5 mismatch" in real.stderr
    assert "raw_data/dev.tgz is missing" in real.stderr
    assert "commoncrawl.de-en.de: 6000 lines, expected 2399123" in real.stderr


def test_verify_dataset_checks_each_archive_hash(tiny_data, tmp_path):
    """A complete gzip stream that is not the reference's archive is named; the right hash passes (checked
    with a copy of the script whose checksums.sha256 lists the stand-in archive)."""
    data = tmp_path / "data"
    (data / "raw_data").mkdir(parents=True)
    nc = data / "raw_data" / "training-parallel-nc-v12.tgz"
    _tgz(nc, tiny_data / "raw_data", ["training/news-commentary-v12.de-en.en"])
    _tgz(data / "raw_data" / "dev.tgz", tiny_data / "raw_data", ["dev/newstest2013.en"])
    real = _run(["bash", "verify_dataset.sh", str(data)])
    assert real.returncode == 1
    assert f"{nc}: SHA-256 " in real.stderr and \
        "expected 2b45f30ef1d550d302fd17dd3a5cbe19134ccc4c2cf50c2dae534aee600101a2" in real.stderr
    assert f"{data}/raw_data/dev.tgz: MD5 mismatch (expected 9b1aa63c1cf49dccdd20b962fe313989" in real.stderr
    assert f"{data}/raw_data/training-parallel-commoncrawl.tgz is missing" in real.stderr

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(FOLDER / "verify_dataset.sh", scripts / "verify_dataset.sh")
    shutil.copy(FOLDER / "checksums.md5", scripts / "checksums.md5")
    digest = hashlib.sha256(nc.read_bytes()).hexdigest()
    (scripts / "checksums.sha256").write_text(f"{digest}  raw_data/training-parallel-nc-v12.tgz\n")
    copy = subprocess.run(["bash", str(scripts / "verify_dataset.sh"), str(data)], capture_output=True,
                          text=True, timeout=60)
    assert copy.returncode == 1  # still no corpora and no newstest2014
    assert "nc-v12.tgz:" not in copy.stderr and "nc-v12.tgz is missing" not in copy.stderr
    assert "newstest2014.en is missing" in copy.stderr


def _tgz(path: Path, root: Path, members: list[str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            tar.add(root / m, arcname=m)


def test_download_resumes_from_a_mirror_and_verifies(tiny_data, tmp_path):
    # Archives laid out as the real WMT ones, made from the tiny corpus, served with a cut connection.
    mirror, raw = tmp_path / "mirror", tiny_data / "raw_data"
    mirror.mkdir()
    _tgz(mirror / "training-parallel-nc-v12.tgz", raw, ["training/news-commentary-v12.de-en.en",
                                                       "training/news-commentary-v12.de-en.de"])
    _tgz(mirror / "training-parallel-commoncrawl.tgz", raw, ["commoncrawl.de-en.en", "commoncrawl.de-en.de"])
    _tgz(mirror / "training-parallel-europarl-v7.tgz", raw, ["training/europarl-v7.de-en.en",
                                                            "training/europarl-v7.de-en.de"])
    _tgz(mirror / "dev.tgz", raw, ["dev/newstest2013.en", "dev/newstest2013.de"])
    for f in ("newstest2014.en", "newstest2014.de"):
        shutil.copy(tiny_data / f, mirror / f)
    target = tmp_path / "data"
    target.mkdir()
    shutil.copy(tiny_data / "tiny.md5", target / "tiny.md5")  # so verify checks the tiny checksums
    server = subprocess.Popen([sys.executable, str(TOOLS / "range_http_server.py"), str(mirror),
                               "--cut-after", "2000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        proc = _run(["bash", "download_dataset.sh", str(target)],
                    env={"DATASET_MIRROR": f"http://127.0.0.1:{port}"})
        assert proc.returncode == 0, proc.stderr
        again = _run(["bash", "download_dataset.sh", str(target)],
                     env={"DATASET_MIRROR": f"http://127.0.0.1:{port}"})
        assert again.returncode == 0 and "already downloaded" in again.stderr
    finally:
        server.terminate()
        requests = server.communicate(timeout=10)[1]
    assert "range=bytes=2000- status=206" in requests  # the dropped transfer was resumed, not restarted
    for line in (tiny_data / "tiny.md5").read_text().splitlines():
        name = line.split("  ")[1]
        assert (target / name).read_bytes() == (tiny_data / name).read_bytes()
    assert (target / "raw_data" / "dev.tgz").is_file()


def test_download_refuses_an_unsafe_archive(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    evil = tmp_path / "evil.txt"
    evil.write_text("outside\n")
    with tarfile.open(mirror / "training-parallel-nc-v12.tgz", "w:gz") as tar:
        tar.add(evil, arcname="../../escaped.txt")
    server = subprocess.Popen([sys.executable, str(TOOLS / "range_http_server.py"), str(mirror)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        proc = _run(["bash", "download_dataset.sh", str(tmp_path / "data")],
                    env={"DATASET_MIRROR": f"http://127.0.0.1:{port}"})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert proc.returncode != 0
    assert "training-parallel-nc-v12.tgz: cannot extract" in proc.stderr
    assert not (tmp_path / "escaped.txt").exists()
    assert (tmp_path / "data/raw_data/training-parallel-nc-v12.tgz").is_file()  # the download is kept
