"""BLEU for the Transformer benchmark: sacreBLEU (the stop metric) and the 2018 reference's tokenised BLEU.

    from metrics import sacrebleu_uncased, bleu_2018
    sacrebleu_uncased(hypotheses, references)  # 0-100
    bleu_2018(hypotheses, references)          # 0-100, as compute_bleu.py @ v0.5 would print (uncased)

Both score detokenised hypothesis strings against the raw reference lines of newstest2014.de, lower-cased.
sacreBLEU runs with tokenize="intl": the mteval-v14 "international" tokenisation that the 2018 script
(tensor2tensor bleu_hook, copied into compute_bleu.py) implements, so the two agree up to smoothing of
orders with zero matches, which never happens for real systems. bleu_2018 re-implements that script:
put spaces around Unicode punctuation (P*) unless it sits between digits and around symbols (S*), split,
corpus BLEU-4 with clipped counts, brevity penalty exp(1 - r/c) and 1 / (2^k · count) smoothing.
"""

import collections
import functools
import math
import re
import sys
import unicodedata

import sacrebleu


def sacrebleu_uncased(hypotheses: list[str], references: list[str]) -> float:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True, tokenize="intl", force=True).score


@functools.cache
def _unicode_regexes() -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """compute_bleu.UnicodeRegex: the P* and S* categories as character classes (built once, ~1 s)."""
    def chars(prefix):
        return "".join(re.escape(chr(c)) for c in range(sys.maxunicode)
                       if unicodedata.category(chr(c)).startswith(prefix))
    punct, symbol = chars("P"), chars("S")
    return (re.compile(r"([^\d])([" + punct + r"])"), re.compile(r"([" + punct + r"])([^\d])"),
            re.compile(r"([" + symbol + "])"))


def bleu_tokenize(text: str) -> list[str]:
    """mteval-v14 international tokenisation (compute_bleu.bleu_tokenize @ v0.5)."""
    nondigit_punct, punct_nondigit, symbol = _unicode_regexes()
    text = nondigit_punct.sub(r"\1 \2 ", text)
    text = punct_nondigit.sub(r" \1 \2", text)
    text = symbol.sub(r" \1 ", text)
    return text.split()


def _ngrams(tokens: list[str], max_order: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i: i + n]) for n in range(1, max_order + 1)
                               for i in range(len(tokens) - n + 1))


def compute_bleu(reference_corpus: list[list[str]], translation_corpus: list[list[str]],
                 max_order: int = 4) -> float:
    """Corpus BLEU in [0, 1] of token lists (utils/metrics.compute_bleu @ v0.5, from t2t bleu_hook)."""
    matches, possible = [0] * max_order, [0] * max_order
    ref_len = hyp_len = 0
    for ref, hyp in zip(reference_corpus, translation_corpus):
        ref_len += len(ref)
        hyp_len += len(hyp)
        overlap = _ngrams(ref, max_order) & _ngrams(hyp, max_order)
        for ngram, count in overlap.items():
            matches[len(ngram) - 1] += count
        for n in range(1, max_order + 1):
            possible[n - 1] += max(0, len(hyp) - n + 1)
    precisions, smooth = [0.0] * max_order, 1.0
    for i in range(max_order):
        if possible[i] > 0:
            if matches[i] > 0:
                precisions[i] = matches[i] / possible[i]
            else:
                smooth *= 2
                precisions[i] = 1.0 / (smooth * possible[i])
    geo_mean = math.exp(sum(math.log(p) for p in precisions if p) / max_order) if max(precisions) > 0 else 0.0
    ratio = hyp_len / ref_len if ref_len else 1.0
    bp = 1.0 if ratio >= 1.0 or not ref_len else (0.0 if ratio <= 0.0 else math.exp(1 - 1.0 / ratio))
    return geo_mean * bp


def bleu_2018(hypotheses: list[str], references: list[str]) -> float:
    """Uncased tokenised BLEU x100, the number compute_bleu.py @ v0.5 prints and the v0.5 target used."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    refs = [bleu_tokenize(r.lower()) for r in references]
    hyps = [bleu_tokenize(h.lower()) for h in hypotheses]
    return 100.0 * compute_bleu(refs, hyps)
