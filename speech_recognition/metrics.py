"""The DeepSpeech2 output alphabet, CTC greedy decoding and word/character error rates.

Plain Python and torch, no model import. Alphabet: speech_recognition/labels.json @ v0.5 (spec section 1.3):
index 0 is the CTC blank, 1 the apostrophe, 2..27 A..Z, 28 the space. WER as the reference's eval_model.py
computed it (spec section 3): per utterance, the word-level Levenshtein distance divided by the number of
reference words; the quality value is the MEAN of these ratios x 100 over the validation set (a macro
average). The corpus-level figure (all edits / all reference words x 100) is reported beside it.
"""

import torch

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


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance (unit-cost insertions, deletions, substitutions) between two sequences."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diag, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (r != h))
    return row[-1]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference words) of one utterance."""
    ref_words = ref.split()
    return edit_distance(ref_words, hyp.split()), len(ref_words)


def char_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(character edits, reference characters), spaces removed as eval_model.py @ v0.5 did."""
    r, h = ref.replace(" ", ""), hyp.replace(" ", "")
    return edit_distance(list(r), list(h)), len(r)


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
