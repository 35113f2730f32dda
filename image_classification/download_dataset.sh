#!/usr/bin/env bash
# Fetch the three ILSVRC-2012 archives (resumable, with progress), then verify them.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: download_dataset.sh [DATA_DIR]      (default: $DATA_DIR, else ./data)

ImageNet needs an account and acceptance of its terms (https://image-net.org), so there is no anonymous
download. Either put the archives into DATA_DIR yourself, or give a URL prefix that serves them:
  ILSVRC2012_img_train.tar      ~138 GB   md5 1d675b47d978889d74fa0da5fadfb00e
  ILSVRC2012_img_val.tar        ~6.3 GB   md5 29b22e2961454d5413ddabcf34fc5622
  ILSVRC2012_devkit_t12.tar.gz  ~2.5 MB   md5 fa75699e90414af021442c21a62c3abf
Archives already in DATA_DIR are kept; the others are fetched from $DATASET_MIRROR/<file name>
(default https://image-net.org/data/ILSVRC/2012), resuming a partial download (DATA_DIR/<file>.part) after
a cut connection. Then verify_dataset.sh checks the MD5s. Extraction into train/<wnid>/ and val/<wnid>/ is
./extract.py DATA_DIR, which run_and_time.sh runs when those folders are missing.
Environment: DATASET_MIRROR  URL prefix to fetch from (may carry credentials: https://user:pass@host/path)
             CURL_OPTS       extra curl arguments, e.g. "--cookie cookies.txt" or "--netrc"
             DOWNLOAD_ATTEMPTS  tries per file before giving up [5]
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR=${1:-${DATA_DIR:-./data}}
BASE_URL=${DATASET_MIRROR:-https://image-net.org/data/ILSVRC/2012}
read -r -a curl_opts <<< "${CURL_OPTS:-}"
attempts=${DOWNLOAD_ATTEMPTS:-5}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DATA_DIR"

for name in ILSVRC2012_devkit_t12.tar.gz ILSVRC2012_img_val.tar ILSVRC2012_img_train.tar; do
  file="$DATA_DIR/$name"
  if [ -f "$file" ]; then
    echo "download_dataset.sh: $file already there"
    continue
  fi
  url="$BASE_URL/$name"
  shown=$(sed -E 's#//[^/@]*@#//***@#' <<< "$url")  # never print credentials
  echo "download_dataset.sh: $shown -> $file"
  ok=0
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    # --continue-at - resumes from the size of the .part file (an HTTP Range request).
    if curl --fail --location --continue-at - --progress-bar "${curl_opts[@]}" --output "$file.part" "$url"; then
      ok=1
      break
    fi
    echo "download_dataset.sh: transfer of $name interrupted (attempt $attempt of $attempts); resuming" >&2
    [ "$attempt" -lt "$attempts" ] && sleep "$attempt"
  done
  if [ "$ok" -ne 1 ]; then
    echo "download_dataset.sh: could not download $name; rerun to resume, or delete $file.part to start" \
         "over (ImageNet needs a login: see --help)" >&2
    exit 1
  fi
  mv "$file.part" "$file"
done

exec "$here/verify_dataset.sh" "$DATA_DIR"
