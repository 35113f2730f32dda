#!/usr/bin/env python3
"""Train DeepSpeech2 on LibriSpeech until the validation WER reaches the target (MLPerf v0.5 DS2 reference).

    ./preprocess.py ./data && ./train.py --data-dir ./data          # one process, a GPU if there is one
    torchrun --nproc_per_node 8 train.py --data-dir ./data          # 8 GPUs, same global batch
    ./train.py --data-dir ./data --config v05                       # the v0.5 model (3 x GRU-2560)
    ./make_tiny_dataset.py /tmp/tiny && ./preprocess.py /tmp/tiny && \
        ./train.py --data-dir /tmp/tiny --config tiny --device cpu  # tiny run, about a minute on 2 cores

run_and_time.sh wraps these. Each epoch trains on the duration-sorted training manifests in the same order
(no shuffling, as the reference), with sox tempo/gain augmentation, SGD with Nesterov momentum, gradient-norm
clipping and the learning rate divided by 1.1 after the epoch; then greedy-decodes the validation set and
computes its WER (mean of per-utterance WERs x 100, spec section 3). The run stops at WER <= target or at the
epoch cap. Timed (RUN_START to RUN_STOP): reading the manifests, every epoch (audio decoding, augmentation,
features, training), every evaluation and checkpoint. Not timed: download and preprocess.py (deterministic).
Writes OUTPUT_DIR/mlperf.log (:::MLLOG lines, also on stdout), summary.json and checkpoint.pt; progress goes
to stderr. Exit status 0 when the target was reached, 1 when it was not, 2 on bad input.
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
from torch.nn.parallel import DistributedDataParallel

import data
import metrics
from config import HOP, PRESETS, SAMPLE_RATE
from model import DeepSpeech2

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
                   help="bf16 autocast, or fp16 + loss scaling before Ampere (default: on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the convolutional front end")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's maximum epoch count")
    p.add_argument("--target", type=float, default=None, help="override the preset's WER target (in %%)")
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


def ctc_loss(logits, steps, targets, target_lengths):
    """Summed CTC loss of a batch. torch's CTC wants log-probabilities (warp-ctc took raw activations; spec
    section 7.6), computed in fp32. zero_infinity: an infeasible alignment contributes nothing instead of the
    reference's inf step (section 7.5)."""
    log_probs = F.log_softmax(logits.float(), dim=-1)  # T2 x N x 29
    # Targets on the logits' device (the native CUDA kernel wants them there); lengths may stay on the CPU.
    return F.ctc_loss(log_probs, targets.to(log_probs.device), steps, target_lengths, blank=metrics.BLANK,
                      reduction="sum", zero_infinity=True)


def train_one_epoch(model, optimizer, scaler, loader, global_sizes, world_size, max_grad_norm, device,
                    autocast, log_every=0, log_prefix=""):
    """One pass in manifest order -> (sum of per-utterance losses on this rank, utterances, audio seconds)."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # no host sync per step
    utterances, samples, tic = 0, 0, time.time()
    for step, (features, frames, targets, target_lengths, _) in enumerate(loader):
        features = features.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits, steps = model(features, frames)
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
    for features, frames, _, _, transcripts in loader:
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits, steps = model(features.to(device, non_blocking=True), frames)
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
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    os.makedirs(args.output_dir, exist_ok=True)

    mllog.config(logger=make_mllog_logger(args.output_dir, rank), root_dir=HERE)
    mllogger = mllog.get_mllogger()
    try:
        return train(args, cfg, mllogger, device, rank, world_size)
    except data.DataError as e:
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
    # bf16 from Ampere on (and on CPU); fp16 with a loss scaler on Pascal/Volta/Turing.
    half = torch.bfloat16 if device.type != "cuda" or torch.cuda.get_device_capability(device) >= (8, 0) \
        else torch.float16
    autocast = half if amp else None
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
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=cfg.global_batch_size)
    mllogger.event(key=constants.OPT_NAME, value=constants.SGD)
    mllogger.event(key=constants.OPT_BASE_LR, value=cfg.learning_rate)
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
    mllogger.event(key="data_augmentation", value=cfg.augment, metadata={
        "tempo": list(cfg.tempo_range), "gain_db": list(cfg.gain_range_db)})
    mllogger.event(key="eval_target", value=cfg.quality_target, metadata={"metric": "WER %, lower is better"})

    raw_model = DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                            cfg.conv_channels).to(device)
    model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else raw_model
    if args.compile:
        raw_model.conv = torch.compile(raw_model.conv, dynamic=True)  # variable lengths: one dynamic graph
    optimizer = torch.optim.SGD(raw_model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                nesterov=True, weight_decay=0.0)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    first_epoch, evals = 1, []
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
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
    train_set = data.SpeechDataset(args.data_dir, train_utts, cfg.augment, seed, cfg.tempo_range,
                                   cfg.gain_range_db)
    train_batches = data.batches(len(train_utts), cfg.global_batch_size, rank, world_size)
    global_sizes = [sum(len(b) for b in ranks) for ranks in
                    zip(*(data.batches(len(train_utts), cfg.global_batch_size, r, world_size)
                          for r in range(world_size)))]
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
                "config": args.config})
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
