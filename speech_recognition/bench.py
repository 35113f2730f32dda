#!/usr/bin/env python3
"""Training throughput of the full-size DeepSpeech2 presets (reference: 5 x biGRU-800, 38.1M parameters;
v05: 3 x GRU-2560, 103.8M), from the loader to the optimizer step.

    ./bench.py                                        # both presets, 12.3 s utterances, AMP on CUDA
    ./bench.py --device cpu --config reference --duration 2 --steps 3
    ./bench.py --config reference --data-dir ./data   # real FLACs with sox tempo/gain augmentation

One JSON line per preset: utterances/s and seconds of audio per second of full training steps as train.py
runs them: batches from a torch DataLoader (loader workers, features.collate, pinned memory on CUDA), the
spectrograms computed on the device (features.spectrograms: one batched torch.stft), the conv front end,
GRUs, classifier, log_softmax + CTC loss, backward, gradient clipping and SGD Nesterov, with the precision of
model.precision_policy. The utterances are random 16-bit noise of one duration (default 12.3 s, the mean
LibriSpeech-960 training utterance; spec section 1.5) with random transcripts of 15 characters per second;
with --data-dir they are the real files nearest that duration in DATA_DIR's manifests, decoded and augmented
by sox as in training (needs soundfile and sox). input_wait_ms is the mean time a step waited for its batch
(near zero unless the loader is the bottleneck). TFLOP/s by the spec's analytic count (2 FLOPs per
multiply-accumulate, backward = 2 x forward; about 157 GFLOP per 12.3 s utterance for reference, 395 for v05;
the STFT is not counted). When a batch does not fit in GPU memory, it is halved until it does; batch_size
names what ran. Without --data-dir it imports only torch, the standard library and this folder's model,
config and features.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

import features
from config import HOP, NUM_CLASSES, PRESETS, SAMPLE_RATE
from model import DeepSpeech2, precision_policy, train_flops

CHARS_PER_SECOND = 15


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
                   help="model.precision_policy's mixed precision (default: on CUDA)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: the preset's)")
    p.add_argument("--data-dir", default=None,
                   help="read real utterances from DATA_DIR/manifests/*.csv, augmented as in training")
    return p


class SyntheticSpeech(torch.utils.data.Dataset):
    """Item i -> (`samples` of random 16-bit noise at the 2018 scale, random transcript indices, "")."""

    def __init__(self, samples: int, chars: int):
        self.samples, self.chars = samples, chars

    def __len__(self):
        return 1 << 30

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        audio = torch.randint(-8192, 8192, (self.samples,), generator=g).float()
        transcript = torch.randint(1, NUM_CLASSES, (self.chars,), generator=g).tolist()
        return audio * features.INT16_TO_2018_SCALE, transcript, ""


def real_speech(data_dir: str, duration: float, count: int):
    """A SpeechDataset (tempo/gain augmentation on) of the `count` utterances of DATA_DIR's manifests whose
    durations are nearest `duration`, longest first."""
    import glob
    import os

    import data  # soundfile and sox: only for --data-dir

    manifests = glob.glob(os.path.join(data_dir, data.MANIFEST_DIR, "*.csv"))
    subsets = sorted(os.path.basename(p)[: -len(".csv")] for p in manifests)
    if not subsets:
        raise SystemExit(f"bench.py: no manifests in {data_dir}/manifests (run ./preprocess.py {data_dir})")
    utts = data.read_manifests(data_dir, subsets)
    nearest = sorted(utts, key=lambda u: abs(u.samples - duration * SAMPLE_RATE))[:count]
    cfg = PRESETS["reference"]
    return data.SpeechDataset(data_dir, sorted(nearest, key=lambda u: -u.samples), True, 0, cfg.tempo_range,
                              cfg.gain_range_db)


def measure(name: str, batch: int, dataset, device, steps: int, warmup: int, precision, workers: int):
    """-> (seconds per step, utterance-seconds of audio per step, mean input wait per step in seconds)."""
    cfg = PRESETS[name]
    torch.manual_seed(0)
    model = DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                        cfg.conv_channels, rnn_dtype=precision.rnn).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
    batches = [list(range(k * batch, (k + 1) * batch)) for k in range(warmup + steps)]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=features.collate,
                                         num_workers=workers, pin_memory=device.type == "cuda")

    def step(waveforms, frames, targets, target_lengths):
        spect = features.spectrograms(waveforms.to(device, non_blocking=True),
                                      frames.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=precision.autocast, enabled=precision.autocast is not None):
            logits, out_steps = model(spect, frames)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        loss = F.ctc_loss(log_probs, targets.to(device, non_blocking=True), out_steps, target_lengths,
                          reduction="sum", zero_infinity=True)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss / len(target_lengths)).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()

    it = iter(loader)
    for _ in range(warmup):
        waveforms, frames, targets, target_lengths, _ = next(it)
        step(waveforms, frames, targets, target_lengths)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wait, frames_total = 0.0, 0
    tic = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        waveforms, frames, targets, target_lengths, _ = next(it)
        wait += time.perf_counter() - t0
        frames_total += int(frames.sum())
        step(waveforms, frames, targets, target_lengths)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - tic) / steps
    return seconds, frames_total * HOP / SAMPLE_RATE / steps, wait / steps


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    steps = args.steps or (20 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    amp = args.amp if args.amp is not None else cuda
    precision = precision_policy(torch.cuda.get_device_capability(device) if cuda else None, amp)
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    samples = int(args.duration * SAMPLE_RATE)
    frames = features.num_frames(samples)
    for name in args.config or ["reference", "v05"]:
        cfg = PRESETS[name]
        workers = args.workers if args.workers is not None else cfg.loader_workers
        requested = args.batch_size or cfg.batch_size
        batch = requested
        while True:
            dataset = real_speech(args.data_dir, args.duration, batch * (warmup + steps)) if args.data_dir \
                else SyntheticSpeech(samples, max(1, int(CHARS_PER_SECOND * args.duration)))
            try:
                seconds, audio_s, wait = measure(name, batch, dataset, device, steps, warmup, precision,
                                                 workers)
                break
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch <= 1:
                    raise
                batch //= 2
        rate = batch / seconds
        # FLOPs of the utterances as run (augmented real ones vary in length): per-step audio at `frames`.
        flops = train_flops(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, frames,
                            conv_channels=cfg.conv_channels) * (audio_s / batch) / (samples / SAMPLE_RATE)
        print(json.dumps({
            "benchmark": "speech_recognition", "config": name, "device": device_name, "batch_size": batch,
            "requested_batch_size": requested, "duration_s": round(audio_s / batch, 3),
            "samples_per_s": round(rate, 3), "audio_s_per_s": round(audio_s / seconds, 2),
            "tflops": round(rate * flops / 1e12, 4), "step_ms": round(seconds * 1e3, 1),
            "input_wait_ms": round(wait * 1e3, 2), "steps": steps, "workers": workers,
            "data": "files + sox" if args.data_dir else "synthetic",
            "amp": str(precision.autocast).removeprefix("torch.") if precision.autocast else "off",
            "rnn": str(precision.rnn).removeprefix("torch."), "threads": torch.get_num_threads(),
            "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
