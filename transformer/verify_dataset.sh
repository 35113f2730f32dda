#!/usr/bin/env bash
# Check the WMT en-de data in DATA_DIR: checksums, layout and line counts; non-zero exit naming bad files.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR] [--aggregate]

Real data (what download_dataset.sh leaves):
  - newstest2014.{en,de}: MD5 as in the v0.5 reference's verify_dataset.sh, and raw_data/dev.tgz: MD5
    as sacreBLEU records it for wmt17/dev (checksums.md5 here);
  - the three training archives in DATA_DIR/raw_data: SHA-256 as TensorFlow Datasets and stagedml
    record them (checksums.sha256 here);
  - every extracted file the preprocessing reads: present, with the standard WMT line counts
    (News Commentary v12 270,769, CommonCrawl 2,399,123, Europarl v7 1,920,209, newstest2013 3,000
    pairs; equal on the .en and .de side).
  --aggregate also runs the reference's one-hash check over raw_data (any extra file breaks it):
    find raw_data/ -type f -exec md5sum {} \; | sort -k 2 | md5sum  == 8fd41a5c658948dfbc1ec83751d9c7fe
Tiny data (DATA_DIR/tiny.md5 present, written by make_tiny_dataset.py): checks tiny.md5 instead.

DATA_DIR defaults to $DATA_DIR, else ./data next to this script. Exit status 1 names each missing or
damaged file.
USAGE
}

AGGREGATE=0
ARGS=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --aggregate) AGGREGATE=1 ;;
    *) ARGS+=("$a") ;;
  esac
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA_DIR=${ARGS[0]:-${DATA_DIR:-$HERE/data}}

if [[ ! -d "$DATA_DIR" ]]; then
  echo "error: $DATA_DIR: no such directory (run download_dataset.sh or make_tiny_dataset.py)" >&2
  exit 1
fi

if [[ -f "$DATA_DIR/tiny.md5" ]]; then
  echo "$DATA_DIR holds tiny.md5: checking the synthetic tiny dataset against it" >&2
  if (cd "$DATA_DIR" && md5sum --check --quiet tiny.md5); then
    echo "OK: tiny dataset in $DATA_DIR"
    exit 0
  fi
  echo "error: the tiny dataset in $DATA_DIR is damaged (files named above); rerun make_tiny_dataset.py" >&2
  exit 1
fi

bad=0
complain() { echo "BAD: $*" >&2; bad=1; }

while read -r sum name; do
  f="$DATA_DIR/$name"
  if [[ ! -f "$f" ]]; then complain "$f is missing"; continue; fi
  [[ "$(md5sum < "$f" | cut -d' ' -f1)" == "$sum" ]] ||
    complain "$f: MD5 mismatch (expected $sum; delete it and run download_dataset.sh again)"
done < "$HERE/checksums.md5"

# The training archives: a hash, not only `gzip -t`, since a complete gzip stream can still be the wrong
# file (another year's release). About 10 s for the 1.74 GB.
while read -r sum name; do
  f="$DATA_DIR/$name"
  if [[ ! -f "$f" ]]; then complain "$f is missing"; continue; fi
  got=$(sha256sum < "$f" | cut -d' ' -f1)
  [[ "$got" == "$sum" ]] ||
    complain "$f: SHA-256 $got, expected $sum (truncated or not the reference's file: delete it and run download_dataset.sh again)"
done < "$HERE/checksums.sha256"

while read -r prefix count; do
  for lang in en de; do
    f="$DATA_DIR/$prefix.$lang"
    if [[ ! -f "$f" ]]; then complain "$f is missing"; continue; fi
    n=$(wc -l < "$f")
    [[ "$n" -eq "$count" ]] || complain "$f: $n lines, expected $count"
  done
done <<'COUNTS'
raw_data/training/news-commentary-v12.de-en 270769
raw_data/commoncrawl.de-en 2399123
raw_data/training/europarl-v7.de-en 1920209
raw_data/dev/newstest2013 3000
COUNTS

if [[ "$AGGREGATE" == 1 ]]; then
  got=$(cd "$DATA_DIR" && find raw_data/ -type f -exec md5sum {} \; | sort -k 2 | md5sum | cut -d' ' -f1)
  [[ "$got" == 8fd41a5c658948dfbc1ec83751d9c7fe ]] ||
    complain "$DATA_DIR/raw_data: aggregate MD5 $got, the reference expects 8fd41a5c658948dfbc1ec83751d9c7fe"
fi

if [[ "$bad" != 0 ]]; then
  echo "error: $DATA_DIR failed verification (see BAD lines above)" >&2
  exit 1
fi
echo "OK: WMT en-de data in $DATA_DIR"
