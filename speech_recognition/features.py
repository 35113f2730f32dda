"""Waveform batches and DeepSpeech2's log spectrograms, in torch on the training device (spec section 2.5).

The loader (data.py) decodes and augments audio and pads each utterance; the spectrograms of a whole batch
are computed where the model runs (one batched torch.stft per step on the GPU, the same code on the CPU):

    collate: utterances (samples at the 2018 scale, below) -> N x (S_max + 320) waveforms, each reflect-padded
             by 160 samples at both ends (librosa 0.5/0.6's centred STFT) and then zero-padded
    spectrograms: -> |STFT| (320-sample symmetric Hamming frames every 160 samples) -> log1p ->
             (x - mean) / std with one scalar mean and unbiased std per utterance over its own 161 x T_i bins
             -> N x 1 x 161 x T_max, zero after each utterance's T_i = 1 + S_i // 160 frames (the
             reference's collate padding)

Scale: the reference read audio with torchaudio built from its master branch in 2018 (pytorch/docker/
Dockerfile.gpu @ aa596ff4: `git clone https://github.com/pytorch/audio.git`), whose load(filepath, out=None,
normalization=None) returned sox's 32-bit samples unscaled, so a 16-bit sample s arrives as s * 65536 (the
default changed in torchaudio 0.2, pytorch/audio PR #60, September 2018). At that scale |STFT| exceeds 1 in
practically every bin and log1p acts as a logarithm; on samples in [-1, 1] most bins are below 1 and log1p is
nearly linear, a different feature (tests/test_features.py compares with a port of the 2018 code).

Imports only torch and config, so bench.py can use it on a bare GPU machine.
"""

import torch
import torch.nn.functional as F

from config import HOP, NUM_FREQ, WINDOW

# A 16-bit sample as torchaudio 0.1 returned it: sox's int32 sample, i.e. the 16-bit value times 65536.
INT16_TO_2018_SCALE = 65536.0
# The same from samples in [-1, 1): 32768 * 65536 = 2**31.
UNIT_TO_2018_SCALE = float(2**31)


def num_frames(samples: int) -> int:
    """Spectrogram frames of `samples` (centred STFT)."""
    return 1 + samples // HOP


def collate(items):
    """(waveform S_i, target indices, transcript) per utterance -> waveforms N x (S_max + 320) float32,
    frame counts N (int64), targets (concatenated, int64), target lengths N, transcripts. Runs in the loader
    workers; pinned by the DataLoader when training on CUDA, so copying to the device does not block."""
    audio, targets, transcripts = zip(*items)
    lengths = [len(a) for a in audio]
    waveforms = torch.zeros(len(audio), max(lengths) + WINDOW)
    for k, a in enumerate(audio):
        # Reflect padding of 160 at both ends, from each utterance's own samples (reflect needs S_i > 160).
        waveforms[k, : lengths[k] + WINDOW] = F.pad(torch.as_tensor(a)[None], (WINDOW // 2, WINDOW // 2),
                                                    mode="reflect")[0]
    frames = torch.tensor([num_frames(n) for n in lengths])
    target_lengths = torch.tensor([len(t) for t in targets])
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
    return waveforms, frames, flat, target_lengths, list(transcripts)


def hamming(device) -> torch.Tensor:
    """scipy.signal.hamming(320), the symmetric window the reference passed to librosa."""
    return torch.hamming_window(WINDOW, periodic=False, dtype=torch.float32, device=device)


@torch.no_grad()
def spectrograms(waveforms: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """waveforms N x L (collate's, on any device), frames N (same device) -> normalised log spectrograms
    N x 1 x 161 x T_max in fp32 (call it outside autocast), zero beyond each utterance's frames."""
    spect = torch.stft(waveforms.float(), n_fft=WINDOW, hop_length=HOP, win_length=WINDOW,
                       window=hamming(waveforms.device), center=False, return_complex=True)
    spect = torch.log1p(spect.abs())  # N x 161 x T_max
    t = spect.shape[-1]
    valid = (torch.arange(t, device=spect.device) < frames[:, None]).unsqueeze(1)  # N x 1 x T_max
    count = (frames * NUM_FREQ).to(spect.dtype)[:, None, None]  # bins per utterance
    spect = spect * valid
    mean = spect.sum(dim=(1, 2), keepdim=True) / count
    var = ((spect - mean) * valid).square().sum(dim=(1, 2), keepdim=True) / (count - 1)  # torch.std: unbiased
    spect = (spect - mean) / var.sqrt().clamp_min(1e-8) * valid
    # Contiguous: the STFT leaves T strided by 73-74 elements, and a dynamic torch.compile graph of the
    # convolutions traced on one stride pattern failed its stride assertion on the next batch.
    return spect.unsqueeze(1).contiguous()

