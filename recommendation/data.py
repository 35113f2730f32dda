"""The converted ml-20m dataset on disk, and the random parts of the input pipeline (timed, after RUN_START).

On disk (written by convert.py, read here): DATA_DIR/ml-20m-converted.npz with
    train_users, train_items  int64 [P]   training positives, sorted by (user, item)
    test_items                int64 [U]   the held-out (latest) item of user u at index u
    user_ids, item_ids        int64       original userId / movieId of each contiguous id
    source_size, source_mtime_ns          ratings.csv's stat when converted (a stale file is refused)

Random parts, as the reference draws them:
  - eval_negatives: per user, in user-id order, `np.random.choice(sorted(items not rated in training), n)`
    after `np.random.seed(0)` (convert.py @ c097c799), bit-identical, computed without the per-user set;
    or the same distribution drawn on the device with torch's generator (exact=False), as NVIDIA did.
  - epoch_samples: (1 + num_neg) samples per training positive each epoch, negatives drawn uniformly over all
    items with rejection of the user's training positives (dataset.py @ c097c799), for whole epochs at once
    in torch on the training device, shuffled, and split over ranks like DistributedSampler.
"""

import dataclasses
import os

import numpy as np
import torch

CONVERTED_NAME = "ml-20m-converted.npz"
RATINGS_CSV = os.path.join("ml-20m", "ratings.csv")


class DataError(Exception):
    """Bad or missing input data; the message names the file and the problem."""


@dataclasses.dataclass
class Ratings:
    train_users: np.ndarray
    train_items: np.ndarray
    test_items: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def save_converted(path: str, ratings: Ratings, source: os.stat_result) -> None:
    """Write atomically (temp file, then rename) so an interrupted conversion never leaves a partial file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        np.savez(f, **dataclasses.asdict(ratings),
                 source_size=source.st_size, source_mtime_ns=source.st_mtime_ns)
    os.replace(tmp, path)


def is_fresh(path: str, source: os.stat_result) -> bool:
    """True when `path` was converted from a ratings.csv of this size and modification time."""
    if not os.path.exists(path):
        return False
    with np.load(path) as z:
        return int(z["source_size"]) == source.st_size and int(z["source_mtime_ns"]) == source.st_mtime_ns


def converted_path(data_dir: str) -> str:
    path = os.path.join(data_dir, CONVERTED_NAME)
    if not os.path.exists(path):
        raise DataError(f"{path}: missing; run ./convert.py {data_dir} first (run_and_time.sh does)")
    return path


def converted_sizes(data_dir: str) -> tuple[int, int]:
    """(users, items) of the converted dataset, reading only its two small id arrays."""
    with np.load(converted_path(data_dir)) as z:
        return len(z["user_ids"]), len(z["item_ids"])


def load_converted(data_dir: str) -> Ratings:
    path = converted_path(data_dir)
    csv = os.path.join(data_dir, RATINGS_CSV)
    if os.path.exists(csv) and not is_fresh(path, os.stat(csv)):
        raise DataError(f"{path}: older than {csv}; run ./convert.py {data_dir} again")
    with np.load(path) as z:
        return Ratings(**{f.name: z[f.name] for f in dataclasses.fields(Ratings)})


def user_offsets(ratings: Ratings) -> np.ndarray:
    """[U + 1] start of each user's rows in the (user, item)-sorted training arrays."""
    return np.searchsorted(ratings.train_users, np.arange(ratings.n_users + 1))


def eval_negatives(ratings: Ratings, num: int, seed: int, device: torch.device | str = "cpu",
                   users_per_chunk: int = 16384, exact: bool = True) -> torch.Tensor:
    """[U, num] int64 on `device`: per user, `num` evaluation negatives drawn with replacement, uniformly
    over the items it has not rated in training (its test item stays eligible), as the reference drew them.

    exact=True draws the reference's very numbers: per user u in id order, np.random.choice(all_negs_u, num)
    with all_negs_u the sorted items u has not rated in training, after np.random.seed(seed) (convert.py @
    c097c799). That is all_negs_u[randint(0, len, num)] on the legacy RandomState stream, one call per user:
    a sequential CPU loop (~4 s for ml-20m's 138M draws on this 2-core machine). exact=False draws the same
    distribution with torch's generator on `device`, all users at once (NVIDIA's v0.5 code drew them on the
    GPU, seeded by the run seed).
    The k-th unrated item is found without building the list: with S the user's sorted training items,
    all_negs_u[k] = k + #{j : S[j] - j <= k}, one searchsorted on the device.
    """
    start = user_offsets(ratings)
    n_unrated = ratings.n_items - np.diff(start)
    if (n_unrated <= 0).any():
        u = int(np.argmax(n_unrated <= 0))
        raise DataError(f"user {u} rated every item: no evaluation negatives can be drawn")
    if exact:
        rs = np.random.RandomState(seed)
        k_all = np.empty((ratings.n_users, num), dtype=np.int32)
        for u in range(ratings.n_users):  # one draw per user, in id order: the reference's stream
            k_all[u] = rs.randint(0, n_unrated[u], num)
    else:
        g = torch.Generator(device=device)
        g.manual_seed(derived_seed(seed, 0x65766E))  # a stream of its own, apart from the epochs' draws
        n_unrated_t = torch.from_numpy(n_unrated).to(device)

    # S[j] - j within each user, made globally sorted by an offset of user * (n_items + 1).
    stride = ratings.n_items + 1
    start_t = torch.from_numpy(start).to(device)
    users = torch.from_numpy(ratings.train_users).to(device)
    rank_in_user = torch.arange(len(users), device=device) - start_t[users]
    key = users * stride + torch.from_numpy(ratings.train_items).to(device) - rank_in_user
    out = torch.empty((ratings.n_users, num), dtype=torch.int64, device=device)
    for lo in range(0, ratings.n_users, users_per_chunk):
        hi = min(lo + users_per_chunk, ratings.n_users)
        if exact:
            k = torch.from_numpy(k_all[lo:hi]).to(device).long()
        else:  # uniform in [0, n_unrated): 62 random bits modulo n (bias below 1e-13)
            k = torch.randint(1 << 62, (hi - lo, num), generator=g, device=device) % n_unrated_t[lo:hi, None]
        query = torch.arange(lo, hi, device=device)[:, None] * stride + k
        out[lo:hi] = k + torch.searchsorted(key, query, right=True) - start_t[lo:hi, None]
    return out


def derived_seed(*values: int) -> int:
    """One 63-bit seed from several integers (run seed, epoch, rank), independent streams for each tuple."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0] >> 1)


def is_train_positive(users: torch.Tensor, items: torch.Tensor, keys: torch.Tensor,
                      n_items: int) -> torch.Tensor:
    """Membership of (user, item) in the training positives; keys = sorted user * n_items + item."""
    query = users * n_items + items
    pos = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
    return keys[pos] == query


def sample_negatives(users: torch.Tensor, keys: torch.Tensor, n_items: int,
                     generator: torch.Generator) -> torch.Tensor:
    """For each user, an item drawn uniformly from all items, redrawn while it is a training positive."""
    items = torch.randint(n_items, users.shape, generator=generator, device=users.device)
    todo = torch.nonzero(is_train_positive(users, items, keys, n_items)).squeeze(1)
    while len(todo):
        redraw = torch.randint(n_items, todo.shape, generator=generator, device=users.device)
        items[todo] = redraw
        todo = todo[is_train_positive(users[todo], redraw, keys, n_items)]
    return items


def epoch_samples(train_users: torch.Tensor, train_items: torch.Tensor, keys: torch.Tensor, n_items: int,
                  num_neg: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1):
    """This rank's shuffled (users, items, labels) for one epoch.

    Sample index s in [0, (1 + num_neg) * P) is positive s // (1 + num_neg) when s % (1 + num_neg) == 0 and
    otherwise a fresh negative for that positive's user (the reference's CFTrainDataset). The permutation is
    the same on every rank (seeded by seed and epoch); rank r takes every world_size-th index from r on, after
    dropping the remainder so that every rank has the same count (as DistributedSampler, without padding).
    Negatives are drawn only for this rank's share, from a stream seeded by (seed, epoch, rank).
    """
    device = train_users.device
    n = (1 + num_neg) * len(train_users)
    g = torch.Generator(device=device)
    g.manual_seed(derived_seed(seed, epoch))
    perm = torch.randperm(n, generator=g, device=device)
    index = perm[rank:(n // world_size) * world_size:world_size]
    positive = torch.div(index, 1 + num_neg, rounding_mode="floor")
    labels = (index % (1 + num_neg) == 0)
    users = train_users[positive]
    items = train_items[positive]
    negative = torch.nonzero(~labels).squeeze(1)
    g.manual_seed(derived_seed(seed, epoch, rank, 1))
    items[negative] = sample_negatives(users[negative], keys, n_items, g)
    return users, items, labels.float()
