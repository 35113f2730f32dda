#!/usr/bin/env bash
# Train Seq-CNN on IMDB to the target and time it; prints the v0.5-style RESULT line.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<USAGE
Usage: [VAR=value ...] run_and_time.sh [train.py arguments...]

Trains until test accuracy >= target (train.py), then prints
  RESULT,sentiment_analysis,<seed>,<seconds>,<user>,<start time ISO 8601>
and exits with train.py's status (non-zero when the target was missed).
Environment:
  DATA_DIR        folder with aclImdb_v1.tar.gz          (default: ./data next to this script)
  OUTPUT_DIR      mlperf.log, summary.json, checkpoint.pt (default: ./output next to this script)
  CONFIG          reference | tiny                        (default: reference)
  SEED            random seed                             (default: drawn here, shared by all ranks)
  NPROC_PER_NODE  processes per node                      (default: GPUs listed by nvidia-smi -L, else 1)
  NNODES NODE_RANK MASTER_ADDR MASTER_PORT                (several nodes; defaults 1 0 127.0.0.1 29500)
  PYTHON          interpreter                             (default: python3)
  TORCHRUN        1: torchrun even for one process (DDP with one rank, as make gpu-check does)
There is no preprocessing step: train.py streams the archive, and reading, tokenising and the
vocabulary are inside the timed region, as in 2018.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR="${DATA_DIR:-$HERE/data}"
OUTPUT_DIR="${OUTPUT_DIR:-$HERE/output}"
CONFIG="${CONFIG:-reference}"
SEED="${SEED:-$(( (RANDOM << 15) | RANDOM ))}"
if [[ -z "${NPROC_PER_NODE:-}" ]]; then
  NPROC_PER_NODE="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
  [[ "$NPROC_PER_NODE" -ge 1 ]] || NPROC_PER_NODE=1
fi
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"
PYTHON="${PYTHON:-python3}"

args=(--data-dir "$DATA_DIR" --output-dir "$OUTPUT_DIR" --config "$CONFIG" --seed "$SEED" "$@")
start="$(date +%s)"
start_iso="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "STARTING TIMING RUN AT $start_iso"
set +e
if [[ "$NPROC_PER_NODE" == 1 && "$NNODES" == 1 && "${TORCHRUN:-0}" != 1 ]]; then
  "$PYTHON" "$HERE/train.py" "${args[@]}"
else
  "$PYTHON" -m torch.distributed.run --nnodes "$NNODES" --node_rank "$NODE_RANK" \
    --nproc_per_node "$NPROC_PER_NODE" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
    "$HERE/train.py" "${args[@]}"
fi
status=$?
set -e
end="$(date +%s)"
echo "ENDING TIMING RUN AT $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "RESULT,sentiment_analysis,$SEED,$((end - start)),${USER:-$(id -un)},$start_iso"
exit "$status"
