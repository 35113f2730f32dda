"""The tiny loop learns: its stop metric (the newest model against the random generation-0 model, 40 + 40
games, colours alternating, no resignation) reaches the target with the correct build, and two broken builds
run through the same real loop, the same seed and the same number of generations stay below it.

The broken builds (calibrate_tiny.py) change only what the trainer reads from the window: z negated (the
value head learns the loser's view) or pi uniform over the empty points and the pass (the search's visits
are not learned). Calibration over 5 seeds: README, "The tiny loop learns".
"""

import calibrate_tiny
import pytest

from config import PRESETS

CFG = PRESETS["tiny"]


def test_correct_build_reaches_the_win_rate_target(tiny_run):
    s = tiny_run["summary"]
    assert s["metric"] == "win_rate_vs_generation_0" and s["target"] == CFG.termination_accuracy
    assert s["success"] and s["reached"] >= CFG.termination_accuracy
    # The target is above what a random network reaches against another (about half the games).
    assert CFG.termination_accuracy > 0.5
    for e in s["evals"]:  # 80 games: every win rate is a whole number of games
        assert round(e["win_rate_vs_generation_0"] * 2 * CFG.winrate_games_per_side, 6).is_integer()


@pytest.mark.parametrize("name", ["flipped_value", "uniform_policy"])
def test_broken_builds_stay_below_the_target(tiny_run, tmp_path, name):
    correct = tiny_run["summary"]
    rc, s = calibrate_tiny.run(name, correct["seed"], tiny_run["data_dir"], str(tmp_path / name),
                               generations=correct["epochs"])
    assert rc == 1 and not s["success"] and s["epochs"] == correct["epochs"]
    rates = [e["win_rate_vs_generation_0"] for e in s["evals"]]
    assert max(rates) < CFG.termination_accuracy <= correct["reached"], rates
