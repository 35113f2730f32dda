#!/usr/bin/env bash
# Check the COCO archives and R-50.pkl (or the synthetic tiny dataset); exits non-zero naming each bad file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

Checks the MD5s of DATA_DIR's train2014.zip, val2014.zip, annotations_trainval2014.zip,
coco_annotations_minival.tgz and R-50.pkl against checksums.md5 in this folder (the values of the 2018
reference's hashes.md5 and weights.md5); with COCO_YEAR=2017, of train2017.zip, val2017.zip,
annotations_trainval2017.zip and R-50.pkl against checksums_2017.md5. The image archives are 6-18 GB each:
expect minutes. When DATA_DIR holds tiny.md5 (written by make_tiny_dataset.py), checks the files it lists
instead, and says so. When the archives have been unpacked (train.py does it), also counts the images
(real data: train2014 82,783, val2014 40,504, train2017 118,287, val2017 5,000).
Prints PASSED, or names every missing or damaged file and exits 1.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
COCO_YEAR=${COCO_YEAR:-2014}
declare -A want_images=([train2014]=82783 [val2014]=40504 [train2017]=118287 [val2017]=5000)
if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the synthetic tiny dataset, not COCO"
  sums="$DATA_DIR/tiny.md5"
  tiny=1
else
  case "$COCO_YEAR" in
    2014) sums="$HERE/checksums.md5" ;;
    2017) sums="$HERE/checksums_2017.md5" ;;
    *) echo "verify_dataset.sh: COCO_YEAR=$COCO_YEAR: expected 2014 or 2017" >&2; exit 2 ;;
  esac
  tiny=0
fi

bad=0
while read -r want name; do
  [ -z "$name" ] && continue
  file="$DATA_DIR/$name"
  if [ ! -f "$file" ]; then
    echo "verify_dataset.sh: MISSING: $file (run ./download_dataset.sh $DATA_DIR)" >&2
    bad=1
    continue
  fi
  got=$(md5sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "verify_dataset.sh: FAILED: $file has md5 $got, expected $want (damaged, truncated or not the" \
         "official file; delete it and download again)" >&2
    bad=1
  else
    echo "verify_dataset.sh: $file: OK"
  fi
done < "$sums"

# The unpacked layout (train.py unpacks when missing): image counts of the real sets.
for split in "train$COCO_YEAR" "val$COCO_YEAR"; do
  dir="$DATA_DIR/$split"
  [ -d "$dir" ] || continue
  images=$(find "$dir" -maxdepth 1 -type f -name '*.jpg' | wc -l)
  echo "verify_dataset.sh: $dir: $images images"
  if [ "$tiny" -eq 0 ] && [ "$images" -ne "${want_images[$split]}" ]; then
    echo "verify_dataset.sh: FAILED: $dir holds $images images, expected ${want_images[$split]} (delete" \
         "it and let train.py unpack $split.zip again)" >&2
    bad=1
  fi
done

if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "verify_dataset.sh: PASSED"
