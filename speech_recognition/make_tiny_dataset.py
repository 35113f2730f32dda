#!/usr/bin/env python3
"""Write a small synthetic speech corpus in LibriSpeech's exact on-disk layout, for tiny runs and tests.

    ./make_tiny_dataset.py [DATA_DIR] [--seed N]      (DATA_DIR also from $DATA_DIR; default ./data)

Needs espeak-ng and sox (the top-level Makefile installs them; `apt-get install espeak-ng sox`). Writes
DATA_DIR/LibriSpeech/{train-tiny,dev-tiny}/<speaker>/<chapter>/<speaker>-<chapter>-<utt4>.flac (16 kHz mono
16-bit FLAC) with one <speaker>-<chapter>.trans.txt per chapter -- what download_dataset.sh leaves for the
real subsets -- plus DATA_DIR/tiny.md5 (md5sum format) of every file written. Spec section 8.1: each utterance
is 2-3 words from a 20-word vocabulary, spoken by espeak-ng with a random voice, variant, speed (160-220 wpm)
and pitch (30-70), resampled by sox. Train and dev use disjoint speaker ids (1000-1004, 2000-2004) and
different random streams. Then ./preprocess.py DATA_DIR writes the manifests, as for the real data.
"""

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

VOCABULARY = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE YES NO UP DOWN LEFT RIGHT STOP GO ON OFF"
              .split())
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
VARIANTS = ("", "+m1", "+m3", "+f1", "+f3")
# Words per utterance and speaking rate: the spec calibrated 2-4 words at 130-190 wpm; 2-3 words at
# 160-220 wpm is 27% less audio (the convolutions dominate a CPU step) and still reached WER 25 in 4-5 epochs.
WORDS = (2, 3)
SPEED_WPM = (160, 220)
PITCH = (30, 70)
# subset -> (utterances, first speaker id, seed offset); sizes from the spec's calibration (section 8.1).
SUBSETS = {"train-tiny": (600, 1000, 0), "dev-tiny": (80, 2000, 1_000_003)}
SPEAKERS_PER_SUBSET = 5


def utterances(subset: str, seed: int, count: int | None = None) -> list[tuple[str, str, list[str]]]:
    """(relative flac path without extension, transcript, espeak-ng arguments) for one subset."""
    n, first_speaker, offset = SUBSETS[subset]
    rng = random.Random(seed * 7919 + offset)
    out = []
    for i in range(count or n):
        speaker = first_speaker + i % SPEAKERS_PER_SUBSET
        chapter = speaker * 10 + 1
        words = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(*WORDS)))
        voice = rng.choice(VOICES) + rng.choice(VARIANTS)
        args = ["-v", voice, "-s", str(rng.randint(*SPEED_WPM)), "-p", str(rng.randint(*PITCH))]
        utt_id = f"{speaker}-{chapter}-{i // SPEAKERS_PER_SUBSET:04d}"
        out.append((f"LibriSpeech/{subset}/{speaker}/{chapter}/{utt_id}", words, args))
    return out


def synthesize(data_dir: str, rel: str, words: str, espeak_args: list[str], tmp: str) -> None:
    wav = os.path.join(tmp, os.path.basename(rel) + ".wav")
    flac = os.path.join(data_dir, rel + ".flac")
    subprocess.run(["espeak-ng", *espeak_args, "-w", wav, words], check=True, capture_output=True)
    # espeak-ng writes 22,050 Hz; gain -3 avoids the clipping warnings sox prints for a few utterances; -R
    # seeds sox's dither, so the same seed gives the same bytes.
    subprocess.run(["sox", "-R", wav, "-r", "16000", "-c", "1", "-b", "16", flac, "gain", "-3"], check=True,
                   capture_output=True)
    os.remove(wav)


def write_dataset(data_dir: str, seed: int, counts: dict[str, int] | None = None) -> list[str]:
    """Writes every subset and tiny.md5; returns the relative paths written (tiny.md5 excluded)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"make_tiny_dataset.py: {tool} is not installed (apt-get install espeak-ng sox)")
    jobs, transcripts = [], {}
    for subset in SUBSETS:
        stale = os.path.join(data_dir, "manifests", f"{subset}.csv")  # preprocess.py's, of an older corpus
        if os.path.exists(stale):
            os.remove(stale)
        for rel, words, args in utterances(subset, seed, (counts or {}).get(subset)):
            os.makedirs(os.path.join(data_dir, os.path.dirname(rel)), exist_ok=True)
            jobs.append((rel, words, args))
            speaker, chapter, _ = os.path.basename(rel).split("-")
            trans = os.path.join(os.path.dirname(rel), f"{speaker}-{chapter}.trans.txt")
            transcripts.setdefault(trans, []).append(f"{os.path.basename(rel)} {words}\n")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(synthesize, data_dir, *job, tmp) for job in jobs]:
            f.result()
    written = [rel + ".flac" for rel, _, _ in jobs]
    for trans, lines in transcripts.items():
        with open(os.path.join(data_dir, trans), "w") as f:
            f.writelines(sorted(lines))  # LibriSpeech: one line per utterance, sorted by id
        written.append(trans)
    readme = "LibriSpeech/README.TXT"
    with open(os.path.join(data_dir, readme), "w") as f:
        f.write(f"Synthetic stand-in for LibriSpeech written by make_tiny_dataset.py --seed {seed}:\n"
                "espeak-ng speech in LibriSpeech's layout (FLAC + .trans.txt). Not LibriSpeech data.\n")
    written.append(readme)
    written.sort()
    with open(os.path.join(data_dir, "tiny.md5"), "w") as out:
        for rel in written:
            with open(os.path.join(data_dir, rel), "rb") as f:
                out.write(f"{hashlib.md5(f.read()).hexdigest()}  {rel}\n")
    return written


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "./data"),
                   help="where to write (default: $DATA_DIR or ./data)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    written = write_dataset(args.data_dir, args.seed)
    print(f"make_tiny_dataset.py: wrote {len(written)} files (LibriSpeech/{{{','.join(SUBSETS)}}}) and "
          f"tiny.md5 in {args.data_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
