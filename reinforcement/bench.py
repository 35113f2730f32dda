#!/usr/bin/env python3
"""Throughput of the reference-size Minigo network (9x9, 32 filters, 9 blocks): training, inference and
self-play.

    ./bench.py                        # the device found (cuda, else cpu), batch 16 (the reference's)
    ./bench.py --device cpu --steps 20 --batch-size 256
    ./bench.py --device cpu --selfplay-games 16 --selfplay-moves 16    # --selfplay-games 0 skips self-play

Prints one JSON line per configuration:
- "train": SGD steps (forward + backward + update) on random planes, samples/s and TFLOP/s at the spec's
  83 MFLOP per training sample (spec 1.6: 3 x the 27.7 MFLOP forward).
- "inference": forward passes of batches of 8 positions (the virtual-loss batch of self-play and gating),
  positions/s and TFLOP/s at 27.7 MFLOP each.
- "selfplay": the part that dominates the benchmark's time. G games at the reference settings (9x9, 200
  readouts, 8 virtual losses, resignation as in self-play) played in lockstep by one process with
  selfplay.play_selfplay_games, exactly as a self-play worker plays them: every step, the leaves of all
  games in flight go to the network (a random reference-size one, on --device) in one call. It stops after
  G x M moves (or at the first move after --selfplay-seconds). samples_per_s = self-play positions
  (moves, i.e. training examples) per second; batch_size = the mean size of the network calls; tflops
  counts the network evaluations at 27.7 MFLOP each (the tree search in Python is not counted).
Imports only torch, numpy and this folder's modules (model, config, and selfplay with the go, features,
mcts, data and metrics modules it uses, all torch/numpy only), so it runs on a bare GPU machine.
"""

import argparse
import json
import time

import numpy as np
import torch

import go
import mcts
import selfplay
from config import PRESETS, Config
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
    p.add_argument("--selfplay-games", type=int, default=None,
                   help="self-play games in lockstep (default: 64 on CUDA, 16 on CPU; 0 skips self-play)")
    p.add_argument("--selfplay-moves", type=int, default=16,
                   help="moves per game: self-play stops after games x moves moves in all (default: 16)")
    p.add_argument("--selfplay-seconds", type=float, default=60,
                   help="or at the first move after this many seconds (default: 60)")
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


class _BudgetSpent(Exception):
    """Raised from the last counted move to end play_selfplay_games early."""


def measure_selfplay(cfg: Config, net: torch.nn.Module, device: torch.device, games: int, moves: int,
                     seconds: float = float("inf"), amp: bool = False,
                     half: torch.dtype = torch.bfloat16) -> dict:
    """Self-play positions/s of `games` games in lockstep (selfplay.play_selfplay_games, unchanged).

    play_selfplay_games builds its players as mcts.MCTSPlayer; for the measurement that name points to a
    subclass whose play_move counts the moves and ends the games (by an exception) after games x moves
    moves or at the first move after `seconds`, unless they all end before. Network calls are counted by a
    NetworkEvaluator subclass. Returns positions/s, moves, network calls and their batch sizes."""
    batch_sizes: list[int] = []
    played = [0]  # moves, over all games
    budget = games * moves

    class CountingEvaluator(selfplay.NetworkEvaluator):
        def run_many(self, positions):
            batch_sizes.append(len(positions))
            return super().run_many(positions)

    class CountingPlayer(mcts.MCTSPlayer):
        def play_move(self, move: int) -> None:
            super().play_move(move)
            played[0] += 1
            if played[0] >= budget or time.perf_counter() - tic >= seconds:
                raise _BudgetSpent

    evaluator = CountingEvaluator(net, device, seed=0)
    seeds = list(range(games))
    # As selfplay_task: resignation disabled in resign_disable_pct of the games.
    resign = [np.random.default_rng(seed).random() >= cfg.resign_disable_pct for seed in seeds]
    with torch.autocast(device.type, dtype=half, enabled=amp):
        warm_up = [go.Position(cfg.board_size, cfg.komi)] * (games * cfg.parallel_readouts)
        evaluator.run_many(warm_up)  # CUDA/cuDNN initialisation outside the clock
        batch_sizes.clear()
        real_player = mcts.MCTSPlayer
        mcts.MCTSPlayer = CountingPlayer
        tic = time.perf_counter()
        try:
            selfplay.play_selfplay_games(evaluator, cfg, seeds, resign)
        except _BudgetSpent:
            pass
        finally:
            mcts.MCTSPlayer = real_player
        elapsed = time.perf_counter() - tic  # run_many copies its answers back: nothing is left in flight
    evaluations = sum(batch_sizes)
    return {"games": games, "moves": played[0], "seconds": round(elapsed, 2),
            "readouts": cfg.selfplay_readouts, "virtual_losses": cfg.parallel_readouts,
            "network_calls": len(batch_sizes), "evaluations": evaluations,
            "batch_size": round(evaluations / max(len(batch_sizes), 1), 1),
            "max_batch": max(batch_sizes, default=0),
            "positions_per_s": played[0] / elapsed if elapsed > 0 else 0.0,
            "evaluations_per_s": evaluations / elapsed if elapsed > 0 else 0.0}


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

    games = args.selfplay_games if args.selfplay_games is not None else 64 if device.type == "cuda" else 16
    if games > 0 and args.selfplay_moves > 0:
        torch.manual_seed(0)  # a fresh random network: the trained-on-noise one above could resign at once
        sp_net = DualNet(cfg.board_size, bn_momentum=cfg.bn_momentum).to(device)
        r = measure_selfplay(cfg, sp_net, device, games, args.selfplay_moves, args.selfplay_seconds,
                             amp, half)
        print(json.dumps({"benchmark": "reinforcement", "mode": "selfplay", "device": name,
                          "batch_size": r["batch_size"], "amp": amp,
                          "samples_per_s": round(r["positions_per_s"], 2),
                          "tflops": round(r["evaluations_per_s"] * FORWARD_FLOP / 1e12, 4),
                          **{k: r[k] for k in ("games", "moves", "readouts", "virtual_losses", "max_batch",
                                               "network_calls", "seconds")}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
