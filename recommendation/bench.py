#!/usr/bin/env python3
"""Training throughput of the reference-size NeuMF (ml-20m: 138,493 users, 26,744 items; 31.8M parameters).

    ./bench.py                          # batch 2048 (reference) and 1,048,576 (NVIDIA v0.5), AMP on CUDA
    ./bench.py --device cpu --batch-size 2048 --steps 5

One JSON line per batch size: samples/s of full training steps (forward, BCE loss, backward, dense Adam over
all parameters as the reference did, fused) on random (user, item, label) batches, and the TFLOP/s that
implies at 0.64 MFLOP per sample (spec section 1; the embeddings and Adam are memory traffic, not counted).
When a batch does not fit in GPU memory, it is halved until it does; batch_size names what ran.
Imports only torch, numpy, the standard library and this folder's model and config.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from config import ML20M_ITEMS, ML20M_USERS, PRESETS
from model import NeuMF, train_flops_per_sample


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per batch size (default: 20 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: 5 on CUDA, 1 on CPU)")
    p.add_argument("--batch-size", type=int, action="append", default=None,
                   help="repeatable (default: 2048 and 1048576)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + loss scaling before Ampere); default: on CUDA")
    return p


def measure(batch_size: int, device: torch.device, steps: int, warmup: int, amp: bool,
            half: torch.dtype) -> float:
    """Seconds per training step at this batch size."""
    cfg = PRESETS["reference"]
    torch.manual_seed(0)
    model = NeuMF(ML20M_USERS, ML20M_ITEMS, cfg.mf_dim, cfg.mlp_layer_sizes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate,
                                 betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    batches = [(torch.randint(ML20M_USERS, (batch_size,), device=device),
                torch.randint(ML20M_ITEMS, (batch_size,), device=device),
                (torch.rand(batch_size, device=device) < 0.2).float()) for _ in range(2)]

    def step(i):
        users, items, labels = batches[i % len(batches)]
        with torch.autocast(device.type, dtype=half, enabled=amp):
            logits = model(users, items)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for i in range(warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - tic) / steps


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    steps = args.steps or (20 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    half = torch.bfloat16 if not cuda or torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    cfg = PRESETS["reference"]
    flops = train_flops_per_sample(cfg.mf_dim, cfg.mlp_layer_sizes)
    for requested in args.batch_size or [2048, 1 << 20]:
        batch = requested
        while True:
            try:
                seconds = measure(batch, device, steps, warmup, amp, half)
                break
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch <= 1:
                    raise
                batch //= 2
        rate = batch / seconds
        print(json.dumps({
            "benchmark": "recommendation", "device": name, "batch_size": batch,
            "requested_batch_size": requested, "samples_per_s": round(rate, 1),
            "tflops": round(rate * flops / 1e12, 4), "step_ms": round(seconds * 1e3, 3), "steps": steps,
            "amp": str(half).removeprefix("torch.") if amp else "off", "threads": torch.get_num_threads(),
            "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
