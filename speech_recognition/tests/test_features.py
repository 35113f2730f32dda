"""Features at the 2018 scale: the loader's waveforms -> features.spectrograms against a port of the 2018
feature code, the batched STFT against one utterance at a time, and the frame arithmetic."""

import os

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile
import torch

import data
import features
from config import NUM_FREQ


def features_2018(path: str, unit_scale: bool = False) -> np.ndarray:
    """SpectrogramParser.parse_audio (data/data_loader.py @ aa596ff4, normalize=True, no augmentation) ported
    to today's libraries: torchaudio's load of the time copied sox's int32 samples into a FloatTensor (a
    16-bit sample times 65536; soundfile's int32 read gives the same numbers), then librosa.stft with the
    symmetric scipy Hamming window, magphase, log1p, and torch's scalar mean and (unbiased) std.
    unit_scale: the same code fed samples in [-1, 1] (what torchaudio 0.2 and later return)."""
    sound, _ = soundfile.read(path, dtype="int32")
    y = sound.astype(np.float32) / (2**31 if unit_scale else 1)
    stft = librosa.stft(y, n_fft=320, hop_length=160, win_length=320, window=scipy.signal.windows.hamming)
    spect, _ = librosa.magphase(stft)
    spect = torch.FloatTensor(np.log1p(spect))
    return ((spect - spect.mean()) / spect.std()).numpy()


def ours(audio) -> np.ndarray:
    """One utterance through collate and spectrograms, as training computes it: 161 x T."""
    waveforms, frames, *_ = features.collate([(audio, [2], "A")])
    return features.spectrograms(waveforms, frames)[0, 0].numpy()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_features_match_the_2018_code_at_its_scale(tiny_data):
    utts = data.read_manifests(tiny_data, ["dev-tiny"])
    dataset = data.SpeechDataset(tiny_data, utts)
    for i in (0, 40, 79):
        path = os.path.join(tiny_data, utts[i].path)
        audio = dataset[i][0]  # the loader's samples
        ref = features_2018(path)
        mine = ours(audio)
        assert mine.shape == ref.shape == (NUM_FREQ, features.num_frames(utts[i].samples))
        # librosa >= 0.10 computes the first and last frames from separately padded head and tail blocks
        # (librosa 0.5/0.6 reflect-padded the whole signal, as collate does), so those two frames differ;
        # every other frame agrees (measured: 0.004 at most, correlation 1 - 1e-10).
        inner = (slice(None), slice(1, -1))
        assert correlation(mine[inner], ref[inner]) > 0.99999
        np.testing.assert_allclose(mine[inner], ref[inner], atol=0.01)
        # The check separates the scales: our code on samples in [-1, 1] (data.py before the 2018 scale)
        # correlates ~0.65 with the 2018 features, and matches the 2018 code only when it is fed [-1, 1] too.
        unit = ours(audio / features.UNIT_TO_2018_SCALE)
        assert correlation(unit[inner], ref[inner]) < 0.9
        assert correlation(unit[inner], features_2018(path, unit_scale=True)[inner]) > 0.99999


def test_loader_reads_16_bit_samples_at_the_2018_scale(tiny_data):
    utts = data.read_manifests(tiny_data, ["dev-tiny"])
    path = os.path.join(tiny_data, utts[3].path)
    pcm, _ = soundfile.read(path, dtype="int16")
    audio = data.load_audio(path)
    assert audio.dtype == np.float32 and np.array_equal(audio, pcm.astype(np.float32) * 65536)
    augmented = data.augmented_audio(path, 1.0, 0.0)  # sox's 16-bit pipe, no change but dither
    assert np.abs(augmented).max() > 2**24 and np.all(augmented % 65536 == 0)


def numpy_features(audio: np.ndarray) -> np.ndarray:
    """Spec section 2.5 in float64 numpy: reflect-pad 160, 320-sample Hamming frames every 160 samples,
    |rfft|, log1p, one scalar mean and unbiased std."""
    padded = np.pad(audio.astype(np.float64), 160, mode="reflect")
    n = 1 + (len(padded) - 320) // 160
    frames = np.stack([padded[k * 160: k * 160 + 320] for k in range(n)]) * np.hamming(320)
    spect = np.log1p(np.abs(np.fft.rfft(frames, axis=1))).T
    return (spect - spect.mean()) / spect.std(ddof=1)


@pytest.mark.parametrize("samples, frames", [(16000, 101), (16159, 101), (16160, 102), (320, 3)])
def test_frames_and_values(samples, frames):
    audio = np.random.default_rng(0).integers(-20000, 20000, samples).astype(np.float32) * 65536
    spect = ours(audio)
    assert spect.shape == (NUM_FREQ, frames) == (161, features.num_frames(samples))
    np.testing.assert_allclose(spect, numpy_features(audio), atol=1e-4)
    assert abs(spect.mean()) < 1e-4 and abs(spect.std(ddof=1) - 1) < 1e-4  # one scalar mean and std


def test_a_batch_gives_each_utterance_its_own_features():
    """Batched STFT on zero-padded waveforms: each utterance's frames equal its features alone (its own
    reflect padding, its own mean and std) and its padding frames are zero."""
    rng = np.random.default_rng(1)
    audio = [rng.integers(-20000, 20000, n).astype(np.float32) * 65536 for n in (24000, 9000, 16000)]
    waveforms, frames, targets, target_lengths, transcripts = features.collate(
        [(a, [2 + k] * (k + 1), "X") for k, a in enumerate(audio)])
    assert waveforms.shape == (3, 24000 + 320) and frames.tolist() == [151, 57, 101]
    assert targets.tolist() == [2, 3, 3, 4, 4, 4] and target_lengths.tolist() == [1, 2, 3]
    batch = features.spectrograms(waveforms, frames)
    assert batch.shape == (3, 1, 161, 151) and batch.dtype == torch.float32
    for k, a in enumerate(audio):
        np.testing.assert_allclose(batch[k, 0, :, : frames[k]].numpy(), ours(a), atol=1e-5)
        assert batch[k, 0, :, frames[k]:].abs().sum() == 0
