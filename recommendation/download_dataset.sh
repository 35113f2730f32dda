#!/usr/bin/env bash
# Download MovieLens ml-20m (resumable, with progress), extract it safely, then verify it.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]      (default: $DATA_DIR, else ./data)

Downloads https://files.grouplens.org/datasets/movielens/ml-20m.zip (198,702,078 bytes) to DATA_DIR,
resuming a partial download (DATA_DIR/ml-20m.zip.part) after a cut connection, extracts ml-20m/ with
every zip member checked (no absolute paths, no "..", no links), then runs verify_dataset.sh.
Environment: DATASET_MIRROR  fetch $DATASET_MIRROR/ml-20m.zip instead of the official URL
             PYTHON          interpreter for the extraction [python3]
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
BASE_URL=${DATASET_MIRROR:-https://files.grouplens.org/datasets/movielens}
PYTHON=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
zip="$DATA_DIR/ml-20m.zip"
mkdir -p "$DATA_DIR"

if [ -f "$zip" ]; then
  echo "download_dataset.sh: $zip already downloaded"
else
  url="$BASE_URL/ml-20m.zip"
  echo "download_dataset.sh: $url -> $zip"
  ok=0
  for attempt in 1 2 3 4 5; do
    # --continue-at - resumes from the size of the .part file (an HTTP Range request).
    if curl --fail --location --continue-at - --progress-bar --output "$zip.part" "$url"; then
      ok=1
      break
    fi
    echo "download_dataset.sh: transfer interrupted (attempt $attempt of 5); resuming" >&2
    sleep "$attempt"
  done
  if [ "$ok" -ne 1 ]; then
    echo "download_dataset.sh: could not download $url; rerun to resume, or delete $zip.part to start over" >&2
    exit 1
  fi
  mv "$zip.part" "$zip"
fi

echo "download_dataset.sh: extracting $zip"
"$PYTHON" - "$zip" "$DATA_DIR" <<'PY'
import pathlib, stat, sys, zipfile
archive, dest = sys.argv[1:]
try:
    zf = zipfile.ZipFile(archive)
except zipfile.BadZipFile as e:
    sys.exit(f"download_dataset.sh: {archive}: not a valid zip ({e}); delete it and download again")
with zf:
    for info in zf.infolist():
        name = info.filename
        parts = pathlib.PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or ":" in name:
            sys.exit(f"download_dataset.sh: {archive}: unsafe member path {name!r}; not extracting")
        if stat.S_ISLNK(info.external_attr >> 16):
            sys.exit(f"download_dataset.sh: {archive}: member {name!r} is a link; not extracting")
        if parts[0] != "ml-20m":
            sys.exit(f"download_dataset.sh: {archive}: member {name!r} is outside ml-20m/; not extracting")
    zf.extractall(dest)
PY

exec "$here/verify_dataset.sh" "$DATA_DIR"
