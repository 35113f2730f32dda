"""DeepSpeech2 as in the MLPerf reference (model.py @ aa596ff4 and @ v0.5; spec section 1).

    spectrogram N x 1 x 161 x T
      -> Conv2d(1->32, (41, 11), stride (2, 2)) -> BN2d -> Hardtanh(0, 20)  32 x 61 x T1, T1 = (T-11)//2 + 1
      -> Conv2d(32->32, (21, 11), stride (2, 1)) -> BN2d -> Hardtanh(0, 20) 32 x 21 x T2, T2 = T1 - 10
      -> T2 x N x 672 (channel-major features, time-major)
      -> L x [BatchNorm1d on the input of layers 2..L (optional)] GRU(H), directions summed if bidirectional
      -> BatchNorm1d(H) -> Linear(H -> 29, no bias)                         T2 x N x 29 logits
No padding in the convolutions. The GRUs run on packed sequences, so no direction reads padding frames; the
BatchNorm statistics include padding frames, as the reference's SequenceWise did. torch.nn.GRU is cuDNN's GRU
on CUDA. Training applies log_softmax and torch's CTC loss to the logits (train.py).

Precision (precision_policy): the GRUs compute in `rnn_dtype` whatever the enclosing torch.autocast says,
because autocast runs cuDNN's RNN in fp16 for any autocast dtype (aten's _cudnn_rnn autocast wrapper casts
to kHalf), which under bf16 autocast means fp16 without loss scaling.
"""

import contextlib
import dataclasses

import torch
from torch import nn

from config import NUM_CLASSES, NUM_FREQ


@dataclasses.dataclass(frozen=True)
class Precision:
    autocast: torch.dtype | None  # dtype of torch.autocast around the forward pass; None: no autocast (fp32)
    rnn: torch.dtype  # what the GRUs compute in
    grad_scaler: bool  # loss scaling: on whenever something runs in fp16


def precision_policy(capability: tuple[int, int] | None, amp: bool = True) -> Precision:
    """Mixed precision by compute capability alone (None: the CPU). Never by torch.cuda.is_bf16_supported(),
    which is True on a P100 through emulation.

    - 8.0 and later (A100, H100/H200, B200): bf16 autocast for the convolutions and the classifier; the GRUs
      in fp32 (cuDNN runs them on TF32 tensor cores, torch.backends.cudnn.allow_tf32 is on by default); bf16
      needs no loss scaling.
    - before 8.0 (P100 6.0, V100 7.0, T4 7.5): no bf16 arithmetic, so fp16 autocast with GradScaler; the GRUs
      in fp16 too, which is what autocast gives cuDNN's RNN, and safe with the scaler (gate outputs and
      hidden states are bounded by sigmoid and tanh).
    - CPU: bf16 autocast when asked for, GRUs in fp32.
    """
    if not amp:
        return Precision(None, torch.float32, False)
    if capability is None or tuple(capability) >= (8, 0):
        return Precision(torch.bfloat16, torch.float32, False)
    return Precision(torch.float16, torch.float16, True)


def conv_out_frames(frames: torch.Tensor) -> torch.Tensor:
    """RNN steps of an utterance of `frames` spectrogram frames: T2 = (T - 11) // 2 + 1 - 10."""
    return torch.div(frames - 11, 2, rounding_mode="floor") + 1 - 10


def conv_out_freq(freq: int = NUM_FREQ) -> int:
    return ((freq - 41) // 2 + 1 - 21) // 2 + 1  # 161 -> 61 -> 21


class SequenceWise(nn.Module):
    """Apply a per-frame module to T x N x H by folding time into the batch (reference SequenceWise)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        t, n = x.shape[:2]
        return self.module(x.reshape(t * n, -1)).view(t, n, -1)


class BatchRNN(nn.Module):
    """[BN on the input] -> GRU; a bidirectional layer's two directions are summed (H, not 2H, outputs).
    rnn_dtype float32: the GRU runs with autocast off on fp32 inputs; float16: under the enclosing fp16
    autocast (precision_policy pairs it with a GradScaler)."""

    def __init__(self, input_size: int, hidden: int, bidirectional: bool, batch_norm: bool,
                 rnn_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = nn.GRU(input_size, hidden, bidirectional=bidirectional, bias=True)
        self.bidirectional = bidirectional
        self.rnn_dtype = rnn_dtype

    def forward(self, x, lengths):  # x: T x N x I, lengths: N (on the CPU)
        t = x.shape[0]
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        fp32 = self.rnn_dtype == torch.float32
        with torch.autocast(x.device.type, enabled=False) if fp32 else contextlib.nullcontext():
            x, _ = self.rnn(nn.utils.rnn.pack_padded_sequence(x.float() if fp32 else x, lengths,
                                                               enforce_sorted=False))
        x, _ = nn.utils.rnn.pad_packed_sequence(x, total_length=t)
        if self.bidirectional:
            x = x.view(x.shape[0], x.shape[1], 2, -1).sum(2)  # T x N x H
        return x


class DeepSpeech2(nn.Module):
    def __init__(self, rnn_layers: int, rnn_hidden: int, bidirectional: bool, rnn_batch_norm: bool,
                 conv_channels: int = 32, num_classes: int = NUM_CLASSES,
                 rnn_dtype: torch.dtype = torch.float32):
        super().__init__()
        c = conv_channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, kernel_size=(41, 11), stride=(2, 2)),
            nn.BatchNorm2d(c),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(c, c, kernel_size=(21, 11), stride=(2, 1)),
            nn.BatchNorm2d(c),
            nn.Hardtanh(0, 20, inplace=True),
        )
        rnn_input = c * conv_out_freq()  # 32 x 21 = 672
        self.rnns = nn.ModuleList(
            BatchRNN(rnn_input if i == 0 else rnn_hidden, rnn_hidden, bidirectional,
                     batch_norm=rnn_batch_norm and i > 0, rnn_dtype=rnn_dtype)  # no BN on layer 1's input
            for i in range(rnn_layers))
        self.fc = SequenceWise(nn.Sequential(nn.BatchNorm1d(rnn_hidden),
                                             nn.Linear(rnn_hidden, num_classes, bias=False)))

    def forward(self, features: torch.Tensor, frames: torch.Tensor):
        """features N x 1 x 161 x T, frames N (valid spectrogram frames) -> logits T2 x N x 29, steps N."""
        x = self.conv(features)  # N x C x 21 x T2
        n, c, f, t = x.shape
        x = x.view(n, c * f, t).permute(2, 0, 1)  # T2 x N x 672
        steps = conv_out_frames(frames.cpu()).clamp(min=1, max=t)
        for rnn in self.rnns:
            x = rnn(x, steps)
        return self.fc(x), steps


def forward_macs(rnn_layers: int, rnn_hidden: int, bidirectional: bool, frames: int, conv_channels: int = 32,
                 num_classes: int = NUM_CLASSES) -> int:
    """Multiply-accumulates of one forward pass over an utterance of `frames` spectrogram frames (spec
    section 1.5: convolutions, GRU gates (3H(I + H) per step and direction), classifier; BN ignored)."""
    c = conv_channels
    t1 = (frames - 11) // 2 + 1
    t2 = t1 - 10
    f1 = (NUM_FREQ - 41) // 2 + 1
    conv = c * f1 * t1 * 41 * 11 + c * conv_out_freq() * t2 * c * 21 * 11
    directions = 2 if bidirectional else 1
    rnn, inp = 0, c * conv_out_freq()
    for _ in range(rnn_layers):
        rnn += directions * 3 * rnn_hidden * (inp + rnn_hidden) * t2
        inp = rnn_hidden
    return conv + rnn + rnn_hidden * num_classes * t2


def train_flops(rnn_layers: int, rnn_hidden: int, bidirectional: bool, frames: int, **kw) -> int:
    """Training FLOPs of one utterance: 2 FLOPs per MAC, backward = 2 x forward (spec section 1.5)."""
    return 3 * 2 * forward_macs(rnn_layers, rnn_hidden, bidirectional, frames, **kw)
