#!/usr/bin/env bash
# Download WMT17 en-de training data, newstest2013 (dev) and newstest2014 (BLEU test set), then verify.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]

Fetches what the MLPerf v0.5 Transformer reference downloads (data_download.py / download_data.sh):
  training-parallel-nc-v12.tgz, training-parallel-commoncrawl.tgz, training-parallel-europarl-v7.tgz,
  dev.tgz                       -> DATA_DIR/raw_data/ (archives kept, extracted next to them)
  newstest2014.en, newstest2014.de (TF-models copy, 3,003 lines each) -> DATA_DIR/
then runs verify_dataset.sh. About 1.75 GB to download, 8.4 GB on disk.

DATA_DIR defaults to $DATA_DIR, else ./data next to this script.
Downloads resume where they stopped (curl -C -, several attempts); a finished file is not fetched
again. Archives are extracted with Python's tarfile filter="data" (no absolute paths, no "..", no
links out of the target).

Environment:
  DATASET_MIRROR   fetch every file from $DATASET_MIRROR/<file name> instead of its official URL
  PYTHON           interpreter used for extraction (default python3)
USAGE
}

case "${1:-}" in -h|--help) usage; exit 0 ;; esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA_DIR=${1:-${DATA_DIR:-$HERE/data}}
PYTHON=${PYTHON:-python3}
RAW=$DATA_DIR/raw_data
ARCHIVES=(
  http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz
  http://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz
  http://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz
  http://data.statmt.org/wmt17/translation-task/dev.tgz
)
# The v0.5 download_data.sh reads these from tensorflow/models `master`, where official/transformer/ has
# since moved (official/legacy/transformer/ has no test_data/): pin a revision that still holds them.
# verify_dataset.sh checks the reference's MD5s either way.
TF_MODELS=https://raw.githubusercontent.com/tensorflow/models/ee6901ff35fa4a978f0e8e5483d00cd01e0497ff
TEST_FILES=(
  "$TF_MODELS/official/transformer/test_data/newstest2014.en"
  "$TF_MODELS/official/transformer/test_data/newstest2014.de"
)

# fetch URL DEST: download to DEST.part, resuming across attempts, then rename to DEST.
fetch() {
  local url=$1 dest=$2 attempt
  if [[ -n "${DATASET_MIRROR:-}" ]]; then
    url="${DATASET_MIRROR%/}/$(basename "$url")"
  fi
  if [[ -f "$dest" ]]; then
    echo "already downloaded: $dest" >&2
    return 0
  fi
  echo "downloading $url" >&2
  for attempt in 1 2 3 4 5; do
    if curl -fL --connect-timeout 30 --progress-bar -C - -o "$dest.part" "$url"; then
      mv "$dest.part" "$dest"
      return 0
    fi
    echo "download of $url stopped (attempt $attempt of 5); resuming" >&2
    sleep "$attempt"
  done
  echo "error: could not download $url (the partial file $dest.part is kept for the next run)" >&2
  return 1
}

# extract ARCHIVE DIR: safe extraction, once (a marker outside raw_data records it).
extract() {
  local archive=$1 dir=$2 marker
  marker="$DATA_DIR/.extracted/$(basename "$1")"
  [[ -f "$marker" ]] && return 0
  echo "extracting $archive" >&2
  "$PYTHON" - "$archive" "$dir" <<'PY'
import sys, tarfile
archive, target = sys.argv[1], sys.argv[2]
try:
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
except (tarfile.TarError, OSError, EOFError) as e:
    sys.exit(f"error: {archive}: cannot extract ({e}); delete it and run download_dataset.sh again")
PY
  mkdir -p "$(dirname "$marker")"
  touch "$marker"
}

mkdir -p "$RAW"
for url in "${ARCHIVES[@]}"; do
  fetch "$url" "$RAW/$(basename "$url")"
  extract "$RAW/$(basename "$url")" "$RAW"
done
for url in "${TEST_FILES[@]}"; do
  fetch "$url" "$DATA_DIR/$(basename "$url")"
done
exec "$HERE/verify_dataset.sh" "$DATA_DIR"
