#!/usr/bin/env bash
# Fetch the COCO archives and Detectron's ImageNet-pretrained R-50.pkl (resumable, with progress), then verify.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]      (default: $DATA_DIR, else ./data)

Fetches what the MLPerf v0.5 Mask R-CNN reference uses (spec section 2), smallest first:
  coco_annotations_minival.tgz   small    https://dl.fbaipublicfiles.com/detectron/coco/
  R-50.pkl                       ~100 MB  https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/
  annotations_trainval2014.zip   ~241 MB  http://images.cocodataset.org/annotations/
  val2014.zip                    ~6.2 GB  http://images.cocodataset.org/zips/
  train2014.zip                  ~13 GB   http://images.cocodataset.org/zips/
With COCO_YEAR=2017: annotations_trainval2017.zip, val2017.zip (~778 MB), train2017.zip (~18 GB) and
R-50.pkl instead (the same images, split as train = train2014 + valminusminival2014, val = minival2014).
Files already in DATA_DIR are kept; a cut transfer resumes from DATA_DIR/<file>.part (an HTTP Range request).
Then verify_dataset.sh checks the MD5s. train.py unpacks the archives into train2014/, val2014/ and
annotations/ when those folders are missing (untimed, before INIT_START), so there is no extraction step here.
Environment: COCO_YEAR          2014 (the v0.5 reference's names) or 2017 [2014]
             DATASET_MIRROR     fetch every file from $DATASET_MIRROR/<file name> instead of its official URL
             CURL_OPTS          extra curl arguments, e.g. "--proxy http://host:3128"
             DOWNLOAD_ATTEMPTS  tries per file before giving up [5]
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
COCO_YEAR=${COCO_YEAR:-2014}
read -r -a curl_opts <<< "${CURL_OPTS:-}"
attempts=${DOWNLOAD_ATTEMPTS:-5}
here=$(cd "$(dirname "$0")" && pwd)

COCO=http://images.cocodataset.org
FAIR=https://dl.fbaipublicfiles.com/detectron
case "$COCO_YEAR" in
  2014) urls=("$FAIR/coco/coco_annotations_minival.tgz"
              "$FAIR/ImageNetPretrained/MSRA/R-50.pkl"
              "$COCO/annotations/annotations_trainval2014.zip"
              "$COCO/zips/val2014.zip"
              "$COCO/zips/train2014.zip") ;;
  2017) urls=("$FAIR/ImageNetPretrained/MSRA/R-50.pkl"
              "$COCO/annotations/annotations_trainval2017.zip"
              "$COCO/zips/val2017.zip"
              "$COCO/zips/train2017.zip") ;;
  *) echo "download_dataset.sh: COCO_YEAR=$COCO_YEAR: expected 2014 or 2017" >&2; exit 2 ;;
esac
mkdir -p "$DATA_DIR"

for url in "${urls[@]}"; do
  name=$(basename "$url")
  file="$DATA_DIR/$name"
  if [ -f "$file" ]; then
    echo "download_dataset.sh: $file already there"
    continue
  fi
  [ -n "${DATASET_MIRROR:-}" ] && url="${DATASET_MIRROR%/}/$name"
  shown=$(sed -E 's#//[^/@]*@#//***@#' <<< "$url")  # never print credentials
  echo "download_dataset.sh: $shown -> $file"
  ok=0
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    # --continue-at - resumes from the size of the .part file.
    if curl --fail --location --continue-at - --progress-bar "${curl_opts[@]}" --output "$file.part" "$url"; then
      ok=1
      break
    fi
    echo "download_dataset.sh: transfer of $name interrupted (attempt $attempt of $attempts); resuming" >&2
    [ "$attempt" -lt "$attempts" ] && sleep "$attempt"
  done
  if [ "$ok" -ne 1 ]; then
    echo "download_dataset.sh: could not download $name; rerun to resume, or delete $file.part to start over" >&2
    exit 1
  fi
  mv "$file.part" "$file"
done

COCO_YEAR=$COCO_YEAR exec "$here/verify_dataset.sh" "$DATA_DIR"
