"""LibriSpeech on disk -> manifests -> (augmented) waveforms -> duration-sorted batches for DeepSpeech2.

On disk (spec section 2.2): DATA_DIR/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
and one <speaker>-<chapter>.trans.txt per chapter ("<utt id> TRANSCRIPT" lines). preprocess.py turns each
subset into DATA_DIR/manifests/<subset>.csv (path relative to DATA_DIR, sample count, transcript), sorted by
duration as the reference's manifests were (section 2.3); the FLACs are read directly (soundfile), not
converted to WAV.

Audio is read at the 2018 scale (a 16-bit sample times 65536, as the reference's torchaudio returned it;
features.py says why it matters). Augmentation (section 2.6, training only): sox tempo U(0.85, 1.15) and gain
U(-6, 8) dB on every load, drawn from a generator seeded by (run seed, epoch, utterance) so that resumed and
multi-process runs see the same draws (the reference's loader worker never seeded numpy; section 7.4). The
features (section 2.5) are computed from the batched waveforms on the training device (features.py).
"""

import csv
import os
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile
import torch

import features
import metrics
from config import SAMPLE_RATE, WINDOW

MANIFEST_DIR = "manifests"


class DataError(Exception):
    """Bad or missing input data; the message names the file and the problem."""


@dataclass(frozen=True)
class Utterance:
    path: str  # relative to DATA_DIR
    samples: int
    transcript: str


# ------------------------------------------------------------------------------------------------------------
# Preprocessing: one subset folder -> its manifest


def scan_subset(data_dir: str, subset: str) -> list[Utterance]:
    """Pairs every FLAC of LibriSpeech/<subset> with its transcript line; raises DataError listing every
    problem (undecodable FLAC, sample rate other than 16 kHz, transcript line without FLAC, FLAC without
    transcript line, malformed transcript line)."""
    root = os.path.join(data_dir, "LibriSpeech", subset)
    if not os.path.isdir(root):
        raise DataError(f"{root}: missing (run ./download_dataset.sh {data_dir})")
    errors, utterances = [], []
    for folder, _, files in sorted(os.walk(root)):
        flacs = {f[:-5] for f in files if f.endswith(".flac")}
        transcripts = {}
        for name in sorted(f for f in files if f.endswith(".trans.txt")):
            prefix = name[: -len(".trans.txt")] + "-"
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    utt_id, _, text = line.strip().partition(" ")
                    if not line.strip():
                        continue
                    if not utt_id.startswith(prefix) or not text.strip():
                        errors.append(f"{path} line {n}: malformed transcript line {line.strip()!r}")
                    elif utt_id not in flacs:
                        errors.append(f"{path} line {n}: transcript for {utt_id} but "
                                      f"{os.path.join(folder, utt_id + '.flac')} does not exist")
                    else:
                        transcripts[utt_id] = text.strip().upper()
        for utt_id in sorted(flacs):
            path = os.path.join(folder, utt_id + ".flac")
            if utt_id not in transcripts:
                errors.append(f"{path}: no transcript line for {utt_id} in its chapter's .trans.txt")
                continue
            try:
                info = soundfile.info(path)
            except (RuntimeError, soundfile.LibsndfileError) as e:
                errors.append(f"{path}: not a readable FLAC file ({e})")
                continue
            if info.samplerate != SAMPLE_RATE or info.channels != 1:
                errors.append(f"{path}: {info.samplerate} Hz, {info.channels} channel(s); LibriSpeech is "
                              f"{SAMPLE_RATE} Hz mono")
                continue
            utterances.append(Utterance(os.path.relpath(path, data_dir), info.frames, transcripts[utt_id]))
    if errors:
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        shown = "\n  ".join(errors[:50]) + more
        raise DataError(f"{len(errors)} problem(s) in {root}:\n  {shown}")
    if not utterances:
        raise DataError(f"{root}: no .flac files")
    return sort_by_duration(utterances)


def sort_by_duration(utterances: list[Utterance]) -> list[Utterance]:
    """Shortest first (the reference's manifests, sorted by soxi -D); ties by path for a stable order."""
    return sorted(utterances, key=lambda u: (u.samples, u.path))


def manifest_path(data_dir: str, subset: str) -> str:
    return os.path.join(data_dir, MANIFEST_DIR, f"{subset}.csv")


def write_manifest(data_dir: str, subset: str, utterances: list[Utterance]) -> str:
    path = manifest_path(data_dir, subset)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "samples", "transcript"])
        writer.writerows((u.path, u.samples, u.transcript) for u in utterances)
    os.replace(tmp, path)  # a manifest exists only when complete
    return path


def read_manifests(data_dir: str, subsets) -> list[Utterance]:
    """The utterances of several subsets, merged and sorted by duration."""
    utterances = []
    for subset in subsets:
        path = manifest_path(data_dir, subset)
        if not os.path.exists(path):
            raise DataError(f"{path}: missing (run ./preprocess.py {data_dir})")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0] != ["path", "samples", "transcript"]:
            raise DataError(f"{path}: not a manifest written by preprocess.py (header {rows[:1]})")
        for n, row in enumerate(rows[1:], 2):
            if len(row) != 3 or not row[1].isdigit():
                raise DataError(f"{path} line {n}: malformed manifest row {row}")
            utterances.append(Utterance(row[0], int(row[1]), row[2]))
    return sort_by_duration(utterances)


# ------------------------------------------------------------------------------------------------------------
# Audio


def load_audio(path: str) -> np.ndarray:
    """float32 samples of a 16 kHz mono file at the 2018 scale (features.py): soundfile's int32 samples, a
    16-bit sample times 65536, as torchaudio 0.1 returned them (exact in float32: 16 significant bits)."""
    try:
        audio, rate = soundfile.read(path, dtype="int32")
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise DataError(f"{path}: cannot decode audio ({e})") from e
    if rate != SAMPLE_RATE or audio.ndim != 1:
        raise DataError(f"{path}: {rate} Hz, shape {audio.shape}; expected {SAMPLE_RATE} Hz mono")
    return audio.astype(np.float32)


def augmented_audio(path: str, tempo: float, gain_db: float) -> np.ndarray:
    """sox tempo/gain, as load_randomly_augmented_audio (data_loader.py @ v0.5) did, through a 16-bit pipe
    (the reference wrote a 16-bit WAV), at the 2018 scale. -R: sox seeds its dither, so a draw gives the same
    samples every time (resumed runs match)."""
    cmd = ["sox", "-R", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1",
           "-r", str(SAMPLE_RATE), "-", "tempo", f"{tempo:.5f}", "gain", f"{gain_db:.5f}"]
    try:
        proc = subprocess.run(cmd, capture_output=True)
    except FileNotFoundError as e:
        raise DataError(f"{path}: augmentation needs the sox program on PATH (apt-get install sox)") from e
    if proc.returncode != 0:
        raise DataError(f"{path}: sox failed: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) * features.INT16_TO_2018_SCALE


class SpeechDataset(torch.utils.data.Dataset):
    """Item i -> (waveform S samples at the 2018 scale, target indices, transcript); features.collate batches
    them and features.spectrograms turns them into features on the training device. With augmentation, call
    set_epoch before each epoch's iterator is created (workers copy the dataset then)."""

    def __init__(self, data_dir: str, utterances: list[Utterance], augment: bool = False, seed: int = 0,
                 tempo_range=(1.0, 1.0), gain_range_db=(0.0, 0.0)):
        self.data_dir, self.utterances, self.augment, self.seed = data_dir, utterances, augment, seed
        self.tempo_range, self.gain_range_db = tempo_range, gain_range_db
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.utterances)

    def __getitem__(self, i):
        u = self.utterances[i]
        path = os.path.join(self.data_dir, u.path)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            audio = augmented_audio(path, rng.uniform(*self.tempo_range), rng.uniform(*self.gain_range_db))
        else:
            audio = load_audio(path)
        if len(audio) < WINDOW:
            raise DataError(f"{path}: {len(audio)} samples, too short for one 20 ms window")
        return torch.from_numpy(audio), metrics.encode(u.transcript), u.transcript


def batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """This rank's batches of (up to) batch_size utterances, in manifest (duration) order, the same every
    epoch: the reference never shuffled (section 7.3). Each global batch is batch_size x world_size
    consecutive utterances; rank r takes items r, r + W, ... of it (so the ranks' utterances have similar
    durations and wait little for each other). The last global batch may be smaller (the v0.5 rules allow a
    smaller final batch); it is dropped only when it has fewer utterances than there are ranks."""
    global_batch = batch_size * world_size
    out = []
    for lo in range(0, n, global_batch):
        batch = range(lo, min(lo + global_batch, n))
        if len(batch) < world_size:
            break
        out.append(list(batch[rank::world_size]))
    return out


def global_batch_sizes(n: int, batch_size: int, world_size: int) -> list[int]:
    """Utterances in each global batch of batches(n, batch_size, r, world_size) over all ranks r."""
    global_batch = batch_size * world_size
    sizes = [min(global_batch, n - lo) for lo in range(0, n, global_batch)]
    return [s for s in sizes if s >= world_size]


def loader(dataset: SpeechDataset, batch_indices: list[list[int]], workers: int, pin_memory: bool):
    return torch.utils.data.DataLoader(dataset, batch_sampler=batch_indices, collate_fn=features.collate,
                                       num_workers=workers, pin_memory=pin_memory)
