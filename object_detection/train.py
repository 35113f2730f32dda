#!/usr/bin/env python3
"""Train Mask R-CNN R-50-FPN on COCO until bbox and mask AP both reach their targets (MLPerf v0.5 reference).

    ./train.py --data-dir ./data                                    # one process, a GPU if there is one
    torchrun --nproc_per_node 8 train.py --data-dir ./data          # 8 processes, same global batch
    ./make_tiny_dataset.py /tmp/tiny && ./train.py --data-dir /tmp/tiny --config tiny --device cpu

DATA_DIR holds the COCO 2014 archives (train2014.zip, val2014.zip, annotations_trainval2014.zip,
coco_annotations_minival.tgz) and R-50.pkl; when train2014/, val2014/ or annotations/ are missing, extract.py
unpacks the archives first (before INIT_START: untimed, as the reference's unzip; run_and_time.sh runs it
before its clock starts). What is timed (RUN_START to RUN_STOP): reading the COCO jsons, every epoch's input
pipeline and training steps, the evaluation on every minival image after every epoch, and the per-epoch
checkpoints. SGD with momentum, weight decay on weights only, biases at 2x the learning rate, linear warmup
from 1/3, x0.1 steps (per iteration): spec section 3 and config.py. `--global-batch-size` scales the learning
rate linearly and the iteration counts inversely.

Evaluation after epoch e (evaluation.py): inference of minival with epoch e's weights on every rank, then
COCO scoring in a worker process of rank 0 while epoch e+1 trains, as the optimised v0.6/v0.7 submissions did
(`--no-async-eval`: score in line, as the v0.5 reference). Every `eval_poll_every` iterations all ranks learn
whether the score has arrived and met both targets, and then stop at that same iteration: the time to train
includes the iterations trained while the score was computed. At most one evaluation is in flight.

Writes OUTPUT_DIR/mlperf.log (:::MLLOG lines, also on stdout), summary.json and checkpoint.pt; progress goes
to stderr. Exit status 0 when both targets were reached, 1 when not, 2 on bad input, 3 when the COCO
evaluation failed.
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from mlperf_logging import mllog
from mlperf_logging.mllog import constants
from torch.nn.parallel import DistributedDataParallel

import data
import evaluation
import extract
import model as model_lib
from config import PRESETS, Config, iterations_per_epoch, lr_factor, model_kwargs, scale_config
from evaluation import EvalError

BENCHMARK = "object_detection"
HERE = os.path.dirname(os.path.abspath(__file__))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"),
                   help="COCO 2014 archives or their folders, and R-50.pkl (default: $DATA_DIR or ./data)")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="mlperf.log, summary.json, checkpoint.pt (default: $OUTPUT_DIR or ./output)")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference", help="hyperparameter preset")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: drawn at random, shared by all ranks)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast, fp16 + loss scaling before Ampere (default: off: fp32)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the convolutional trunk (ResNet + FPN + RPN head), dynamic shapes")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="stop after this many epochs (default: as many as the preset's iterations need)")
    p.add_argument("--target", type=float, nargs=2, default=None, metavar=("BBOX", "SEGM"),
                   help="override the preset's targets (0.377 0.339)")
    p.add_argument("--global-batch-size", type=int, default=None,
                   help="override the preset's global batch: lr x B/B0, decay/max iterations x B0/B")
    p.add_argument("--async-eval", action=argparse.BooleanOptionalAction, default=True,
                   help="score each epoch's COCO results in a worker process while training goes on "
                        "(default: on; off: wait for the score after every epoch)")
    return p


def set_lr(optimizer: torch.optim.Optimizer, it: int, cfg: Config) -> None:
    factor = lr_factor(it, cfg)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


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
    # A fresh logger (and name) per run: main() may run several times in one process (the tests).
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


def train_one_epoch(model, optimizer, scaler, loader, cfg, device, autocast, first_iter: int,
                    log_prefix: str, log_every: int, poll) -> tuple[torch.Tensor, int, bool]:
    """One pass over this rank's batches -> (sum of losses, iterations, stopped). It ends early at
    cfg.max_iters, or (stopped) when poll(), called by every rank every cfg.eval_poll_every iterations, says
    that an earlier epoch's evaluation has met both targets."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    it = first_iter
    tic = time.time()
    for i, (images, targets) in enumerate(loader):
        if it >= cfg.max_iters:
            break
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
                   for t in targets]
        set_lr(optimizer, it, cfg)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            losses = model(images, targets)
        loss = sum(v.float() for v in losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach()
        it += 1
        if (i + 1) % cfg.eval_poll_every == 0 and poll():
            return loss_sum, it - first_iter, True
        if log_every and (i + 1) % log_every == 0:
            rate = (i + 1) / (time.time() - tic)
            parts = " ".join(f"{k.removeprefix('loss_')} {v.item():.3f}" for k, v in losses.items())
            print(f"{log_prefix} iter {i + 1}/{len(loader)} loss {loss.item():.4f} ({parts}) "
                  f"lr {optimizer.param_groups[0]['lr']:.5f} {rate:.2f} it/s", file=sys.stderr, flush=True)
    return loss_sum, it - first_iter, False


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.target is not None and min(args.target) <= 0:
        parser.error("--target: both APs must be > 0 (summary.json divides by them)")
    cfg = PRESETS[args.config]
    if args.global_batch_size is not None:
        cfg = scale_config(cfg, args.global_batch_size)
    if args.target is not None:
        cfg = dataclasses.replace(cfg, bbox_target=args.target[0], segm_target=args.target[1])
    if args.max_epochs is not None:
        cfg = dataclasses.replace(cfg, max_epochs=args.max_epochs)

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
    try:
        if cfg.global_batch_size % world_size:
            raise SystemExit(f"train.py: error: the global batch {cfg.global_batch_size} does not split over "
                             f"{world_size} processes; pass --global-batch-size {2 * world_size} (2 images "
                             "per GPU as the reference) or another multiple: lr and schedule scale with it")
        os.makedirs(args.output_dir, exist_ok=True)
        status = [0]
        if rank == 0:  # run_and_time.sh has done it already; `./train.py` on its own unpacks here
            try:
                extract.unpack_archives(args.data_dir, lambda m: print(f"extract.py: {m}", file=sys.stderr))
            except extract.ExtractError as e:
                print(f"train.py: error: {e}", file=sys.stderr)
                status = [2]
        if distributed:
            dist.broadcast_object_list(status, src=0)  # the other ranks wait for the unpacking, or stop too
        if status[0]:
            return status[0]
        mllog.config(logger=make_mllog_logger(args.output_dir, rank), root_dir=HERE)
        mllogger = mllog.get_mllogger()
        try:
            return train(args, cfg, mllogger, device, rank, world_size)
        except data.DataError as e:
            print(f"train.py: error: {e}", file=sys.stderr)
            return 2
        except EvalError as e:
            print(f"train.py: error: {e}", file=sys.stderr)
            return 3
        finally:
            for handler in mllogger.logger.handlers:
                handler.close()
    finally:
        if distributed:
            dist.destroy_process_group()


def train(args, cfg: Config, mllogger, device, rank: int, world_size: int) -> int:
    distributed = dist.is_initialized()  # under torchrun, even with one process
    def progress(msg: str, all_ranks: bool = False):
        if rank == 0 or all_ranks:
            print(f"[rank {rank}] {msg}" if distributed else msg, file=sys.stderr, flush=True)

    mllogger.event(key=constants.CACHE_CLEAR, value=False)  # the OS page cache is not dropped (needs root)
    mllogger.start(key=constants.INIT_START)

    if not args.config.startswith("tiny") and os.path.exists(os.path.join(args.data_dir, "tiny.md5")):
        raise data.DataError(f"{args.data_dir} holds tiny.md5 (synthetic data): a reference run on it is "
                             "not a result; use --config tiny, or a DATA_DIR with the real COCO")
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

    # --amp: bf16 autocast from Ampere on, fp16 with loss scaling before; the model's geometry stays fp32.
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    autocast = model_lib.precision_policy(capability) if args.amp else None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)

    local_batch = cfg.global_batch_size // world_size
    env, c = os.environ.get, constants
    for key, value in {  # submission_* from the environment, honest defaults; the recipe from the preset
            c.SUBMISSION_BENCHMARK: c.MASKRCNN, c.SUBMISSION_ORG: env("SUBMISSION_ORG", "reference"),
            c.SUBMISSION_DIVISION: c.CLOSED, c.SUBMISSION_STATUS: c.RESEARCH,
            c.SUBMISSION_PLATFORM: f"{world_size}x{device_name}",
            c.SUBMISSION_POC_NAME: env("SUBMISSION_POC_NAME", "reference"),
            c.SUBMISSION_ENTRY: env("SUBMISSION_ENTRY", "reference"), c.SEED: seed,
            c.GLOBAL_BATCH_SIZE: cfg.global_batch_size, c.OPT_BASE_LR: cfg.base_lr,
            c.OPT_LR_WARMUP_STEPS: cfg.warmup_iters, c.OPT_LR_WARMUP_FACTOR: cfg.warmup_factor,
            c.OPT_LR_DECAY_FACTOR: cfg.decay_factor, c.OPT_LR_DECAY_STEPS: list(cfg.decay_steps),
            # Proposals kept after NMS per image in training (the rules allow counting per image).
            c.NUM_IMAGE_CANDIDATES: cfg.rpn_post_nms_top_n_train,
            c.MIN_IMAGE_SIZE: cfg.min_size, c.MAX_IMAGE_SIZE: cfg.max_size, "opt_name": "sgd",
            "opt_momentum": cfg.momentum, "max_iterations": cfg.max_iters,
            "eval_target": {"BBOX": cfg.bbox_target, "SEGM": cfg.segm_target}}.items():
        mllogger.event(key=key, value=value)
    mllogger.event(key="opt_weight_decay", value=cfg.weight_decay,
                   metadata={"biases": cfg.weight_decay_bias, "bias_lr_factor": cfg.bias_lr_factor})

    raw_model = model_lib.build_model(**model_kwargs(cfg)).to(device)
    if checkpoint is None:  # ImageNet-initialised backbone (read before RUN_START, as the reference's init)
        model_lib.load_c2_backbone(raw_model.backbone.body,
                                   data.read_detectron_weights(os.path.join(args.data_dir, "R-50.pkl")))
    model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else raw_model
    if args.compile:
        model_lib.compile_trunk(raw_model)
    optimizer = torch.optim.SGD(model_lib.param_groups(raw_model, cfg), lr=cfg.base_lr,
                                momentum=cfg.momentum)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    first_epoch, it, evals, unscored_epoch = 1, 0, [], None
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        first_epoch, it, evals = checkpoint["epoch"] + 1, checkpoint["iteration"], checkpoint["evals"]
        # The checkpoint of epoch e was written while e was being scored: score it again from these weights.
        if not any(e["epoch"] == checkpoint["epoch"] for e in evals):
            unscored_epoch = checkpoint["epoch"]
        mllogger.event(key="resumed", value=True, metadata={
            "from_epoch": checkpoint["epoch"], "note": "not an MLPerf result: the clock restarted"})
        progress(f"resumed from {checkpoint_path} after epoch {checkpoint['epoch']}")
        if evals and reached(evals[-1], cfg):
            progress("the checkpointed run had already reached both targets; nothing to do")
            return 0
    mllogger.end(key=constants.INIT_STOP)
    if distributed:
        dist.barrier()
    mllogger.start(key=constants.RUN_START)
    run_start = time.time()

    # ---- timed from here: reading the COCO jsons, training, evaluations, checkpoints ----
    splits = data.coco_splits(args.data_dir)
    train_set = data.CocoDetection(splits["train"], train=True)
    eval_set = data.CocoDetection(splits["eval"], train=False, masks=False)  # pycocotools has the truth
    if len(train_set.category_map.coco_ids) + 1 != cfg.num_classes:
        raise data.DataError(f"{args.data_dir}: {len(train_set.category_map.coco_ids)} categories; the "
                             f"{args.config} preset has {cfg.num_classes - 1}")
    sampler = data.AspectRatioBatchSampler(train_set.aspect_groups(), local_batch, seed, rank, world_size,
                                           cfg.flip_prob)
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=data.collate,
                                         num_workers=0 if device.type == "cpu" else 4,
                                         pin_memory=device.type == "cuda")
    mllogger.event(key=constants.TRAIN_SAMPLES, value=len(train_set))
    mllogger.event(key=constants.EVAL_SAMPLES, value=len(eval_set))
    max_epochs = cfg.max_epochs or math.ceil(cfg.max_iters / len(sampler))
    progress(f"{len(train_set)} training images, {len(sampler)} iterations per epoch (the reference counts "
             f"{iterations_per_epoch(len(train_set), cfg.global_batch_size)}), {len(eval_set)} eval images, "
             f"at most {max_epochs} epochs / {cfg.max_iters} iterations")
    # Rank 0 scores in a worker process, which reads the ground-truth json itself (after RUN_START: timed).
    evaluator = evaluation.Evaluation(eval_set, splits["eval"][0][0], cfg.eval_batch_size, device, autocast,
                                      rank, world_size, args.async_eval)

    def infer_and_submit(epoch_num: int) -> None:
        mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": epoch_num})
        evaluator.submit(raw_model, epoch_num)

    def record(epoch_num: int, accuracy: dict) -> bool:
        """Rank 0, once an epoch's score arrives: the log, summary.json's entry, and the stop rule."""
        seconds = time.time() - run_start
        mllogger.event(key=constants.EVAL_ACCURACY, value=accuracy, metadata={"epoch_num": epoch_num})
        mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": epoch_num})
        evals.append({"epoch": epoch_num, "seconds": round(seconds, 3), "value": scalar(accuracy, cfg),
                      **accuracy})
        progress(f"epoch {epoch_num} eval bbox AP {accuracy['BBOX']:.4f} segm AP {accuracy['SEGM']:.4f} "
                 f"({seconds:.1f} s since run start, iteration {it})")
        return reached(evals[-1], cfg)

    def collect_eval(wait: bool) -> bool:  # every rank at the same points -> whether to stop
        return evaluator.poll(wait, record)

    # MLPerf log per epoch e (the order of NVIDIA's v0.7 asynchronous evaluation; the 0.7.0 checker asks for
    # the keys, not an order): BLOCK_START, EPOCH_START, EPOCH_STOP, BLOCK_STOP, EVAL_START (inference), then
    # EVAL_ACCURACY and EVAL_STOP whenever the score arrives: usually inside epoch e+1, at the latest at its
    # end. A run that stops inside an epoch closes that epoch and block at the stopping iteration.
    stop = False
    epoch = first_epoch - 1
    try:
        if unscored_epoch is not None:  # score the checkpointed epoch before training on
            infer_and_submit(unscored_epoch)
            stop = collect_eval(wait=True)
        for epoch in range(first_epoch, max_epochs + 1):
            if stop or it >= cfg.max_iters:
                epoch -= 1
                break
            block = {"first_epoch_num": epoch, "epoch_count": 1}  # an evaluation after every epoch
            mllogger.start(key=constants.BLOCK_START, metadata=block)
            mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": epoch})
            sampler.set_epoch(epoch)
            torch.manual_seed(epoch_seed(seed, epoch, rank))  # RPN/RoI sampling: a resumed run draws the same
            tic = time.time()
            loss_sum, iters, stop = train_one_epoch(
                model, optimizer, scaler, loader, cfg, device, autocast, it, f"epoch {epoch}",
                cfg.log_every if rank == 0 else 0, poll=lambda: collect_eval(wait=False))
            it += iters
            if distributed:
                dist.all_reduce(loss_sum)
            mean_loss = loss_sum.item() / max(iters * world_size, 1)
            mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": epoch})
            mllogger.end(key=constants.BLOCK_STOP, metadata=block)
            progress(f"epoch {epoch} {'stopped' if stop else 'done'}: {iters} iterations, "
                     f"loss {mean_loss:.4f}, {time.time() - tic:.1f} s")
            if stop:  # the previous epoch's evaluation met both targets while this one trained
                break
            if not math.isfinite(mean_loss):
                progress(f"epoch {epoch}: non-finite loss, stopping")
                break
            # One evaluation in flight at most: take the previous epoch's (on a real run done long ago).
            if collect_eval(wait=True):
                stop = True
                break
            infer_and_submit(epoch)
            if rank == 0:
                # Written while epoch e is scored, so without e's score: --resume runs e's inference again
                # from these weights (the same results) instead of this file carrying them (on the real
                # minival ~500k result dicts, ~200 MB, 6 s to pickle every epoch on the clock). No RNG state
                # needed: every draw comes from (seed, epoch, rank).
                save_checkpoint(checkpoint_path, {
                    "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), "epoch": epoch, "iteration": it, "evals": evals,
                    "seed": seed, "config": args.config})
            stop = collect_eval(wait=not args.async_eval)
        if not stop:  # end of the schedule (or divergence): the last evaluation decides
            stop = collect_eval(wait=True)
        status = constants.SUCCESS if stop else constants.ABORTED
        if distributed:
            dist.barrier()
        mllogger.end(key=constants.RUN_STOP, metadata={"status": status})
        seconds = time.time() - run_start
    finally:  # after RUN_STOP: the worker's exit (about a second) is not part of the run
        evaluator.close()
    success = status == constants.SUCCESS
    scored = f" with epoch {evals[-1]['epoch']}'s weights" if success and evals else ""
    progress(f"{'reached' if success else 'did not reach'} bbox AP {cfg.bbox_target} and segm AP "
             f"{cfg.segm_target}{scored}; trained {it} iterations (into epoch {epoch}) in {seconds:.1f} s "
             "(RUN_START to RUN_STOP)")
    if rank == 0:
        # "epochs": the last epoch trained, wholly or in part (with an asynchronous evaluation, the one during
        # which the successful score arrived); evals[-1]["epoch"]: the last epoch scored.
        summary = {"benchmark": BENCHMARK, "metric": "min(AP/target)",  # of BBOX and SEGM
                   "higher_is_better": True, "target": 1.0, "targets": {"BBOX": cfg.bbox_target,
                                                                         "SEGM": cfg.segm_target},
                   "reached": evals[-1]["value"] if evals else None, "success": success, "epochs": epoch,
                   "iterations": it, "seconds": round(seconds, 3), "seed": seed, "world_size": world_size,
                   "resumed": checkpoint is not None, "async_eval": args.async_eval, "evals": evals}
        with open(os.path.join(args.output_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    # Every rank waits here for rank 0's summary.json: when one process exits non-zero (target missed),
    # torchrun stops the others at once and could kill rank 0 before it has written it.
    if distributed:
        dist.barrier()
    return 0 if success else 1


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one rank's epoch (the RPN and RoI heads sample anchors and proposals with it)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def scalar(accuracy: dict, cfg: Config) -> float:
    """summary.json's one number per evaluation: the smaller of the two AP/target ratios (>= 1: both met)."""
    return round(min(accuracy["BBOX"] / cfg.bbox_target, accuracy["SEGM"] / cfg.segm_target), 6)


def reached(entry: dict, cfg: Config) -> bool:
    return entry["BBOX"] >= cfg.bbox_target and entry["SEGM"] >= cfg.segm_target


if __name__ == "__main__":
    sys.exit(main())
