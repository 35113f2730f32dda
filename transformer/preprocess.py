#!/usr/bin/env python3
"""Untimed preprocessing: train the shared sentencepiece model and write encoded shards.

    python3 preprocess.py [DATA_DIR] [--config reference|reference_8gpu|tiny] [--if-needed]
    (DATA_DIR: also $DATA_DIR, default ./data; --if-needed: only when DATA_DIR/preprocessed is missing or
    was made with other preprocessing settings; reference and reference_8gpu share it)

Reads the files download_dataset.sh (or make_tiny_dataset.py) leaves in DATA_DIR: the three training
corpora (News Commentary v12, CommonCrawl, Europarl v7, in process_data.py's order), newstest2013 (dev)
and newstest2014 (test, only checked here). Each line is stripped; a pair with an empty side is dropped
and counted; a pair of files with different line counts is an error naming both files. Then:

1. trains one sentencepiece model (BPE, ~32k pieces for the reference preset; pad 0, EOS 1, unk 2;
   identity normalisation and byte fallback, so decode(encode(text)) == text) on sentences sampled
   evenly from both sides of the training data, like the v0.5 subtokenizer's ~1 MB per file;
2. encodes every pair (+ EOS) and writes them round-robin into `num_shards` shards, each shuffled once
   with a fixed seed (process_data.py shuffles unseeded), plus one dev shard;
3. writes manifest.json last, so a half-finished run is redone.

Pairs longer than max_length are kept here and dropped (counted) by the input pipeline, as in v0.5.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import sentencepiece as spm

from config import PRESETS, preprocessing
from data import (
    DEV_CORPUS,
    EOS_ID,
    MANIFEST,
    PAD_ID,
    SPM_MODEL,
    TEST_CORPUS,
    TRAIN_CORPORA,
    UNK_ID,
    DataError,
    check_data_dir,
    load_manifest,
    preprocessed_dir,
    read_parallel,
    write_shard,
)


def train_sentencepiece(sentences: list[str], model_prefix: Path, vocab_size: int) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type="bpe", pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1,
        normalization_rule_name="identity", byte_fallback=True, character_coverage=0.9999,
        hard_vocab_limit=False, input_sentence_size=len(sentences), num_threads=os.cpu_count() or 1,
        max_sentence_length=65536, minloglevel=2)


def encode(sp: spm.SentencePieceProcessor, lines: list[str]) -> list[list[int]]:
    return [ids + [EOS_ID] for ids in sp.encode(lines, num_threads=os.cpu_count() or 1)]


def preprocess(data_dir: Path, config_name: str, log=print) -> dict:
    cfg = PRESETS[config_name]
    check_data_dir(data_dir, config_name)
    out = preprocessed_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    t0 = time.time()

    src, tgt, counts = [], [], {}
    for corpus in TRAIN_CORPORA:
        s, t, empty = read_parallel(data_dir / corpus)
        src += s
        tgt += t
        counts[corpus] = {"pairs": len(s), "dropped_empty": empty}
        log(f"{corpus}: {len(s)} pairs, {empty} dropped (empty side)")
    dev_src, dev_tgt, dev_empty = read_parallel(data_dir / DEV_CORPUS)
    counts[DEV_CORPUS] = {"pairs": len(dev_src), "dropped_empty": dev_empty}
    test_src, test_tgt, test_empty = read_parallel(data_dir / TEST_CORPUS)
    if test_empty:  # the BLEU test set must be translated line for line: no filtering there
        raise DataError(f"{data_dir / TEST_CORPUS}.en/.de: {test_empty} line pairs have an empty side")
    counts[TEST_CORPUS] = {"pairs": len(test_src), "dropped_empty": 0}
    if not src:
        raise DataError(f"{data_dir}: the training corpora hold no sentence pairs")

    # Sample evenly through both sides (the v0.5 vocabulary read ~1 MB spread through each file).
    rng = np.random.default_rng(0)
    both = len(src) + len(tgt)
    take = np.sort(rng.choice(both, size=min(cfg.spm_input_sentences, both), replace=False))
    sample = [src[i] if i < len(src) else tgt[i - len(src)] for i in take]
    train_sentencepiece(sample, out / "spm", cfg.vocab_size)
    sp = spm.SentencePieceProcessor(model_file=str(out / SPM_MODEL))
    vocab_size = sp.get_piece_size()
    log(f"sentencepiece: {vocab_size} pieces from {len(sample)} sentences ({time.time() - t0:.0f} s)")

    shard_names = [f"train-{k:05d}-of-{cfg.num_shards:05d}.npz" for k in range(cfg.num_shards)]
    for k, name in enumerate(shard_names):  # one shard at a time: ids as Python lists are large
        idx = np.arange(k, len(src), cfg.num_shards)  # round-robin, as process_data.py
        idx = np.random.default_rng(k).permutation(idx)  # shuffle the records of each shard once
        write_shard(out / name, encode(sp, [src[i] for i in idx]), encode(sp, [tgt[i] for i in idx]))
    dev_name = "dev-00000-of-00001.npz"
    write_shard(out / dev_name, encode(sp, dev_src), encode(sp, dev_tgt))

    manifest = {"config": config_name, "preprocessing": preprocessing(cfg), "vocab_size": vocab_size,
                "train_pairs": len(src), "dev_pairs": len(dev_src), "test_pairs": len(test_src),
                "train_shards": shard_names, "dev_shard": dev_name, "corpora": counts,
                "seconds": round(time.time() - t0, 1)}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(out / MANIFEST)
    log(f"wrote {len(shard_names)} train shards ({len(src)} pairs) and the dev shard to {out} "
        f"in {time.time() - t0:.0f} s")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("--config", choices=sorted(PRESETS), default=os.environ.get("CONFIG", "reference"))
    parser.add_argument("--if-needed", action="store_true",
                        help="skip when DATA_DIR/preprocessed was already made with this preset's settings")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    try:
        if args.if_needed:
            try:
                done = load_manifest(data_dir).get("preprocessing") == preprocessing(PRESETS[args.config])
            except DataError:
                done = False
            if done:
                print(f"preprocess.py: {preprocessed_dir(data_dir)} is up to date for --config {args.config}",
                      file=sys.stderr)
                return 0
        print(f"preprocess.py: preprocessing {data_dir} for --config {args.config} (untimed)",
              file=sys.stderr)
        preprocess(data_dir, args.config, log=lambda m: print(m, file=sys.stderr))
    except DataError as e:
        print(f"preprocess.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
