"""What `make gpu-check` measures inside one train.py or bench.py process, without a line in their code.

- Training steps: a global optimizer step hook (torch.optim.optimizer.register_optimizer_step_post_hook)
  marks every optimizer.step(), whichever optimizer and whether GradScaler calls it.
- Host-device synchronisations: from the first step on, torch.cuda.set_sync_debug_mode("warn") makes
  PyTorch warn at every synchronising CUDA call (.item(), .cpu(), .tolist(), a blocking copy, nonzero,
  torch.cuda.synchronize, ...); each warning is counted here with the benchmark's own line that caused
  it, and never printed. The sync debug mode misses collectives (torch.distributed), so DDP's own waits
  are not counted.
- Syncs per training step: the syncs between two consecutive optimizer steps. Evaluations, logging and
  checkpoints fall between the last step of one epoch and the first of the next, so the median over all
  gaps is the steady per-step count; sites seen in at least half of the gaps are the per-step ones.
- Without CUDA, sync_debug is false and the sync counts hold nothing PyTorch measured (read them as
  "not measured", not as zero); steps are counted all the same.
- Peak memory: torch.cuda.max_memory_allocated on CUDA, the peak resident set size on the CPU.

At exit the process writes <GPU_CHECK_PROBE_DIR>/<script>-<pid>.json.
"""

import atexit
import json
import os
import resource
import statistics
import sys
import time
import warnings
from collections import Counter

SYNC_MESSAGE = "called a synchronizing CUDA operation"
STEP = None  # the event that marks an optimizer step in Probe.events; any other event is a sync site


def summarize(events: list) -> dict:
    """Steps and syncs from a list of events: STEP, or a string naming the site of one sync."""
    steps = sum(1 for e in events if e is STEP)
    gaps: list[Counter] = []  # syncs between step k and step k+1
    current = None
    for e in events:
        if e is STEP:
            if current is not None:
                gaps.append(current)
            current = Counter()
        elif current is not None:
            current[e] += 1
    first = next((i for i, e in enumerate(events) if e is STEP), len(events))
    counts = sorted(sum(g.values()) for g in gaps)
    seen_in = Counter(site for g in gaps for site in g)
    totals = sum(gaps, Counter())
    per_step = {site: round(totals[site] / len(gaps), 3) for site in seen_in
                if seen_in[site] * 2 >= len(gaps)}
    return {
        "steps": steps,
        "syncs": sum(1 for e in events if e is not STEP),
        "syncs_before_first_step": first if steps else None,
        "gaps": len(gaps),
        "syncs_per_step_median": statistics.median(counts) if counts else None,
        "syncs_per_step_mean": round(sum(counts) / len(counts), 3) if counts else None,
        "per_step_sites": dict(sorted(per_step.items(), key=lambda kv: -kv[1])[:12]),
        "other_sites": dict(Counter({s: n for s, n in totals.items() if s not in per_step}).most_common(12)),
    }


class Probe:
    def __init__(self, out_dir: str, argv: list[str]):
        self.out_dir = out_dir
        self.argv = list(argv)
        self.folder = os.path.dirname(os.path.abspath(argv[0]))
        self.events: list = []
        self.sync_debug = False
        self.t0 = time.time()

    def site(self) -> str:
        """The innermost frame in the benchmark's folder (else the innermost outside this module)."""
        frame = sys._getframe(1)
        fallback = None
        while frame is not None:
            path = frame.f_code.co_filename
            if path.startswith(self.folder + os.sep):
                return f"{os.path.relpath(path, self.folder)}:{frame.f_lineno} ({frame.f_code.co_name})"
            if fallback is None and not path.endswith(("warnings.py", "gpu_probe.py")):
                fallback = f"{path}:{frame.f_lineno} ({frame.f_code.co_name})"
            frame = frame.f_back
        return fallback or "?"

    def on_step(self, optimizer, args, kwargs) -> None:
        self.events.append(STEP)
        if not self.sync_debug:
            import torch

            # From the first step on: by then the model is on its device, and a loader's workers
            # (forked before CUDA was touched) are already running.
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.set_sync_debug_mode("warn")
                self.sync_debug = True

    def write(self) -> None:
        import torch

        report = {"script": os.path.basename(self.argv[0]), "argv": self.argv[1:], "pid": os.getpid(),
                  "rank": int(os.environ.get("RANK", 0)), "seconds": round(time.time() - self.t0, 2),
                  "sync_debug": self.sync_debug, **summarize(self.events),
                  "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            report.update(device=torch.cuda.get_device_name(),
                          peak_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 3),
                          peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 3))
        else:
            report.update(device="cpu", peak_memory_gib=None)
        os.makedirs(self.out_dir, exist_ok=True)
        stem = os.path.splitext(report["script"])[0]
        with open(os.path.join(self.out_dir, f"{stem}-{os.getpid()}.json"), "w") as f:
            json.dump(report, f, indent=1)


def install(out_dir: str, argv: list[str]) -> Probe:
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    probe = Probe(out_dir, argv)
    register_optimizer_step_post_hook(probe.on_step)
    # Every sync warning is shown (not once per line), counted, and kept off the console.
    warnings.filterwarnings("always", message=SYNC_MESSAGE)
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if SYNC_MESSAGE in str(message):
            probe.events.append(probe.site())
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    atexit.register(probe.write)
    del torch
    return probe
