#!/usr/bin/env bash
# Train Transformer (big) on WMT en-de to the BLEU target and print the MLPerf v0.5-style RESULT line.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: run_and_time.sh [train.py arguments...]

Runs the untimed preprocessing (sentencepiece model + encoded shards) when DATA_DIR lacks it or it was
made for another preset, then trains with train.py (torchrun for more than one process) and prints
  RESULT,transformer,<seed>,<seconds>,<user>,<start time ISO 8601>
where seconds is the wall clock of the training command. Exits with train.py's status: 0 only when
the target BLEU was reached.

Environment (defaults in brackets):
  DATA_DIR [./data]  OUTPUT_DIR [./output]  SEED [drawn here]
  CONFIG [reference] (or reference_8gpu: NVIDIA's MLPerf v0.6 8-GPU recipe, on 8 GPUs or fewer; or tiny)
  NPROC_PER_NODE [GPUs listed by nvidia-smi -L, else 1]  NNODES [1]  NODE_RANK [0]
  MASTER_ADDR [127.0.0.1]  MASTER_PORT [29500]  PYTHON [python3]
  TORCHRUN [0]: 1 launches torchrun even for one process (DDP with one rank, as make gpu-check does)
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
DATA_DIR=${DATA_DIR:-$HERE/data}
OUTPUT_DIR=${OUTPUT_DIR:-$HERE/output}
CONFIG=${CONFIG:-reference}
PYTHON=${PYTHON:-python3}
SEED=${SEED:-$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 2147483647 ))}
if [[ -z "${NPROC_PER_NODE:-}" ]]; then
  NPROC_PER_NODE=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [[ "$NPROC_PER_NODE" -ge 1 ]] || NPROC_PER_NODE=1
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}

# Untimed preprocessing (outside the timed region since mlcommons/training#139), when DATA_DIR/preprocessed
# is missing or was made with other settings (reference and reference_8gpu share it).
"$PYTHON" preprocess.py "$DATA_DIR" --config "$CONFIG" --if-needed

if (( NPROC_PER_NODE * NNODES > 1 )) || [[ "${TORCHRUN:-0}" == 1 ]]; then
  launch=("$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC_PER_NODE" --nnodes "$NNODES"
          --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" train.py)
else
  launch=("$PYTHON" train.py)
fi

start_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start=$(date +%s.%N)
echo "run_and_time.sh: start $start_iso, seed $SEED, $NPROC_PER_NODE x $NNODES process(es)" >&2
status=0
"${launch[@]}" --data-dir "$DATA_DIR" --output-dir "$OUTPUT_DIR" --config "$CONFIG" --seed "$SEED" "$@" ||
  status=$?
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "run_and_time.sh: end $(date -u +%Y-%m-%dT%H:%M:%SZ), exit status $status" >&2
echo "RESULT,transformer,$SEED,$seconds,${USER:-$(id -un)},$start_iso"
exit "$status"
