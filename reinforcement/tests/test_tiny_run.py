"""The whole tiny loop (self-play workers -> window -> train -> evaluation -> gating -> stop) in-process.

Checked here: it runs every stage for at least min_generations, stops on its target (the win rate against
generation 0; test_learning.py shows that two broken builds miss it), logs move prediction beside it, and
writes a complete MLPerf log, summary.json, models and checkpoint.
"""

import os

import torch

import gtp
from config import PRESETS
from gtp import GtpEngine

CFG = PRESETS["tiny"]


def test_reaches_the_tiny_target_after_three_generations(tiny_run):
    s = tiny_run["summary"]
    assert tiny_run["rc"] == 0 and s["success"] is True
    assert s["benchmark"] == "reinforcement"
    assert s["metric"] == CFG.quality_metric == "win_rate_vs_generation_0"
    assert s["higher_is_better"] is True and s["target"] == CFG.termination_accuracy
    assert CFG.min_generations <= s["epochs"] == len(s["evals"]) <= CFG.max_generations
    assert s["world_size"] == 1
    gens = range(1, s["epochs"] + 1)
    assert s["reached"] == s["evals"][-1]["value"] >= CFG.termination_accuracy
    for e in s["evals"]:
        assert 0 <= e["value"] <= 1 and 0 <= e["gating_win_rate"] <= 1 and e["seconds"] <= s["seconds"]
        assert e["value"] == e["win_rate_vs_generation_0"] and 0 <= e["move_prediction_accuracy"] <= 1
    out = tiny_run["out"]
    assert sorted(os.listdir(os.path.join(out, "models"))) == [f"{g:06d}.pt" for g in gens]
    assert sorted(os.listdir(os.path.join(out, "window"))) == [f"{g:06d}-selfplay.npz" for g in gens]
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert ckpt["generation"] == s["epochs"]
    assert ckpt["global_step"] == s["epochs"] * CFG.examples_per_generation // 16


def test_mllog_keys_and_order(tiny_run):
    log = tiny_run["log"]
    keys = [e["key"] for e in log]
    for k in ("cache_clear", "init_start", "submission_benchmark", "submission_org", "submission_division",
              "submission_status", "submission_platform", "submission_poc_name", "submission_entry", "seed",
              "global_batch_size", "opt_base_learning_rate", "opt_learning_rate_decay_boundary_steps",
              "virtual_losses", "init_stop", "run_start", "run_stop"):
        assert keys.count(k) == 1, k
    assert keys.index("cache_clear") < keys.index("init_start") < keys.index("init_stop") < \
        keys.index("run_start") < keys.index("run_stop")
    first = {e["key"]: e["value"] for e in log}
    assert first["submission_benchmark"] == "minigo" and first["submission_division"] == "closed"
    assert first["opt_base_learning_rate"] == [0.01, 0.001, 0.0001]
    assert first["global_batch_size"] == 16 and first["virtual_losses"] == CFG.parallel_readouts == 4
    # Each generation: epoch_start, save_model (iteration = epoch), epoch_stop, eval_start/accuracy/stop.
    per_epoch = [(e["key"], e["metadata"].get("epoch_num")) for e in log
                 if e["key"] in ("epoch_start", "save_model", "epoch_stop", "eval_start", "eval_accuracy",
                                 "eval_stop", "gating_win_rate")]
    gens = range(1, tiny_run["summary"]["epochs"] + 1)
    expected = [(k, g) for g in gens for k in ("epoch_start", "save_model", "epoch_stop", "eval_start",
                                                   "eval_accuracy", "eval_stop", "gating_win_rate")]
    assert per_epoch == expected
    assert [e["value"]["iteration"] for e in log if e["key"] == "save_model"] == list(gens)
    accs = [e["value"] for e in log if e["key"] == "eval_accuracy"]
    assert accs == [e["value"] for e in tiny_run["summary"]["evals"]]
    for key in ("win_rate_vs_generation_0", "move_prediction_accuracy"):  # both metrics, every generation
        assert [e["value"] for e in log if e["key"] == key] == [e[key] for e in tiny_run["summary"]["evals"]]
    assert log[-1]["key"] == "run_stop" and log[-1]["metadata"]["status"] == "success"


def test_trained_model_plays_over_gtp(tiny_run, capsys):
    """gtp.py loads the newest model of the run: 5x5, legal moves, other sizes refused."""
    args = gtp.get_args_parser().parse_args(["--output-dir", tiny_run["out"], "--readouts", "16",
                                             "--seed", "0"])
    player, size = gtp.load_player(args)
    newest = f"{tiny_run['summary']['epochs']:06d}.pt"
    assert size == 5 and newest in capsys.readouterr().err
    engine = GtpEngine(player, size, fixed_size=True)
    assert engine.handle("boardsize 9").startswith("? unacceptable size")
    for color in ("b", "w", "b", "w"):
        reply = engine.handle(f"genmove {color}")
        assert reply.startswith("= "), reply
    assert engine.position.n >= 1 or "resign" in reply
