#!/usr/bin/env python3
"""Write a tiny synthetic English->German parallel corpus in the real WMT on-disk layout.

    python3 make_tiny_dataset.py [DATA_DIR] [--seed N]      (DATA_DIR also from $DATA_DIR, default ./data)

Writes the extracted files download_dataset.sh leaves for the real data, under the same names:

    DATA_DIR/raw_data/training/news-commentary-v12.de-en.{en,de}   8,000 pairs
    DATA_DIR/raw_data/commoncrawl.de-en.{en,de}                    6,000 pairs
    DATA_DIR/raw_data/training/europarl-v7.de-en.{en,de}           6,000 pairs
    DATA_DIR/raw_data/dev/newstest2013.{en,de}                       300 pairs
    DATA_DIR/newstest2014.{en,de}                                    300 pairs (the BLEU test set)
    DATA_DIR/tiny.md5                                              md5sum of every file above

Source grammar (spec section 8): `Det [Adj] Noun Verb Det [Adj] Noun [Prep Det Place] .` with 16 nouns,
10 adjectives, 10 verbs, 5 determiners, 3 prepositions and 8 places; the adjective and the prepositional
phrase each appear with probability 0.5. The target side translates every word through an invented
bijective lexicon (2-3 consonant-vowel syllables per word, fixed seed) and applies two reorderings a
model must learn: the adjective follows its noun, and the verb moves to the end, before the final
period. The first word is capitalised on both sides (the BLEU target is uncased). Line k of `.en` is
the translation of line k of `.de`. Same seed -> byte-identical files.
"""

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np

DETS = ["the", "a", "this", "that", "every"]
ADJS = ["big", "small", "red", "old", "young", "quiet", "happy", "green", "strange", "clever"]
NOUNS = ["dog", "cat", "bird", "farmer", "teacher", "child", "horse", "king", "doctor", "student",
         "baker", "fox", "sailor", "robot", "singer", "wolf"]
VERBS = ["sees", "finds", "likes", "follows", "helps", "calls", "paints", "visits", "knows", "feeds"]
PREPS = ["in", "near", "behind"]
PLACES = ["park", "house", "garden", "city", "forest", "school", "market", "harbour"]

# (relative path, number of pairs); the .en and .de files of each pair sit side by side.
SPLITS = [
    ("raw_data/training/news-commentary-v12.de-en", 8000),
    ("raw_data/commoncrawl.de-en", 6000),
    ("raw_data/training/europarl-v7.de-en", 6000),
    ("raw_data/dev/newstest2013", 300),
    ("newstest2014", 300),
]
LEXICON_SEED = 1234  # the invented language is fixed; --seed only changes which sentences are drawn


def make_lexicon() -> dict[str, str]:
    """A bijection from every source word to an invented 2-3 syllable target word."""
    rng = np.random.default_rng(LEXICON_SEED)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words = DETS + ADJS + NOUNS + VERBS + PREPS + PLACES
    lexicon: dict[str, str] = {}
    used: set[str] = set()
    for word in words:
        while True:
            n = int(rng.integers(2, 4))
            cand = "".join(str(rng.choice(list(consonants))) + str(rng.choice(list(vowels)))
                           for _ in range(n))
            if cand not in used:
                break
        used.add(cand)
        lexicon[word] = cand
    return lexicon


def sentence_pair(rng: np.random.Generator, lexicon: dict[str, str]) -> tuple[str, str]:
    def noun_phrase() -> tuple[list[str], list[str]]:
        det, noun = str(rng.choice(DETS)), str(rng.choice(NOUNS))
        if rng.random() < 0.5:
            adj = str(rng.choice(ADJS))
            return [det, adj, noun], [lexicon[det], lexicon[noun], lexicon[adj]]  # adjective after noun
        return [det, noun], [lexicon[det], lexicon[noun]]

    subj_en, subj_de = noun_phrase()
    verb = str(rng.choice(VERBS))
    obj_en, obj_de = noun_phrase()
    en = subj_en + [verb] + obj_en
    de = subj_de + obj_de
    if rng.random() < 0.5:
        prep, det, place = str(rng.choice(PREPS)), str(rng.choice(DETS)), str(rng.choice(PLACES))
        en += [prep, det, place]
        de += [lexicon[prep], lexicon[det], lexicon[place]]
    de += [lexicon[verb]]  # the verb moves to the end
    en[0], de[0] = en[0].capitalize(), de[0].capitalize()
    return " ".join(en + ["."]), " ".join(de + ["."])


def write_tiny_dataset(data_dir: Path, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    lexicon = make_lexicon()
    written = []
    for rel, n in SPLITS:
        pairs = [sentence_pair(rng, lexicon) for _ in range(n)]
        for side, lang in ((0, "en"), (1, "de")):
            path = data_dir / f"{rel}.{lang}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(p[side] + "\n" for p in pairs), encoding="utf-8")
            written.append(path)
    lines = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(data_dir).as_posix()}\n"
             for p in written]
    (data_dir / "tiny.md5").write_text("".join(lines))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.environ.get("DATA_DIR", "data"),
                        help="output directory (default: $DATA_DIR or ./data)")
    parser.add_argument("--seed", type=int, default=0, help="which sentences are drawn (default 0)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    written = write_tiny_dataset(data_dir, args.seed)
    print(f"wrote {len(written)} files and tiny.md5 under {data_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
