#!/usr/bin/env bash
# Run the Minigo loop to the move-prediction target and time it; prints the RESULT line of the v0.5 references.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: run_and_time.sh [train.py arguments...]

Checks DATA_DIR with verify_dataset.sh (before the clock; there is no preprocessing: Minigo trains from
self-play), then runs the loop with train.py (torchrun when there is more than one process), then prints
    RESULT,reinforcement,<seed>,<seconds>,<user>,<start time, ISO 8601>
with the wall-clock seconds of the training command. Exits with train.py's status: non-zero if the target
was missed. The MLPerf time (RUN_START to RUN_STOP) is in OUTPUT_DIR/mlperf.log and summary.json.

Environment (defaults in brackets):
  DATA_DIR [./data]  OUTPUT_DIR [./output]  CONFIG [reference] (or tiny)  SEED [drawn here]
  NPROC_PER_NODE [GPUs listed by nvidia-smi -L, else 1]  NNODES [1]  NODE_RANK [0]
  MASTER_ADDR [127.0.0.1]  MASTER_PORT [29500]  PYTHON [python3]
  TORCHRUN [0]: 1 launches torchrun even for one process (DDP with one rank, as make gpu-check does)
Examples:
  ./run_and_time.sh                                    # all local GPUs, reference preset
  CONFIG=tiny DATA_DIR=/tmp/tiny ./run_and_time.sh --device cpu
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

cd "$(dirname "$0")"
DATA_DIR=${DATA_DIR:-./data}
OUTPUT_DIR=${OUTPUT_DIR:-./output}
CONFIG=${CONFIG:-reference}
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
if [ -z "${NPROC_PER_NODE:-}" ]; then
  NPROC_PER_NODE=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
  [ "$NPROC_PER_NODE" -ge 1 ] || NPROC_PER_NODE=1
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python3}

# The quality set must be intact before the clock starts (the checksums; bad SGF content fails in train.py).
./verify_dataset.sh "$DATA_DIR"

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
echo "RESULT,reinforcement,$SEED,$seconds,${USER:-$(id -un)},$start_iso"
exit "$status"
