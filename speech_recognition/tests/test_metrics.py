"""WER/CER against hand-computed cases and a plain Levenshtein on random strings, their aggregation over a
set, the alphabet and CTC greedy decoding."""

import random

import pytest
import torch

import metrics


def test_alphabet_is_the_references_29_symbols():
    assert metrics.ALPHABET == "_'ABCDEFGHIJKLMNOPQRSTUVWXYZ "
    assert metrics.BLANK == 0 and metrics.SPACE == 28
    assert metrics.encode("don't") == [5, 16, 15, 1, 21]  # upper-cased; the apostrophe is index 1
    assert metrics.decode(metrics.encode("IT'S A B")) == "IT'S A B"
    assert metrics.encode("A-1.B") == [2, 3]  # characters outside the alphabet are dropped


@pytest.mark.parametrize("ref, hyp, edits, words", [
    ("THE CAT SAT", "THE CAT SAT", 0, 3),
    ("THE CAT SAT", "THE BAT SAT", 1, 3),  # one substitution
    ("THE CAT SAT", "THE CAT SAT DOWN", 1, 3),  # one insertion
    ("THE CAT SAT", "CAT", 2, 3),  # two deletions
    ("THE CAT SAT", "", 3, 3),  # empty hypothesis: every word deleted
    ("A B C D", "B C D E", 2, 4),  # a deletion at the start, an insertion at the end
    ("ONE TWO", "TWO ONE THREE", 2, 2),  # edits are not capped by the reference length (WER 100 %)
])
def test_word_errors(ref, hyp, edits, words):
    assert metrics.word_errors(ref, hyp) == (edits, words)


def test_char_errors_count_spaces_as_the_reference_did():
    # decoder.cer @ aa596ff4 and @ v0.5: Lev.distance on the strings as they are, over len(target).
    assert metrics.char_errors("AB CD", "ABCD") == (1, 5)
    assert metrics.char_errors("AB CD", "AXCD") == (2, 5)
    assert metrics.char_errors("AB CD", "AB CD") == (0, 5)


def levenshtein(ref: list, hyp: list) -> int:
    """Unit-cost edit distance by the textbook dynamic programme (metrics.py's before rapidfuzz)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diag, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (r != h))
    return row[-1]


def test_rapidfuzz_distances_agree_with_a_plain_levenshtein_on_random_strings():
    rng = random.Random(0)
    words = ["A", "AN", "THE", "CAT", "CATS", "SAT", "ON", "MAT", "IT'S"]
    for _ in range(500):
        ref = " ".join(rng.choices(words, k=rng.randint(1, 12)))
        hyp = " ".join(rng.choices(words, k=rng.randint(0, 12)))
        assert metrics.word_errors(ref, hyp) == (levenshtein(ref.split(), hyp.split()), len(ref.split()))
        assert metrics.char_errors(ref, hyp) == (levenshtein(list(ref), list(hyp)), len(ref))


def test_wer_is_the_mean_of_per_utterance_ratios_and_corpus_wer_is_reported_beside_it():
    rates = metrics.ErrorRates()
    rates.add("ONE", "TWO")  # 1/1
    rates.add("ONE TWO THREE FOUR", "ONE TWO THREE FOUR")  # 0/4
    rates.add("ONE TWO THREE", "")  # 3/3
    assert rates.wer == pytest.approx(100 * (1 + 0 + 1) / 3)  # the reference's macro average: 66.67
    assert rates.corpus_wer == pytest.approx(100 * 4 / 8)  # all edits over all words: 50
    merged = metrics.ErrorRates.from_tensor(rates.as_tensor() + metrics.ErrorRates().as_tensor())
    assert (merged.wer, merged.corpus_wer, merged.utterances) == (rates.wer, rates.corpus_wer, 3)


def one_hot_frames(path: str) -> torch.Tensor:
    """1 x T x 29 scores whose argmax spells `path` ('_' is the blank)."""
    indices = torch.tensor([metrics.ALPHABET.index(c) for c in path])
    return torch.nn.functional.one_hot(indices, 29)[None].float()


@pytest.mark.parametrize("path, text", [
    ("HHE_LL_LLOO", "HELLO"),  # repeats collapse; a blank separates a real double letter
    ("__A_A__", "AA"),
    ("  IT''S  A_ ", "IT'S A"),  # spaces collapse too, and the ends are stripped
    ("____", ""),
])
def test_greedy_decode_collapses_repeats_and_blanks(path, text):
    assert metrics.greedy_decode(one_hot_frames(path), torch.tensor([len(path)])) == [text]


def test_greedy_decode_reads_only_the_valid_frames():
    scores = torch.cat([one_hot_frames("AB__"), one_hot_frames("CDEF")])
    assert metrics.greedy_decode(scores, torch.tensor([2, 3])) == ["AB", "CDE"]
