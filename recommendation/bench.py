#!/usr/bin/env python3
"""Training throughput of the reference-size NeuMF (ml-20m: 138,493 users, 26,744 items; 31.8M parameters).

    ./bench.py                          # batch 2048 (reference) and 1,048,576 (NVIDIA v0.5), AMP on CUDA
    ./bench.py --device cpu --batch-size 2048 --steps 5 --optimizer adam
    torchrun --nproc_per_node 2 bench.py --batch-size 2048    # data parallel, the global batch split

One JSON line per batch size and optimizer: samples/s of full training steps (forward, BCE loss, backward,
optimizer) on random (user, item, label) batches, and the TFLOP/s that implies at 0.64 MFLOP per sample
(spec section 1; the embeddings and Adam are memory traffic, not counted). Optimizers: "adam", the
reference's dense Adam over all parameters (fused), and "lazy_adam", lazy Adam on sparse embedding
gradients plus the fused Adam for the MLP (optim.py). Under torchrun the steps are train.py's: DDP over the
MLP, the embeddings' rows gathered over ranks; --dense-allreduce measures plain DDP over every parameter
instead (127 MB of dense embedding gradient all-reduced a step), the way train.py did before.
When a batch does not fit in GPU memory, it is halved until it does; batch_size names what ran.
Imports only torch, numpy, the standard library and this folder's model, config and optim.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import optim
from config import ML20M_ITEMS, ML20M_USERS, PRESETS
from model import NeuMF, autocast_dtype, train_flops_per_sample


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per batch size (default: 20 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: 5 on CUDA, 1 on CPU)")
    p.add_argument("--batch-size", type=int, action="append", default=None,
                   help="global batch, repeatable (default: 2048 and 1048576)")
    p.add_argument("--optimizer", choices=["adam", "lazy_adam"], action="append", default=None,
                   help="repeatable (default: both)")
    p.add_argument("--dense-allreduce", action="store_true",
                   help="torchrun only: plain DDP over all parameters, dense embedding gradients (adam)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + loss scaling before Ampere); default: on CUDA")
    return p


def measure(batch_size: int, device: torch.device, steps: int, warmup: int, amp: bool, half: torch.dtype,
            lazy: bool, dense_allreduce: bool) -> float:
    """Seconds per training step at this global batch size (split over the ranks under torchrun)."""
    cfg = PRESETS["reference"]
    distributed = dist.is_initialized()
    world_size = dist.get_world_size() if distributed else 1
    torch.manual_seed(0)  # the same model on every rank
    sparse = lazy or (distributed and not dense_allreduce)
    model = NeuMF(ML20M_USERS, ML20M_ITEMS, cfg.mf_dim, cfg.mlp_layer_sizes, sparse=sparse).to(device)
    net = model
    if distributed:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
            if dense_allreduce else optim.data_parallel(model, device)
    optimizers = optim.make_optimizers(model, cfg.learning_rate, (cfg.adam_beta1, cfg.adam_beta2),
                                       cfg.adam_epsilon, lazy)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    local = batch_size // world_size
    torch.manual_seed(1 + (dist.get_rank() if distributed else 0))  # each rank its own samples
    batches = [(torch.randint(ML20M_USERS, (local,), device=device),
                torch.randint(ML20M_ITEMS, (local,), device=device),
                (torch.rand(local, device=device) < 0.2).float()) for _ in range(2)]

    def step(i):
        users, items, labels = batches[i % len(batches)]
        with torch.autocast(device.type, dtype=half, enabled=amp):
            logits = net(users, items)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if distributed and not dense_allreduce:
            optim.exchange_embedding_grads(model.embeddings(), lazy)
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()

    for i in range(warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if distributed:
        dist.barrier()
    tic = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if distributed:
        dist.barrier()
    return (time.perf_counter() - tic) / steps


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # under torchrun
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if distributed:
        if cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    optimizers = args.optimizer or ["adam", "lazy_adam"]
    if args.dense_allreduce and (not distributed or "lazy_adam" in optimizers):
        raise SystemExit("bench.py: --dense-allreduce needs torchrun and --optimizer adam")
    steps = args.steps or (20 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    half = autocast_dtype(torch.cuda.get_device_capability(device) if cuda else None)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    cfg = PRESETS["reference"]
    flops = train_flops_per_sample(cfg.mf_dim, cfg.mlp_layer_sizes)
    rank = dist.get_rank() if distributed else 0
    world_size = dist.get_world_size() if distributed else 1
    for requested in args.batch_size or [2048, 1 << 20]:
        for optimizer in optimizers:
            batch = requested
            while True:
                try:
                    seconds = measure(batch, device, steps, warmup, amp, half, optimizer == "lazy_adam",
                                      args.dense_allreduce)
                    break
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    if batch <= 1 or distributed:  # ranks could disagree on halving: stop instead
                        raise
                    batch //= 2
            rate = batch / seconds
            if rank == 0:
                exchange = "none" if not distributed else "dense_allreduce" if args.dense_allreduce \
                    else "embedding_rows"
                print(json.dumps({
                    "benchmark": "recommendation", "device": name, "batch_size": batch,
                    "requested_batch_size": requested, "optimizer": optimizer, "world_size": world_size,
                    "embedding_exchange": exchange, "samples_per_s": round(rate, 1),
                    "tflops": round(rate * flops / 1e12, 4), "step_ms": round(seconds * 1e3, 3),
                    "steps": steps, "amp": str(half).removeprefix("torch.") if amp else "off",
                    "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
