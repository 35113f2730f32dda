"""Python loads this module at start-up in every process that `make gpu-check` launches (its folder is on
PYTHONPATH there). In a benchmark's train.py or bench.py, and only when GPU_CHECK_PROBE_DIR is set, it
installs gpu_probe: optimizer steps, host-device synchronisations between them and peak memory, written
to that folder when the process exits. Every other process (torchrun's launcher, loader workers,
preprocessing scripts) is left alone."""

import os
import sys

if os.environ.get("GPU_CHECK_PROBE_DIR") and sys.argv and \
        os.path.basename(sys.argv[0]) in ("train.py", "bench.py"):
    import gpu_probe

    gpu_probe.install(os.environ["GPU_CHECK_PROBE_DIR"], sys.argv)
