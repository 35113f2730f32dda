#!/usr/bin/env bash
# Check DATA_DIR/aclImdb_v1.tar.gz against the official MD5 (checksums.md5 in this folder), or,
# when DATA_DIR holds tiny.md5 (written by make_tiny_dataset.py), against that instead.
# Exits non-zero naming each missing or damaged file (the 2018 verify.py always exited 0).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<USAGE
Usage: verify_dataset.sh [DATA_DIR]

Checks the MD5 of DATA_DIR/aclImdb_v1.tar.gz (official: 7c2ac02c03563afcf9b574c7e56c153a).
If DATA_DIR holds tiny.md5 (a synthetic dataset from make_tiny_dataset.py), checks that instead.
DATA_DIR: first argument, else \$DATA_DIR, else ./data next to this script.
Exit status: 0 if every file matches, 1 otherwise (each bad file is named).
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR="${1:-${DATA_DIR:-$HERE/data}}"
if [[ ! -d "$DATA_DIR" ]]; then
  echo "verify_dataset.sh: $DATA_DIR: no such folder (run download_dataset.sh first)" >&2
  exit 1
fi

if [[ -f "$DATA_DIR/tiny.md5" ]]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the synthetic tiny dataset" >&2
  sums="$DATA_DIR/tiny.md5"
else
  sums="$HERE/checksums.md5"
fi

bad=0
while read -r want name; do
  [[ -z "$name" ]] && continue
  file="$DATA_DIR/$name"
  if [[ ! -f "$file" ]]; then
    echo "verify_dataset.sh: $file: missing" >&2
    bad=1
    continue
  fi
  got="$(md5sum "$file" | cut -d' ' -f1)"
  if [[ "$got" != "$want" ]]; then
    echo "verify_dataset.sh: $file: checksum mismatch (md5 $got, expected $want): damaged," \
         "truncated or not the official file; delete it and download again" >&2
    bad=1
  else
    echo "verify_dataset.sh: $file: OK" >&2
  fi
done < "$sums"

if [[ "$bad" != 0 ]]; then
  echo "verify_dataset.sh: FAILED" >&2
  exit 1
fi
echo "verify_dataset.sh: PASSED"
