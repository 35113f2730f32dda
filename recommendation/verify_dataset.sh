#!/usr/bin/env bash
# Check the MovieLens ml-20m download (or the synthetic tiny dataset); exits non-zero naming each bad file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

Checks DATA_DIR/ml-20m.zip against GroupLens' published MD5 (cd245b17a1ae2cc31bb14903e1204af3) and that
ml-20m/ratings.csv was extracted. When DATA_DIR holds tiny.md5 (written by make_tiny_dataset.py), checks
the files it lists instead, and says so. Prints PASSED, or names every missing or damaged file and exits 1.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
ZIP_MD5=cd245b17a1ae2cc31bb14903e1204af3
bad=0

if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the synthetic tiny dataset, not ml-20m"
  if ! (cd "$DATA_DIR" && md5sum --check --quiet tiny.md5); then
    echo "verify_dataset.sh: FAILED: the files named above do not match $DATA_DIR/tiny.md5" >&2
    exit 1
  fi
  echo "verify_dataset.sh: PASSED (tiny dataset)"
  exit 0
fi

zip="$DATA_DIR/ml-20m.zip"
if [ ! -f "$zip" ]; then
  echo "verify_dataset.sh: MISSING: $zip (run ./download_dataset.sh $DATA_DIR)" >&2
  bad=1
else
  got=$(md5sum "$zip" | cut -d' ' -f1)
  if [ "$got" != "$ZIP_MD5" ]; then
    echo "verify_dataset.sh: FAILED: $zip has md5 $got, expected $ZIP_MD5 (damaged or not ml-20m; delete it and download again)" >&2
    bad=1
  fi
fi
if [ ! -s "$DATA_DIR/ml-20m/ratings.csv" ]; then
  echo "verify_dataset.sh: MISSING: $DATA_DIR/ml-20m/ratings.csv (run ./download_dataset.sh $DATA_DIR to extract it)" >&2
  bad=1
fi
if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "verify_dataset.sh: PASSED"
