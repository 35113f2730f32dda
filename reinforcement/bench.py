#!/usr/bin/env python3
"""Throughput of the reference-size Minigo network (9x9, 32 filters, 9 blocks): training and inference.

    ./bench.py                        # the device found (cuda, else cpu), batch 16 (the reference's)
    ./bench.py --device cpu --steps 20 --batch-size 256

Prints one JSON line per configuration:
- "train": SGD steps (forward + backward + update) on random planes, samples/s and TFLOP/s at the spec's
  83 MFLOP per training sample (spec 1.6: 3 x the 27.7 MFLOP forward).
- "inference": forward passes of batches of 8 positions (the virtual-loss batch of self-play and gating),
  positions/s and TFLOP/s at 27.7 MFLOP each. Self-play costs ~200 such evaluations per stored position
  plus the Python tree search; the loop's progress lines (train.py) report self-play positions/s.
Imports only torch, numpy and this folder's model/config (it runs on a bare GPU machine).
"""

import argparse
import json
import time

import torch

from config import PRESETS
from model import DualNet

FORWARD_FLOP = 27.7e6  # per position, spec 1.6
TRAIN_FLOP = 3 * FORWARD_FLOP


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=50, help="measured steps per configuration (after 5 warm-up)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch (reference: 16)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 before Ampere) (default: on CUDA)")
    return p


def timed(fn, steps: int, device: torch.device) -> float:
    for _ in range(5):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tic


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = args.amp if args.amp is not None else device.type == "cuda"
    half = torch.bfloat16 if device.type != "cuda" or torch.cuda.get_device_capability(device) >= (8, 0) \
        else torch.float16
    cfg = PRESETS["reference"]
    net = DualNet(cfg.board_size, bn_momentum=cfg.bn_momentum).to(device)
    n = cfg.board_size
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    planes = torch.randint(0, 2, (args.batch_size, 17, n, n), device=device).float()
    pi = torch.softmax(torch.randn(args.batch_size, n * n + 1, device=device), 1)
    z = torch.randint(0, 2, (args.batch_size,), device=device).float() * 2 - 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    def train_step():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            logits, value = net(planes)
            loss = -(pi * torch.log_softmax(logits.float(), 1)).sum(1).mean() + \
                torch.nn.functional.mse_loss(value.float(), z)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    net.train()
    seconds = timed(train_step, args.steps, device)
    rate = args.steps * args.batch_size / seconds
    print(json.dumps({"benchmark": "reinforcement", "mode": "train", "device": name,
                      "batch_size": args.batch_size, "amp": amp, "samples_per_s": round(rate, 1),
                      "tflops": round(rate * TRAIN_FLOP / 1e12, 4)}), flush=True)

    net.eval()
    batch = planes[:8] if args.batch_size >= 8 else torch.randint(0, 2, (8, 17, n, n), device=device).float()

    @torch.no_grad()
    def infer():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            net(batch)

    seconds = timed(infer, args.steps, device)
    rate = args.steps * len(batch) / seconds
    print(json.dumps({"benchmark": "reinforcement", "mode": "inference", "device": name,
                      "batch_size": len(batch), "amp": amp, "samples_per_s": round(rate, 1),
                      "tflops": round(rate * FORWARD_FLOP / 1e12, 4)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
