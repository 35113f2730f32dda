#!/usr/bin/env python3
"""Training throughput of Transformer (big) on whatever device is found; one JSON line.

    python3 bench.py                               # CUDA if available, AMP by capability, 128 x 32 tokens
    python3 bench.py --device cpu --steps 2 --batch-size 4
    python3 bench.py --decode                      # and beam-search translation: a second JSON line

A "sample" is one sentence pair; the synthetic batch holds --batch-size pairs of --seq-len tokens per side
(128 x 32 = the reference's 4,096 tokens per side). TFLOP/s uses the spec's count (section 1): training
= 3 x forward, forward = 2 FLOPs per multiply-add of every dense layer, i.e. per source token
2 (L_enc (4d^2 + 2 d f) + 2 L_dec d^2) and per target token 2 (L_dec (6d^2 + 2 d f) + d V) — 0.53 and
0.74 GFLOP for big; attention scores (<1 %) are ignored. Imports only torch, numpy and model/config.

--decode also times model.beam_search as the evaluation runs it (beam 4, alpha 0.6, source length + 50):
--steps batches of --decode-batch-size random source sentences of --seq-len tokens, on the untrained
model, so every hypothesis runs to the length limit (the most decoding steps a batch can take); samples/s
is translated sentences per second.
"""

import argparse
import json
import time

import torch

from config import PRESETS
from model import Transformer, beam_search, label_smoothed_loss, precision_policy


def train_flops_per_pair(cfg, vocab: int, src_len: int, tgt_len: int) -> float:
    d, f = cfg.d_model, cfg.ffn_dim
    per_src = 2 * (cfg.encoder_layers * (4 * d * d + 2 * d * f) + cfg.decoder_layers * 2 * d * d)
    per_tgt = 2 * (cfg.decoder_layers * (6 * d * d + 2 * d * f) + d * vocab)
    return 3.0 * (per_src * src_len + per_tgt * tgt_len)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--batch-size", type=int, default=128, help="sentence pairs per batch")
    p.add_argument("--seq-len", type=int, default=32, help="tokens per side of every pair")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (fp16 + GradScaler where bf16 is unsupported); default on for CUDA")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference")
    p.add_argument("--decode", action="store_true", help="also time beam-search translation (a second line)")
    p.add_argument("--decode-batch-size", type=int, default=None,
                   help="sentences per beam-search batch (default: the preset's decode_batch_size)")
    args = p.parse_args(argv)

    cfg = PRESETS[args.config]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = args.amp if args.amp is not None else device.type == "cuda"
    dtype = precision_policy(torch.cuda.get_device_capability(device) if device.type == "cuda" else None)
    vocab = cfg.vocab_size
    torch.manual_seed(0)
    model = Transformer(vocab, cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(cfg.adam_beta1, cfg.adam_beta2),
                           eps=cfg.adam_epsilon, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=amp and dtype == torch.float16)
    src = torch.randint(3, vocab, (args.batch_size, args.seq_len), device=device)
    tgt = torch.randint(3, vocab, (args.batch_size, args.seq_len), device=device)
    src[:, -1] = tgt[:, -1] = 1  # EOS

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            logits = model(src, tgt)
        loss = label_smoothed_loss(logits, tgt, cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - t0) / args.steps
    samples_per_s = args.batch_size / seconds
    flops = train_flops_per_pair(cfg, vocab, args.seq_len, args.seq_len) * samples_per_s
    threads = torch.get_num_threads()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    precision = str(dtype).replace("torch.", "") if amp else "fp32"
    print(json.dumps({
        "benchmark": "transformer", "device": name, "config": args.config, "batch_size": args.batch_size,
        "seq_len": args.seq_len, "amp": precision,
        "step_s": round(seconds, 4), "samples_per_s": round(samples_per_s, 2),
        "tokens_per_s": round(2 * args.seq_len * samples_per_s, 1), "tflops": round(flops / 1e12, 4),
        "params_m": round(sum(q.numel() for q in model.parameters()) / 1e6, 1)}), flush=True)

    if args.decode:
        model.eval()
        n = args.decode_batch_size or cfg.decode_batch_size
        src = torch.randint(3, vocab, (n, args.seq_len), device=device,
                            generator=torch.Generator(device).manual_seed(1))
        src[:, -1] = 1  # EOS

        def translate():
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                return beam_search(model, src, cfg.beam_size, cfg.length_penalty_alpha,
                                   cfg.extra_decode_length)

        translate()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            hyps = translate()
        sync()
        seconds = (time.perf_counter() - t0) / args.steps
        print(json.dumps({
            "benchmark": "transformer", "device": name, "config": args.config, "mode": "beam_search",
            "batch_size": n, "seq_len": args.seq_len, "beam_size": cfg.beam_size, "amp": precision,
            "batch_s": round(seconds, 4), "samples_per_s": round(n / seconds, 2),
            "output_tokens_per_batch": sum(len(h) + 1 for h in hyps), "tflops": None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
