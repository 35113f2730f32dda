#!/usr/bin/env bash
# Download the IMDB review archive (Maas et al. 2011) into DATA_DIR and verify it.
# Resumable: an interrupted transfer is kept as aclImdb_v1.tar.gz.part and continued with an
# HTTP Range request (curl -C -), on the next attempt or the next run. The archive is not
# extracted: train.py streams it, as the 2018 reference (paddle.dataset.imdb) did.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME=aclImdb_v1.tar.gz
URL="http://ai.stanford.edu/%7Eamaas/data/sentiment/$NAME"   # download.py @ aa596ff4
ATTEMPTS="${DOWNLOAD_ATTEMPTS:-4}"                            # 2018: three retries

usage() {
  cat <<USAGE
Usage: download_dataset.sh [DATA_DIR]

Downloads $NAME (about 84 MB) from
  $URL
into DATA_DIR (first argument, else \$DATA_DIR, else ./data next to this script), resuming a
partial download, then runs verify_dataset.sh DATA_DIR.
Environment: DATASET_MIRROR=URL fetches \$DATASET_MIRROR/$NAME instead (tests, mirrors);
  DOWNLOAD_ATTEMPTS=N tries N times (default 4), resuming each time.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

DATA_DIR="${1:-${DATA_DIR:-$HERE/data}}"
if [[ -n "${DATASET_MIRROR:-}" ]]; then
  URL="${DATASET_MIRROR%/}/$NAME"
fi
mkdir -p "$DATA_DIR"
out="$DATA_DIR/$NAME"

if [[ -f "$out" ]]; then
  echo "download_dataset.sh: $out already present, not downloading" >&2
else
  ok=0
  for attempt in $(seq 1 "$ATTEMPTS"); do
    echo "download_dataset.sh: $URL -> $out (attempt $attempt/$ATTEMPTS)" >&2
    if curl --fail --location --progress-bar --connect-timeout 30 -C - -o "$out.part" "$URL"; then
      ok=1
      break
    fi
    if [[ "$attempt" -lt "$ATTEMPTS" ]]; then
      sleep "$attempt"
    fi
  done
  if [[ "$ok" != 1 ]]; then
    echo "download_dataset.sh: failed to download $URL after $ATTEMPTS attempts;" \
         "the partial file $out.part is kept and the next run resumes it" >&2
    exit 1
  fi
  mv "$out.part" "$out"
fi

"$HERE/verify_dataset.sh" "$DATA_DIR"
