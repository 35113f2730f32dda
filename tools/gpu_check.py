#!/usr/bin/env python3
"""`make gpu-check`: every GPU-only path of every benchmark on one CUDA GPU, in minutes, as one report.

For each benchmark folder (or those named with --bench):
  1. bench.py at the reference model size on the device: samples/s, achieved TFLOP/s, MFU against the
     device's dense peak for the precision used (PEAK_TFLOPS below), peak GPU memory;
  2. the tiny run through run_and_time.sh on the device with the settings a real run uses there: the
     folder's CUDA defaults (AMP by compute capability, device decode, ...) plus the loader options of
     CHECKS below, launched by torchrun with one rank (TORCHRUN=1, so DDP and the collectives run on
     nccl), with optimizer steps and host-device synchronisations per step counted (tools/gpu_probe);
Then one table, and .gpu-check/report.json. Exits non-zero if anything failed, and at once (2) when
--device cuda finds no CUDA device.

A GPU machine may have no network. `make gpu-wheels` prepares the wheels the folders need beyond torch
and torchvision on a machine with pip access; --wheels DIR installs them into a private folder here
(pip --no-index --target; nothing of the system's Python changes). Tiny data that needs tools the GPU
machine lacks (espeak-ng and sox for speech, gnugo for Go) can be made on another machine and passed with
--data-root (e.g. .demo after `make demo`: <root>/<benchmark>/data).

--device cpu runs the same harness on the CPU (the CI test does this for one folder): bench.py with few
steps, the tiny run with torchrun and gloo; syncs are not measured there (no CUDA).

    python tools/gpu_check.py [--bench transformer] [--wheels DIR] [--data-root .demo] [--quick]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from demo import select_benchmarks
from table import format_table, num

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tools" / "gpu_probe"

# Dense (no sparsity) peak TFLOP/s by GPU, for MFU = achieved / peak at the precision bench.py used
# (fp32 without AMP: plain fp32 peak, as PyTorch's default matmul precision does not use TF32). From
# NVIDIA's datasheets: H100 and H200 (SXM5 and PCIe/NVL, "Tensor Core" rows halved for sparsity), A100 40/80
# GB, V100 SXM2/PCIe, P100 SXM2/PCIe, A10, L4, L40S, T4. Matched by substring of
# torch.cuda.get_device_name(), first match wins (so the more specific names come first).
PEAK_TFLOPS = [
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),
    ("H200 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 60.0}),
    ("H200", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("V100-PCIE", {"fp16": 112.0, "fp32": 14.0}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("P100-PCIE", {"fp16": 18.7, "fp32": 9.3}),
    ("P100", {"fp16": 21.2, "fp32": 10.6}),
    ("L40S", {"bf16": 362.05, "fp16": 362.05, "fp32": 91.6}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]

# Per benchmark: bench.py arguments on CUDA (few steps: the check is about paths and rough rates, not
# records); train.py arguments for the tiny run beyond the folder's CUDA defaults, on both devices ("run":
# the real run's loader options where the tiny preset turns them down) and on CUDA only ("run_cuda"); the
# system commands the run itself needs.
CHECKS = {
    "image_classification": {"bench": ["--steps", "20", "--warmup", "5"], "run": ["--workers", "4"]},
    # --compile (the trunk under torch.compile, as train.py --compile) as a second row beside eager.
    "object_detection": {"bench": ["--steps", "10", "--warmup", "3"],
                         "bench_variants": {"compile": ["--steps", "10", "--warmup", "3", "--compile"]}},
    "recommendation": {"bench": ["--steps", "20", "--warmup", "5"]},
    "reinforcement": {"bench": ["--steps", "20", "--selfplay-seconds", "20"],
                      "run_cuda": ["--selfplay-device", "cuda"]},
    "sentiment_analysis": {"bench": ["--steps", "20", "--warmup", "5"]},
    "speech_recognition": {"bench": ["--steps", "10", "--warmup", "3"], "needs": ["sox"]},
    "transformer": {"bench": ["--steps", "10", "--decode"]},  # --decode: beam search on the device too
}
CPU_BENCH = ["--steps", "2"]  # --device cpu: the harness, not a rate
CPU_BENCH_EXTRA = {"recommendation": ["--batch-size", "2048", "--warmup", "1"],
                   "sentiment_analysis": ["--batch-size", "16", "--warmup", "1"],
                   "speech_recognition": ["--config", "reference", "--duration", "2", "--warmup", "1"],
                   "transformer": ["--batch-size", "4"]}
# Extra bench.py rows on the CPU ("bench_variants" of CHECKS run on CUDA only: compiling the reference-size
# model on two CPU cores would take minutes, and each folder's tests cover --compile on the CPU).
CPU_BENCH_VARIANTS: dict[str, dict[str, list[str]]] = {}
QUICK_EPOCHS = 2  # --quick: tiny runs stop after this many epochs (a missed target is then expected)


def peak_for(device_name: str, precision: str) -> float | None:
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peaks.get(precision)
    return None


def precision_of(row: dict) -> str:
    """bf16 / fp16 / fp32 from a bench.py row's "amp" field ("bfloat16", "float16", "off", "fp32", ...)."""
    amp = str(row.get("amp", "off")).lower()
    if "bf" in amp:
        return "bf16"
    if "16" in amp or "half" in amp:
        return "fp16"
    return "fp32"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_probes(folder: Path, script: str) -> list[dict]:
    out = []
    for path in sorted(folder.glob(f"{Path(script).stem}-*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass
    return out


def run_logged(cmd: list[str], cwd: Path, env: dict, log_path: Path, timeout: float) -> tuple[int, str]:
    """Run cmd with its output into log_path; (exit status, or 124 after a timeout, and the output).
    A timeout kills the whole process group (torchrun, its workers, their loader workers)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = 124
    return rc, log_path.read_text(errors="replace")


def install_wheels(wheels: Path, target: Path, python: str) -> None:
    """Every wheel of the folder into target, offline and without touching the system's packages."""
    found = sorted(wheels.glob("*.whl"))
    if not found:
        raise SystemExit(f"gpu_check: {wheels} holds no .whl files (make gpu-wheels writes them)")
    if target.exists():
        shutil.rmtree(target)
    cmd = [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--target", str(target), *map(str, found)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gpu_check: installing the wheels of {wheels} failed:\n{proc.stdout}{proc.stderr}")
    print(f"installed {len(found)} wheels from {wheels} into {target}", flush=True)


def check_bench(name: str, device: str, env: dict, work: Path, timeout: float) -> dict:
    """bench.py's rows on the device, then each of the folder's variants (CHECKS "bench_variants") as more
    rows tagged with the variant's name; any of them failing fails the check."""
    if device == "cuda":
        args = CHECKS.get(name, {}).get("bench", [])
        variants = CHECKS.get(name, {}).get("bench_variants", {})
    else:
        args = CPU_BENCH + CPU_BENCH_EXTRA.get(name, [])
        variants = CPU_BENCH_VARIANTS.get(name, {})
    result = {"rows": [], "commands": [], "seconds": 0.0}
    for variant, variant_args in [(None, args), *variants.items()]:
        suffix = f"-{variant}" if variant else ""
        probes = work / f"probe-bench{suffix}"
        shutil.rmtree(probes, ignore_errors=True)
        cmd = [sys.executable, "bench.py", "--device", device, *variant_args]
        t0 = time.time()
        rc, out = run_logged(cmd, ROOT / name, dict(env, GPU_CHECK_PROBE_DIR=str(probes)),
                             work / f"bench{suffix}.log", timeout)
        rows = []
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        probe = next(iter(read_probes(probes, "bench.py")), {})
        for r in rows:
            precision = precision_of(r)
            peak = peak_for(str(r.get("device", "")), precision)
            r["precision"] = precision
            measured = isinstance(r.get("tflops"), (int, float))
            r["mfu"] = round(r["tflops"] / peak, 4) if peak and measured else None
            if variant:
                r["variant"] = variant
                r["peak_memory_gib"] = probe.get("peak_memory_gib")
                r["peak_rss_gib"] = probe.get("peak_rss_gib")
        result["rows"] += rows
        result["commands"].append(" ".join(cmd[1:]))
        result["seconds"] = round(result["seconds"] + time.time() - t0, 1)
        if variant is None:
            result.update(rc=rc, command=" ".join(cmd[1:]), peak_memory_gib=probe.get("peak_memory_gib"),
                          peak_rss_gib=probe.get("peak_rss_gib"))
        if rc != 0 or not rows:
            what = f"{variant} " if variant else ""
            error = "timed out" if rc == 124 else f"exit {rc}" if rc else "no JSON row"
            result.setdefault("error", what + error)
            result.setdefault("tail", out[-3000:])
    result["ok"] = "error" not in result
    return result


def check_run(name: str, device: str, env: dict, work: Path, data_root: Path | None, quick: bool,
              timeout: float) -> dict:
    folder = ROOT / name
    missing = [c for c in CHECKS.get(name, {}).get("needs", []) if shutil.which(c) is None]
    if missing:
        return {"ok": False, "error": f"needs {' and '.join(missing)} on PATH (not installed here)"}
    data_dir = data_root / name / "data" if data_root else None
    if data_dir is None or not data_dir.exists():
        data_dir = work / "data"
        if not (data_dir / "tiny.md5").exists():
            rc, out = run_logged([sys.executable, "make_tiny_dataset.py", str(data_dir)], folder, env,
                                 work / "data.log", timeout)
            if rc != 0:
                return {"ok": False, "error": f"make_tiny_dataset.py exited {rc} (pass --data-root with data "
                                              f"made elsewhere)", "tail": out[-3000:]}
    output_dir, probes = work / "output", work / "probe-run"
    for d in (output_dir, probes):
        shutil.rmtree(d, ignore_errors=True)
    check = CHECKS.get(name, {})
    extra = ["--device", device, *check.get("run", [])]
    if device == "cuda":
        extra += check.get("run_cuda", [])
    if quick:
        extra += ["--max-epochs", str(QUICK_EPOCHS)]
    run_env = dict(env, DATA_DIR=str(data_dir.resolve()), OUTPUT_DIR=str(output_dir), CONFIG="tiny", SEED="0",
                   TORCHRUN="1", NPROC_PER_NODE="1", NNODES="1", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(free_port()), GPU_CHECK_PROBE_DIR=str(probes))
    t0 = time.time()
    rc, out = run_logged(["bash", "run_and_time.sh", *extra], folder, run_env, work / "run.log", timeout)
    summary_path = output_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    probe = next((p for p in read_probes(probes, "train.py") if p.get("rank", 0) == 0), {})
    result = {"rc": rc, "wall_seconds": round(time.time() - t0, 1), "args": extra, "seed": 0,
              **{k: summary.get(k) for k in ("success", "reached", "target", "metric", "epochs", "seconds",
                                             "world_size")}, "probe": probe}
    # A --quick run may stop before the target (exit 1); it must still end cleanly with a finite metric.
    finite = isinstance(summary.get("reached"), (int, float)) and summary["reached"] == summary["reached"]
    result["ok"] = bool(summary) and probe.get("steps", 0) > 0 and (rc == 0 or (quick and rc == 1 and finite))
    if not result["ok"]:
        result["error"] = ("timed out" if rc == 124 else "no summary.json" if not summary else
                           "no training step seen" if not probe.get("steps") else f"exit {rc}")
        result["tail"] = out[-3000:]
    return result


def bench_cells(rows: list[dict], variant: str | None, memory: dict | None = None) -> list[str]:
    """samples/s, TFLOP/s, MFU and peak GiB of the fastest row (by TFLOP/s) of one bench.py run: the plain run
    (variant None) or a variant. memory: the dict with that run's peak_memory_gib / peak_rss_gib (default: the
    row itself, where check_bench puts a variant's)."""
    best = max((x for x in rows if x.get("variant") == variant and isinstance(x.get("tflops"), (int, float))),
               key=lambda x: x["tflops"], default={})
    memory = best if memory is None else memory
    peak = memory.get("peak_memory_gib") if memory.get("peak_memory_gib") is not None else \
        memory.get("peak_rss_gib")
    return [num(best.get("samples_per_s"), ".1f"), num(best.get("tflops"), ".2f"),
            f"{best['mfu']:.1%}" if isinstance(best.get("mfu"), float) else "-", num(peak, ".2f")]


def report_table(results: dict) -> str:
    body = []
    for name, r in results.items():
        b, t = r.get("bench", {}), r.get("run", {})
        rows = b.get("rows", [])
        probe = t.get("probe", {})
        body.append([
            name, *bench_cells(rows, None, b),
            f"{num(t.get('reached'), '.4g')}/{num(t.get('target'), '.4g')}", num(t.get("seconds"), ".1f"),
            num(probe.get("steps"), "d"),
            num(probe.get("syncs_per_step_median"), "g") if probe.get("sync_debug") else "-",
            "ok" if r["ok"] else "FAIL: " + "; ".join(f"{k} {v['error']}" for k, v in r.items()
                                                      if isinstance(v, dict) and v.get("error"))])
        for variant in dict.fromkeys(x["variant"] for x in rows if x.get("variant")):
            body.append([f"{name} {variant}", *bench_cells(rows, variant), "", "", "", "", "(bench.py only)"])
    return format_table(["benchmark", "samples/s", "TFLOP/s", "MFU", "peak GiB", "tiny reached/target",
                         "mlperf s", "steps", "syncs/step", "result"], body)


def device_info(device: str) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": sys.version.split()[0], "device": device,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host_cpus": os.cpu_count()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Every GPU path of every benchmark on one GPU, one report.")
    p.add_argument("--bench", action="append", help="only this folder (repeatable)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="cuda (default; exits 2 without one) or cpu (tests the harness)")
    p.add_argument("--wheels", type=Path, default=None, help="install these wheels first (no network)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="tiny data made elsewhere: <root>/<bench>/data")
    p.add_argument("--out", type=Path, default=ROOT / ".gpu-check",
                   help="report and logs (default .gpu-check)")
    p.add_argument("--quick", action="store_true", help=f"tiny runs stop after {QUICK_EPOCHS} epochs")
    p.add_argument("--skip-bench", action="store_true", help="only the tiny runs")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds allowed for each bench.py and each run")
    args = p.parse_args(argv)

    names = select_benchmarks(args.bench, ROOT)
    if names is None:
        return 2
    env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED="1")
    paths = [str(PROBE)]
    if args.wheels:
        site = args.out / "site"
        install_wheels(args.wheels, site, sys.executable)
        paths.append(str(site.resolve()))
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        import torch
    except ImportError:
        print("gpu_check: this Python has no torch (a GPU machine brings its own; pass PYTHON=)",
              file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available here; `make gpu-check` is for a GPU machine "
              "(DEVICE=cpu runs the harness on the CPU)", file=sys.stderr)
        return 2

    info = device_info(args.device)
    print(f"gpu-check on {info.get('gpu', 'cpu')} (torch {info['torch']}): {', '.join(names)}", flush=True)
    results = {}
    t_all = time.time()
    for name in names:
        work = (args.out / name).resolve()
        work.mkdir(parents=True, exist_ok=True)
        r = {}
        if not args.skip_bench:
            print(f"=== {name}: bench.py", flush=True)
            r["bench"] = check_bench(name, args.device, env, work, args.timeout)
        print(f"=== {name}: tiny run", flush=True)
        r["run"] = check_run(name, args.device, env, work, args.data_root, args.quick, args.timeout)
        r["ok"] = all(v["ok"] for v in r.values())
        results[name] = r
        print(f"=== {name}: {'ok' if r['ok'] else 'FAIL'} (logs in {work})", flush=True)
    report = {**info, "seconds": round(time.time() - t_all, 1), "quick": args.quick, "benchmarks": results,
              "ok": all(r["ok"] for r in results.values())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print("\n" + report_table(results))
    print(f"\n{report['seconds']:.0f} s in all; report: {args.out / 'report.json'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
