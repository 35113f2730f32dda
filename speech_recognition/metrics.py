"""The DeepSpeech2 output alphabet, CTC greedy decoding and word/character error rates.

Plain Python and torch, no model import. Alphabet: speech_recognition/labels.json @ v0.5 (spec section 1.3):
index 0 is the CTC blank, 1 the apostrophe, 2..27 A..Z, 28 the space. WER and CER as the reference's
eval_model.py and decoder.py computed them (@ aa596ff4 and @ v0.5 alike; spec section 3): per utterance, the
Levenshtein distance between the word sequences divided by the number of reference words, and between the
character strings, spaces included, divided by the reference's length in characters (spaces included);
the quality value is the MEAN of the per-utterance ratios x 100 over the validation set (a macro average).
The corpus-level WER (all word edits / all reference words x 100) is reported beside it. The distances come
from rapidfuzz (C++; the reference used python-Levenshtein, same unit-cost definition).
"""

import torch
from rapidfuzz.distance import Levenshtein

BLANK = 0
SPACE = 28
ALPHABET = "_'ABCDEFGHIJKLMNOPQRSTUVWXYZ "  # labels.json @ v0.5, index order matters
assert len(ALPHABET) == 29 and ALPHABET[BLANK] == "_" and ALPHABET[SPACE] == " "
CHAR_TO_INDEX = {c: i for i, c in enumerate(ALPHABET) if i != BLANK}


def encode(transcript: str) -> list[int]:
    """Upper-case, then map to indices; characters outside the alphabet are dropped (parse_transcript)."""
    return [CHAR_TO_INDEX[c] for c in transcript.upper() if c in CHAR_TO_INDEX]


def decode(indices) -> str:
    return "".join(ALPHABET[i] for i in indices)


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best path per utterance: argmax per frame over the first lengths[i] frames, collapse repeats, drop
    blanks.

    logits: N x T x 29 (any monotone function of the class scores), lengths: N. Leading and trailing spaces
    are stripped, as decoder.py @ v0.5 did.
    """
    best = logits.argmax(dim=-1).cpu().tolist()
    out = []
    for path, n in zip(best, lengths.tolist()):
        chars, previous = [], None
        for k in path[:n]:
            if k != previous and k != BLANK:
                chars.append(ALPHABET[k])
            previous = k
        out.append("".join(chars).strip())
    return out


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference words) of one utterance: decoder.wer, which maps each word to one character
    and takes the Levenshtein distance of those strings, i.e. the distance between the word sequences."""
    ref_words = ref.split()
    return Levenshtein.distance(ref_words, hyp.split()), len(ref_words)


def char_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(character edits, reference characters) of one utterance, spaces counted on both sides: decoder.cer
    is Lev.distance(s1, s2) on the strings as decoded, divided by len(target) in eval_model.py."""
    return Levenshtein.distance(ref, hyp), len(ref)


class ErrorRates:
    """Running sums over a validation set: per-utterance ratio sums (the reference's macro WER/CER) and corpus
    totals. as_tensor/from_tensor let ranks all-reduce the sums."""

    def __init__(self):
        self.wer_sum = self.cer_sum = 0.0  # sums of per-utterance ratios
        self.utterances = 0
        self.word_edits = self.words = 0

    def add(self, ref: str, hyp: str) -> None:
        edits, words = word_errors(ref, hyp)
        cedits, chars = char_errors(ref, hyp)
        # An empty reference (never in LibriSpeech) would divide by zero in the reference; count its edits.
        self.wer_sum += edits / max(words, 1)
        self.cer_sum += cedits / max(chars, 1)
        self.utterances += 1
        self.word_edits += edits
        self.words += words

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.wer_sum, self.cer_sum, self.utterances, self.word_edits, self.words],
                            dtype=torch.float64)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> "ErrorRates":
        e = cls()
        e.wer_sum, e.cer_sum, utterances, word_edits, words = t.tolist()
        e.utterances, e.word_edits, e.words = int(utterances), int(word_edits), int(words)
        return e

    @property
    def wer(self) -> float:
        """Mean per-utterance WER x 100: the quality metric (eval_model.py @ v0.5)."""
        return 100.0 * self.wer_sum / max(self.utterances, 1)

    @property
    def cer(self) -> float:
        return 100.0 * self.cer_sum / max(self.utterances, 1)

    @property
    def corpus_wer(self) -> float:
        """All word edits over all reference words x 100 (reported, not the stop criterion)."""
        return 100.0 * self.word_edits / max(self.words, 1)
