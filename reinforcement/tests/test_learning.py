"""The tiny loop learns: its stop rule has two halves, the newest model against the random generation-0
model (40 + 40 games, colours alternating, no resignation: the value head and the search) and the policy
network alone predicting the GNU Go games' moves better than a uniform pick (metrics.policy_lift: the policy
head). The correct build meets both; each broken build, run through the same real loop with the same seed
for as many generations, misses the half that its bug breaks.

The broken builds are calibrate_tiny.py's: they change only what the trainer reads from the window.
Calibrated over 5 seeds (README, "The tiny loop learns"): the value-flipped build stays far below the win
rate target; the uniform-policy-target build can win as often as the correct one (its search with a trained
value head and flat priors is strong at 16 readouts on 5x5) but its policy lift stays near 1.0.
"""

import calibrate_tiny

from config import PRESETS

CFG = PRESETS["tiny"]


def test_correct_build_reaches_both_targets(tiny_run):
    s = tiny_run["summary"]
    assert s["metric"] == "win_rate_vs_generation_0" and s["target"] == CFG.termination_accuracy
    assert s["policy_lift_target"] == CFG.policy_lift_target
    assert s["success"] and s["reached"] >= CFG.termination_accuracy
    assert s["evals"][-1]["policy_lift"] >= CFG.policy_lift_target
    # Both targets are above chance: a random network against another wins about half the games, and a
    # uniform policy's lift is 1.0 by definition.
    assert CFG.termination_accuracy > 0.5 and CFG.policy_lift_target > 1.0
    for e in s["evals"]:  # 80 games: every win rate is a whole number of games
        assert round(e["win_rate_vs_generation_0"] * 2 * CFG.winrate_games_per_side, 6).is_integer()


def broken_run(name, tiny_run, tmp_path):
    correct = tiny_run["summary"]
    rc, s = calibrate_tiny.run(name, correct["seed"], tiny_run["data_dir"], str(tmp_path / "out"),
                               generations=correct["epochs"])
    assert rc == 1 and not s["success"] and s["epochs"] == correct["epochs"]
    return s["evals"]


def test_value_flipped_build_misses_the_win_rate(tiny_run, tmp_path):
    rates = [e["win_rate_vs_generation_0"] for e in broken_run("flipped_value", tiny_run, tmp_path)]
    assert max(rates) < CFG.termination_accuracy <= tiny_run["summary"]["reached"], rates


def test_uniform_policy_build_misses_the_policy_lift(tiny_run, tmp_path):
    lifts = [e["policy_lift"] for e in broken_run("uniform_policy", tiny_run, tmp_path)]
    assert max(lifts) < CFG.policy_lift_target <= tiny_run["summary"]["evals"][-1]["policy_lift"], lifts
