#!/usr/bin/env python3
"""Train Transformer (big) on WMT en-de until uncased BLEU on newstest2014 reaches the target.

    python3 train.py --data-dir data --config reference                 # one GPU (or CPU)
    torchrun --nproc_per_node=8 train.py --data-dir data --config reference_8gpu   # DDP on 8 GPUs
    python3 train.py --data-dir /tmp/tiny --config tiny --device cpu    # tiny synthetic run, ~1 min

Needs the outputs of preprocess.py (run_and_time.sh runs it when they are missing). Order as in
DESIGN.md: parse, distributed init (nccl on CUDA, gloo on CPU), seed, model and optimizer, INIT_STOP,
barrier, RUN_START, data, then one epoch of token-bucketed batches at a time followed by beam-search
translation of newstest2014 and BLEU (sacreBLEU, uncased; the 2018 tokenised BLEU is logged beside it
as `bleu_2018`), stopping at the target, after max epochs, or on a non-finite loss; RUN_STOP,
OUTPUT_DIR/summary.json. MLPerf log: OUTPUT_DIR/mlperf.log (eval_accuracy = BLEU / 100). Returns 0 only
when the target was reached. `reference_8gpu` (NVIDIA's MLPerf v0.6 8-GPU recipe, config.RECIPE_8GPU) also
runs on 1, 2 or 4 GPUs: each update then accumulates 8 / ranks batches, so the global batch is the same.
"""

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import random
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
from mlperf_logging import mllog
from mlperf_logging.mllog import constants
from torch.nn.parallel import DistributedDataParallel

from config import PRESETS, preprocessing
from data import (
    SPM_MODEL,
    TEST_CORPUS,
    DataError,
    check_data_dir,
    collate,
    epoch_batches,
    load_encoded,
    load_manifest,
    preprocessed_dir,
    read_parallel,
)
from metrics import bleu_2018, sacrebleu_uncased
from model import Transformer, beam_search, label_smoothed_loss, precision_policy

BENCHMARK = "transformer"
HERE = Path(__file__).resolve().parent


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", str(HERE / "data")))
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", str(HERE / "output")))
    p.add_argument("--config", choices=sorted(PRESETS), default="reference")
    p.add_argument("--seed", type=int, default=None, help="default: drawn, then shared by all ranks")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision: bf16 from compute capability 8.0, fp16 + GradScaler below "
                        "(default: on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the (DDP-wrapped) model")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint.pt")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's max_epochs")
    p.add_argument("--target", type=float, default=None, help="override the preset's target BLEU (0-100)")
    p.add_argument("--log-every", type=int, default=50, help="steps between progress lines on stderr")
    return p


def setup_mllog(output_dir: Path, rank: int) -> tuple[mllog.mllog.MLLogger, list[logging.Handler]]:
    """Rank 0 logs to stdout and OUTPUT_DIR/mlperf.log (an older log is moved aside); others drop INFO."""
    # a fresh Logger per run: main() may run several times in one process (tests)
    logger = logging.Logger(f"mlperf_{BENCHMARK}_{time.monotonic_ns()}",
                            level=logging.INFO if rank == 0 else logging.WARNING)
    handlers: list[logging.Handler] = []
    if rank == 0:
        log_path = output_dir / "mlperf.log"
        if log_path.exists():
            n = 1
            while log_path.with_name(f"mlperf.log.{n}").exists():
                n += 1
            log_path.replace(log_path.with_name(f"mlperf.log.{n}"))
        handlers = [logging.StreamHandler(sys.stdout), logging.FileHandler(log_path)]
        for h in handlers:
            logger.addHandler(h)
    mllog.config(logger=logger, root_dir=str(HERE))
    return mllog.get_mllogger(), handlers


def lr_lambda(d_model: int, factor: float, warmup: int):
    """lr(step) = factor · d^-0.5 · min(1, step / warmup) · max(step, warmup)^-0.5 (model_utils @ v0.5)."""
    def f(step: int) -> float:
        step = max(step, 1)
        return factor * d_model ** -0.5 * min(1.0, step / warmup) * max(step, warmup) ** -0.5
    return f


def translate(model, sp, sentences: list[str], cfg, device, rank: int, world: int) -> list[str]:
    """Beam-search translations of all sentences (each rank decodes a share; all ranks get all)."""
    ids = [sp.encode(s) + [1] for s in sentences]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # decode batches sorted by source length
    batches = [order[i: i + cfg.decode_batch_size] for i in range(0, len(order), cfg.decode_batch_size)]
    mine = {}
    for batch in batches[rank::world]:
        src = torch.zeros(len(batch), max(len(ids[i]) for i in batch), dtype=torch.long)
        for row, i in enumerate(batch):
            src[row, : len(ids[i])] = torch.tensor(ids[i])
        hyps = beam_search(model, src.to(device), cfg.beam_size, cfg.length_penalty_alpha,
                           cfg.extra_decode_length)
        for i, h in zip(batch, hyps):
            mine[i] = sp.decode(h)
    if world > 1:
        gathered: list[dict] = [{} for _ in range(world)]
        dist.all_gather_object(gathered, mine)
        mine = {k: v for part in gathered for k, v in part.items()}
    return [mine[i] for i in range(len(sentences))]


@torch.no_grad()
def evaluate(raw_model, dev_data, sp, test_src: list[str], test_ref: list[str], cfg, device, amp_dtype,
             use_amp: bool, rank: int, world: int) -> dict:
    """This rank's own numbers: dev loss (teacher forcing over all of newstest2013), then BLEU of the
    newstest2014 translations (each rank decodes a share, every rank gets all, scores them itself)."""
    t0 = time.time()
    with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
        dev_batches, _ = epoch_batches(dev_data, cfg.max_tokens, cfg.max_length, 0, 0)
        dev_sum = torch.zeros((), device=device)
        for idx in dev_batches:
            src, tgt = (x.to(device) for x in collate(dev_data, idx))
            dev_sum += label_smoothed_loss(raw_model(src, tgt), tgt, cfg.label_smoothing)
        hyps = translate(raw_model, sp, test_src, cfg, device, rank, world)
    return {"rank": rank, "dev_loss": float(dev_sum) / max(len(dev_batches), 1),
            "bleu": sacrebleu_uncased(hyps, test_ref), "bleu_2018": bleu_2018(hyps, test_ref),
            "seconds": round(time.time() - t0, 2)}


def update_frequency(cfg, world: int) -> int:
    """Batches per optimizer update on each rank: recipe_gpus / world for a recipe tuned for recipe_gpus
    GPUs (so the global batch is the recipe's on fewer GPUs too), else 1."""
    if cfg.recipe_gpus is None:
        return 1
    if world > cfg.recipe_gpus or cfg.recipe_gpus % world:
        raise ValueError(f"this preset is a recipe for {cfg.recipe_gpus} GPUs (global batch "
                         f"{cfg.recipe_gpus} x {cfg.max_tokens} tokens): it runs on a number of ranks that "
                         f"divides {cfg.recipe_gpus} (fewer accumulate gradients), not on {world}")
    return cfg.recipe_gpus // world


def wrap_model(raw_model: torch.nn.Module, device: torch.device, distributed: bool,
               compile_model: bool) -> tuple[torch.nn.Module, DistributedDataParallel | None]:
    """(the module to train, its DDP wrapper or None). With --compile, torch.compile(DDP(model)): the
    order PyTorch documents for compiled DDP, where Dynamo splits the graph at DDP's bucket boundaries so
    that each bucket's all-reduce still overlaps the rest of the backward pass."""
    ddp = None
    model = raw_model
    if distributed:
        model = ddp = DistributedDataParallel(raw_model,
                                              device_ids=[device.index] if device.type == "cuda" else None)
    if compile_model:
        model = torch.compile(model)
    return model, ddp


def train_step(model, ddp, micro_batches, optimizer, scaler, scheduler, cfg, device, amp_dtype,
               use_amp) -> torch.Tensor:
    """One optimizer update from the (src [B, S], tgt [B, T]) batches of micro_batches; returns the mean
    label-smoothed loss as a device tensor (no host sync).

    Gradient accumulation as fairseq's --update-freq: each batch's loss is divided by their number, and
    DDP all-reduces only during the last backward (no_sync before). fp16 runs scale the loss (GradScaler).
    """
    n = len(micro_batches)
    total = torch.zeros((), device=device)
    for j, (src, tgt) in enumerate(micro_batches):
        src, tgt = src.to(device, non_blocking=True), tgt.to(device, non_blocking=True)
        with ddp.no_sync() if ddp is not None and j < n - 1 else contextlib.nullcontext():
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = model(src, tgt)
            loss = label_smoothed_loss(logits, tgt, cfg.label_smoothing) / n
            scaler.scale(loss).backward()
        total += loss.detach()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return total


def groups(iterable, n: int):
    """Consecutive lists of n items (the last may be shorter)."""
    it = iter(iterable)
    while group := list(itertools.islice(it, n)):
        yield group


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = PRESETS[args.config]
    max_epochs = args.max_epochs if args.max_epochs is not None else cfg.max_epochs
    target = args.target if args.target is not None else cfg.target_bleu
    data_dir, output_dir = Path(args.data_dir), Path(args.output_dir)

    # --- distributed: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; plain python is one process ---
    # torchrun (even with one process, as `make gpu-check` runs it) means DDP and collectives.
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", 0)) if distributed else 0
    world = int(os.environ.get("WORLD_SIZE", 1)) if distributed else 1
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    use_amp = args.amp if args.amp is not None else device.type == "cuda"
    amp_dtype = precision_policy(torch.cuda.get_device_capability(device) if device.type == "cuda" else None)

    def log(msg: str) -> None:
        if rank == 0:
            print(f"[{BENCHMARK}] {msg}", file=sys.stderr, flush=True)

    output_dir.mkdir(parents=True, exist_ok=True)
    mllogger, handlers = setup_mllog(output_dir, rank)
    mllogger.event(key=constants.CACHE_CLEAR, value=True)
    mllogger.start(key=constants.INIT_START)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    mllogger.event(key=constants.SUBMISSION_ORG, value=os.environ.get("SUBMISSION_ORG", "reference"))
    mllogger.event(key=constants.SUBMISSION_PLATFORM, value=f"{world}x{device_name}")
    mllogger.event(key=constants.SUBMISSION_DIVISION, value="closed")
    mllogger.event(key=constants.SUBMISSION_STATUS, value="research")
    mllogger.event(key=constants.SUBMISSION_BENCHMARK, value=BENCHMARK)
    mllogger.event(key=constants.SUBMISSION_POC_NAME,
                   value=os.environ.get("SUBMISSION_POC_NAME", "reference"))
    mllogger.event(key=constants.SUBMISSION_ENTRY, value=os.environ.get("SUBMISSION_ENTRY", "reference"))

    # --- seed: drawn once and shared, so every rank uses the same value ---
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    checkpoint_path = output_dir / "checkpoint.pt"
    ckpt = None
    if args.resume and checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        seed = int(ckpt["seed"])  # the data order depends on it
    if distributed:
        t = torch.tensor([seed], dtype=torch.long, device=device)  # NCCL needs a CUDA tensor
        dist.broadcast(t, 0)
        seed = int(t.item())
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    mllogger.event(key=constants.SEED, value=seed)

    try:
        update_freq = update_frequency(cfg, world)
        check_data_dir(data_dir, args.config)
        manifest = load_manifest(data_dir)
        if manifest.get("preprocessing") != preprocessing(cfg):
            raise DataError(f"{preprocessed_dir(data_dir)} was made for --config {manifest['config']}: "
                            f"run `python3 preprocess.py {data_dir} --config {args.config}`")
    except (DataError, ValueError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        for h in handlers:
            h.close()
        if distributed:
            dist.destroy_process_group()
        return 1
    vocab_size = manifest["vocab_size"]  # from the vocabulary, never a constant (spec pitfall 1)

    # --- model and optimizer ---
    raw_model = Transformer(vocab_size, cfg).to(device)
    optimizer = torch.optim.Adam(raw_model.parameters(), lr=1.0, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                 eps=cfg.adam_epsilon, fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.d_model, cfg.learning_rate,
                                                                       cfg.warmup_steps))
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)
    start_epoch, step, evals = 0, 0, []
    if ckpt is not None:
        raw_model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, step, evals = int(ckpt["epoch"]), int(ckpt["step"]), list(ckpt["evals"])
        torch.set_rng_state(ckpt["rng"])
        if scaler.is_enabled() and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        mllogger.event(key="resumed", value=True,
                       metadata={"from_epoch": start_epoch, "note": "a resumed run is not an MLPerf result"})
        log(f"resumed from {checkpoint_path} after epoch {start_epoch} (step {step})")
    model, ddp = wrap_model(raw_model, device, distributed, args.compile)

    peak_lr = lr_lambda(cfg.d_model, cfg.learning_rate, cfg.warmup_steps)(cfg.warmup_steps)
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=cfg.max_tokens * world * update_freq,
                   metadata={"unit": "tokens per side (max, padded)"})
    mllogger.event(key=constants.GRADIENT_ACCUMULATION_STEPS, value=update_freq)
    mllogger.event(key=constants.OPT_NAME, value=constants.ADAM)
    mllogger.event(key="opt_base_learning_rate", value=peak_lr)
    mllogger.event(key=constants.OPT_LR_WARMUP_STEPS, value=cfg.warmup_steps)
    mllogger.event(key=constants.OPT_ADAM_BETA_1, value=cfg.adam_beta1)
    mllogger.event(key=constants.OPT_ADAM_BETA_2, value=cfg.adam_beta2)
    mllogger.event(key=constants.OPT_ADAM_EPSILON, value=cfg.adam_epsilon)
    mllogger.event(key=constants.MAX_SEQUENCE_LENGTH, value=cfg.max_length, metadata={"method": "discard"})
    mllogger.end(key=constants.INIT_STOP)

    if distributed:
        dist.barrier()
    mllogger.start(key=constants.RUN_START)
    run_start = time.time()

    # --- data (after RUN_START: reading it is on the clock) ---
    train_data = load_encoded(data_dir, "train")
    dev_data = load_encoded(data_dir, "dev")
    test_src, test_ref, _ = read_parallel(data_dir / TEST_CORPUS)
    sp = spm.SentencePieceProcessor(model_file=str(preprocessed_dir(data_dir) / SPM_MODEL))
    _, too_long = epoch_batches(train_data, cfg.max_tokens, cfg.max_length, seed, 1)
    mllogger.event(key=constants.TRAIN_SAMPLES, value=len(train_data) - too_long)
    mllogger.event(key=constants.EVAL_SAMPLES, value=len(test_src))
    log(f"{len(train_data)} training pairs, {too_long} longer than {cfg.max_length} tokens dropped; "
        f"{len(test_src)} test sentences; vocab {vocab_size}; world {world}; device {device}; "
        f"amp {use_amp and amp_dtype}; {update_freq} batch(es) of <= {cfg.max_tokens} tokens per update")

    status, epoch, bleu = constants.ABORTED, start_epoch, float("nan")
    for epoch in range(start_epoch + 1, max_epochs + 1):
        mllogger.start(key=constants.BLOCK_START, metadata={"first_epoch_num": epoch, "epoch_count": 1})
        mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": epoch})
        batches, _ = epoch_batches(train_data, cfg.max_tokens, cfg.max_length, seed, epoch, rank, world)
        batches = batches[: len(batches) - len(batches) % update_freq]  # whole updates only
        updates = len(batches) // update_freq
        model.train()
        loss_sum = torch.zeros((), device=device)
        t0, tokens = time.time(), 0
        # On CUDA, worker processes pad the next batches into pinned memory while the GPU trains.
        cuda = device.type == "cuda"
        loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=2 if cuda else 0,
                                             collate_fn=partial(collate, train_data), pin_memory=cuda)
        for i, micro_batches in enumerate(groups(loader, update_freq)):
            loss = train_step(model, ddp, micro_batches, optimizer, scaler, scheduler, cfg, device,
                              amp_dtype, use_amp)
            step += 1
            loss_sum += loss
            tokens += sum(int(tgt.numel()) for _, tgt in micro_batches)
            if rank == 0 and (i + 1) % args.log_every == 0:
                rate = tokens * world / (time.time() - t0)
                eta = (updates - i - 1) * (time.time() - t0) / (i + 1)
                log(f"epoch {epoch} step {i + 1}/{updates} loss {loss.item():.3f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} {rate:.0f} tgt tok/s, epoch ETA {eta:.0f} s")
        mean_loss = loss_sum / max(updates, 1)
        if distributed:
            dist.all_reduce(mean_loss)
            mean_loss /= world
        mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": epoch})
        mean_loss = float(mean_loss)
        if not math.isfinite(mean_loss):
            log(f"epoch {epoch}: non-finite training loss, stopping")
            mllogger.end(key=constants.BLOCK_STOP, metadata={"first_epoch_num": epoch})
            break

        # --- evaluation: dev loss (informational) and newstest2014 BLEU with beam search ---
        mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": epoch})
        model.eval()
        own = evaluate(raw_model, dev_data, sp, test_src, test_ref, cfg, device, amp_dtype, use_amp, rank,
                       world)
        dev_loss, tok_bleu = own["dev_loss"], own["bleu_2018"]
        ranks = [own]
        value = torch.tensor([own["bleu"]], dtype=torch.float64, device=device)
        if distributed:  # every rank decides on the mean of the ranks' own BLEU (equal if they agree)
            dist.all_reduce(value)
            value /= world
            ranks = [{} for _ in range(world)]
            dist.all_gather_object(ranks, own)  # each rank's own numbers, for the record (summary.json)
        bleu = float(value.item())
        seconds = time.time() - run_start
        mllogger.event(key=constants.EVAL_ACCURACY, value=bleu / 100.0, metadata={"epoch_num": epoch})
        mllogger.event(key="bleu_2018", value=tok_bleu, metadata={"epoch_num": epoch, "method":
                       "uncased tokenised BLEU as compute_bleu.py @ v0.5"})
        mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": epoch})
        mllogger.end(key=constants.BLOCK_STOP, metadata={"first_epoch_num": epoch})
        evals.append({"epoch": epoch, "seconds": round(seconds, 2), "value": bleu, "bleu_2018": tok_bleu,
                      "train_loss": mean_loss, "dev_loss": dev_loss, "step": step,
                      "eval_seconds": own["seconds"], "ranks": ranks})
        log(f"epoch {epoch}: train loss {mean_loss:.3f}, dev loss {dev_loss:.3f}, BLEU {bleu:.2f} "
            f"(sacreBLEU uncased), {tok_bleu:.2f} (2018 tokenised), {seconds:.0f} s since run start")
        if rank == 0:
            save_checkpoint(checkpoint_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step, "evals": evals,
                "seed": seed, "rng": torch.get_rng_state(), "scaler": scaler.state_dict()})
        if bleu >= target:
            status = constants.SUCCESS
            break

    rank_values = [bleu]
    if distributed:  # the BLEU each rank decided on
        rank_values = [None] * world
        dist.all_gather_object(rank_values, bleu)
        dist.barrier()
    mllogger.end(key=constants.RUN_STOP, metadata={"status": status, "epoch_num": epoch})
    seconds = time.time() - run_start
    if rank == 0:
        summary = {"benchmark": BENCHMARK, "metric": "bleu", "higher_is_better": True, "target": target,
                   "reached": evals[-1]["value"] if evals else None, "success": status == constants.SUCCESS,
                   "epochs": epoch, "seconds": round(seconds, 2), "seed": seed, "world_size": world,
                   "steps": step, "resumed": ckpt is not None, "rank_values": rank_values, "evals": evals}
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        log(f"run {'reached' if status == constants.SUCCESS else 'missed'} the target {target} "
            f"(BLEU {bleu:.2f}) after {epoch} epochs, {seconds:.0f} s")
    # Every rank waits here for rank 0's summary.json: when one process exits non-zero (target missed),
    # torchrun stops the others at once and could kill rank 0 before it has written it.
    if distributed:
        dist.barrier()
    for h in handlers:
        h.close()
    if distributed:
        dist.destroy_process_group()
    return 0 if status == constants.SUCCESS else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
