#!/usr/bin/env bash
# Train NeuMF on ml-20m to the HR@10 target and time it; prints the RESULT line of the v0.5 references.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: run_and_time.sh [train.py arguments...]

Converts DATA_DIR/ml-20m/ratings.csv when its converted form is missing or stale (./convert.py: deterministic,
before the clock), then trains with train.py (torchrun when there is more than one process), then prints
    RESULT,recommendation,<seed>,<seconds>,<user>,<start time, ISO 8601>
with the wall-clock seconds of the training command. Exits with train.py's status: non-zero if the target
was missed. The MLPerf time (RUN_START to RUN_STOP) is in OUTPUT_DIR/mlperf.log and summary.json.

Environment (defaults in brackets):
  DATA_DIR [./data]  OUTPUT_DIR [./output]  SEED [drawn here]
  CONFIG [reference] (or large_batch; tiny and tiny_large_batch for make_tiny_dataset.py data)
  NPROC_PER_NODE [1; see the README before using more GPUs]  NNODES [1]  NODE_RANK [0]
  MASTER_ADDR [127.0.0.1]  MASTER_PORT [29500]  PYTHON [python3]
  TORCHRUN [0]: 1 launches torchrun even for one process (DDP with one rank, as make gpu-check does)
Examples:
  ./run_and_time.sh                                    # one GPU, reference preset
  CONFIG=large_batch ./run_and_time.sh                 # NVIDIA's v0.5 recipe (batch 1,048,576)
  CONFIG=tiny DATA_DIR=/tmp/tiny ./run_and_time.sh --device cpu
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

cd "$(dirname "$0")"
DATA_DIR=${DATA_DIR:-./data}
OUTPUT_DIR=${OUTPUT_DIR:-./output}
CONFIG=${CONFIG:-reference}
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
# One process unless asked: NCF's steps are small, and splitting them over GPUs adds a collective a step
# without shortening it (README, "Multi-GPU": what was measured, and when more GPUs may pay).
NPROC_PER_NODE=${NPROC_PER_NODE:-1}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python3}

# Deterministic preprocessing, outside the timed region (the v0.5 rules allow it); a no-op when up to date.
"$PYTHON" convert.py "$DATA_DIR"

args=(--data-dir "$DATA_DIR" --output-dir "$OUTPUT_DIR" --config "$CONFIG" --seed "$SEED" "$@")
if [ "$((NPROC_PER_NODE * NNODES))" -eq 1 ] && [ "${TORCHRUN:-0}" != 1 ]; then
  cmd=("$PYTHON" train.py "${args[@]}")
else
  cmd=("$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC_PER_NODE" --nnodes "$NNODES"
       --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" train.py "${args[@]}")
fi

start=$(date +%s.%N)
start_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "STARTING TIMING RUN AT $start_iso"
status=0
"${cmd[@]}" || status=$?
end=$(date +%s.%N)
echo "ENDING TIMING RUN AT $(date -u +%Y-%m-%dT%H:%M:%SZ)"
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "RESULT,recommendation,$SEED,$seconds,${USER:-$(id -un)},$start_iso"
exit "$status"
