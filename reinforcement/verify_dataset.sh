#!/usr/bin/env bash
# Check the 4 professional SGF games (or the GNU Go tiny set); exits non-zero naming each bad file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

Checks DATA_DIR/9x9_pro_{YKSH,IYMD,YSIY,IYHN}.sgf against their sha256 (the files of mlcommons/training
v0.5, reinforcement/tensorflow/minigo/benchmark_sgf/). When DATA_DIR holds tiny.md5 (written by
make_tiny_dataset.py), checks the GNU Go games it lists instead, and says so. Strict either way: a
manifest line that is not "<md5>  <file name>", a listed file that is missing or damaged, and any file in
DATA_DIR that is not listed (train.py scores every *.sgf it finds there) each fail, naming the file.
Prints PASSED, or names every bad file and exits 1.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
if [ ! -d "$DATA_DIR" ]; then
  echo "verify_dataset.sh: MISSING: $DATA_DIR is not a directory (run ./download_dataset.sh $DATA_DIR)" >&2
  exit 1
fi

bad=0
declare -A listed=()

# check ALGORITHM SUM NAME: one listed file, named on failure.
check() {
  local f="$DATA_DIR/$3"
  listed["$3"]=1
  if [ ! -f "$f" ]; then
    echo "verify_dataset.sh: MISSING: $f ($4)" >&2
    bad=1
  elif [ "$("$1" "$f" | cut -d' ' -f1)" != "$2" ]; then
    echo "verify_dataset.sh: FAILED: $f does not have ${1%sum} $2 (damaged; $4)" >&2
    bad=1
  fi
}

if [ -f "$DATA_DIR/tiny.md5" ]; then
  manifest="$DATA_DIR/tiny.md5"
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the GNU Go tiny set, not the professional games"
  listed["tiny.md5"]=1
  n=0
  # md5sum's format, one file per line: 32 hex digits, a space, a space or "*", a name without "/".
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    if [[ ! "$line" =~ ^([0-9a-f]{32})\ [\ *]([^/]+)$ ]]; then
      echo "verify_dataset.sh: DAMAGED MANIFEST: $manifest line $n is not '<md5>  <file name>': '$line'" >&2
      bad=1
      continue
    fi
    name=${BASH_REMATCH[2]}
    if [ -n "${listed[$name]:-}" ]; then
      echo "verify_dataset.sh: DAMAGED MANIFEST: $manifest line $n lists $name a second time" >&2
      bad=1
      continue
    fi
    check md5sum "${BASH_REMATCH[1]}" "$name" "run ./make_tiny_dataset.py $DATA_DIR again"
  done < "$manifest"
  if [ "$n" -eq 0 ]; then
    echo "verify_dataset.sh: DAMAGED MANIFEST: $manifest lists no file" >&2
    bad=1
  fi
  what="tiny.md5"
else
  while read -r sum name; do
    check sha256sum "$sum" "$name" "delete it and run ./download_dataset.sh $DATA_DIR"
  done <<'SUMS'
5cb52058e21284b7b0306f29462b9ca09d4da729c7eebf25b88ce9291fbcb571 9x9_pro_YKSH.sgf
654fd67a1cfc0ed7278eed8e766ba8b90b232f418173523c26dc7efffdb7adc9 9x9_pro_IYMD.sgf
80077ea05c80f8f21208a1dc7bfc563753344ece65ea43fbb9e20a2d6cd09965 9x9_pro_YSIY.sgf
486a6c67885354dfa31bcc16fc4a17e83ada40b9fd43600b4245b04e3df09314 9x9_pro_IYHN.sgf
SUMS
  what="the 4 professional games"
fi

# Nothing else belongs in DATA_DIR: train.py would score an unlisted *.sgf as part of the quality set.
for f in "$DATA_DIR"/* "$DATA_DIR"/.[!.]*; do
  [ -e "$f" ] || continue
  if [ -z "${listed[$(basename "$f")]:-}" ]; then
    echo "verify_dataset.sh: EXTRA: $f is not one of $what (remove it)" >&2
    bad=1
  fi
done

if [ "$bad" -ne 0 ]; then
  echo "verify_dataset.sh: FAILED: $DATA_DIR does not hold exactly $what" >&2
  exit 1
fi
if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: PASSED (tiny dataset)"
else
  echo "verify_dataset.sh: PASSED"
fi
