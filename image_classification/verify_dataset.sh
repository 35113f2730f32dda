#!/usr/bin/env bash
# Check the three ILSVRC-2012 archives (or the synthetic tiny dataset); exits non-zero naming each bad file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<'USAGE'
usage: verify_dataset.sh [DATA_DIR]        (default: $DATA_DIR, else ./data)

Checks the MD5 of DATA_DIR/ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and
ILSVRC2012_devkit_t12.tar.gz against checksums.md5 in this folder (the values torchvision's ImageNet uses;
the 2018 reference shipped none). The train archive is 138 GB: expect minutes. When DATA_DIR holds tiny.md5
(written by make_tiny_dataset.py), checks the files it lists instead, and says so. When extract.py has run,
also counts the extracted images (the real data: 1000 classes, 1,281,167 train and 50,000 val images).
Prints PASSED, or names every missing or damaged file and exits 1.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
if [ -f "$DATA_DIR/tiny.md5" ]; then
  echo "verify_dataset.sh: $DATA_DIR holds tiny.md5: checking the synthetic tiny dataset, not ImageNet"
  sums="$DATA_DIR/tiny.md5"
  tiny=1
else
  sums="$HERE/checksums.md5"
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

# The extracted layout (extract.py): class folders and image counts.
for split in train val; do
  dir="$DATA_DIR/$split"
  [ -d "$dir" ] || continue
  classes=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | wc -l)
  images=$(find "$dir" -mindepth 2 -maxdepth 2 -type f -name '*.JPEG' | wc -l)
  echo "verify_dataset.sh: $dir: $classes classes, $images images"
  if [ "$tiny" -eq 0 ]; then
    want_images=$([ "$split" = train ] && echo 1281167 || echo 50000)
    if [ "$classes" -ne 1000 ] || [ "$images" -ne "$want_images" ]; then
      echo "verify_dataset.sh: FAILED: $dir holds $classes classes and $images images, expected 1000 and" \
           "$want_images (delete it and run ./extract.py $DATA_DIR again)" >&2
      bad=1
    fi
  fi
done

if [ "$bad" -ne 0 ]; then
  exit 1
fi
echo "verify_dataset.sh: PASSED"
