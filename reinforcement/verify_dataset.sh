#!/usr/bin/env bash
# Check the 4 professional SGF games (or the GNU Go tiny set); exits non-zero naming each bad file.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

Checks DATA_DIR/9x9_pro_{YKSH,IYMD,YSIY,IYHN}.sgf against their sha256 (the files of mlcommons/training
v0.5, reinforcement/tensorflow/minigo/benchmark_sgf/). When DATA_DIR holds tiny.md5 (written by
make_tiny_dataset.py), checks the GNU Go games it lists instead, and says so. Prints PASSED, or names
every missing or damaged file and exits 1.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}

if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the GNU Go tiny set, not the professional games"
  if ! (cd "$DATA_DIR" && md5sum --check --quiet tiny.md5); then
    echo "verify_dataset.sh: FAILED: the files named above do not match $DATA_DIR/tiny.md5" >&2
    exit 1
  fi
  echo "verify_dataset.sh: PASSED (tiny dataset)"
  exit 0
fi

bad=0
while read -r sum name; do
  f="$DATA_DIR/$name"
  if [ ! -f "$f" ]; then
    echo "verify_dataset.sh: MISSING: $f (run ./download_dataset.sh $DATA_DIR)" >&2
    bad=1
  elif [ "$(sha256sum "$f" | cut -d' ' -f1)" != "$sum" ]; then
    echo "verify_dataset.sh: FAILED: $f does not have sha256 $sum (damaged; delete it and download again)" >&2
    bad=1
  fi
done <<'SUMS'
5cb52058e21284b7b0306f29462b9ca09d4da729c7eebf25b88ce9291fbcb571 9x9_pro_YKSH.sgf
654fd67a1cfc0ed7278eed8e766ba8b90b232f418173523c26dc7efffdb7adc9 9x9_pro_IYMD.sgf
80077ea05c80f8f21208a1dc7bfc563753344ece65ea43fbb9e20a2d6cd09965 9x9_pro_YSIY.sgf
486a6c67885354dfa31bcc16fc4a17e83ada40b9fd43600b4245b04e3df09314 9x9_pro_IYHN.sgf
SUMS
if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "verify_dataset.sh: PASSED"
