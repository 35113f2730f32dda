#!/usr/bin/env python3
"""Train ResNet-50 v1.5 on ImageNet until top-1 reaches the target (MLPerf Training v0.5 reference).

    ./extract.py ./data && ./train.py --data-dir ./data            # one process, a GPU if there is one
    torchrun --nproc_per_node 8 train.py --data-dir ./data         # 8 GPUs, same global batch (256)
    ./make_tiny_dataset.py /tmp/tiny && ./extract.py /tmp/tiny && \
        ./train.py --data-dir /tmp/tiny --config tiny --device cpu # tiny run, well under a minute

run_and_time.sh wraps these. What is timed (RUN_START to RUN_STOP), as in the reference: listing the images,
every epoch's input pipeline (decode, random crop, flip, resize) and training step, the evaluations on the
whole validation set every 4 epochs, and the per-epoch checkpoints. Before RUN_START, and not timed:
download and extract.py (the tar extraction and the val reorganisation, like the reference's TFRecord
conversion). SGD with momentum, weight decay on all but BN parameters, linear warmup then x0.1 steps (per
step), mean-subtracted inputs, no label smoothing: spec sections 1-3 and config.py (`--config reference_lars`:
the LARS variant, below).
Writes OUTPUT_DIR/mlperf.log (:::MLLOG lines, also on stdout), summary.json and checkpoint.pt; progress goes
to stderr. Exit status 0 when the target was reached.
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mlperf_logging import mllog
from mlperf_logging.mllog import constants
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import data
from config import PRESETS
from model import param_groups, resnet50

BENCHMARK = "image_classification"
HERE = os.path.dirname(os.path.abspath(__file__))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds train/<wnid>/ and val/<wnid>/ from extract.py (default: $DATA_DIR or ./data)")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="mlperf.log, summary.json, checkpoint.pt (default: $OUTPUT_DIR or ./output)")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference", help="hyperparameter preset")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: drawn at random, shared by all ranks)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast, or fp16 + loss scaling before Ampere (default: on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training model")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's maximum epoch count")
    p.add_argument("--target", type=float, default=None,
                   help="override the preset's top-1 target (0.749 in v0.5; 0.759 from v0.6)")
    p.add_argument("--global-batch-size", type=int, default=None,
                   help="override the preset's global batch; the learning rate scales linearly with it")
    p.add_argument("--workers", type=int, default=None, help="loader processes per training process")
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


# ---- optimizers and learning-rate schedules ----
# SGD (resnet_run_loop.py @ v0.5): MomentumOptimizer (= torch.optim.SGD, no Nesterov, no dampening) on the
# loss plus wd * sum(w^2) / 2 over all variables but BN's, i.e. weight_decay=wd on those tensors and 0 on BN;
# lr = base * step / warmup_steps during warmup, then base x factor^(number of boundaries passed).
#
# LARS (resnet_run_loop.py @ tag v0.5, commit 7d000a2a, added after the round; allowed from v0.6 on):
# tf.contrib.opt.LARSOptimizer with momentum 0.9, eta 0.001, epsilon 0, weight_decay = wd and skip_list
# ["batch_normalization", "bias"], on the same loss (which still carries the L2 term, so kernels see the decay
# twice: in the gradient and inside LARS, as in that code). For a tensor w not skipped, with g its gradient:
#     trust = eta * |w| / (|g| + wd * |w| + epsilon)  (1 when |w| or |g| is 0);  g' = g + wd * w
#     v = momentum * v + lr * trust * g';  w = w - v
# Skipped tensors (BN, the dense bias) get v = momentum * v + lr * g; w = w - v. Schedule (poly_rate_fn):
# linear warmup from 0 to the peak rate "plr" over w_epochs, then TF polynomial_decay with power 2 to 1e-4
# over 90 epochs (config.lars_decay_epochs); plr and w_epochs come from a table of the global batch unless
# config.py sets them.
LARS_END_LR = 1e-4  # tf.train.polynomial_decay's default end_learning_rate
LARS_POLY_POWER = 2.0


def lars_peak_lr(global_batch_size: int) -> tuple[float, int]:
    """(plr, warmup epochs) by global batch, poly_rate_fn @ tag v0.5."""
    if global_batch_size < 8192:
        return 5.0, 5
    if global_batch_size < 16384:
        return 10.0, 5
    if global_batch_size < 32768:
        return 25.0, 5
    return 32.0, 14


class LARS(torch.optim.Optimizer):
    """tf.contrib.opt.LARSOptimizer (classic momentum). Groups with lars=False are plain momentum SGD; `l2`
    adds l2 * w to the gradient first (the reference's L2 term of the loss)."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-4,
                 eta: float = 0.001, epsilon: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                      epsilon=epsilon, lars=True, l2=0.0))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, lr = group["weight_decay"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["l2"]:
                    g = g.add(p, alpha=group["l2"])
                if group["lars"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["eta"] * w_norm / (g_norm + wd * w_norm + group["epsilon"]),
                                        torch.ones_like(w_norm))
                    g = g.add(p, alpha=wd) * (lr * trust)
                else:
                    g = g * lr
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(g)
                p.sub_(buf)
        return loss


def lars_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Kernels: LARS + L2; the dense bias: L2, no LARS (skip_list "bias"); BN: neither."""
    decay, no_decay = param_groups(model, weight_decay)
    biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None}
    kernels = [p for p in decay["params"] if id(p) not in biases]
    bias = [p for p in decay["params"] if id(p) in biases]
    return [{"params": kernels, "lars": True, "l2": weight_decay},
            {"params": bias, "lars": False, "l2": weight_decay},
            {"params": no_decay["params"], "lars": False, "l2": 0.0}]


def make_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=0.0, momentum=cfg.momentum,
                               fused=device.type == "cuda")
    if cfg.optimizer == "lars":
        return LARS(lars_param_groups(model, cfg.weight_decay), lr=0.0, momentum=cfg.momentum,
                    weight_decay=cfg.weight_decay, eta=cfg.lars_eta, epsilon=cfg.lars_epsilon)
    raise ValueError(f"optimizer must be 'sgd' or 'lars', not {cfg.optimizer!r}")


def step_lr(step: int, base_lr: float, warmup_steps: int, boundaries: list[int], factor: float) -> float:
    """Linear warmup from 0, then piecewise constant (resnet_run_loop.py @ v0.5 learning_rate_with_decay)."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    return base_lr * factor ** sum(step >= b for b in boundaries)


def poly_lr(step: int, peak_lr: float, warmup_steps: int, train_steps: int, end_lr: float = LARS_END_LR,
            power: float = LARS_POLY_POWER) -> float:
    """poly_rate_fn @ tag v0.5: warmup to peak_lr, then tf.train.polynomial_decay over train_steps."""
    if step <= warmup_steps:
        return peak_lr * step / max(warmup_steps, 1)
    decay_steps = train_steps - warmup_steps + 1
    done = min(max(1, step - warmup_steps), decay_steps)
    return (peak_lr - end_lr) * (1 - done / decay_steps) ** power + end_lr


def schedule(cfg) -> dict:
    """The schedule's numbers in steps (boundaries at int(epoch * N / B), as the reference counts them)."""
    steps_per_epoch = cfg.train_images / cfg.global_batch_size
    if cfg.optimizer == "lars":
        peak, warmup_epochs = lars_peak_lr(cfg.global_batch_size)
        peak = cfg.lars_peak_lr if cfg.lars_peak_lr is not None else peak
        warmup_epochs = cfg.lars_warmup_epochs if cfg.lars_warmup_epochs is not None else warmup_epochs
        return {"peak_lr": peak, "warmup_epochs": warmup_epochs,
                "warmup_steps": int(warmup_epochs * steps_per_epoch),
                "train_steps": int(steps_per_epoch * cfg.lars_decay_epochs), "end_lr": LARS_END_LR}
    return {"peak_lr": cfg.learning_rate, "warmup_epochs": cfg.warmup_epochs,
            "warmup_steps": int(cfg.warmup_epochs * steps_per_epoch),
            "boundaries": [int(e * steps_per_epoch) for e in cfg.decay_epochs],
            "end_lr": float(f"{cfg.learning_rate * cfg.decay_factor ** len(cfg.decay_epochs):.12g}")}


def learning_rate_fn(cfg):
    """step -> learning rate for cfg's optimizer."""
    s = schedule(cfg)
    if cfg.optimizer == "lars":
        return lambda step: poly_lr(step, s["peak_lr"], s["warmup_steps"], s["train_steps"], s["end_lr"])
    return lambda step: step_lr(step, s["peak_lr"], s["warmup_steps"], s["boundaries"], cfg.decay_factor)


def train_one_epoch(model, optimizer, scaler, loader, dataset, cfg, device, autocast, lr_at, first_step: int,
                    log_prefix: str, log_every: int, global_batch_size: int):
    """One pass over this rank's share of the training set -> (sum of batch losses, steps)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    step = first_step
    tic = time.time()
    for i, batch in enumerate(loader):
        images, labels = data.device_batch(batch, dataset, device)
        x = data.normalize(images, cfg.mean_rgb)  # [N, 3, S, S] float, channels_last
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels)  # mean over the batch, no label smoothing
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach()
        step += 1
        if log_every and (i + 1) % log_every == 0:
            rate = (i + 1) * global_batch_size / (time.time() - tic)
            left = (len(loader) - i - 1) * global_batch_size / rate
            print(f"{log_prefix} step {i + 1}/{len(loader)} loss {loss.item():.4f} lr {lr_at(step):.5f} "
                  f"{rate:,.0f} images/s, ETA {left:.0f} s", file=sys.stderr, flush=True)
    return loss_sum, step - first_step


@torch.no_grad()
def evaluate(model, loader, dataset, cfg, device, autocast) -> torch.Tensor:
    """[correct, count] of top-1 predictions over this rank's share of the validation set (float64)."""
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    for batch in loader:
        images, labels = data.device_batch(batch, dataset, device)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits = model(data.normalize(images, cfg.mean_rgb))
        sums[0] += (logits.argmax(1) == labels).sum()
        sums[1] += labels.numel()
    model.train()
    return sums


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = PRESETS[args.config]
    overrides = {"max_epochs": args.max_epochs, "quality_target": args.target, "num_workers": args.workers}
    if args.global_batch_size is not None:  # SGD: linear scaling, as the reference's 0.128 * B / 256
        overrides["global_batch_size"] = args.global_batch_size  # (LARS: lars_peak_lr's table)
        overrides["learning_rate"] = cfg.learning_rate * args.global_batch_size / cfg.global_batch_size
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})

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

    if not args.config.startswith("tiny") and os.path.exists(os.path.join(args.data_dir, "tiny.md5")):
        raise data.DataError(f"{args.data_dir} holds tiny.md5 (synthetic data): a reference run on it is "
                             "not a result; use --config tiny, or a DATA_DIR with the real ImageNet")
    checkpoint_path = os.path.join(args.output_dir, "checkpoint.pt")
    checkpoint = None
    if args.resume and os.path.exists(checkpoint_path):
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint["config"] != args.config:
            raise data.DataError(f"{checkpoint_path}: written by a --config {checkpoint['config']} run")
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

    amp = args.amp if args.amp is not None else device.type == "cuda"
    # bf16 from Ampere on (and on CPU); fp16 with a loss scaler on Pascal/Volta/Turing.
    half = torch.bfloat16 if device.type != "cuda" or torch.cuda.get_device_capability(device) >= (8, 0) \
        else torch.float16
    autocast = half if amp else None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # Steps as the reference counts them: boundaries at int(epoch * N / B), N = the training images (a
    # constant of the preset, as the reference's _NUM_IMAGES; the data is not touched before RUN_START).
    sched = schedule(cfg)

    mllogger.event(key=constants.SUBMISSION_BENCHMARK, value=constants.RESNET)
    mllogger.event(key=constants.SUBMISSION_ORG, value=os.environ.get("SUBMISSION_ORG", "reference"))
    mllogger.event(key=constants.SUBMISSION_DIVISION, value=constants.CLOSED)
    mllogger.event(key=constants.SUBMISSION_STATUS, value=constants.RESEARCH)
    mllogger.event(key=constants.SUBMISSION_PLATFORM, value=f"{world_size}x{device_name}")
    mllogger.event(key=constants.SUBMISSION_POC_NAME,
                   value=os.environ.get("SUBMISSION_POC_NAME", "reference"))
    mllogger.event(key=constants.SUBMISSION_ENTRY, value=os.environ.get("SUBMISSION_ENTRY", "reference"))
    mllogger.event(key=constants.SEED, value=seed)
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=cfg.global_batch_size)
    mllogger.event(key=constants.MODEL_BN_SPAN, value=local_batch)  # per-device BN statistics, no sync BN
    mllogger.event(key=constants.OPT_NAME, value=cfg.optimizer)
    mllogger.event(key=constants.OPT_LR_WARMUP_EPOCHS, value=sched["warmup_epochs"])
    if cfg.optimizer == "sgd":
        mllogger.event(key="sgd_opt_base_learning_rate", value=cfg.learning_rate)
        mllogger.event(key="sgd_opt_momentum", value=cfg.momentum)
        mllogger.event(key="sgd_opt_weight_decay", value=cfg.weight_decay,
                       metadata={"applies_to": "conv and dense weights, dense bias; not BN"})
        # The 0.7.0 SGD keys describe a polynomial decay; v0.5's schedule is piecewise constant. Logged as
        # what it is: the decay steps are the step boundaries, the end rate the last stage's, no power.
        mllogger.event(key="sgd_opt_learning_rate_decay_steps", value=sched["boundaries"],
                       metadata={"schedule": "piecewise", "boundary_epochs": list(cfg.decay_epochs),
                                 "factor": cfg.decay_factor})
        mllogger.event(key="sgd_opt_end_learning_rate", value=sched["end_lr"])
        mllogger.event(key="sgd_opt_learning_rate_decay_poly_power", value=None,
                       metadata={"schedule": "piecewise"})
        mllogger.event(key="opt_learning_rate_decay_boundary_epochs", value=list(cfg.decay_epochs))  # v0.6
    else:
        mllogger.event(key="lars_opt_base_learning_rate", value=sched["peak_lr"])
        mllogger.event(key="lars_opt_end_learning_rate", value=sched["end_lr"])
        mllogger.event(key="lars_opt_learning_rate_decay_poly_power", value=LARS_POLY_POWER)
        mllogger.event(key="lars_opt_learning_rate_decay_steps", value=sched["train_steps"])
        mllogger.event(key="lars_opt_learning_rate_warmup_epochs", value=sched["warmup_epochs"])
        mllogger.event(key="lars_opt_momentum", value=cfg.momentum)
        mllogger.event(key="lars_opt_weight_decay", value=cfg.weight_decay)
        mllogger.event(key="lars_epsilon", value=cfg.lars_epsilon)
        mllogger.event(key="lars_eta", value=cfg.lars_eta)
    mllogger.event(key="label_smoothing", value=0.0)
    mllogger.event(key="input_crop_uses_bboxes", value=False)  # as the v0.5 log
    mllogger.event(key="eval_every_epochs", value=cfg.eval_every)
    mllogger.event(key="eval_target", value=cfg.quality_target)

    raw_model = resnet50(cfg.num_classes, cfg.width, cfg.fc_init)
    raw_model = raw_model.to(device, memory_format=torch.channels_last)
    model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else raw_model
    if args.compile:
        model = torch.compile(model)
    optimizer = make_optimizer(raw_model, cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    first_epoch, step, evals = 1, 0, []
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        first_epoch, step, evals = checkpoint["epoch"] + 1, checkpoint["step"], checkpoint["evals"]
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

    # ---- timed from here: the data pipeline, training, evaluations, checkpoints ----
    # Workers read files and draw crops; this process decodes on the device and resizes whole batches.
    train_set = data.ImageSet(os.path.join(args.data_dir, "train"), cfg, train=True, seed=seed)
    val_set = data.ImageSet(os.path.join(args.data_dir, "val"), cfg, train=False)
    if len(train_set.classes) != cfg.num_classes or val_set.classes != train_set.classes:
        raise data.DataError(f"{args.data_dir}: {len(train_set.classes)} train and {len(val_set.classes)} "
                             f"val classes; the {args.config} preset has {cfg.num_classes}")
    if (len(train_set), len(val_set)) != (cfg.train_images, cfg.val_images):
        raise data.DataError(f"{args.data_dir}: {len(train_set)} train and {len(val_set)} val images; the "
                             f"{args.config} preset expects {cfg.train_images} and {cfg.val_images} "
                             "(an incomplete extraction? delete train/ or val/ and run ./extract.py again)")
    train_loader = data.make_loader(train_set, local_batch, rank, world_size, cfg.num_workers, device,
                                    cfg.loader_timeout)
    val_loader = data.make_loader(val_set, cfg.eval_batch_size, rank, world_size, cfg.num_workers, device,
                                  cfg.loader_timeout)
    mllogger.event(key=constants.TRAIN_SAMPLES, value=len(train_set))
    mllogger.event(key=constants.EVAL_SAMPLES, value=len(val_set))

    lr_at = learning_rate_fn(cfg)
    def run_eval(epoch: int) -> float:
        mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": epoch})
        sums = evaluate(model, val_loader, val_set, cfg, device, autocast)
        if distributed:
            dist.all_reduce(sums)  # every rank gets the same top-1, so all make the same stop decision
        correct, count = sums.tolist()
        top1 = correct / count
        seconds = time.time() - run_start
        mllogger.event(key=constants.EVAL_ACCURACY, value=top1, metadata={"epoch_num": epoch})
        mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": epoch})
        evals.append({"epoch": epoch, "seconds": round(seconds, 3), "value": top1})
        progress(f"epoch {epoch} eval top-1 {top1:.4f} ({int(correct)}/{int(count)}, "
                 f"{seconds:.1f} s since run start)", all_ranks=True)
        return top1

    status = constants.ABORTED
    epoch = first_epoch - 1
    for epoch in range(first_epoch, cfg.max_epochs + 1):
        eval_now = epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs
        if (epoch - 1) % cfg.eval_every == 0 or epoch == first_epoch:  # a block = the epochs up to an eval
            block_end = min((epoch - 1) // cfg.eval_every * cfg.eval_every + cfg.eval_every, cfg.max_epochs)
            block = {"first_epoch_num": epoch, "epoch_count": block_end - epoch + 1}
            mllogger.start(key=constants.BLOCK_START, metadata=block)
        mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": epoch})
        train_set.epoch = epoch
        train_loader.sampler.set_epoch(epoch)
        tic = time.time()
        loss_sum, steps = train_one_epoch(model, optimizer, scaler, train_loader, train_set, cfg, device,
                                          autocast, lr_at, step, f"epoch {epoch}",
                                          cfg.log_every if rank == 0 else 0, cfg.global_batch_size)
        step += steps
        if distributed:
            dist.all_reduce(loss_sum)
        mean_loss = loss_sum.item() / (steps * world_size)
        mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": epoch})
        rate = steps * cfg.global_batch_size / (time.time() - tic)
        progress(f"epoch {epoch} done: loss {mean_loss:.4f}, lr {lr_at(step):.5f}, {rate:,.0f} images/s")
        if not math.isfinite(mean_loss):
            progress(f"epoch {epoch}: non-finite loss, stopping")
            mllogger.end(key=constants.BLOCK_STOP, metadata=block)
            break
        top1 = run_eval(epoch) if eval_now else None
        if eval_now:
            mllogger.end(key=constants.BLOCK_STOP, metadata=block)
        if rank == 0:  # no RNG state needed: every draw after init comes from (seed, epoch, image index)
            save_checkpoint(checkpoint_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch, "step": step, "evals": evals, "seed": seed,
                "config": args.config})
        if top1 is not None and top1 >= cfg.quality_target:
            status = constants.SUCCESS
            break

    if distributed:
        dist.barrier()
    mllogger.end(key=constants.RUN_STOP, metadata={"status": status})
    seconds = time.time() - run_start
    success = status == constants.SUCCESS
    progress(f"{'reached' if success else 'did not reach'} top-1 {cfg.quality_target} after epoch {epoch} "
             f"in {seconds:.1f} s (RUN_START to RUN_STOP)")
    if rank == 0:
        summary = {"benchmark": BENCHMARK, "metric": "top1", "higher_is_better": True,
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
