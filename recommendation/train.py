#!/usr/bin/env python3
"""Train NeuMF on MovieLens ml-20m until HR@10 reaches the target (MLPerf Training v0.5 NCF reference).

    ./convert.py ./data && ./train.py --data-dir ./data             # one process, a GPU if there is one
    ./train.py --data-dir ./data --config large_batch                # NVIDIA's v0.5 recipe, batch 1,048,576
    torchrun --nproc_per_node 8 train.py --data-dir ./data          # 8 GPUs, same global batch (2048)
    ./make_tiny_dataset.py /tmp/tiny && ./convert.py /tmp/tiny && \
        ./train.py --data-dir /tmp/tiny --config tiny --device cpu  # tiny run, well under a minute

run_and_time.sh wraps these. What is timed (RUN_START to RUN_STOP), as the v0.5 rules ask: loading the
converted data, drawing the evaluation negatives (random preprocessing), every evaluation (the one before
training too, as the reference did) and all training. The per-epoch checkpoint is written by a background
thread (the loop only copies the state to host memory), and the last one, if still due, after RUN_STOP.
Before RUN_START, and not timed: download, extraction and convert.py (CSV parsing, filtering, id remap,
timestamp sort, leave-one-out split: all deterministic).
Under torchrun the embeddings are kept out of DDP: each rank gathers the rows the others looked up (see
optim.py), for the reference's dense Adam or, with --lazy-adam, lazy Adam.
Evaluations run in fp32 even with --amp: the positive loses ties (metrics.py), and half precision makes ties.
Writes OUTPUT_DIR/mlperf.log (:::MLLOG lines, also on stdout), summary.json and checkpoint.pt; progress
goes to stderr. Exit status 0 when the target was reached.
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import threading
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mlperf_logging import mllog
from mlperf_logging.mllog import constants

import data
import metrics
import optim
from config import PRESETS
from model import NeuMF, autocast_dtype

BENCHMARK = "recommendation"
HERE = os.path.dirname(os.path.abspath(__file__))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds ml-20m-converted.npz from convert.py (default: $DATA_DIR or ./data)")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="mlperf.log, summary.json, checkpoint.pt (default: $OUTPUT_DIR or ./output)")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference", help="hyperparameter preset")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: drawn at random, shared by all ranks)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast, or fp16 + loss scaling before Ampere (default: on CUDA)")
    p.add_argument("--lazy-adam", action=argparse.BooleanOptionalAction, default=None,
                   help="lazy Adam for the embeddings (only the looked-up rows move); default: the preset's "
                        "(off: dense Adam, as the reference)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training model")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's maximum epoch count")
    p.add_argument("--target", type=float, default=None, help="override the preset's HR@10 quality target")
    return p


def rotate_log(path: str) -> None:
    """Keep one run per file: mlperf.log -> mlperf.log.1 (older ones shift to .2, .3, ...)."""
    if not os.path.exists(path):
        return
    n = 1
    while os.path.exists(f"{path}.{n}"):
        n += 1
    for i in range(n - 1, 0, -1):
        os.replace(f"{path}.{i}", f"{path}.{i + 1}")
    os.replace(path, f"{path}.1")


def make_mllog_logger(output_dir: str, rank: int) -> logging.Logger:
    """Rank 0 logs to stdout and OUTPUT_DIR/mlperf.log; other ranks get a logger that drops INFO."""
    # A fresh logger (and name: mllog.config insists) per run, as main() may run many times in one process.
    logger = logging.Logger(f"{BENCHMARK}.mllog.{time.monotonic_ns()}")
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    if rank == 0:
        path = os.path.join(output_dir, "mlperf.log")
        rotate_log(path)
        logger.addHandler(logging.StreamHandler(sys.stdout))
        logger.addHandler(logging.FileHandler(path))
    return logger


def save_checkpoint(path: str, state: dict) -> None:
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint intact


def to_host(obj):
    """A copy of a (nested) state dict in host memory. CUDA tensors are copied without waiting: the
    destination is pinned memory and the copy is queued on the current stream (the next kernels that
    change the weights run after it); the caller waits on an event before reading."""
    if isinstance(obj, torch.Tensor):
        return obj.to("cpu", non_blocking=True) if obj.is_cuda else obj.clone()
    if isinstance(obj, dict):
        return {k: to_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoint.pt in a background thread, so the timed loop does not wait for the disk.

    save() takes a host copy of the state (on CUDA: queued on the stream, ~380 MB at reference size) and
    hands it to a thread, which waits for the copy and writes it atomically (temp file, then rename): a
    killed run leaves the last complete checkpoint. One write at a time: an epoch that ends while the
    previous checkpoint is still being written skips its own, and close() (after RUN_STOP) waits for the
    thread and writes the final state if its checkpoint was skipped.
    """

    def __init__(self, path: str):
        self.path, self.thread, self.saved_epoch = path, None, None

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def save(self, state: dict, epoch: int) -> bool:
        if self.busy():
            return False
        host = to_host(state)
        copied = torch.cuda.Event() if any(t.is_cuda for t in state["model"].values()) else None
        if copied is not None:
            copied.record()

        def write():
            if copied is not None:
                copied.synchronize()
            save_checkpoint(self.path, host)

        self.thread = threading.Thread(target=write, name="checkpoint-writer", daemon=True)
        self.thread.start()
        self.saved_epoch = epoch
        return True

    def close(self, state: dict | None = None, epoch: int | None = None) -> None:
        if self.thread is not None:
            self.thread.join()
        if state is not None and epoch != self.saved_epoch:
            save_checkpoint(self.path, state)
            self.saved_epoch = epoch


def train_one_epoch(model, optimizers, scaler, users, items, labels, batch_size: int,
                    autocast: torch.dtype | None, log_every: int = 0, log_prefix: str = "",
                    global_batch_size: int = 0, exchange=None):
    """One pass over this rank's samples in order (they come shuffled) -> (sum of batch losses, steps).

    exchange(), when given, runs between backward and the optimizer steps (the embeddings' rows over ranks).
    The loss is read back only every log_every steps (0: never) for a progress line, to avoid a sync per step.
    """
    steps = math.ceil(len(users) / batch_size)
    loss_sum = torch.zeros((), dtype=torch.float64, device=users.device)
    tic = time.time()
    for step in range(steps):
        batch = slice(step * batch_size, (step + 1) * batch_size)
        with torch.autocast(users.device.type, dtype=autocast, enabled=autocast is not None):
            logits = model(users[batch], items[batch])
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels[batch])  # mean over the batch
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if exchange is not None:
            exchange()
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach()
        if log_every and (step + 1) % log_every == 0:
            rate = (step + 1) * global_batch_size / (time.time() - tic)
            print(f"{log_prefix} step {step + 1}/{steps} loss {loss.item():.4f} {rate:,.0f} samples/s, "
                  f"ETA {(steps - step - 1) * global_batch_size / rate:.0f} s", file=sys.stderr, flush=True)
    return loss_sum, steps


@torch.no_grad()
def check_replicas(embeddings) -> None:
    """Every rank holds its own copy of the embedding tables, updated from the same gathered rows: stop if
    the copies differ (a checksum per table, compared over ranks once per evaluation)."""
    sums = torch.stack([e.weight.sum(dtype=torch.float64) for e in embeddings])  # [4]
    low, high = sums.clone(), sums.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError(f"the ranks' embedding tables differ (checksums from {low.tolist()} to "
                           f"{high.tolist()}): the gradient exchange is broken")


@torch.no_grad()
def evaluate(model, items, counted, positive_column, users: range, topk: int, pairs_per_batch: int):
    """Sums of HR@topk and NDCG@topk over `users` -> float64 tensor [2] (fp32 scores, see metrics.py)."""
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=items.device)
    rows = max(1, pairs_per_batch // items.shape[1])
    for lo in range(users.start, users.stop, rows):
        hi = min(lo + rows, users.stop)
        cand = items[lo:hi]  # [b, N+1]
        user = torch.arange(lo, hi, device=items.device)[:, None].expand_as(cand)
        scores = torch.sigmoid(model(user.reshape(-1), cand.reshape(-1)).float()).view(cand.shape)
        rank = metrics.positive_rank(scores, counted[lo:hi], positive_column[lo:hi])
        hit, ndcg = metrics.hit_and_ndcg(rank, topk)
        sums += torch.stack((hit.sum(), ndcg.sum()))
    model.train()
    return sums


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = PRESETS[args.config]
    cfg = dataclasses.replace(cfg, **{k: v for k, v in (("max_epochs", args.max_epochs),
                                                        ("quality_target", args.target)) if v is not None})

    # Distributed: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; a plain `python train.py` is one process.
    # torchrun (even with one process, as `make gpu-check` runs it) means DDP and collectives.
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if distributed else 1
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if distributed else (device.index or 0))
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.global_batch_size % world_size:
        raise SystemExit(f"global batch {cfg.global_batch_size} is not divisible by {world_size} ranks")
    local_batch = cfg.global_batch_size // world_size
    os.makedirs(args.output_dir, exist_ok=True)

    mllog.config(logger=make_mllog_logger(args.output_dir, rank), root_dir=HERE)
    mllogger = mllog.get_mllogger()
    try:
        return train(args, cfg, mllogger, device, rank, world_size, local_batch)
    except data.DataError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    finally:
        for handler in mllogger.logger.handlers:
            handler.close()
        if distributed:
            dist.destroy_process_group()


def train(args, cfg, mllogger, device, rank, world_size, local_batch) -> int:
    distributed = dist.is_initialized()  # under torchrun, even with one process
    def progress(msg: str, all_ranks: bool = False):
        if rank == 0 or all_ranks:
            print(f"[rank {rank}] {msg}" if distributed else msg, file=sys.stderr, flush=True)

    # This code does not drop the OS page cache (that needs root on the host), so say so honestly.
    mllogger.event(key=constants.CACHE_CLEAR, value=False)
    mllogger.start(key=constants.INIT_START)

    if not cfg.tiny_data and os.path.exists(os.path.join(args.data_dir, "tiny.md5")):
        raise data.DataError(f"{args.data_dir} holds tiny.md5 (synthetic data): a --config {args.config} run "
                             "on it is not a result; use --config tiny (or tiny_large_batch), or a DATA_DIR "
                             "with the real ml-20m")
    checkpoint_path = os.path.join(args.output_dir, "checkpoint.pt")
    lazy_adam = cfg.lazy_adam if args.lazy_adam is None else args.lazy_adam
    checkpoint = None
    if args.resume and os.path.exists(checkpoint_path):
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint["config"] != args.config:
            raise data.DataError(f"{checkpoint_path}: written by a --config {checkpoint['config']} run")
        if checkpoint["lazy_adam"] != lazy_adam:
            raise data.DataError(f"{checkpoint_path}: written by a run with"
                                 f"{'' if checkpoint['lazy_adam'] else 'out'} --lazy-adam")
    elif args.resume:
        progress(f"--resume: no {checkpoint_path}; starting from scratch")

    seed = args.seed
    if checkpoint is not None:
        if seed is not None and seed != checkpoint["seed"]:
            progress(f"--resume: continuing with the checkpoint's seed {checkpoint['seed']}, not {seed}")
        seed = checkpoint["seed"]
    elif seed is None:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
        if distributed:
            box = [seed]
            dist.broadcast_object_list(box, src=0)
            seed = box[0]
    torch.manual_seed(seed)
    eval_seed = cfg.eval_negatives_seed if cfg.eval_negatives_seed is not None else seed

    amp = args.amp if args.amp is not None else device.type == "cuda"
    # bf16 from Ampere on (and on CPU); fp16 with a loss scaler on Pascal/Volta/Turing.
    half = autocast_dtype(torch.cuda.get_device_capability(device) if device.type == "cuda" else None)
    autocast = half if amp else None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)

    mllogger.event(key=constants.SUBMISSION_BENCHMARK, value=constants.NCF)
    mllogger.event(key=constants.SUBMISSION_ORG, value=os.environ.get("SUBMISSION_ORG", "reference"))
    mllogger.event(key=constants.SUBMISSION_DIVISION, value=constants.CLOSED)
    mllogger.event(key=constants.SUBMISSION_STATUS, value=constants.RESEARCH)
    mllogger.event(key=constants.SUBMISSION_PLATFORM, value=f"{world_size}x{device_name}")
    mllogger.event(key=constants.SUBMISSION_POC_NAME,
                   value=os.environ.get("SUBMISSION_POC_NAME", "reference"))
    mllogger.event(key=constants.SUBMISSION_ENTRY, value=os.environ.get("SUBMISSION_ENTRY", "reference"))
    mllogger.event(key=constants.SEED, value=seed)
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=cfg.global_batch_size)
    mllogger.event(key=constants.OPT_NAME, value=constants.LAZY_ADAM if lazy_adam else constants.ADAM)
    mllogger.event(key=constants.OPT_BASE_LR, value=cfg.learning_rate)
    mllogger.event(key=constants.OPT_ADAM_BETA_1, value=cfg.adam_beta1)
    mllogger.event(key=constants.OPT_ADAM_BETA_2, value=cfg.adam_beta2)
    mllogger.event(key=constants.OPT_ADAM_EPSILON, value=cfg.adam_epsilon)
    # The v0.5 NCF keys (mlperf_compliance 0.0.x names), so a converter to the v0.5 format stays trivial.
    mllogger.event(key="preproc_hp_min_ratings", value=cfg.min_ratings)
    mllogger.event(key="preproc_hp_num_eval", value=cfg.num_eval_negatives)
    mllogger.event(key="preproc_hp_sample_eval_replacement", value=True)
    mllogger.event(key="input_hp_num_neg", value=cfg.num_train_negatives)
    mllogger.event(key="input_hp_sample_train_replacement", value=True)
    mllogger.event(key="eval_hp_num_neg", value=cfg.num_eval_negatives)
    mllogger.event(key="model_hp_mf_dim", value=cfg.mf_dim)
    mllogger.event(key="model_hp_mlp_layer_sizes", value=list(cfg.mlp_layer_sizes))
    mllogger.event(key="model_hp_loss_fn", value="binary_cross_entropy")
    mllogger.event(key="eval_target", value=cfg.quality_target)
    fixed = cfg.eval_negatives_seed is not None
    mllogger.event(key="eval_negatives_seed", value=eval_seed, metadata={
        "source": "fixed, as the reference convert.py" if fixed else "the run seed, as NVIDIA v0.5"})

    n_users, n_items = data.converted_sizes(args.data_dir)  # only the sizes: data is read after RUN_START
    # Sparse embedding gradients where rows are all that is needed: lazy Adam, and DDP, whose ranks
    # exchange the looked-up rows instead of all-reducing 127 MB of dense gradient a step (optim.py).
    sparse = lazy_adam or distributed
    raw_model = NeuMF(n_users, n_items, cfg.mf_dim, cfg.mlp_layer_sizes, sparse=sparse).to(device)
    model = optim.data_parallel(raw_model, device) if distributed else raw_model
    if args.compile:
        model = torch.compile(model)
    optimizers = optim.make_optimizers(raw_model, cfg.learning_rate, (cfg.adam_beta1, cfg.adam_beta2),
                                       cfg.adam_epsilon, lazy_adam)
    exchange = (lambda: optim.exchange_embedding_grads(raw_model.embeddings(), lazy_adam)) if distributed \
        else None
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    first_epoch, evals = 1, []
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        for optimizer, state in zip(optimizers, checkpoint["optimizers"], strict=True):
            optimizer.load_state_dict(state)
        scaler.load_state_dict(checkpoint["scaler"])
        first_epoch = checkpoint["epoch"] + 1
        evals = checkpoint["evals"]
        # A resumed run is not an MLPerf result: its clock restarts. Say so in its own log.
        mllogger.event(key="resumed", value=True, metadata={
            "from_epoch": checkpoint["epoch"], "note": "not an MLPerf result: the clock restarted"})
        progress(f"resumed from {checkpoint_path} after epoch {checkpoint['epoch']}")
        if evals and evals[-1]["value"] >= cfg.quality_target:
            progress("the checkpointed run had already reached the target; nothing to do")
            return 0
    mllogger.end(key=constants.INIT_STOP)
    if distributed:
        dist.barrier()
    mllogger.start(key=constants.RUN_START)
    run_start = time.time()

    # ---- timed from here: data to device, evaluation negatives, evaluations, training ----
    ratings = data.load_converted(args.data_dir)
    mllogger.event(key="input_step_eval_neg_gen")
    # The reference's draw, number for number, with its fixed seed; with the run seed, the same
    # distribution drawn on the device, as NVIDIA did.
    negatives = data.eval_negatives(ratings, cfg.num_eval_negatives, eval_seed, device,
                                    exact=cfg.eval_negatives_seed is not None)  # [U, N]
    items, counted, positive_column = metrics.prepare_candidates(
        negatives, torch.from_numpy(ratings.test_items).to(device))
    train_users = torch.from_numpy(ratings.train_users).to(device)
    train_items = torch.from_numpy(ratings.train_items).to(device)
    keys = train_users * n_items + train_items  # sorted: the arrays are in (user, item) order
    eval_users = range(n_users * rank // world_size, n_users * (rank + 1) // world_size)  # this rank's share
    mllogger.event(key=constants.TRAIN_SAMPLES, value=(1 + cfg.num_train_negatives) * len(train_users))
    mllogger.event(key=constants.EVAL_SAMPLES, value=n_users * (1 + cfg.num_eval_negatives))
    mllogger.event(key="eval_hp_num_users", value=n_users)

    def run_eval(epoch: int) -> float:
        mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": epoch})
        if distributed:
            check_replicas(raw_model.embeddings())
        sums = evaluate(raw_model, items, counted, positive_column, eval_users, cfg.topk, cfg.eval_batch_size)
        if distributed:
            dist.all_reduce(sums)  # every rank gets the same HR, so every rank makes the same stop decision
        hr, ndcg = (sums / n_users).tolist()
        seconds = time.time() - run_start
        mllogger.event(key=constants.EVAL_ACCURACY, value=hr, metadata={"epoch_num": epoch})
        mllogger.event(key="eval_ndcg", value=ndcg, metadata={"epoch_num": epoch})
        mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": epoch})
        evals.append({"epoch": epoch, "seconds": round(seconds, 3), "value": hr})
        progress(f"epoch {epoch} eval HR@{cfg.topk} {hr:.4f} NDCG@{cfg.topk} {ndcg:.4f} "
                 f"({seconds:.1f} s since run start)", all_ranks=True)
        return hr

    def checkpoint_state(epoch: int) -> dict:
        return {"model": raw_model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "scaler": scaler.state_dict(), "epoch": epoch, "evals": [dict(e) for e in evals],
                "seed": seed, "config": args.config, "lazy_adam": lazy_adam}

    writer = CheckpointWriter(checkpoint_path) if rank == 0 else None
    due = None  # an evaluated epoch whose checkpoint was skipped (the previous write was still running)
    status = constants.ABORTED
    if checkpoint is None:
        run_eval(0)  # before training, as the reference did; not an epoch
    epoch = first_epoch - 1
    for epoch in range(first_epoch, cfg.max_epochs + 1):
        mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": epoch})
        mllogger.event(key="input_step_train_neg_gen", metadata={"epoch_num": epoch})
        users, items_e, labels = data.epoch_samples(train_users, train_items, keys, n_items,
                                                    cfg.num_train_negatives, seed, epoch, rank, world_size)
        tic = time.time()
        loss_sum, steps = train_one_epoch(model, optimizers, scaler, users, items_e, labels, local_batch,
                                          autocast, cfg.log_every if rank == 0 else 0, f"epoch {epoch}",
                                          cfg.global_batch_size, exchange)
        if distributed:
            dist.all_reduce(loss_sum)
        mean_loss = loss_sum.item() / (steps * world_size)
        mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": epoch})
        rate = len(users) * world_size / (time.time() - tic)
        progress(f"epoch {epoch} done: loss {mean_loss:.4f}, {rate:,.0f} samples/s")
        if not math.isfinite(mean_loss):
            progress(f"epoch {epoch}: non-finite loss, stopping")
            due = None  # the weights have moved on since the last evaluated epoch: nothing more to save
            break
        hr = run_eval(epoch)
        if writer is not None:
            due = None if writer.save(checkpoint_state(epoch), epoch) else epoch
            if due is not None:
                progress(f"epoch {epoch}: the previous checkpoint is still being written; skipping this one")
        if hr >= cfg.quality_target:
            status = constants.SUCCESS
            break

    if distributed:
        dist.barrier()
    mllogger.end(key=constants.RUN_STOP, metadata={"status": status})
    seconds = time.time() - run_start
    if writer is not None:  # off the clock: wait for the last write; write the last epoch's if it was skipped
        writer.close(checkpoint_state(due) if due is not None else None, due)
    success = status == constants.SUCCESS
    progress(f"{'reached' if success else 'did not reach'} HR@{cfg.topk} {cfg.quality_target} after epoch "
             f"{epoch} in {seconds:.1f} s (RUN_START to RUN_STOP)")
    if rank == 0:
        summary = {"benchmark": BENCHMARK, "metric": f"HR@{cfg.topk}", "higher_is_better": True,
                   "target": cfg.quality_target, "reached": evals[-1]["value"] if evals else None,
                   "success": success, "epochs": epoch, "seconds": round(seconds, 3), "seed": seed,
                   "world_size": world_size, "resumed": checkpoint is not None, "evals": evals}
        with open(os.path.join(args.output_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    # Every rank waits here for rank 0's summary.json: when one process exits non-zero (target missed),
    # torchrun stops the others at once and could kill rank 0 before it has written it.
    if distributed:
        dist.barrier()
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
