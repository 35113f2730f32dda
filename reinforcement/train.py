#!/usr/bin/env python3
"""Minigo 9x9: the self-play -> train -> evaluate -> gate loop until 40 % pro-move prediction (MLPerf v0.5).

    ./download_dataset.sh ./data && ./train.py --data-dir ./data       # one process, workers = preset's
    torchrun --nnodes 4 --nproc_per_node 1 ... train.py --data-dir ./data   # self-play over several nodes
    ./make_tiny_dataset.py /tmp/tiny && ./train.py --data-dir /tmp/tiny --config tiny --device cpu

One generation (one MLPerf "epoch", spec 3.2): the current best model plays games_per_generation self-play
games in worker processes (split over the ranks); their examples join a window of the newest window_size;
examples_per_generation / 16 SGD steps continue training (loss and optimiser: trainer below); the new model
is saved, scored by move prediction on the SGF games in DATA_DIR (metrics.py: the quality; the tiny preset
stops instead on the new model's win rate against the random generation-0 model, winrate_games_per_side
games per colour, no resignation), and plays the gating match against the best model
(eval_games_per_side per colour), becoming the best at >= gating_win_pct wins (55 %).
As in the reference, gating does not gate training: training continues from the new weights either way
(spec pitfall 1). The run stops at the first generation (>= min_generations) whose quality_metric reaches
the target, or at max_generations. Everything from RUN_START on is timed: self-play, training, evaluation and
gating. Writes OUTPUT_DIR/mlperf.log, summary.json, checkpoint.pt, models/ and window/; exit 0 on success.

The trainer: loss = CE(softmax(logits), pi) + MSE(v, z) + 1e-4 * 1/2 sum w^2 (kernels and trunk BN
gamma/beta, no biases); SGD with momentum 0.9 (not Nesterov), batch 16, piecewise-constant learning rate
on the global step (spec 1.4). Batches are drawn uniformly from the window: the reference keeps each
example with probability 0.05 out of a 100k shuffle buffer and repeats forever, the same sampling.
"""

import argparse
import dataclasses
import json
import logging
import multiprocessing
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from mlperf_logging import mllog
from mlperf_logging.mllog import constants

import data
import go
import mcts
import metrics
import model as model_lib
import selfplay
from config import PRESETS, Config

BENCHMARK = "reinforcement"
HERE = os.path.dirname(os.path.abspath(__file__))


def build_model(cfg: Config) -> model_lib.DualNet:
    return model_lib.DualNet(cfg.board_size, cfg.filters, cfg.fc_width, cfg.blocks, cfg.bn_momentum)


def make_optimizer(net: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    return torch.optim.SGD(net.parameters(), lr=cfg.lr_values[0], momentum=cfg.momentum)


def learning_rate(cfg: Config, step: int) -> float:
    """Piecewise constant: lr_values[i] until lr_boundaries[i] (0.01 / 0.001 / 0.0001 at 1M / 2M steps)."""
    for boundary, lr in zip(cfg.lr_boundaries, cfg.lr_values):
        if step < boundary:
            return lr
    return cfg.lr_values[len(cfg.lr_boundaries)]


def loss_terms(net: torch.nn.Module, planes: torch.Tensor, pi: torch.Tensor, z: torch.Tensor,
               cfg: Config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(policy CE, value MSE, L2 term) of one batch; planes (B, 17, N, N), pi (B, N*N+1), z (B,)."""
    logits, value = net(planes)
    policy_loss = -(pi * F.log_softmax(logits, dim=1)).sum(1).mean()
    value_loss = F.mse_loss(value, z)
    l2 = cfg.l2_strength * 0.5 * sum((p * p).sum() for p in model_lib.l2_parameters(net))
    return policy_loss, value_loss, l2


def train_steps(net: torch.nn.Module, optimizer: torch.optim.Optimizer, examples: dict[str, np.ndarray],
                steps: int, cfg: Config, rng: np.random.Generator, device: torch.device | str = "cpu",
                start_step: int = 0) -> dict[str, float]:
    """`steps` SGD steps of batch cfg.batch_size drawn from `examples`; returns the mean loss terms.

    Raises FloatingPointError on a non-finite loss (the loop stops the run as diverged)."""
    device = torch.device(device)
    net.train()
    n = len(examples["z"])
    sums = torch.zeros(3, device=device)
    for k in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, start_step + k)
        idx = rng.integers(0, n, cfg.batch_size)
        planes = torch.from_numpy(examples["planes"][idx]).to(device, torch.float32)
        pi = torch.from_numpy(examples["pi"][idx]).to(device)
        z = torch.from_numpy(examples["z"][idx]).to(device)
        terms = loss_terms(net, planes, pi, z, cfg)
        loss = sum(terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums += torch.stack([t.detach() for t in terms])
    mean = (sums / max(steps, 1)).tolist()  # one sync per call, not per step
    if not all(np.isfinite(mean)):
        raise FloatingPointError(f"non-finite training loss {mean}")
    return {"policy_loss": mean[0], "value_loss": mean[1], "l2": mean[2]}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds the *.sgf games of the move-prediction quality metric (default: $DATA_DIR "
                        "or ./data)")
    p.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR", "./output"),
                   help="mlperf.log, summary.json, checkpoint.pt, models/, window/ (default: $OUTPUT_DIR "
                        "or ./output)")
    p.add_argument("--config", choices=sorted(PRESETS), default="reference", help="hyperparameter preset")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: drawn, shared by all ranks)")
    p.add_argument("--device", default=None, help="cuda or cpu for training (default: cuda when available; "
                                                  "the workers' networks run where --selfplay-device says)")
    p.add_argument("--selfplay-device", choices=("cpu", "cuda"), default="cpu",
                   help="where the workers (self-play, move prediction, gating) evaluate their batched "
                        "leaves (default: cpu; cuda: this rank's GPU, one CUDA context per worker; not yet "
                        "run on a GPU, see the README)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="accepted for the suite's common flags; the 191k-parameter network trains in fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the training model")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt if it exists (not an MLPerf result)")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="override the preset's maximum number of generations")
    p.add_argument("--target", type=float, default=None,
                   help="override the target of the preset's quality_metric (reference: move prediction; "
                        "tiny: win rate against generation 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="self-play worker processes per rank (default: the preset's)")
    return p


def rotate_log(path: str) -> None:
    """Keep one run per file: mlperf.log -> mlperf.log.1 (older ones shift to .2, .3, ...)."""
    if not os.path.exists(path):
        return
    n = 1
    while os.path.exists(f"{path}.{n}"):
        n += 1
    for i in range(n - 1, 0, -1):
        os.replace(f"{path}.{i}", f"{path}.{i + 1}")
    os.replace(path, f"{path}.1")


def make_mllog_logger(output_dir: str, rank: int) -> logging.Logger:
    """Rank 0 logs to stdout and OUTPUT_DIR/mlperf.log; other ranks get a logger that drops INFO."""
    logger = logging.Logger(f"{BENCHMARK}.mllog.{time.monotonic_ns()}")  # a fresh one per run (tests)
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    if rank == 0:
        path = os.path.join(output_dir, "mlperf.log")
        rotate_log(path)
        logger.addHandler(logging.StreamHandler(sys.stdout))
        logger.addHandler(logging.FileHandler(path))
    return logger


def save_atomic(path: str, state: dict) -> None:
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous file intact


def share(items: list, rank: int, world_size: int, workers: int) -> list[list]:
    """This rank's items, dealt round-robin into (at most) one non-empty list per worker."""
    mine = items[rank::world_size]
    return [chunk for chunk in (mine[w::workers] for w in range(workers)) if chunk]


def match_games(seed: int, gen: int, stream: int, games_per_side: int) -> list[tuple[int, int]]:
    """(game seed, colour of the new model): games_per_side with each colour, seeds from (run, generation)."""
    return [(int(s), color) for color in (go.BLACK, go.WHITE)
            for s in np.random.SeedSequence([seed, gen, stream, color + 1]).generate_state(games_per_side)]


def winrate_games(seed: int, gen: int, cfg: Config) -> list[tuple[int, int]]:
    return match_games(seed, gen, 3, cfg.winrate_games_per_side)


def play_match(pool, cfg: Config, new_state: dict, old_state: dict, games: list[tuple[int, int]], rank: int,
               world_size: int, device: str, resign: bool) -> torch.Tensor:
    """This rank's share of a match in the worker pool: the new model's wins (as black, as white), (2,)."""
    jobs = [(cfg, new_state, old_state, chunk, device, resign)
            for chunk in share(games, rank, world_size, cfg.selfplay_workers)]
    wins = torch.zeros(2, dtype=torch.float64)
    for w in pool.starmap(selfplay.gating_task, jobs):
        wins += torch.tensor(w, dtype=torch.float64)
    return wins


def cpu_state(net: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.selfplay_device == "cuda" and not torch.cuda.is_available():
        parser.error("--selfplay-device cuda: no CUDA device is available")
    cfg = PRESETS[args.config]
    cfg = dataclasses.replace(cfg, **{k: v for k, v in (("max_generations", args.max_epochs),
                                                        ("termination_accuracy", args.target),
                                                        ("selfplay_workers", args.workers)) if v is not None})
    # torchrun (even with one process, as `make gpu-check` runs it) means DDP and collectives.
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if distributed else 1
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if distributed else (device.index or 0))
        torch.cuda.set_device(device)
    if distributed:
        # gloo: the loop's collectives carry Python objects (examples, weights) and small CPU tensors.
        dist.init_process_group("gloo")
    os.makedirs(args.output_dir, exist_ok=True)
    mllog.config(logger=make_mllog_logger(args.output_dir, rank), root_dir=HERE)
    mllogger = mllog.get_mllogger()
    try:
        return run(args, cfg, mllogger, device, rank, world_size)
    except (data.SGFError, ValueError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    finally:
        for handler in mllogger.logger.handlers:
            handler.close()
        if distributed:
            dist.destroy_process_group()


def run(args, cfg: Config, mllogger, device, rank: int, world_size: int) -> int:
    distributed = dist.is_initialized()  # under torchrun, even with one process
    def progress(msg: str):
        if rank == 0:
            print(msg, file=sys.stderr, flush=True)

    mllogger.event(key=constants.CACHE_CLEAR, value=False)  # no page-cache drop here (needs root)
    mllogger.start(key=constants.INIT_START)
    if args.config == "reference" and os.path.exists(os.path.join(args.data_dir, "tiny.md5")):
        raise ValueError(f"{args.data_dir} holds tiny.md5 (GNU Go games, not the professional ones): a "
                         "reference run on it is not a result; use --config tiny")
    checkpoint_path = os.path.join(args.output_dir, "checkpoint.pt")
    checkpoint = None
    if args.resume and os.path.exists(checkpoint_path):
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint["config"] != args.config:
            raise ValueError(f"{checkpoint_path}: written by a --config {checkpoint['config']} run")
    elif args.resume:
        progress(f"--resume: no {checkpoint_path}; starting from scratch")
    seed = checkpoint["seed"] if checkpoint is not None else args.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
        if distributed:
            box = [seed]
            dist.broadcast_object_list(box, src=0)
            seed = box[0]
    torch.manual_seed(seed)
    if device.type == "cpu" and cfg.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.cpu_threads)
    # Each self-play worker: the preset's thread count, else its share of this machine's CPUs.
    worker_threads = cfg.cpu_threads or selfplay.worker_threads(
        cfg.selfplay_workers, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    mllogger.event(key=constants.SUBMISSION_BENCHMARK, value=constants.MINIGO)
    mllogger.event(key=constants.SUBMISSION_ORG, value=os.environ.get("SUBMISSION_ORG", "reference"))
    mllogger.event(key=constants.SUBMISSION_DIVISION, value=constants.CLOSED)
    mllogger.event(key=constants.SUBMISSION_STATUS, value=constants.RESEARCH)
    mllogger.event(key=constants.SUBMISSION_PLATFORM, value=f"{world_size}x{device_name}")
    mllogger.event(key=constants.SUBMISSION_POC_NAME,
                   value=os.environ.get("SUBMISSION_POC_NAME", "reference"))
    mllogger.event(key=constants.SUBMISSION_ENTRY, value=os.environ.get("SUBMISSION_ENTRY", "reference"))
    mllogger.event(key=constants.SEED, value=seed)
    mllogger.event(key=constants.GLOBAL_BATCH_SIZE, value=cfg.batch_size)
    mllogger.event(key=constants.OPT_NAME, value=constants.SGD)
    mllogger.event(key=constants.OPT_BASE_LR, value=list(cfg.lr_values))
    mllogger.event(key=constants.OPT_LR_DECAY_BOUNDARY_STEPS, value=list(cfg.lr_boundaries))
    mllogger.event(key="virtual_losses", value=cfg.parallel_readouts)
    mllogger.event(key="board_size", value=cfg.board_size)
    mllogger.event(key="games_per_generation", value=cfg.games_per_generation)
    mllogger.event(key="selfplay_readouts", value=cfg.selfplay_readouts)
    mllogger.event(key="c_puct", value=mcts.C_PUCT)
    mllogger.event(key="dirichlet_alpha", value=mcts.dirichlet_alpha(cfg.board_size))
    mllogger.event(key="window_size", value=cfg.window_size)
    mllogger.event(key="examples_per_generation", value=cfg.examples_per_generation)
    mllogger.event(key="gating_win_pct", value=cfg.gating_win_pct)
    mllogger.event(key="selfplay_worker_threads", value=worker_threads)
    mllogger.event(key="quality_metric", value=cfg.quality_metric)
    mllogger.event(key="eval_target", value=cfg.termination_accuracy)
    if cfg.policy_lift_target:
        mllogger.event(key="policy_lift_target", value=cfg.policy_lift_target)

    net = build_model(cfg).to(device)
    optimizer = make_optimizer(net, cfg)
    train_net = torch.compile(net) if args.compile else net
    best_state = cpu_state(net)  # generation 0: the random bootstrap model plays the first games
    generation_0 = best_state  # the opponent of the win-rate quality match
    first_gen, global_step, evals = 1, 0, []
    if checkpoint is not None:
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        best_state, generation_0 = checkpoint["best_model"], checkpoint["generation_0_model"]
        first_gen, global_step = checkpoint["generation"] + 1, checkpoint["global_step"]
        evals = checkpoint["evals"]
        mllogger.event(key="resumed", value=True, metadata={
            "from_epoch": checkpoint["generation"], "note": "not an MLPerf result: the clock restarted"})
        progress(f"resumed from {checkpoint_path} after generation {checkpoint['generation']}")
    mllogger.end(key=constants.INIT_STOP)
    if distributed:
        dist.barrier()
    mllogger.start(key=constants.RUN_START)
    run_start = time.time()

    # ---- timed from here ----
    records = data.read_sgf_dir(args.data_dir, cfg.board_size)
    sgf_paths = [r.path for r in records]
    predictions = cfg.prediction_rounds * sum(len(r.moves) for r in records)
    mllogger.event(key=constants.EVAL_SAMPLES, value=predictions)
    window_dir = os.path.join(args.output_dir, "window")
    models_dir = os.path.join(args.output_dir, "models")
    if rank == 0:
        os.makedirs(window_dir, exist_ok=True)
        os.makedirs(models_dir, exist_ok=True)
    steps_per_gen = cfg.examples_per_generation // cfg.batch_size
    # The workers' networks on this rank's GPU when asked (a spawned worker can open its own CUDA context).
    selfplay_device = "cpu"
    if args.selfplay_device == "cuda":  # main() checked that CUDA is there
        selfplay_device = str(device) if device.type == "cuda" else "cuda:0"
    # Spawned workers (a fork of a process that holds torch threads may hang), one pool for the run.
    pool = multiprocessing.get_context("spawn").Pool(cfg.selfplay_workers, initializer=selfplay.worker_init,
                                                     initargs=(worker_threads,))
    status, gen = constants.ABORTED, first_gen - 1
    try:
        for gen in range(first_gen, cfg.max_generations + 1):
            mllogger.start(key=constants.EPOCH_START, metadata={"epoch_num": gen})
            tic = time.time()
            # Self-play with the best model; worker seeds derive from (run seed, generation, game).
            seeds = [int(s) for s in
                     np.random.SeedSequence([seed, gen]).generate_state(cfg.games_per_generation)]
            jobs = [(cfg, best_state, chunk, cfg.resign_disable_pct, selfplay_device)
                    for chunk in share(seeds, rank, world_size, cfg.selfplay_workers)]
            played = pool.starmap(selfplay.selfplay_task, jobs)
            games = data.concat_examples([ex for ex, _ in played]) if played else None
            if distributed:
                gathered = [None] * world_size
                dist.all_gather_object(gathered, games)
                games = data.concat_examples([g for g in gathered if g is not None])
            results = [r for _, rs in played for r in rs]
            selfplay_s = time.time() - tic
            # Training on rank 0 (about 1 % of the work, spec 1.6); the weights go to every rank.
            if rank == 0:
                data.write_examples(os.path.join(window_dir, f"{gen:06d}-selfplay.npz"), games)
                window = data.load_window(window_dir, cfg.window_size)
                losses = train_steps(train_net, optimizer, window, steps_per_gen, cfg,
                                     np.random.default_rng([seed, gen, 1]), device, global_step)
                new_state = cpu_state(net)
                save_atomic(os.path.join(models_dir, f"{gen:06d}.pt"), new_state)
            else:
                losses, new_state = None, None
            if distributed:
                box = [new_state, losses]
                dist.broadcast_object_list(box, src=0)
                new_state, losses = box
                if rank != 0:
                    net.load_state_dict(new_state)
            global_step += steps_per_gen
            mllogger.event(key="save_model", value={"iteration": gen}, metadata={"epoch_num": gen})
            mllogger.end(key=constants.EPOCH_STOP, metadata={"epoch_num": gen})
            positions = len(games["z"])
            progress(f"generation {gen}: {positions} positions from {cfg.games_per_generation} games in "
                     f"{selfplay_s:.1f} s ({positions / selfplay_s:.0f} self-play positions/s; rank 0: "
                     f"{sum(r.startswith('B+') for r in results)} black wins of {len(results)}), trained "
                     f"{steps_per_gen} steps: policy {losses['policy_loss']:.3f} "
                     f"value {losses['value_loss']:.3f}")

            # Quality: move prediction of the new model (every model, accepted or not, as the reference).
            mllogger.start(key=constants.EVAL_START, metadata={"epoch_num": gen})
            jobs = [(cfg, new_state, paths, seed + gen * 100 + rnd, selfplay_device)
                    for rnd in range(cfg.prediction_rounds)
                    for paths in share(sgf_paths, rank, world_size, cfg.selfplay_workers)]
            counts = torch.tensor([0, 0], dtype=torch.float64)
            for correct, attempted in pool.starmap(selfplay.prediction_task, jobs):
                counts += torch.tensor([correct, attempted], dtype=torch.float64)
            # The tiny preset's quality: the newest model against generation 0 (the random bootstrap),
            # winrate_games_per_side games with each colour, every game played out (no resignation).
            wins_vs_0 = play_match(pool, cfg, new_state, generation_0, winrate_games(seed, gen, cfg), rank,
                                   world_size, selfplay_device, resign=False)
            # Gating: new model against the best, eval_games_per_side games with each colour.
            gating = match_games(seed, gen, 2, cfg.eval_games_per_side)
            wins = play_match(pool, cfg, new_state, best_state, gating, rank, world_size, selfplay_device,
                              resign=True)
            if distributed:
                dist.all_reduce(counts)
                dist.all_reduce(wins_vs_0)
                dist.all_reduce(wins)
            accuracy = float(counts[0] / counts[1])
            # The policy network alone on the same games (metrics.policy_lift, no search, no randomness: every
            # rank computes the same number from the same weights).
            measured = {"move_prediction_accuracy": accuracy,
                        "policy_lift": metrics.policy_lift(net, records)}
            if cfg.winrate_games_per_side:
                measured["win_rate_vs_generation_0"] = float(wins_vs_0.sum()
                                                             / (2 * cfg.winrate_games_per_side))
            quality = measured[cfg.quality_metric]
            seconds = time.time() - run_start
            mllogger.event(key=constants.EVAL_ACCURACY, value=quality,
                           metadata={"epoch_num": gen, "metric": cfg.quality_metric})
            for key, value in measured.items():
                mllogger.event(key=key, value=value, metadata={"epoch_num": gen})
            mllogger.end(key=constants.EVAL_STOP, metadata={"epoch_num": gen})
            win_rate = float(wins.sum() / (2 * cfg.eval_games_per_side))  # = mean of the two colours' rates
            accepted = win_rate >= cfg.gating_win_pct
            if accepted:
                best_state = new_state
            mllogger.event(key="gating_win_rate", value=win_rate,
                           metadata={"epoch_num": gen, "accepted": accepted})
            evals.append({"epoch": gen, "seconds": round(seconds, 3), "value": quality, **measured,
                          "gating_win_rate": win_rate, "accepted": accepted})
            progress(f"generation {gen}: " + ", ".join(f"{k} {v:.4f}" for k, v in measured.items())
                     + f" (target {cfg.quality_metric} {cfg.termination_accuracy}"
                     + (f" and policy_lift {cfg.policy_lift_target}" if cfg.policy_lift_target else "")
                     + f"), gating {win_rate:.2f} -> "
                     f"{'new best' if accepted else 'kept the best'} ({seconds:.1f} s since run start)")
            if rank == 0:
                save_atomic(checkpoint_path, {
                    "model": net.state_dict(), "optimizer": optimizer.state_dict(), "best_model": best_state,
                    "generation_0_model": generation_0, "generation": gen, "global_step": global_step,
                    "evals": evals, "seed": seed, "config": args.config})
            if quality >= cfg.termination_accuracy and measured["policy_lift"] >= cfg.policy_lift_target \
                    and gen >= min(cfg.min_generations, cfg.max_generations):
                status = constants.SUCCESS
                break
    finally:
        pool.close()
        pool.join()

    if distributed:
        dist.barrier()
    mllogger.end(key=constants.RUN_STOP, metadata={"status": status})
    seconds = time.time() - run_start
    success = status == constants.SUCCESS
    progress(f"{'reached' if success else 'did not reach'} {cfg.quality_metric} {cfg.termination_accuracy} "
             f"after generation {gen} in {seconds:.1f} s (RUN_START to RUN_STOP)")
    if rank == 0:
        summary = {"benchmark": BENCHMARK, "metric": cfg.quality_metric, "higher_is_better": True,
                   "target": cfg.termination_accuracy, "policy_lift_target": cfg.policy_lift_target,
                   "reached": evals[-1]["value"] if evals else None,
                   "success": success, "epochs": gen, "seconds": round(seconds, 3), "seed": seed,
                   "world_size": world_size, "resumed": checkpoint is not None, "evals": evals}
        with open(os.path.join(args.output_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    # Every rank waits here for rank 0's summary.json: when one process exits non-zero (target missed),
    # torchrun stops the others at once and could kill rank 0 before it has written it.
    if distributed:
        dist.barrier()
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
