"""--resume continues the loop from the checkpoint: the next generation, the same global step count."""

import json
import os
import shutil

import torch
from conftest import read_mllog

import train
from config import PRESETS

CFG = PRESETS["tiny"]


def test_resume_continues_with_the_next_generation(tiny_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_run["out"], out)
    # The finished run stopped after generation `done` (3 here); one more, with a target it cannot reach.
    done = tiny_run["summary"]["epochs"]
    rc = train.main(["--data-dir", tiny_run["data_dir"], "--output-dir", str(out), "--config", "tiny",
                     "--device", "cpu", "--resume", "--max-epochs", str(done + 1), "--target", "1.01"])
    assert rc == 1  # the target was not reached
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True and summary["epochs"] == done + 1 and summary["success"] is False
    assert summary["seed"] == tiny_run["summary"]["seed"]  # the checkpoint's seed
    assert summary["evals"][:done] == tiny_run["summary"]["evals"] and len(summary["evals"]) == done + 1
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["generation"] == done + 1
    assert ckpt["global_step"] == (done + 1) * CFG.examples_per_generation // 16
    assert sorted(os.listdir(out / "window"))[-1] == f"{done + 1:06d}-selfplay.npz"
    log = read_mllog(str(out / "mlperf.log"))  # the resumed run's own log; the first moved aside
    assert (out / "mlperf.log.1").exists()
    assert any(e["key"] == "resumed" for e in log)
    assert [e["metadata"]["epoch_num"] for e in log if e["key"] == "epoch_start"] == [done + 1]
    assert log[-1]["key"] == "run_stop" and log[-1]["metadata"]["status"] == "aborted"


def test_resume_refuses_another_preset(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(tiny_run["out"], out)
    rc = train.main(["--data-dir", tiny_run["data_dir"], "--output-dir", str(out), "--config", "reference",
                     "--device", "cpu", "--resume"])
    assert rc == 2 and "tiny.md5" in capsys.readouterr().err  # reference on tiny data is refused first


def test_bad_sgf_in_data_dir_is_a_clear_error(tiny_data, tmp_path, capsys):
    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    (d / "5x5_gnugo_0009.sgf").write_text("(;GM[1]FF[4]SZ[5];B[cc];W[cc])")
    rc = train.main(["--data-dir", str(d), "--output-dir", str(tmp_path / "out"), "--config", "tiny",
                     "--device", "cpu", "--seed", "1"])
    assert rc == 2
    assert "5x5_gnugo_0009.sgf: move 2 (W[cc] = C3): illegal: point is occupied" in capsys.readouterr().err
