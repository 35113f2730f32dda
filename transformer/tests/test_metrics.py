"""BLEU: sacreBLEU uncased (the stop metric) and the 2018 tokenised BLEU logged beside it."""

import math

import pytest

from metrics import bleu_2018, bleu_tokenize, compute_bleu, sacrebleu_uncased

REFS = ["Die Katze sitzt auf der Matte.", "Das ist ein Test, mit 3.5 % Anteil: „gut“ – oder?",
        "Hallo Welt!", "Er kaufte 1.000 Äpfel für 20 € im Jahr 2014."]


def test_identical_files_score_100():
    assert sacrebleu_uncased(REFS, REFS) == pytest.approx(100.0)
    assert bleu_2018(REFS, REFS) == pytest.approx(100.0)


def test_uncased():
    assert bleu_2018([r.upper() for r in REFS], REFS) == pytest.approx(100.0)
    assert sacrebleu_uncased([r.upper() for r in REFS], REFS) == pytest.approx(100.0)


def test_tokenisation_is_mteval_international():
    assert bleu_tokenize("Test, mit 3.5 % Anteil: „gut“ 1,000 €.") == [
        "Test", ",", "mit", "3.5", "%", "Anteil", ":", "„", "gut", "“", "1,000", "€", "."]


def test_hand_computed_case():
    # hyp "the cat the cat" vs ref "the cat sat": 1-grams 2/4 (clipped), 2-grams 1/3, 3-grams 0/2 -> 1/(2*2),
    # 4-grams 0/1 -> 1/(4*1); no brevity penalty (4 >= 3)
    got = compute_bleu([["the", "cat", "sat"]], [["the", "cat", "the", "cat"]])
    want = math.exp((math.log(2 / 4) + math.log(1 / 3) + math.log(1 / 4) + math.log(1 / 4)) / 4)
    assert got == pytest.approx(want)
    # brevity penalty exp(1 - r/c) for a short hypothesis
    short = compute_bleu([["a", "b", "c", "d", "e"]], [["a", "b", "c", "d"]])
    assert short == pytest.approx(math.exp(1 - 5 / 4))


def test_sacrebleu_and_2018_method_agree_on_real_systems():
    hyps = ["Die Katze saß auf der Matte.", "Das ist ein Test mit 3.5 % Anteil: „gut“ oder?",
            "Hallo, Welt!", "Er kaufte 1.000 Äpfel für 20 € 2014."]
    a, b = sacrebleu_uncased(hyps, REFS), bleu_2018(hyps, REFS)
    assert 20 < a < 100
    assert a == pytest.approx(b, abs=0.01)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        sacrebleu_uncased(REFS[:2], REFS)
