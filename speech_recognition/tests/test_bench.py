"""bench.py end to end on the CPU, at a batch of 1 and half a second of audio so the full-width reference
model costs little: the loader (with a worker), the spectrograms, a training step and the JSON line, on
synthetic utterances and on real files with sox augmentation. What it measures is reported, never asserted."""

import json

import bench


def run(capsys, *args) -> dict:
    assert bench.main(["--device", "cpu", "--config", "reference", "--batch-size", "1", "--steps", "2",
                       "--warmup", "1", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_bench_on_synthetic_utterances(capsys):
    r = run(capsys, "--duration", "0.5", "--workers", "1")
    assert r["config"] == "reference" and r["batch_size"] == 1 and r["data"] == "synthetic"
    # The utterances ran at the requested length: 0.5 s = 8000 samples = 51 frames = 0.51 s of frames.
    assert r["duration_s"] == 0.51 and r["steps"] == 2 and r["workers"] == 1
    assert r["amp"] == "off" and r["rnn"] == "float32"  # the CPU default: --amp only when asked
    assert r["audio_s_per_s"] > 0 and r["samples_per_s"] > 0 and r["tflops"] > 0 and r["input_wait_ms"] >= 0


def test_bench_on_real_files_with_augmentation(capsys, tiny_data):
    r = run(capsys, "--duration", "1.0", "--workers", "0", "--data-dir", tiny_data, "--amp")
    assert r["data"] == "files + sox" and r["amp"] == "bfloat16" and r["rnn"] == "float32"
    # The tiny utterances nearest 1 s, stretched or shortened by sox tempo U(0.85, 1.15).
    assert 0.3 < r["duration_s"] < 3 and r["audio_s_per_s"] > 0
