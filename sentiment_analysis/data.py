"""IMDB as the 2018 reference read it: straight from aclImdb_v1.tar.gz, Paddle's tokeniser and
vocabulary, then length-bucketed padded batches.

    train, test, vocab = load_imdb(Path("data/aclImdb_v1.tar.gz"), cutoff=150)
    for chunk in bucket_by_length(batch_indices, train.length_list, max_tokens=16384):
        ids, lengths, labels = train.pad(chunk)          # [b, L] int64, [b], [b]
    plan = DevicePlan.build([chunks_of_step_0, ...], train.length_list, device)  # one copy
    for idx, max_len in plan.chunks(step):               # device slices: no copy per step
        ids, lengths, labels = train.pad(idx, max_len)

Semantics (paddle.dataset.imdb, PaddlePaddle/Paddle python/paddle/dataset/imdb.py):
- a review file's bytes: strip trailing \\n/\\r, delete ASCII punctuation, ASCII lower-case, split
  on whitespace; non-ASCII bytes are kept (`<br />` -> `br`, `don't` -> `dont`);
- vocabulary: words seen more than `cutoff` times in train AND test (pos+neg), sorted by
  descending count then bytewise; ids 0..N-1; `<unk>` = N;
- labels pos = 0, neg = 1; order: all pos reviews then all neg, each in tar member order.
The archive is streamed, never extracted, so no member can be written outside DATA_DIR.
"""

import collections
import gzip
import re
import string
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TARBALL = "aclImdb_v1.tar.gz"
LABELS = {"pos": 0, "neg": 1}            # paddle imdb.py: reader_creator(pos_pattern, neg_pattern)
RATINGS = {"pos": range(7, 11), "neg": range(1, 5)}   # aclImdb README: pos >= 7, neg <= 4
# Paddle's pattern ("aclImdb/((train)|(test))/((pos)|(neg))/.*\.txt$"), with groups we can read.
REVIEW_RE = re.compile(r"aclImdb/(train|test)/(pos|neg)/.*\.txt$")
FILE_RE = re.compile(r"\d+_(\d+)\.txt")
_PUNCT = string.punctuation.encode()


class DataError(Exception):
    """Bad or missing input data; the message names the file and the problem."""


def tokenize(raw: bytes) -> list[bytes]:
    """One review file's bytes -> tokens, exactly as paddle.dataset.imdb.tokenize."""
    return raw.rstrip(b"\n\r").translate(None, _PUNCT).lower().split()


def build_vocab(docs, cutoff: int) -> dict[bytes, int]:
    """Words seen more than `cutoff` times, by descending count then bytewise. `<unk>` is not in
    the dict: its id is len(vocab) (unk_id)."""
    counts = collections.Counter()
    for doc in docs:
        counts.update(doc)
    kept = sorted((w for w, c in counts.items() if c > cutoff), key=lambda w: (-counts[w], w))
    return {w: i for i, w in enumerate(kept)}


def unk_id(vocab: dict[bytes, int]) -> int:
    return len(vocab)


def read_reviews(path: Path) -> dict[tuple[str, str], list[list[bytes]]]:
    """Tokenised reviews of the archive, keyed by (split, "pos"/"neg"), each list in tar member
    order. Raises DataError naming the archive (and member) when anything is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found; run download_dataset.sh (or make_tiny_dataset.py) "
                        "for this DATA_DIR")
    out = {(s, lab): [] for s in ("train", "test") for lab in LABELS}
    try:
        # Streamed ("r|gz") in member order, as Paddle's reader walked it with tarf.next().
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                m = REVIEW_RE.match(member.name)
                if m is None:
                    continue
                split, label = m.groups()
                where = f"{path}: member {member.name}"
                if not member.isfile():
                    raise DataError(f"{where}: not a regular file")
                fm = FILE_RE.fullmatch(member.name.rsplit("/", 1)[1])
                if fm is None or int(fm.group(1)) not in RATINGS[label]:
                    raise DataError(f"{where}: not a <id>_<rating>.txt name with a {label} rating "
                                    f"({RATINGS[label].start}-{RATINGS[label].stop - 1})")
                raw = tar.extractfile(member).read()
                if b"\0" in raw:
                    raise DataError(f"{where}: not a text file (contains NUL bytes)")
                tokens = tokenize(raw)
                if not tokens:
                    raise DataError(f"{where}: empty review")
                out[split, label].append(tokens)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        raise DataError(f"{path}: truncated or corrupt archive ({type(e).__name__}: {e}); "
                        "download it again") from e
    for (split, label), docs in out.items():
        if not docs:
            raise DataError(f"{path}: no reviews under aclImdb/{split}/{label}/")
    return out


@dataclass
class Split:
    """Encoded reviews of one split: review i is tokens[offsets[i]:offsets[i] + lengths[i]]."""
    tokens: torch.Tensor    # [total tokens] int64
    offsets: torch.Tensor   # [N] int64
    lengths: torch.Tensor   # [N] int64
    labels: torch.Tensor    # [N] int64, pos = 0, neg = 1

    def __post_init__(self):
        self.length_list = self.lengths.tolist()    # host copy: no device sync to size a batch

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "Split":
        """The same split with its tensors on `device` (the whole of IMDB is ~100 MB of ids),
        so batches are gathered and padded there."""
        return Split(*(t.to(device) for t in (self.tokens, self.offsets, self.lengths,
                                               self.labels)))

    def pad(self, indices, max_len: int | None = None, pad_id: int = 0):
        """Reviews `indices` -> (ids [b, L], lengths [b], labels [b]) on this split's device,
        L = the longest of them. `indices` is a list, or (the training and eval loops, with no
        host-to-device copy) an int64 tensor already on the device together with `max_len`, the
        longest of their lengths known on the host (DevicePlan). The pad id is arbitrary: the
        models mask pad positions."""
        device = self.tokens.device
        if torch.is_tensor(indices):
            if max_len is None:
                raise ValueError("pad(tensor) needs max_len (the host knows the lengths)")
            idx, L = indices, max_len
        else:
            idx = torch.as_tensor(indices, dtype=torch.int64, device=device)
            L = max(self.length_list[i] for i in indices)
        lengths = self.lengths[idx]
        pos = torch.arange(L, device=device)[None, :]
        valid = pos < lengths[:, None]                                     # [b, L]
        gather = (self.offsets[idx][:, None] + pos).clamp_(max=len(self.tokens) - 1)
        ids = torch.where(valid, self.tokens[gather], pad_id)
        return ids, lengths, self.labels[idx]


def encode(docs_by_label: list[tuple[int, list[list[bytes]]]], vocab) -> Split:
    unk = unk_id(vocab)
    get = vocab.get
    encoded, labels = [], []
    for label, docs in docs_by_label:
        for doc in docs:
            encoded.append(np.fromiter((get(w, unk) for w in doc), dtype=np.int64, count=len(doc)))
            labels.append(label)
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    offsets = torch.cumsum(lengths, 0) - lengths
    return Split(torch.from_numpy(np.concatenate(encoded)), offsets, lengths,
                 torch.tensor(labels, dtype=torch.int64))


def load_imdb(path: Path, cutoff: int, expected_vocab_size: int | None = None):
    """-> (train Split, test Split, vocab). expected_vocab_size counts `<unk>` (5,147 on the
    real archive); a mismatch means the archive is not the official one."""
    reviews = read_reviews(path)
    vocab = build_vocab((doc for docs in reviews.values() for doc in docs), cutoff)
    if expected_vocab_size is not None and len(vocab) + 1 != expected_vocab_size:
        raise DataError(f"{path}: vocabulary of {len(vocab) + 1} ids (incl. <unk>), expected "
                        f"{expected_vocab_size}; is this the official aclImdb_v1.tar.gz?")
    train, test = (encode([(LABELS[lab], reviews[split, lab]) for lab in ("pos", "neg")], vocab)
                   for split in ("train", "test"))
    return train, test, vocab


def bucket_by_length(indices, lengths, max_tokens: int) -> list[list[int]]:
    """Split review `indices` (lengths[i] = tokens of review i, a list such as
    Split.length_list) into chunks of similar length: sorted longest first, a chunk grows while
    (reviews in it) x (its longest review) <= max_tokens; a longer review gets a chunk alone.
    Running a batch as these chunks gives the same logits as one padded batch, with less padding."""
    order = sorted(indices, key=lambda i: -int(lengths[i]))
    chunks, cur, cur_len = [], [], 0
    for i in order:
        if cur and (len(cur) + 1) * cur_len > max_tokens:
            chunks.append(cur)
            cur = []
        if not cur:
            cur_len = int(lengths[i])
        cur.append(i)
    if cur:
        chunks.append(cur)
    return chunks


@dataclass
class DevicePlan:
    """Chunks of review indices planned on the host, their indices moved to the device in one
    copy: chunk j of step s is index[start:stop] with longest review max_len, for
    (start, stop, max_len) = steps[s][j]. Slicing a device tensor builds nothing on the host, so a
    training step makes no host-to-device copy (a copy from a Python list waits for the GPU)."""
    index: torch.Tensor                          # [all chunks' reviews] int64 on the device
    steps: list[list[tuple[int, int, int]]]      # per step, per chunk: (start, stop, max_len)

    @classmethod
    def build(cls, steps_of_chunks: list[list[list[int]]], lengths, device) -> "DevicePlan":
        """steps_of_chunks: per step, its chunks (lists of review indices, as bucket_by_length
        makes them); lengths[i] = tokens of review i (Split.length_list)."""
        flat, steps = [], []
        for chunks in steps_of_chunks:
            slices = []
            for chunk in chunks:
                slices.append((len(flat), len(flat) + len(chunk),
                               max(int(lengths[i]) for i in chunk)))
                flat.extend(chunk)
            steps.append(slices)
        index = torch.tensor(flat, dtype=torch.int64)
        device = torch.device(device)
        if device.type == "cuda":                # pinned: the copy runs asynchronously
            index = index.pin_memory()
        return cls(index.to(device, non_blocking=True), steps)

    def chunks(self, step: int):
        """-> [(indices [b] int64 on the device, max_len)] of one step."""
        return [(self.index[a:b], L) for a, b, L in self.steps[step]]
