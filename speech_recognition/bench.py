#!/usr/bin/env python3
"""Training throughput of the full-size DeepSpeech2 presets (reference: 5 x biGRU-800, 38.1M parameters;
v05: 3 x GRU-2560, 103.8M).

    ./bench.py                                        # both presets, 12.3 s utterances, AMP on CUDA
    ./bench.py --device cpu --config reference --duration 2 --steps 3

One JSON line per preset: utterances/s and seconds of audio per second of full training steps (conv front end,
GRUs, classifier, log_softmax + CTC loss, backward, gradient clipping, SGD Nesterov) on random spectrograms of
one duration (default 12.3 s, the mean LibriSpeech-960 training utterance; spec section 1.5) and random
transcripts of 15 characters per second, and the TFLOP/s that implies by the spec's analytic count (2 FLOPs
per multiply-accumulate, backward = 2 x forward; about 157 GFLOP per 12.3 s utterance for reference, 395 for
v05). Feature extraction and augmentation are not included. When a batch does not fit in GPU memory, it is
halved until it does; batch_size names what ran. Imports only torch, the standard library and this folder's
model and config.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from config import HOP, NUM_CLASSES, NUM_FREQ, PRESETS, SAMPLE_RATE
from model import DeepSpeech2, train_flops


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--config", action="append", choices=["reference", "v05"], default=None,
                   help="repeatable (default: reference and v05)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: 5 on CUDA, 1 on CPU)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's (5 reference, 8 v05)")
    p.add_argument("--duration", type=float, default=12.3,
                   help="seconds of audio per utterance (default 12.3)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + loss scaling before Ampere); default: on CUDA")
    return p


def measure(name: str, batch: int, frames: int, device, steps: int, warmup: int, amp: bool, half) -> float:
    """Seconds per training step."""
    cfg = PRESETS[name]
    torch.manual_seed(0)
    model = DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                        cfg.conv_channels).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and half == torch.float16)
    features = torch.randn(batch, 1, NUM_FREQ, frames, device=device)
    lengths = torch.full((batch,), frames)
    chars = max(1, int(15 * frames * HOP / SAMPLE_RATE))
    targets = torch.randint(1, NUM_CLASSES, (batch * chars,), device=device)
    target_lengths = torch.full((batch,), chars)

    def step():
        with torch.autocast(device.type, dtype=half, enabled=amp):
            logits, out_steps = model(features, lengths)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        loss = F.ctc_loss(log_probs, targets, out_steps, target_lengths, reduction="sum", zero_infinity=True)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss / batch).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
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


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    steps = args.steps or (20 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    half = torch.bfloat16 if not cuda or torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    frames = 1 + int(args.duration * SAMPLE_RATE) // HOP
    for name in args.config or ["reference", "v05"]:
        cfg = PRESETS[name]
        requested = args.batch_size or cfg.global_batch_size
        batch = requested
        while True:
            try:
                seconds = measure(name, batch, frames, device, steps, warmup, amp, half)
                break
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch <= 1:
                    raise
                batch //= 2
        rate = batch / seconds
        flops = train_flops(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, frames,
                            conv_channels=cfg.conv_channels)
        print(json.dumps({
            "benchmark": "speech_recognition", "config": name, "device": device_name, "batch_size": batch,
            "requested_batch_size": requested, "duration_s": args.duration, "samples_per_s": round(rate, 3),
            "audio_s_per_s": round(rate * args.duration, 2), "tflops": round(rate * flops / 1e12, 4),
            "step_ms": round(seconds * 1e3, 1), "steps": steps,
            "amp": str(half).removeprefix("torch.") if amp else "off", "threads": torch.get_num_threads(),
            "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
