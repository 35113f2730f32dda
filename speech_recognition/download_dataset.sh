#!/usr/bin/env bash
# Download the LibriSpeech subsets DeepSpeech2 uses (resumable, with progress), extract them safely, verify.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]      (default: $DATA_DIR, else ./data)

Downloads from OpenSLR SLR12 (http://www.openslr.org/resources/12/) into DATA_DIR: train-clean-100,
train-clean-360 and train-other-500 (training, 960 h, ~59 GB) and dev-clean and dev-other (validation, ~650 MB),
each <subset>.tar.gz resuming a partial download (<subset>.tar.gz.part) after a cut connection. Then extracts
each archive to DATA_DIR/LibriSpeech/<subset>/ (Python tarfile, filter="data": no absolute paths, no "..",
no links out), keeps the archives (verify_dataset.sh checks their MD5s), and runs verify_dataset.sh.
./preprocess.py DATA_DIR (run_and_time.sh runs it) then writes the manifests. Needs ~130 GB of free disk.
Environment: SUBSETS         subsets to fetch [train-clean-100 train-clean-360 train-other-500 dev-clean
                             dev-other]; test-clean and test-other exist too (the reference downloaded them
                             but never used them)
             DATASET_MIRROR  fetch $DATASET_MIRROR/<subset>.tar.gz instead of the official URL
             PYTHON          interpreter for the extraction [python3]
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
SUBSETS=${SUBSETS:-train-clean-100 train-clean-360 train-other-500 dev-clean dev-other}
BASE_URL=${DATASET_MIRROR:-http://www.openslr.org/resources/12}
PYTHON=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DATA_DIR"

for subset in $SUBSETS; do
  if ! grep -q "  $subset.tar.gz\$" "$here/checksums.md5"; then
    echo "download_dataset.sh: unknown subset $subset (see checksums.md5)" >&2
    exit 1
  fi
  archive="$DATA_DIR/$subset.tar.gz"
  if [ -f "$archive" ]; then
    echo "download_dataset.sh: $archive already downloaded"
  else
    url="$BASE_URL/$subset.tar.gz"
    echo "download_dataset.sh: $url -> $archive"
    ok=0
    for attempt in 1 2 3 4 5; do
      # --continue-at - resumes from the size of the .part file (an HTTP Range request).
      if curl --fail --location --continue-at - --progress-bar --output "$archive.part" "$url"; then
        ok=1
        break
      fi
      echo "download_dataset.sh: transfer interrupted (attempt $attempt of 5); resuming" >&2
      sleep "$attempt"
    done
    if [ "$ok" -ne 1 ]; then
      echo "download_dataset.sh: could not download $url; rerun to resume, or delete $archive.part to start over" >&2
      exit 1
    fi
    mv "$archive.part" "$archive"
  fi
  if [ -d "$DATA_DIR/LibriSpeech/$subset" ]; then
    echo "download_dataset.sh: $DATA_DIR/LibriSpeech/$subset already extracted"
    continue
  fi
  echo "download_dataset.sh: extracting $archive"
  # Into a scratch folder first, then renamed: an interrupted extraction leaves no half subset behind.
  "$PYTHON" - "$archive" "$DATA_DIR" "$subset" <<'PY'
import os, shutil, sys, tarfile
archive, dest, subset = sys.argv[1:]
scratch = os.path.join(dest, f".extract-{subset}")
shutil.rmtree(scratch, ignore_errors=True)
try:
    with tarfile.open(archive) as tf:
        for member in tf:
            parts = member.name.split("/")
            if parts[0] != "LibriSpeech" or (len(parts) > 2 and parts[1] != subset):
                sys.exit(f"download_dataset.sh: {archive}: member {member.name!r} is outside "
                         f"LibriSpeech/{subset}/; not extracting")
        tf.extractall(scratch, filter="data")  # refuses absolute paths, "..", links out of scratch
except (tarfile.TarError, OSError) as e:
    shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(f"download_dataset.sh: {archive}: cannot extract ({e}); delete it and download again")
os.makedirs(os.path.join(dest, "LibriSpeech"), exist_ok=True)
for name in os.listdir(os.path.join(scratch, "LibriSpeech")):  # the subset and README.TXT, SPEAKERS.TXT, ...
    target = os.path.join(dest, "LibriSpeech", name)
    if not os.path.exists(target):
        os.replace(os.path.join(scratch, "LibriSpeech", name), target)
shutil.rmtree(scratch)
PY
done

SUBSETS="$SUBSETS" exec "$here/verify_dataset.sh" "$DATA_DIR"
