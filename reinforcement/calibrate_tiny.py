#!/usr/bin/env python3
"""Calibrate the tiny preset's target: the real loop with the correct build and two broken builds, per seed.

    ./make_tiny_dataset.py /tmp/tiny
    ./calibrate_tiny.py /tmp/tiny /tmp/calib --seeds 1 2 3 4 5 --generations 5

Each (build, seed) runs train.py's loop in this process (--config tiny --device cpu) for exactly
--generations generations (the stop check is off) and prints, after every generation, the two halves of
the stop rule: the newest model's win rate against generation 0 and its policy lift (metrics.policy_lift),
then a JSON line with every number. The broken builds change only what
the trainer reads from the window (data.load_window), so self-play, search, evaluation and the stop metric
are the real code:

    correct          the examples as self-play wrote them
    flipped_value    z negated: the value head learns the loser's view (a colour-convention bug)
    uniform_policy   pi uniform over the empty points and the pass: the search's visits are not learned

A tiny target is sound when every correct run reaches it within min_generations..max_generations and no
broken run does. The value-flipped build misses the win rate; the uniform-policy build can win as often as
the correct one (its search with a trained value head is strong at 16 readouts) and misses the policy lift
(README, "The tiny loop learns"). tests/test_learning.py runs all three builds.
"""

import argparse
import contextlib
import json
import os
import sys

import numpy as np

import data


def flip_value(examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The value target from the other colour's view: z (n,) negated."""
    return {**examples, "z": -examples["z"]}


def uniform_policy(examples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pi (n, N*N+1) replaced by the uniform distribution over the empty points and the pass."""
    planes = examples["planes"]  # (n, 17, N, N) uint8: planes 0/1 = the mover's / the opponent's stones
    empty = (1 - planes[:, 0] - planes[:, 1]).reshape(len(planes), -1).astype(np.float32)  # (n, N*N)
    pi = np.concatenate([empty, np.ones((len(planes), 1), np.float32)], axis=1)
    return {**examples, "pi": pi / pi.sum(axis=1, keepdims=True)}


BUILDS = {"correct": None, "flipped_value": flip_value, "uniform_policy": uniform_policy}


@contextlib.contextmanager
def build(name: str):
    """Within the block, the trainer of an in-process train.main reads the window through BUILDS[name]."""
    change = BUILDS[name]
    if change is None:
        yield
        return
    load = data.load_window

    def broken(directory: str, window_size: int) -> dict[str, np.ndarray]:
        return change(load(directory, window_size))

    data.load_window = broken
    try:
        yield
    finally:
        data.load_window = load


def run(name: str, seed: int, data_dir: str, output_dir: str, generations: int | None = None,
        target: float | None = None) -> tuple[int, dict]:
    """train.main with --config tiny --device cpu under build(name): (exit status, summary.json)."""
    import train  # here: train imports torch and the workers' code, the transforms above need neither

    argv = ["--data-dir", data_dir, "--output-dir", output_dir, "--config", "tiny", "--device", "cpu",
            "--seed", str(seed)]
    if generations is not None:
        argv += ["--max-epochs", str(generations)]
    if target is not None:
        argv += ["--target", str(target)]
    with build(name):
        rc = train.main(argv)
    with open(os.path.join(output_dir, "summary.json")) as f:
        return rc, json.load(f)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", help="the tiny quality set (make_tiny_dataset.py)")
    p.add_argument("output_dir", help="one run directory per build and seed is made here")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--builds", nargs="+", choices=sorted(BUILDS), default=list(BUILDS))
    args = p.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for name in args.builds:
            out = os.path.join(args.output_dir, f"{name}_{seed}")
            _, s = run(name, seed, args.data_dir, out, args.generations, target=1.01)  # never stops early
            rates = [e["win_rate_vs_generation_0"] for e in s["evals"]]
            lifts = [e["policy_lift"] for e in s["evals"]]
            rows.append({"build": name, "seed": seed, "win_rate_vs_generation_0": rates, "policy_lift": lifts,
                         "move_prediction_accuracy": [e["move_prediction_accuracy"] for e in s["evals"]],
                         "seconds": s["seconds"]})
            print(f"{name} seed {seed}: by generation, win rate against generation 0 "
                  + " ".join(f"{r:.3f}" for r in rates) + ", policy lift "
                  + " ".join(f"{x:.2f}" for x in lifts) + f" ({s['seconds']:.0f} s)", file=sys.stderr)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
