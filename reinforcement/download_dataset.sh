#!/usr/bin/env bash
# Download the 4 professional 9x9 games of the move-prediction quality metric (resumable), then verify them.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]      (default: $DATA_DIR, else ./data)

Minigo trains from self-play only: its one dataset is the quality set, the 4 professional 9x9 games that
the MLPerf v0.5 reference ships in mlcommons/training (tag v0.5) under
reinforcement/tensorflow/minigo/benchmark_sgf/: 9x9_pro_YKSH.sgf 9x9_pro_IYMD.sgf 9x9_pro_YSIY.sgf
9x9_pro_IYHN.sgf. Each is fetched with curl (resuming a cut transfer from DATA_DIR/<file>.part, with a
progress bar), then verify_dataset.sh checks their sha256.
Environment: DATASET_MIRROR  fetch $DATASET_MIRROR/<file> instead of the official URL
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
BASE_URL=${DATASET_MIRROR:-https://raw.githubusercontent.com/mlcommons/training/v0.5/reinforcement/tensorflow/minigo/benchmark_sgf}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DATA_DIR"

for name in 9x9_pro_YKSH.sgf 9x9_pro_IYMD.sgf 9x9_pro_YSIY.sgf 9x9_pro_IYHN.sgf; do
  dest="$DATA_DIR/$name"
  if [ -f "$dest" ]; then
    echo "download_dataset.sh: $dest already downloaded"
    continue
  fi
  url="$BASE_URL/$name"
  echo "download_dataset.sh: $url -> $dest"
  ok=0
  for attempt in 1 2 3 4 5; do
    # --continue-at - resumes from the size of the .part file (an HTTP Range request).
    if curl --fail --location --continue-at - --progress-bar --output "$dest.part" "$url"; then
      ok=1
      break
    fi
    echo "download_dataset.sh: transfer of $name interrupted (attempt $attempt of 5); resuming" >&2
    sleep "$attempt"
  done
  if [ "$ok" -ne 1 ]; then
    echo "download_dataset.sh: could not download $url; rerun to resume, or delete $dest.part" >&2
    exit 1
  fi
  mv "$dest.part" "$dest"
done

exec "$here/verify_dataset.sh" "$DATA_DIR"
