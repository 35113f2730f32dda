"""WMT en-de data for the Transformer: raw parallel text, encoded shards and token-bucketed batches.

    from data import load_encoded, epoch_batches

On-disk format written by preprocess.py under DATA_DIR/preprocessed/ (any format may hold "the same token
ids in the same pairing", spec section 2):

    spm.model, spm.vocab                  the shared en+de sentencepiece model (pad 0, EOS 1, unk 2)
    train-000NN-of-000MM.npz              src, tgt: all token ids of the shard, flat, uint16, EOS included;
                                          src_offsets, tgt_offsets: int64 [n+1], pair i = [off[i], off[i+1])
    dev-00000-of-00001.npz                newstest2013, same layout
    manifest.json                         written last: counts and the vocabulary size (marks "done")

Batches follow utils/dataset.py @ v0.5: pairs whose longer side exceeds max_length tokens are dropped
(counted), the rest are bucketed by max(src, tgt) length with upper bounds 8, 9, 10, ..., 236, 257 and a
bucket with upper bound b holds at most max_tokens // b pairs, source and target padded separately.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
PREPROCESSED = "preprocessed"
SPM_MODEL = "spm.model"
MANIFEST = "manifest.json"
# The reference's file names (process_data.py / data_download.py @ v0.5), relative to DATA_DIR.
TRAIN_CORPORA = [
    "raw_data/training/news-commentary-v12.de-en",
    "raw_data/commoncrawl.de-en",
    "raw_data/training/europarl-v7.de-en",
]
DEV_CORPUS = "raw_data/dev/newstest2013"
TEST_CORPUS = "newstest2014"  # BLEU test set, plain detokenised text (download_data.sh @ v0.5)


class DataError(Exception):
    """Bad input data; the message names the file and the problem."""


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file, split on '\\n' only (CommonCrawl holds U+2028 and friends inside lines)."""
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not valid UTF-8 ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_parallel(prefix: Path, src_lang: str = "en",
                  tgt_lang: str = "de") -> tuple[list[str], list[str], int]:
    """Stripped line pairs of prefix.en / prefix.de, dropping pairs with an empty side.

    Returns (sources, targets, number of pairs dropped as empty). Files with different line counts are
    an error naming both files, their counts and the first line that has no partner.
    """
    src_path, tgt_path = Path(f"{prefix}.{src_lang}"), Path(f"{prefix}.{tgt_lang}")
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: a parallel pair "
                        f"must have equal counts (line {min(len(src), len(tgt)) + 1} has no partner)")
    sources, targets = [], []
    for s, t in zip(src, tgt):
        s, t = s.strip(), t.strip()
        if s and t:
            sources.append(s)
            targets.append(t)
    return sources, targets, len(src) - len(sources)


def check_data_dir(data_dir: Path, config_name: str) -> None:
    """The reference presets refuse tiny data: a reference run on it would not be a result (DESIGN.md)."""
    if config_name.startswith("reference") and (data_dir / "tiny.md5").exists():
        raise DataError(f"{data_dir} holds tiny.md5 (synthetic data from make_tiny_dataset.py); the "
                        f"{config_name} preset needs the real WMT data: use --config tiny or "
                        "download_dataset.sh")


# ---------------------------------------------------------------------------------------------------
# Encoded shards


def write_shard(path: Path, src: list[list[int]], tgt: list[list[int]]) -> None:
    def flat(seqs):
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) for s in seqs])
        tokens = np.fromiter((t for s in seqs for t in s), dtype=np.uint16, count=int(offsets[-1]))
        return tokens, offsets

    (s, so), (t, to) = flat(src), flat(tgt)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, src=s, src_offsets=so, tgt=t, tgt_offsets=to)
    tmp.replace(path)


@dataclass
class ParallelData:
    """Token ids of n sentence pairs, flat, with offsets."""

    src: np.ndarray
    src_offsets: np.ndarray
    tgt: np.ndarray
    tgt_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        return np.diff(self.src_offsets), np.diff(self.tgt_offsets)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return (self.src[self.src_offsets[i]: self.src_offsets[i + 1]],
                self.tgt[self.tgt_offsets[i]: self.tgt_offsets[i + 1]])


def load_shards(paths: list[Path]) -> ParallelData:
    parts = []
    for p in paths:
        try:
            with np.load(p) as z:
                parts.append({k: z[k] for k in ("src", "src_offsets", "tgt", "tgt_offsets")})
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise DataError(f"{p}: cannot read encoded shard ({e}); rerun preprocess.py") from None
    fields = {}
    for side in ("src", "tgt"):
        fields[side] = np.concatenate([q[side] for q in parts])
        offs, base = [np.zeros(1, dtype=np.int64)], 0
        for q in parts:
            offs.append(q[f"{side}_offsets"][1:] + base)
            base += int(q[f"{side}_offsets"][-1])
        fields[f"{side}_offsets"] = np.concatenate(offs)
    return ParallelData(**fields)


def preprocessed_dir(data_dir: Path) -> Path:
    return Path(data_dir) / PREPROCESSED


def load_manifest(data_dir: Path) -> dict:
    path = preprocessed_dir(data_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} is missing: run `python3 preprocess.py {data_dir} --config <preset>` first "
                        "(run_and_time.sh does this when needed)")
    return json.loads(path.read_text())


def load_encoded(data_dir: Path, split: str) -> ParallelData:
    """split: 'train' (all shards) or 'dev'."""
    manifest = load_manifest(data_dir)
    names = manifest["train_shards"] if split == "train" else [manifest["dev_shard"]]
    return load_shards([preprocessed_dir(data_dir) / n for n in names])


# ---------------------------------------------------------------------------------------------------
# Token-bucketed batches


def bucket_upper_bounds(max_length: int = 256, min_boundary: int = 8, scale: float = 1.1) -> list[int]:
    """Exclusive upper bounds of the length buckets (utils/dataset.py _create_min_max_boundaries)."""
    bounds, x = [], min_boundary
    while x < max_length:
        bounds.append(x)
        x = max(x + 1, int(x * scale))
    return bounds + [max_length + 1]


def make_batches(src_len: np.ndarray, tgt_len: np.ndarray, max_tokens: int, max_length: int,
                 rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """One epoch of batches (arrays of pair indices) in random order, and the number of over-long pairs.

    A pair goes to the bucket whose [lower, upper) range holds max(src, tgt) length; a bucket with upper
    bound b is cut into batches of max_tokens // b pairs after shuffling its members.
    """
    length = np.maximum(src_len, tgt_len)
    keep = length <= max_length
    bounds = np.array(bucket_upper_bounds(max_length))
    bucket = np.searchsorted(bounds, length, side="right")  # first bound > length
    batches = []
    for b, upper in enumerate(bounds):
        members = np.flatnonzero(keep & (bucket == b))
        if len(members) == 0:
            continue
        members = rng.permutation(members)
        size = max(1, max_tokens // int(upper))
        batches.extend(members[i: i + size] for i in range(0, len(members), size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order], int((~keep).sum())


def collate(data: ParallelData, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad sources and targets separately to the batch maxima: (src [B, S], tgt [B, T]), int64, pad 0."""
    pairs = [data.pair(int(i)) for i in idx]
    src = torch.zeros(len(pairs), max(len(s) for s, _ in pairs), dtype=torch.long)
    tgt = torch.zeros(len(pairs), max(len(t) for _, t in pairs), dtype=torch.long)
    for row, (s, t) in enumerate(pairs):
        src[row, : len(s)] = torch.from_numpy(s.astype(np.int64))
        tgt[row, : len(t)] = torch.from_numpy(t.astype(np.int64))
    return src, tgt


def epoch_batches(data: ParallelData, max_tokens: int, max_length: int, seed: int, epoch: int,
                  rank: int = 0, world_size: int = 1) -> tuple[list[np.ndarray], int]:
    """This rank's batches of one epoch; every rank gets the same number (DDP steps in lockstep).

    The order depends only on (seed, epoch), so a resumed run sees the batches the original would have.
    """
    rng = np.random.default_rng([seed, epoch])
    batches, too_long = make_batches(*data.lengths(), max_tokens, max_length, rng)
    per_rank = len(batches) // world_size
    return batches[rank: per_rank * world_size: world_size], too_long
