#!/usr/bin/env python3
"""Throughput of ResNet-50 v1.5 training at 224 px, and of the ImageNet input pipeline alone.

    ./bench.py                                  # on CUDA: batch 256, bf16 (fp16 before Ampere), channels_last
    ./bench.py --device cpu --batch-size 8 --steps 2 --loader-images 256

Two JSON lines:
  what=train_step  images/s of full training steps (forward, cross-entropy, backward, SGD momentum with the
                   BN-excluded weight decay) of the 1000-class model on random 224x224 batches, and the
                   TFLOP/s that implies at 3 x 8.18 GFLOP per image (spec section 1: 4.089 GMAC forward).
  what=loader      images/s of train.py's input pipeline alone, on the same device: --workers loader processes
                   read the files and draw TF's crop windows; the training process decodes the batch on the
                   device (nvJPEG on CUDA, libjpeg-turbo on CPU) and crops, resizes, flips and normalises it
                   there in one pass. On JPEGs written here at 500x375 (about the ImageNet average) into a
                   temporary folder; tflops is null.
When a batch does not fit in GPU memory, it is halved until it does; batch_size names what ran.
Imports torch, torchvision, numpy, the standard library and this folder's model, config and data (data.py
itself imports only torch, torchvision and numpy; tests/test_data.py checks that).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import data  # imports only torch, torchvision and numpy, so bench.py still runs on a bare GPU machine
from config import PRESETS
from model import forward_macs, param_groups, resnet50


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed training steps (default: 30 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: 10 on CUDA, 1 on CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="per step (default: 256 on CUDA, 16 on CPU)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + loss scaling before Ampere); default: on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--workers", type=int, default=None,
                   help="loader processes (default: the reference preset's, capped by the CPU count)")
    p.add_argument("--loader-images", type=int, default=None,
                   help="images through the loader (default: 4096 on CUDA, 256 on CPU; 0 skips it)")
    return p


def measure_training(batch: int, device: torch.device, steps: int, warmup: int, amp: bool,
                     half: torch.dtype, compile_model: bool) -> float:
    """Seconds per training step."""
    cfg = PRESETS["reference"]
    torch.manual_seed(0)
    model = resnet50(1000).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=0.1, momentum=cfg.momentum,
                                fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    step_model = torch.compile(model) if compile_model else model
    x = torch.randn(batch, 3, 224, 224, device=device).mul_(60).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - tic) / steps


def write_jpegs(root: str, n: int) -> None:
    """n smooth-noise 500x375 JPEGs (quality 90) in root/train/n00000000/."""
    from torchvision.io import encode_jpeg

    folder = os.path.join(root, "train", "n00000000")
    os.makedirs(folder)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        low = torch.rand(1, 3, 12, 16, generator=g) * 255
        img = F.interpolate(low, size=(375, 500), mode="bilinear", align_corners=False)[0]
        img = (img + torch.randn(img.shape, generator=g) * 8).clamp(0, 255).to(torch.uint8)
        with open(os.path.join(folder, f"n00000000_{i}.JPEG"), "wb") as f:
            f.write(encode_jpeg(img, quality=90).numpy().tobytes())


def measure_loader(device: torch.device, n_images: int, batch: int, workers: int) -> float:
    """Images per second through the training input pipeline of train.py: `workers` loader processes read the
    files and draw the crops; this process decodes on the device and crops, resizes and normalises whole
    batches there (data.device_batch, data.normalize), up to the float batch the model would get."""
    cfg = PRESETS["reference"]
    with tempfile.TemporaryDirectory() as root:
        write_jpegs(root, min(n_images, 512))
        dataset = data.ImageSet(os.path.join(root, "train"), cfg, train=True, seed=0)
        loader = data.make_loader(dataset, batch, 0, 1, workers, device, cfg.loader_timeout)
        seen, epoch, tic = 0, 0, None
        while seen < n_images:
            dataset.epoch = epoch
            loader.sampler.set_epoch(epoch)
            for batch_ in loader:
                images, _ = data.device_batch(batch_, dataset, device)
                images = data.normalize(images, cfg.mean_rgb)
                if tic is None:  # the first batch pays for starting the workers
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    tic = time.perf_counter()
                    continue
                seen += len(images)
                if seen >= n_images:
                    break
            epoch += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return seen / (time.perf_counter() - tic)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    steps = args.steps or (30 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    half = torch.bfloat16 if not cuda or torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    if cuda:
        torch.backends.cudnn.benchmark = True
    requested = args.batch_size or (256 if cuda else 16)
    batch = requested
    while True:
        try:
            seconds = measure_training(batch, device, steps, warmup, amp, half, args.compile)
            break
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if batch <= 1:
                raise
            batch //= 2
    rate = batch / seconds
    flops = 3 * 2 * forward_macs(224)  # training ~ 3 x forward; 2 FLOP per multiply-accumulate
    common = {"benchmark": "image_classification", "device": name}
    print(json.dumps({**common, "what": "train_step", "batch_size": batch, "requested_batch_size": requested,
                      "samples_per_s": round(rate, 2), "tflops": round(rate * flops / 1e12, 4),
                      "step_ms": round(seconds * 1e3, 2), "steps": steps, "image_size": 224,
                      "amp": str(half).removeprefix("torch.") if amp else "off", "compile": args.compile,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    n_images = args.loader_images if args.loader_images is not None else (4096 if cuda else 256)
    if n_images:
        workers = args.workers if args.workers is not None else min(PRESETS["reference"].num_workers,
                                                                     os.cpu_count() or 1)
        loader_batch = min(requested, 256)
        rate = measure_loader(device, n_images, loader_batch, workers)
        print(json.dumps({**common, "what": "loader", "batch_size": loader_batch,
                          "samples_per_s": round(rate, 1), "tflops": None, "workers": workers,
                          "decode": "nvJPEG" if cuda else "cpu", "image_size": "500x375 -> 224"}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
