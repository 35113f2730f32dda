#!/usr/bin/env python3
"""Write the duration-sorted manifests of every LibriSpeech subset found under DATA_DIR (flac + .trans.txt).

    ./preprocess.py [DATA_DIR] [--force]      (DATA_DIR also from $DATA_DIR; default ./data)

For each DATA_DIR/LibriSpeech/<subset>/ (train-clean-100, ..., dev-other, or make_tiny_dataset.py's train-tiny
and dev-tiny) writes DATA_DIR/manifests/<subset>.csv: path (relative to DATA_DIR), sample count, upper-cased
transcript, shortest first (the reference's manifests, spec section 2.3). Subsets whose manifest exists are
skipped unless --force. Every problem is named with its file (a FLAC that does not decode, a sample rate
other than 16 kHz, a transcript line without a FLAC, a FLAC without a transcript line) and the exit status is
1; no manifest is written for a subset with problems. Deterministic, so run_and_time.sh runs it before the
clock starts.
"""

import argparse
import os
import sys

import data


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="holds LibriSpeech/<subset>/ (default: $DATA_DIR or ./data)")
    p.add_argument("--force", action="store_true", help="rewrite manifests that exist")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    root = os.path.join(args.data_dir, "LibriSpeech")
    subsets = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) \
        if os.path.isdir(root) else []
    if not subsets:
        print(f"preprocess.py: error: no subset folders in {root} (run ./download_dataset.sh {args.data_dir} "
              "or ./make_tiny_dataset.py)", file=sys.stderr)
        return 1
    status = 0
    for subset in subsets:
        path = data.manifest_path(args.data_dir, subset)
        if os.path.exists(path) and not args.force:
            print(f"preprocess.py: {path} exists; skipping {subset}", file=sys.stderr)
            continue
        try:
            utterances = data.scan_subset(args.data_dir, subset)
        except data.DataError as e:
            print(f"preprocess.py: error: {e}", file=sys.stderr)
            status = 1
            continue
        hours = sum(u.samples for u in utterances) / data.SAMPLE_RATE / 3600
        data.write_manifest(args.data_dir, subset, utterances)
        print(f"preprocess.py: wrote {path} ({len(utterances)} utterances, {hours:.2f} h)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
