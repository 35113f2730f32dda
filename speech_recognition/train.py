#!/usr/bin/env python3
"""Train DeepSpeech2 on LibriSpeech until the validation WER reaches the target (MLPerf v0.5 DS2 reference).

    ./preprocess.py ./data && ./train.py --data-dir ./data          # one process, a GPU if there is one
    torchrun --nproc_per_node 8 train.py --data-dir ./data          # 8 GPUs: global batch 8 x 5, lr x 8
    ./train.py --data-dir ./data --config v05                       # the v0.5 model (3 x GRU-2560)
    ./make_tiny_dataset.py /tmp/tiny && ./preprocess.py /tmp/tiny && \
        ./train.py --data-dir /tmp/tiny --config tiny --device cpu  # tiny run, about a minute on 2 cores

run_and_time.sh wraps these. Each epoch trains on the duration-sorted training manifests in the same order
(no shuffling, as the reference), with sox tempo/gain augmentation, SGD with Nesterov momentum, gradient-norm
clipping and the learning rate divided by 1.1 after the epoch; then greedy-decodes the validation set and
computes its WER (mean of per-utterance WERs x 100, spec section 3). Each rank trains on its own batches of
the preset's size (--batch-size), so the global batch grows with the ranks and the learning rate with it
(py: the v0.5 rules' integer factor by linear scaling); BatchNorm statistics are shared by the ranks
when a rank's batch is smaller than the preset's. Spectrograms are computed on the training device
(features.py) from the loader's augmented waveforms. The run stops at WER <= target or at the
epoch cap. Timed (RUN_START to RUN_STOP): reading the manifests, every epoch (audio decoding, augmentation,
features, training), every evaluation and checkpoint. Not timed: download and preprocess.py (deterministic).
Writes OUTPUT_DIR/mlperf.log (:::MLLOG lines, also on stdout), summary.json and checkpoint.pt; progress goes
to stderr. Exit status 0 when the target was reached, 1 when it was not, 2 on bad input.
"""

import argparse
import dataclasses
import hashlib
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
import features
import metrics
from config import HOP, PRESETS, SAMPLE_RATE
from model import DeepSpeech2, precision_policy

BENCHMARK = "speech_recognition"
HERE = os.path.dirname(os.path.abspath(__file__))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds LibriSpeech/ and manifests/ from preprocess.py (default: $DATA_DIR or ./data)")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="mlperf.log, summary.json, checkpoint.pt (default: $OUTPUT_DIR or ./output)")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference",
                   help="preset: reference (2018 model, 5 x biGRU-800), v05 (3 x GRU-2560) or tiny")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: drawn at random, shared by all ranks)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast with fp32 GRUs from compute capability 8.0, fp16 + loss scaling "
                        "before (default: on CUDA)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="utterances per rank and step (default: the preset's, 5 reference, 8 v05 and tiny); "
                        "the global batch is this times the number of ranks")
    p.add_argument("--compile", action="store_true", help="torch.compile the convolutional front end")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's maximum epoch count")
    p.add_argument("--target", type=float, default=None, help="override the preset's WER target (in %%)")
    return p


# ------------------------------------------------------------------------------------------------------------
# Data parallelism: the learning rate of a larger global batch, BatchNorm statistics shared by the ranks, the
# refusal of settings that cannot train, and a digest showing that the ranks hold one model.
#
# Each rank trains on its own batches of `batch_size` utterances (data.batches), so the global batch is
# batch_size x world_size. The 2018 reference trained on one GPU (the reference time is one P100's). The
# MLPerf v0.5 training rules (mlcommons/training_policies training_rules.adoc, "Hyperparameters and
# Optimizer", November 2018) let an SGD submission choose any batch size and scale the learning rate by an
# integer factor r, optionally after a linear warm-up of wb batches; the linear scaling rule of Goyal et al.
# 2017 ("Accurate, Large Minibatch SGD", arXiv 1706.02677) is the usual choice of r. Used here: r = global
# batch / the preset's batch, rounded to an integer >= 1, without warm-up (the duration-sorted order starts
# on the shortest utterances, the DS2 paper's SortaGrad curriculum). No multi-GPU run of the full model has
# been measured.


class SettingsError(Exception):
    """A combination of ranks, batch size and data that cannot train; the message says which and why."""


def learning_rate_factor(global_batch: int, reference_batch: int) -> int:
    """The v0.5 rules' integer factor r for a global batch, by linear scaling from the preset's batch."""
    return max(1, round(global_batch / reference_batch))


def use_sync_batch_norm(batch_size: int, reference_batch: int, world_size: int) -> bool:
    """BatchNorm statistics over the whole global batch when a rank's own batch is smaller than the preset's:
    the reference's statistics came from its whole batch of 5 (or 8) utterances on one GPU."""
    return world_size > 1 and batch_size < reference_batch


def check_settings(batch_size: int, world_size: int, train_utterances: int | None = None) -> None:
    """Raises SettingsError for a setting that cannot train (checked again once the manifests are read)."""
    if batch_size < 1:
        raise SettingsError(f"--batch-size {batch_size}: each rank needs at least one utterance per step")
    if train_utterances is not None and train_utterances < world_size:
        raise SettingsError(f"{world_size} ranks but {train_utterances} training utterances: every rank "
                            "needs at least one utterance per step; use fewer processes")


class AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over the ranks; its gradient is the sum of the ranks' gradients, since every rank's
    loss depends on the sum (torch.distributed.nn.functional.all_reduce, which is deprecated)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over N x C x ... whose training statistics are those of the global batch (every rank's
    utterances), with the same parameters, buffers and state_dict keys as BatchNorm1d/2d.

    Not torch.nn.SyncBatchNorm: that one refuses CPU tensors (its statistics kernels are CUDA-only), so a
    gloo run could not take this branch. Here each rank's per-channel (count, mean, sum of squared
    deviations) are exchanged with one all_reduce (AllReduceSum) and combined exactly (Chan et al.'s
    pairwise update), on any backend; the backward pass all-reduces the gradients of those statistics. In
    eval mode, or with one rank, it is plain BatchNorm."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected N x C x ... input, got shape {tuple(x.shape)}")

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        world, rank, c = dist.get_world_size(), dist.get_rank(), x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()  # statistics in fp32 under autocast too
        mean = xf.mean(dims)  # C
        m2 = (xf - mean.view(shape)).square().sum(dims)  # C: squared deviations from this rank's mean
        local = torch.cat([mean, m2, xf.new_full((1,), xf.numel() // c)])  # 2C + 1
        # One row per rank, zeros elsewhere; the sum over ranks is every rank's statistics: W x (2C + 1).
        table = AllReduceSum.apply(F.pad(local[None], (0, 0, rank, world - 1 - rank)))
        means, m2s, counts = table[:, :c], table[:, c: 2 * c], table[:, 2 * c:]
        total = counts.sum()
        global_mean = (counts * means).sum(0) / total
        global_m2 = m2s.sum(0) + (counts * (means - global_mean).square()).sum(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # running = (1 - momentum) running + momentum batch; the unbiased variance, as BatchNorm does
                self.running_mean.lerp_(global_mean.detach(), self.momentum)
                self.running_var.lerp_(global_m2.detach() / (total - 1).clamp_min(1), self.momentum)
        out = (xf - global_mean.view(shape)) * torch.rsqrt(global_m2 / total + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batch_norm(module: nn.Module) -> nn.Module:
    """Every BatchNorm in `module` replaced, in place, by a SyncBatchNorm holding its parameters and buffers
    (on the CPU: convert before moving the model to its device)."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            if child.momentum is None:
                raise ValueError(f"{name}: cumulative BatchNorm averages (momentum=None) are not supported")
            sync = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync)
        else:
            convert_sync_batch_norm(child)
    return module


def state_digest(module: nn.Module) -> str:
    """SHA-256 (16 hex digits) of every parameter and buffer, names included: equal on every rank when the
    ranks hold the same model."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's BatchNorm running statistics on every rank. DDP broadcasts buffers at the start of each
    forward pass, so after the epoch's last step each rank holds statistics updated by its own batch only;
    evaluation and the checkpoint need the same model everywhere."""
    for b in module.buffers():
        dist.broadcast(b, 0)


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


def build_model(cfg, precision, sync_bn: bool = False, compile: bool = False) -> DeepSpeech2:
    """The preset's DeepSpeech2 on the CPU, its GRUs in the precision policy's dtype."""
    model = DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                        cfg.conv_channels, rnn_dtype=precision.rnn)
    if sync_bn:
        convert_sync_batch_norm(model)  # same state_dict keys: checkpoints load either way
    if compile:
        # Module.compile compiles the module in place and keeps its state_dict keys (assigning
        # torch.compile's wrapper adds `_orig_mod.` to them), so --compile and eager runs resume from each
        # other's checkpoints. Variable lengths: one dynamic graph.
        model.conv.compile(dynamic=True)
    return model


def checkpoint_state_dict(state: dict) -> dict:
    """A model state_dict as saved, without the `_orig_mod.` that torch.compile'd submodules added to the
    keys of checkpoints written before --compile used Module.compile (which keeps the keys)."""
    return {k.replace("._orig_mod", ""): v for k, v in state.items()}


def ctc_loss(logits, steps, targets, target_lengths):
    """Summed CTC loss of a batch. torch's CTC wants log-probabilities (warp-ctc took raw activations; spec
    section 7.6), computed in fp32. zero_infinity: an infeasible alignment contributes nothing instead of the
    reference's inf step (section 7.5)."""
    log_probs = F.log_softmax(logits.float(), dim=-1)  # T2 x N x 29
    # Targets on the logits' device (the native CUDA kernel wants them there); lengths may stay on the CPU.
    return F.ctc_loss(log_probs, targets.to(log_probs.device), steps, target_lengths, blank=metrics.BLANK,
                      reduction="sum", zero_infinity=True)


def to_device(batch, device):
    """A collated batch on the training device: waveforms, frame counts and targets copied without blocking
    (the loader pins them on CUDA), then spectrograms computed there. Frame and target counts stay on the
    CPU too, for the GRUs' packing and the CTC loss."""
    waveforms, frames, targets, target_lengths, transcripts = batch
    spect = features.spectrograms(waveforms.to(device, non_blocking=True),
                                  frames.to(device, non_blocking=True))
    return spect, frames, targets.to(device, non_blocking=True), target_lengths, transcripts


def train_one_epoch(model, optimizer, scaler, loader, global_sizes, world_size, max_grad_norm, device,
                    autocast, log_every=0, log_prefix=""):
    """One pass in manifest order -> (sum of per-utterance losses on this rank, utterances, audio seconds)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # no host sync per step
    utterances, samples, tic = 0, 0, time.time()
    for step, batch in enumerate(loader):
        spect, frames, targets, target_lengths, _ = to_device(batch, device)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits, steps = model(spect, frames)
        loss = ctc_loss(logits, steps, targets, target_lengths)
        # Summed over the global batch, divided by its size (train.py @ v0.5); DDP averages over ranks.
        scaled = loss * (world_size / global_sizes[step])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(scaled).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach().double()
        utterances += len(target_lengths)
        samples += int(frames.sum()) * HOP
        if log_every and (step + 1) % log_every == 0:
            rate = samples / SAMPLE_RATE / (time.time() - tic)
            print(f"{log_prefix} step {step + 1}/{len(loader)} loss {loss.item() / len(target_lengths):.3f} "
                  f"{rate * world_size:,.1f} audio-s/s", file=sys.stderr, flush=True)
    return loss_sum, utterances, samples / SAMPLE_RATE


@torch.no_grad()
def evaluate(model, loader, device, autocast) -> metrics.ErrorRates:
    model.eval()
    rates = metrics.ErrorRates()
    for batch in loader:
        spect, frames, _, _, transcripts = to_device(batch, device)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits, steps = model(spect, frames)
        for ref, hyp in zip(transcripts, metrics.greedy_decode(logits.transpose(0, 1), steps)):
            rates.add(ref, hyp)
    model.train()
    return rates


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
        if device.index >= torch.cuda.device_count():
            print(f"train.py: error: process {local_rank} on this node needs GPU {device.index}, but "
                  f"{torch.cuda.device_count()} are visible: start at most that many processes per node",
                  file=sys.stderr)
            return 2
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    os.makedirs(args.output_dir, exist_ok=True)

    mllog.config(logger=make_mllog_logger(args.output_dir, rank), root_dir=HERE)
    mllogger = mllog.get_mllogger()
    try:
        return train(args, cfg, mllogger, device, rank, world_size)
    except (data.DataError, SettingsError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    finally:
        for handler in mllogger.logger.handlers:
            handler.close()
        if distributed:
            dist.destroy_process_group()


def train(args, cfg, mllogger, device, rank, world_size) -> int:
    distributed = dist.is_initialized()  # under torchrun, even with one process
    def progress(msg: str, all_ranks: bool = False):
        if rank == 0 or all_ranks:
            print(f"[rank {rank}] {msg}" if distributed else msg, file=sys.stderr, flush=True)

    # This code does not drop the OS page cache (that needs root on the host), so say so honestly.
    mllogger.event(key=constants.CACHE_CLEAR, value=False)
    mllogger.start(key=constants.INIT_START)

    if args.config != "tiny" and os.path.exists(os.path.join(args.data_dir, "tiny.md5")):
        raise data.DataError(f"{args.data_dir} holds tiny.md5 (synthetic speech): a --config {args.config} "
                             "run on it is not a result; use --config tiny, or a DATA_DIR with LibriSpeech")
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
    precision = precision_policy(torch.cuda.get_device_capability(device) if device.type == "cuda" else None,
                                 amp)
    autocast = precision.autocast
    batch_size = args.batch_size if args.batch_size is not None else cfg.batch_size
    global_batch = batch_size * world_size
    lr_factor = learning_rate_factor(global_batch, cfg.batch_size)
    learning_rate = cfg.learning_rate * lr_factor
    sync_bn = use_sync_batch_norm(batch_size, cfg.batch_size, world_size)
    check_settings(batch_size, world_size)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)
    torch.set_flush_denormal(True)  # denormals in the GRU slowed CPU steps (spec section 8.3)

    mllogger.event(key=constants.SUBMISSION_BENCHMARK, value=BENCHMARK)
    mllogger.event(key=constants.SUBMISSION_ORG, value=os.environ.get("SUBMISSION_ORG", "reference"))
    mllogger.event(key=constants.SUBMISSION_DIVISION, value=constants.CLOSED)
    mllogger.event(key=constants.SUBMISSION_STATUS, value=constants.RESEARCH)
    mllogger.event(key=constants.SUBMISSION_PLATFORM, value=f"{world_size}x{device_name}")
    mllogger.event(key=constants.SUBMISSION_POC_NAME,
                   value=os.environ.get("SUBMISSION_POC_NAME", "reference"))
    mllogger.event(key=constants.SUBMISSION_ENTRY, value=os.environ.get("SUBMISSION_ENTRY", "reference"))
    mllogger.event(key=constants.SEED, value=seed)
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=global_batch,
                   metadata={"per_rank": batch_size, "ranks": world_size, "sync_batch_norm": sync_bn})
    mllogger.event(key=constants.OPT_NAME, value=constants.SGD)
    # The preset's rate times the v0.5 rules' integer factor for the global batch (py).
    mllogger.event(key=constants.OPT_BASE_LR, value=learning_rate,
                   metadata={"preset": cfg.learning_rate, "factor": lr_factor,
                             "preset_batch": cfg.batch_size})
    mllogger.event(key="opt_momentum", value=cfg.momentum)
    mllogger.event(key="opt_nesterov", value=True)
    mllogger.event(key=constants.OPT_WEIGHT_DECAY, value=0.0)
    mllogger.event(key="opt_learning_rate_anneal", value=cfg.learning_anneal,
                   metadata={"schedule": "lr divided by this after every epoch"})
    mllogger.event(key=constants.OPT_GRADIENT_CLIP_NORM, value=cfg.max_grad_norm)
    mllogger.event(key="model_hp_rnn_type", value="gru")
    mllogger.event(key="model_hp_rnn_layers", value=cfg.rnn_layers)
    mllogger.event(key="model_hp_rnn_hidden_size", value=cfg.rnn_hidden)
    mllogger.event(key="model_hp_rnn_bidirectional", value=cfg.bidirectional)
    mllogger.event(key="model_hp_rnn_batch_norm", value=cfg.rnn_batch_norm)
    mllogger.event(key="precision", value=str(autocast).removeprefix("torch.") if autocast else "fp32",
                   metadata={"rnn": str(precision.rnn).removeprefix("torch."),
                             "grad_scaler": precision.grad_scaler})
    mllogger.event(key="data_augmentation", value=cfg.augment, metadata={
        "tempo": list(cfg.tempo_range), "gain_db": list(cfg.gain_range_db)})
    mllogger.event(key="eval_target", value=cfg.quality_target, metadata={"metric": "WER %, lower is better"})

    raw_model = build_model(cfg, precision, sync_bn, args.compile).to(device)
    model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else raw_model
    optimizer = torch.optim.SGD(raw_model.parameters(), lr=learning_rate, momentum=cfg.momentum,
                                nesterov=True, weight_decay=0.0)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
    first_epoch, evals = 1, []
    if checkpoint is not None:
        if checkpoint.get("global_batch_size", global_batch) != global_batch:
            raise SettingsError(
                f"{checkpoint_path}: written with a global batch of {checkpoint['global_batch_size']}, this "
                f"run's is {global_batch} ({batch_size} x {world_size} ranks): resume with the same batches")
        raw_model.load_state_dict(checkpoint_state_dict(checkpoint["model"]))
        optimizer.load_state_dict(checkpoint["optimizer"])  # carries the annealed learning rate
        scaler.load_state_dict(checkpoint["scaler"])
        first_epoch = checkpoint["epoch"] + 1
        evals = checkpoint["evals"]
        # A resumed run is not an MLPerf result: its clock restarts. Say so in its own log.
        mllogger.event(key="resumed", value=True, metadata={
            "from_epoch": checkpoint["epoch"], "note": "not an MLPerf result: the clock restarted"})
        progress(f"resumed from {checkpoint_path} after epoch {checkpoint['epoch']}")
        if evals and evals[-1]["value"] <= cfg.quality_target:
            progress("the checkpointed run had already reached the target; nothing to do")
            return 0
    mllogger.end(key=constants.INIT_STOP)
    if distributed:
        dist.barrier()
    mllogger.start(key=constants.RUN_START)
    run_start = time.time()

    # ---- timed from here: manifests, audio, augmentation, features, training, evaluation ----
    train_utts = data.read_manifests(args.data_dir, cfg.train_subsets)
    val_utts = data.read_manifests(args.data_dir, cfg.val_subsets)
    mllogger.event(key=constants.TRAIN_SAMPLES, value=len(train_utts))
    mllogger.event(key=constants.EVAL_SAMPLES, value=len(val_utts))
    check_settings(batch_size, world_size, len(train_utts))
    train_set = data.SpeechDataset(args.data_dir, train_utts, cfg.augment, seed, cfg.tempo_range,
                                   cfg.gain_range_db)
    train_batches = data.batches(len(train_utts), batch_size, rank, world_size)
    global_sizes = data.global_batch_sizes(len(train_utts), batch_size, world_size)
    progress(f"global batch {global_batch} ({batch_size} per rank x {world_size}), {len(global_sizes)} steps "
             f"per epoch, learning rate {learning_rate:g} ({lr_factor} x {cfg.learning_rate:g})"
             f"{', BatchNorm statistics synchronised over the ranks' if sync_bn else ''}")
    val_set = data.SpeechDataset(args.data_dir, val_utts)
    mine = list(range(rank, len(val_utts), world_size))  # every utterance on exactly one rank
    val_batches = [mine[i:i + cfg.eval_batch_size] for i in range(0, len(mine), cfg.eval_batch_size)]
    workers = cfg.loader_workers
    pin = device.type == "cuda"
    val_loader = data.loader(val_set, val_batches, workers, pin)

    def run_eval(epoch: int) -> float:
        mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": epoch})
        sums = evaluate(raw_model, val_loader, device, autocast).as_tensor()
        if distributed:
            dist.all_reduce(sums)  # every rank gets the same WER, so every rank makes the same stop decision
        rates = metrics.ErrorRates.from_tensor(sums)
        seconds = time.time() - run_start
        mllogger.event(key=constants.EVAL_ACCURACY, value=rates.wer, metadata={"epoch_num": epoch})
        mllogger.event(key="eval_cer", value=rates.cer, metadata={"epoch_num": epoch})
        mllogger.event(key="eval_corpus_wer", value=rates.corpus_wer, metadata={"epoch_num": epoch})
        mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": epoch})
        evals.append({"epoch": epoch, "seconds": round(seconds, 3), "value": rates.wer})
        progress(f"epoch {epoch} eval WER {rates.wer:.2f} (corpus {rates.corpus_wer:.2f}) "
                 f"CER {rates.cer:.2f} ({seconds:.1f} s since run start)", all_ranks=True)
        return rates.wer

    status = constants.ABORTED
    epoch = first_epoch - 1
    for epoch in range(first_epoch, cfg.max_epochs + 1):
        mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": epoch})
        lr = optimizer.param_groups[0]["lr"]
        mllogger.event(key="opt_learning_rate", value=lr, metadata={"epoch_num": epoch})
        train_set.set_epoch(epoch)  # augmentation draws depend on (seed, epoch, utterance)
        tic = time.time()
        loss_sum, utts, audio_s = train_one_epoch(
            model, optimizer, scaler, data.loader(train_set, train_batches, workers, pin), global_sizes,
            world_size, cfg.max_grad_norm, device, autocast, cfg.log_every if rank == 0 else 0,
            f"epoch {epoch}")
        totals = torch.tensor([loss_sum.item(), utts, audio_s], dtype=torch.float64)
        if distributed:
            dist.all_reduce(totals)
            broadcast_buffers(raw_model)
            # DDP keeps the ranks' parameters equal; check it once per epoch, before evaluating and saving.
            digest = state_digest(raw_model)
            digests = [None] * world_size
            dist.all_gather_object(digests, digest)
            progress(f"epoch {epoch} weights sha256 {digest}", all_ranks=True)
            if len(set(digests)) > 1:
                raise RuntimeError(f"epoch {epoch}: the ranks' weights differ ({digests})")
        mean_loss = totals[0].item() / max(totals[1].item(), 1)
        mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": epoch})
        progress(f"epoch {epoch} done: loss {mean_loss:.3f} lr {lr:.3g} "
                 f"{totals[2].item() / (time.time() - tic):,.1f} audio-s/s")
        # Learning rate annealing after every epoch (train.py @ v0.5 learning_anneal).
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] / cfg.learning_anneal
        if not math.isfinite(mean_loss):
            progress(f"epoch {epoch}: non-finite loss, stopping")
            break
        wer = run_eval(epoch)
        if rank == 0:
            save_checkpoint(checkpoint_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch, "evals": evals, "seed": seed,
                "config": args.config, "global_batch_size": global_batch})
        if wer <= cfg.quality_target:
            status = constants.SUCCESS
            break

    if distributed:
        dist.barrier()
    mllogger.end(key=constants.RUN_STOP, metadata={"status": status})
    seconds = time.time() - run_start
    success = status == constants.SUCCESS
    progress(f"{'reached' if success else 'did not reach'} WER {cfg.quality_target} after epoch {epoch} in "
             f"{seconds:.1f} s (RUN_START to RUN_STOP)")
    if rank == 0:
        summary = {"benchmark": BENCHMARK, "metric": "WER", "higher_is_better": False,
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
