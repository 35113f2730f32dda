#!/usr/bin/env python3
"""Training throughput of the reference-size Seq-CNN (emb 1024, 1024 filters, widths 3 and 4,
vocabulary 5,147) on random reviews of 230 tokens (about the IMDB mean after Paddle's
tokeniser), batch 128, Adam as train.py runs it (fused torch Adam for the convolutions and FC,
2018 Paddle's lazy Adam for the embedding table, optim.py). Prints one JSON line:

    python3 bench.py [--device cuda] [--steps 50] [--batch-size 128] [--seq-len 230]
                     [--amp/--no-amp] [--compile]

tflops counts the spec's 3 x 2 x (3 + 4) x 1024 x 1024 FLOPs per token (~10.1 GFLOP per
230-token review); the embedding, ELU and FC are left out. All reviews of the batch have the same
length, as one of train.py's length buckets would. Imports only torch and this folder's
config/model/optim, so it runs on a bare GPU machine. Precision as train.py: bf16 autocast from
compute capability 8.0, fp16 + GradScaler below (config.amp_dtype_for).
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F

from config import PRESETS, amp_dtype_for
from model import build_model, train_flops_per_token
from optim import build_optimizers, rows_in_batch

VOCAB = 5147   # spec §2, the real vocabulary incl. <unk>


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=50, help="timed training steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=230, help="tokens per review")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="autocast (bf16; fp16 + GradScaler below compute capability 8.0); "
                        "default on for CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = p.parse_args(argv)

    cfg = PRESETS["reference"]
    device = torch.device(args.device)
    use_amp = args.amp if args.amp is not None else device.type == "cuda"
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    dtype = getattr(torch, amp_dtype_for(capability))
    torch.manual_seed(0)
    model = build_model(cfg, VOCAB).to(device)
    opt, emb_opt = build_optimizers(model, cfg, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and dtype == torch.float16)
    fwd = torch.compile(model) if args.compile else model
    B, L = args.batch_size, args.seq_len
    ids = torch.randint(0, VOCAB, (B, L), device=device)
    lengths = torch.full((B,), L, device=device)
    labels = torch.randint(0, 2, (B,), device=device)
    rows = torch.zeros(VOCAB, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        emb_opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            loss = F.cross_entropy(fwd(ids, lengths).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        rows.zero_()
        scaler.step(emb_opt, rows_in_batch(ids, lengths, VOCAB, out=rows))
        scaler.update()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    samples_per_s = B * args.steps / seconds
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({
        "benchmark": "sentiment_analysis", "model": "seq_cnn", "device": name,
        "batch_size": B, "seq_len": L, "amp": str(dtype).split(".")[1] if use_amp else "fp32",
        "compile": args.compile, "steps": args.steps, "embedding_adam": cfg.embedding_adam,
        "samples_per_s": round(samples_per_s, 2),
        "tflops": round(samples_per_s * L * train_flops_per_token(cfg) / 1e12, 3),
        "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
