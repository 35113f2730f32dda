#!/usr/bin/env python3
"""Throughput of Mask R-CNN R-50-FPN training and inference at 800x1333 (the reference model and sizes).

    ./bench.py                                  # on CUDA: 8 images per step, bf16 (fp16 before Ampere)
    ./bench.py --device cpu --batch-size 1 --steps 1 --eval-images 1

Two JSON lines:
  what=train_step  images/s of full training steps (forward with the five losses, backward, SGD with momentum
                   in the reference's two parameter groups) of the 81-class reference model on random
                   800x1333 images (no resize: the transform's scale is 1; padded to 800x1344) with 7 objects
                   each (COCO's average; random boxes 32-300 px, box-shaped masks, random classes), and
                   the TFLOP/s that gives with the FLOPs of one step as torch's FlopCounterMode counts
                   them (convolutions and matrix products, forward and backward, frozen parts without
                   weight gradients: ~1.16 TFLOP per image, spec section 1 estimates ~1.15-1.6).
  what=eval        images/s of the evaluation as train.py runs it on the clock: `--eval-batch-size` images
                   per forward (1000 proposals each, box head, up to 100 detections, mask head), each image's
                   masks pasted into it in one operation, thresholded and reduced to their RLE run boundaries,
                   copied to the host; COCO's RLE strings and AP are made in a worker process, off the clock,
                   and are not included. The score threshold is set to 0 here, so that untrained weights still
                   yield the full 100 detections per image a trained model's inference pays for.
When a batch does not fit in GPU memory, it is halved until it does; batch_size names what ran.
Imports torch, torchvision, the standard library and this folder's model and config only.
"""

import argparse
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops import FrozenBatchNorm2d

from config import PRESETS, model_kwargs
from model import build_model, compile_trunk, param_groups, precision_policy, to_detections

HEIGHT, WIDTH, OBJECTS = 800, 1333, 7
MINIVAL_IMAGES = 5000  # COCO 2014 minival (val2017), the v0.5 evaluation set


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed training steps (default: 20 on CUDA, 2 on CPU; 0 skips training)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: 5 on CUDA, 1 on CPU)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per training step (default: 8 on CUDA, 1 on CPU; the reference: 2 per GPU)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + loss scaling before Ampere); default: on CUDA")
    p.add_argument("--eval-images", type=int, default=None,
                   help="images through the evaluation (default: 64 on CUDA, 2 on CPU; 0 skips it)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the convolutional trunk as train.py --compile does (compiled in the "
                        "untimed warmup)")
    p.add_argument("--eval-batch-size", type=int, default=None,
                   help="images per evaluation forward (default: the reference preset's on CUDA, 1 on CPU)")
    return p


def random_batch(batch: int, device: torch.device, generator: torch.Generator) -> tuple[list, list]:
    """`batch` uint8 RGB images (3, 800, 1333) and targets with OBJECTS boxes (xyxy), labels and masks."""
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.randint(0, 256, (3, HEIGHT, WIDTH), dtype=torch.uint8, generator=generator))
        corner = torch.rand(OBJECTS, 2, generator=generator) * torch.tensor([WIDTH - 300.0, HEIGHT - 300.0])
        size = 32 + torch.rand(OBJECTS, 2, generator=generator) * 268
        boxes = torch.cat([corner, corner + size], 1)
        masks = torch.zeros(OBJECTS, HEIGHT, WIDTH, dtype=torch.uint8)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes.round().long().tolist()):
            mask[y0:y1, x0:x1] = 1
        targets.append({"boxes": boxes.to(device), "masks": masks.to(device),
                        "labels": torch.randint(1, 81, (OBJECTS,), generator=generator).to(device)})
    return [im.to(device) for im in images], targets


@torch.no_grad()
def calibrate(model, images: list) -> None:
    """Set each frozen BN's scale and shift so that its output has zero mean and unit variance per channel on
    `images` (one pass, in forward order).

    Random conv weights under BN layers that never normalise give activations of ~1e4 at C5, which decode to
    degenerate proposals; R-50.pkl's scales keep them O(1). This gives the random body that property, so that
    proposals, RoI sampling and detections cost what they cost with the real weights.
    """
    def pre_hook(bn, inputs):  # x [N, C, H, W] -> (x - mean_c) / std_c
        x = inputs[0].float()
        std = x.std(dim=(0, 2, 3)).clamp(min=1e-3)
        bn.weight.copy_(1 / std)
        bn.bias.copy_(-x.mean(dim=(0, 2, 3)) / std)

    hooks = [m.register_forward_pre_hook(pre_hook) for m in model.backbone.body.modules()
             if isinstance(m, FrozenBatchNorm2d)]
    was_training = model.training
    model.eval()
    image_list, _ = model.transform([im.flip(0).float() for im in images])  # as MaskRCNNR50FPN.forward
    model.backbone.body(image_list.tensors)
    for h in hooks:
        h.remove()
    model.train(was_training)


def measure_training(batch: int, device: torch.device, steps: int, warmup: int, amp: bool,
                     half: torch.dtype, compiled: bool = False) -> tuple[float, float]:
    """(seconds per training step, FLOPs per image)."""
    cfg = PRESETS["reference"]
    torch.manual_seed(0)
    model = build_model(**model_kwargs(cfg)).to(device).train()
    groups = param_groups(model, cfg)  # the reference's: biases at 2x lr without weight decay
    for group in groups:
        group["lr"] = group["base_lr"]
    optimizer = torch.optim.SGD(groups, momentum=cfg.momentum, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    images, targets = random_batch(batch, device, torch.Generator().manual_seed(0))
    calibrate(model, images)

    def step():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            losses = model(images, targets)
        loss = sum(v.float() for v in losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    counter = FlopCounterMode(display=False)
    with counter:  # one untimed step, counted (eager)
        step()
    if compiled:
        compile_trunk(model)
    for _ in range(warmup + int(compiled)):  # compiled in the first of these
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - tic) / steps, counter.get_total_flops() / batch


@torch.no_grad()
def measure_eval(n_images: int, batch: int, device: torch.device, amp: bool, half: torch.dtype,
                 compiled: bool = False) -> tuple[float, float]:
    """(images per second, FLOPs per image) of the evaluation as train.py runs it on the clock: `batch` images
    per forward, each image's masks pasted in one operation, thresholded and reduced to their RLE run
    boundaries, copied to the host (model.to_detections); COCO's RLE strings and AP are made in a worker."""
    torch.manual_seed(0)
    model = build_model(**model_kwargs(PRESETS["reference"])).to(device).eval()
    model.roi_heads.score_thresh = 0.0  # 100 detections per image, as a trained model has (see the docstring)
    images, _ = random_batch(batch, device, torch.Generator().manual_seed(1))
    calibrate(model, images)

    def step():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            outputs = model(images)
        return to_detections(list(range(batch)), outputs)  # ends with the copy to the host: a sync

    counter = FlopCounterMode(display=False)
    with counter:
        detections = step()
    assert all(len(d["boxes"]) == PRESETS["reference"].box_detections_per_img for d in detections)
    if compiled:
        compile_trunk(model)
        step()  # compiled here, untimed
    steps = max(1, -(-n_images // batch))
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - tic), counter.get_total_flops() / batch


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    steps = args.steps if args.steps is not None else (20 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    half = precision_policy(torch.cuda.get_device_capability(device) if cuda else None)
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    if cuda:
        torch.backends.cudnn.benchmark = True
    common = {"benchmark": "object_detection", "device": name, "image_size": f"{HEIGHT}x{WIDTH}",
              "amp": str(half).removeprefix("torch.") if amp else "off", "compile": args.compile}
    requested = args.batch_size or (8 if cuda else 1)
    batch = requested
    while steps:
        try:
            seconds, flops = measure_training(batch, device, steps, warmup, amp, half, args.compile)
            break
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if batch <= 1:
                raise
            batch //= 2
    if steps:
        rate = batch / seconds
        print(json.dumps({**common, "what": "train_step", "batch_size": batch,
                          "requested_batch_size": requested, "samples_per_s": round(rate, 3),
                          "tflops": round(rate * flops / 1e12, 4),
                          "tflop_per_image": round(flops / 1e12, 3), "step_ms": round(seconds * 1e3, 1),
                          "steps": steps, "objects_per_image": OBJECTS, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}), flush=True)
    n_images = args.eval_images if args.eval_images is not None else (64 if cuda else 2)
    if n_images:
        eval_batch = args.eval_batch_size or (PRESETS["reference"].eval_batch_size if cuda else 1)
        rate, flops = measure_eval(n_images, eval_batch, device, amp, half, args.compile)
        # minival_seconds: the clock's share of one evaluation of the 5,000 minival images on one device at
        # this rate (divide by the number of GPUs: each scores its shard); COCO scoring runs in the worker.
        print(json.dumps({**common, "what": "eval", "batch_size": eval_batch, "samples_per_s": round(rate, 3),
                          "tflops": round(rate * flops / 1e12, 4), "tflop_per_image": round(flops / 1e12, 3),
                          "images": n_images, "minival_seconds": round(MINIVAL_IMAGES / rate, 1)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
