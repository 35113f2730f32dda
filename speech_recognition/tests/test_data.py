"""Manifests from the LibriSpeech layout (and every kind of bad input), audio, augmentation, batching."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch

import data
import make_tiny_dataset
import preprocess


def test_tiny_dataset_has_librispeechs_layout(tiny_data):
    root = os.path.join(tiny_data, "LibriSpeech", "dev-tiny")
    speakers = sorted(os.listdir(root))
    assert speakers == [str(s) for s in range(2000, 2005)]
    chapter = os.path.join(root, "2000", "20001")
    files = sorted(os.listdir(chapter))
    assert files[0] == "2000-20001-0000.flac" and files[-1] == "2000-20001.trans.txt"
    lines = open(os.path.join(chapter, "2000-20001.trans.txt")).read().splitlines()
    assert len(lines) == 16 and lines == sorted(lines) and lines[0].startswith("2000-20001-0000 ")
    assert set(" ".join(line.split(" ", 1)[1] for line in lines).split()) <= set(make_tiny_dataset.VOCABULARY)
    info = soundfile.info(os.path.join(chapter, "2000-20001-0000.flac"))
    assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "FLAC", "PCM_16")
    md5 = open(os.path.join(tiny_data, "tiny.md5")).read().splitlines()
    assert len(md5) == 600 + 80 + 10 + 1  # FLACs, one .trans.txt per chapter, README.TXT


def test_same_seed_same_bytes(tmp_path):
    counts = {"train-tiny": 3, "dev-tiny": 2}
    for name in ("a", "b"):
        make_tiny_dataset.write_dataset(str(tmp_path / name), 5, counts)
    assert (tmp_path / "a" / "tiny.md5").read_text() == (tmp_path / "b" / "tiny.md5").read_text()


def test_manifest_is_sorted_by_duration_and_complete(tiny_data):
    utts = data.read_manifests(tiny_data, ["dev-tiny"])
    assert len(utts) == 80 and [u.samples for u in utts] == sorted(u.samples for u in utts)
    first = utts[0]
    assert soundfile.info(os.path.join(tiny_data, first.path)).frames == first.samples
    speaker, chapter, _ = os.path.basename(first.path)[:-5].split("-")
    chapter_dir = os.path.join(tiny_data, os.path.dirname(first.path))
    trans = open(os.path.join(chapter_dir, f"{speaker}-{chapter}.trans.txt")).read()
    assert f"{os.path.basename(first.path)[:-5]} {first.transcript}\n" in trans
    merged = data.read_manifests(tiny_data, ["train-tiny", "dev-tiny"])
    assert len(merged) == 680 and [u.samples for u in merged] == sorted(u.samples for u in merged)


@pytest.fixture
def small_corpus(tiny_data, tmp_path):
    """A copy of dev-tiny's first two chapters as the subset 'dev-clean'."""
    src = os.path.join(tiny_data, "LibriSpeech", "dev-tiny")
    dst = tmp_path / "data" / "LibriSpeech" / "dev-clean"
    for speaker in ("2000", "2001"):
        shutil.copytree(os.path.join(src, speaker), dst / speaker)
    return tmp_path / "data", dst


def run_preprocess(data_dir, capsys):
    rc = preprocess.main([str(data_dir)])
    return rc, capsys.readouterr().err


def test_preprocess_writes_a_manifest(small_corpus, capsys):
    data_dir, _ = small_corpus
    rc, err = run_preprocess(data_dir, capsys)
    assert rc == 0 and "dev-clean.csv (32 utterances" in err
    assert len(data.read_manifests(str(data_dir), ["dev-clean"])) == 32


def break_corpus(subset, kind):
    chapter = subset / "2000" / "20001"
    flac = chapter / "2000-20001-0003.flac"
    if kind == "undecodable":
        flac.write_bytes(b"fLaC" + b"\x00" * 200)  # a FLAC signature and nothing valid after it
    elif kind == "transcript_without_flac":
        flac.unlink()
    elif kind == "flac_without_transcript":
        trans = chapter / "2000-20001.trans.txt"
        trans.write_text("".join(line for line in trans.read_text().splitlines(keepends=True)
                                 if not line.startswith("2000-20001-0003 ")))
    elif kind == "sample_rate":
        subprocess.run(["sox", "-R", str(flac), "-r", "22050", str(chapter / "tmp.flac")], check=True)
        os.replace(chapter / "tmp.flac", flac)
    return flac


@pytest.mark.parametrize("kind, message", [
    ("undecodable", "{flac}: not a readable FLAC file"),
    ("transcript_without_flac", "2000-20001.trans.txt line 4: transcript for 2000-20001-0003 but {flac} does "
                                "not exist"),
    ("flac_without_transcript", "{flac}: no transcript line for 2000-20001-0003"),
    ("sample_rate", "{flac}: 22050 Hz, 1 channel(s); LibriSpeech is 16000 Hz mono"),
])
def test_preprocess_names_the_bad_file(small_corpus, capsys, kind, message):
    data_dir, subset = small_corpus
    flac = break_corpus(subset, kind)
    rc, err = run_preprocess(data_dir, capsys)
    assert rc == 1 and message.format(flac=flac) in err and "1 problem(s)" in err
    assert not os.path.exists(data.manifest_path(str(data_dir), "dev-clean"))  # nothing half-written


def test_truncated_flac_fails_at_load_naming_the_file(tiny_data, tmp_path):
    src = os.path.join(tiny_data, data.read_manifests(tiny_data, ["dev-tiny"])[40].path)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(open(src, "rb").read()[:100])
    with pytest.raises(data.DataError, match="cut.flac: cannot decode audio"):
        data.load_audio(str(bad))


def test_missing_manifest_says_how_to_make_it(tmp_path):
    with pytest.raises(data.DataError, match="dev-clean.csv: missing \\(run ./preprocess.py"):
        data.read_manifests(str(tmp_path), ["dev-clean"])


def test_augmentation_changes_tempo_and_gain_and_repeats_per_epoch(tiny_data):
    utts = data.read_manifests(tiny_data, ["dev-tiny"])
    path = os.path.join(tiny_data, utts[40].path)
    plain = data.load_audio(path)
    faster = data.augmented_audio(path, 1.15, 0.0)
    assert abs(len(faster) - len(plain) / 1.15) < 0.02 * len(plain)
    louder = data.augmented_audio(path, 1.0, 6.0)
    assert len(louder) == len(plain)
    full_scale = 32767 * 65536  # sox clips at the 16-bit limits
    expected = min(full_scale, 10 ** (6 / 20) * np.abs(plain).max())
    assert np.abs(louder).max() == pytest.approx(expected, rel=0.02)
    ds = data.SpeechDataset(tiny_data, utts, True, seed=3, tempo_range=(0.85, 1.15), gain_range_db=(-6, 8))
    ds.set_epoch(1)
    a, b = ds[40][0], ds[40][0]
    ds.set_epoch(2)
    c = ds[40][0]
    # The same (seed, epoch, utterance) gives the same draw; another epoch another draw (tempo changes the
    # length, gain the samples).
    assert torch.equal(a, b)
    assert a.shape != c.shape or not torch.equal(a, c)


def test_batches_split_each_global_batch_over_the_ranks():
    assert data.batches(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # Per-rank batches of 2 on 2 ranks: global batches of 4, rank r takes items r, r + 2 of each.
    assert data.batches(10, 2, rank=0, world_size=2) == [[0, 2], [4, 6], [8]]
    assert data.batches(10, 2, rank=1, world_size=2) == [[1, 3], [5, 7], [9]]
    assert data.batches(9, 2, rank=1, world_size=2) == [[1, 3], [5, 7]]  # a 1-item last batch is dropped
    assert data.global_batch_sizes(10, 2, 2) == [4, 4, 2] and data.global_batch_sizes(9, 2, 2) == [4, 4]
