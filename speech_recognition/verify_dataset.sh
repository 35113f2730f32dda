#!/usr/bin/env bash
# Check the LibriSpeech download (or the synthetic tiny dataset); exits non-zero naming each bad file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

For each subset, checks DATA_DIR/<subset>.tar.gz against the OpenSLR MD5 kept in checksums.md5 and counts the
FLAC files of DATA_DIR/LibriSpeech/<subset>/ against the official utterance count (spec section 2.4: the
reference's cksum of a tar of converted WAVs cannot be reproduced). When DATA_DIR holds tiny.md5 (written by
make_tiny_dataset.py), checks the files it lists instead, and says so. Prints PASSED, or names every missing
or damaged file and exits 1.
Environment: SUBSETS  [train-clean-100 train-clean-360 train-other-500 dev-clean dev-other]
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
SUBSETS=${SUBSETS:-train-clean-100 train-clean-360 train-other-500 dev-clean dev-other}
here=$(cd "$(dirname "$0")" && pwd)

if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the synthetic tiny dataset, not LibriSpeech"
  if ! (cd "$DATA_DIR" && md5sum --check --quiet tiny.md5); then
    echo "verify_dataset.sh: FAILED: the files named above do not match $DATA_DIR/tiny.md5" >&2
    exit 1
  fi
  echo "verify_dataset.sh: PASSED (tiny dataset)"
  exit 0
fi

declare -A UTTERANCES=([train-clean-100]=28539 [train-clean-360]=104014 [train-other-500]=148688
                       [dev-clean]=2703 [dev-other]=2864 [test-clean]=2620 [test-other]=2939)
bad=0
for subset in $SUBSETS; do
  archive="$DATA_DIR/$subset.tar.gz"
  want=$(grep "  $subset.tar.gz\$" "$here/checksums.md5" | cut -d' ' -f1 || true)
  if [ -z "$want" ]; then
    echo "verify_dataset.sh: unknown subset $subset (see checksums.md5)" >&2
    bad=1
    continue
  fi
  if [ ! -f "$archive" ]; then
    echo "verify_dataset.sh: MISSING: $archive (run ./download_dataset.sh $DATA_DIR)" >&2
    bad=1
  else
    echo "verify_dataset.sh: checking $archive"
    got=$(md5sum "$archive" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
      echo "verify_dataset.sh: FAILED: $archive has md5 $got, expected $want (damaged or not OpenSLR's; delete it and download again)" >&2
      bad=1
    fi
  fi
  folder="$DATA_DIR/LibriSpeech/$subset"
  if [ ! -d "$folder" ]; then
    echo "verify_dataset.sh: MISSING: $folder (run ./download_dataset.sh $DATA_DIR to extract it)" >&2
    bad=1
  else
    count=$(find "$folder" -name '*.flac' | wc -l)
    if [ "$count" -ne "${UTTERANCES[$subset]}" ]; then
      echo "verify_dataset.sh: FAILED: $folder has $count .flac files, expected ${UTTERANCES[$subset]}" >&2
      bad=1
    fi
  fi
done
if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "verify_dataset.sh: PASSED"
