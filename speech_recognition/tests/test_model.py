"""DeepSpeech2: shapes, parameter counts and FLOPs of the presets against the spec, padding independence,
gradients, the precision policy and the dtype the GRUs run in, and that each full preset's layer structure
trains (at tiny width) on the tiny data."""

import dataclasses

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import data
import features
import train
from config import PRESETS
from model import DeepSpeech2, Precision, conv_out_frames, forward_macs, precision_policy, train_flops


def build(cfg, rnn_dtype=torch.float32, **changes):
    cfg = dataclasses.replace(cfg, **changes)
    return DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                       cfg.conv_channels, rnn_dtype=rnn_dtype)


@pytest.mark.parametrize("name, params", [("reference", 38_115_968), ("v05", 103_841_568), ("tiny", 662_176)])
def test_parameter_counts_match_the_spec(name, params):
    assert sum(p.numel() for p in build(PRESETS[name]).parameters()) == params  # spec sections 1.2 and 8.2


def test_structure_of_the_presets():
    ref = build(PRESETS["reference"])
    assert len(ref.rnns) == 5 and all(r.rnn.bidirectional and r.rnn.hidden_size == 800 for r in ref.rnns)
    # BatchNorm on the input of layers 2..5, not layer 1; the classifier's BN + bias-free Linear.
    assert ref.rnns[0].batch_norm is None and all(r.batch_norm is not None for r in ref.rnns[1:])
    assert ref.fc.module[1].bias is None and ref.fc.module[1].out_features == 29
    v05 = build(PRESETS["v05"])
    assert len(v05.rnns) == 3 and all(not r.rnn.bidirectional and r.batch_norm is None for r in v05.rnns)
    assert v05.rnns[0].rnn.input_size == 672 and v05.rnns[0].rnn.hidden_size == 2560


def test_flops_per_utterance_match_the_spec():
    # Spec section 1.5: the mean training utterance (12.3 s) has T = 1231 frames -> T2 = 601 RNN steps.
    assert conv_out_frames(torch.tensor([1231])).item() == 601
    assert forward_macs(3, 2560, False, 1231) / 1e9 == pytest.approx(65.8, abs=0.05)
    assert forward_macs(5, 800, True, 1231) / 1e9 == pytest.approx(26.2, abs=0.05)
    assert train_flops(3, 2560, False, 1231) / 1e9 == pytest.approx(395, abs=0.5)
    assert train_flops(5, 800, True, 1231) / 1e9 == pytest.approx(157, abs=0.5)


@pytest.mark.parametrize("name", ["reference", "v05"])
def test_output_shape_and_padding_does_not_leak(name):
    torch.manual_seed(0)
    model = build(PRESETS[name], rnn_hidden=16).eval()
    x = torch.randn(2, 1, 161, 150)
    x[1, :, :, 100:] = 0  # utterance 1 has 100 frames
    logits, steps = model(x, torch.tensor([150, 100]))
    assert logits.shape == (conv_out_frames(torch.tensor(150)).item(), 2, 29) == (60, 2, 29)
    assert steps.tolist() == [60, 35]
    alone, _ = model(x[1:, :, :, :100], torch.tensor([100]))
    # Packed GRUs: a bidirectional layer's backward direction starts at the last valid frame, not at padding.
    torch.testing.assert_close(logits[:35, 1], alone[:, 0], atol=1e-5, rtol=1e-4)


def test_every_parameter_gets_a_finite_gradient():
    model = build(PRESETS["reference"], rnn_hidden=16, rnn_layers=2)
    logits, steps = model(torch.randn(3, 1, 161, 80), torch.tensor([80, 70, 60]))
    loss = train.ctc_loss(logits, steps, torch.randint(1, 29, (12,)), torch.tensor([5, 4, 3]))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("capability, expected", [
    ((6, 0), Precision(torch.float16, torch.float16, True)),  # P100: no bf16 arithmetic
    ((7, 0), Precision(torch.float16, torch.float16, True)),  # V100
    ((7, 5), Precision(torch.float16, torch.float16, True)),  # T4
    ((8, 0), Precision(torch.bfloat16, torch.float32, False)),  # A100
    ((9, 0), Precision(torch.bfloat16, torch.float32, False)),  # H100, H200
    ((10, 0), Precision(torch.bfloat16, torch.float32, False)),  # B200
    (None, Precision(torch.bfloat16, torch.float32, False)),  # CPU
])
def test_precision_policy_by_compute_capability(capability, expected):
    assert precision_policy(capability) == expected
    assert precision_policy(capability, amp=False) == Precision(None, torch.float32, False)
    # Whatever runs in fp16 runs with loss scaling; the GRUs never run in bf16.
    policy = precision_policy(capability)
    assert policy.grad_scaler == (torch.float16 in (policy.autocast, policy.rnn))
    assert policy.rnn in (torch.float32, policy.autocast)


class DtypeRecorder(TorchDispatchMode):
    """Records the dtypes of the matrix products (aten mm/addmm/bmm, after autocast's casts) run inside any
    nn.GRU of `model`, and of the convolutions outside them."""

    def __init__(self, model):
        super().__init__()
        self.inside, self.gru, self.conv = 0, set(), set()
        for m in model.modules():
            if isinstance(m, torch.nn.GRU):
                m.register_forward_pre_hook(lambda *_: setattr(self, "inside", self.inside + 1))
                m.register_forward_hook(lambda *_: setattr(self, "inside", self.inside - 1))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ("mm", "addmm", "bmm") and self.inside:
            self.gru.update(a.dtype for a in args if isinstance(a, torch.Tensor) and a.dim() == 2)
        if name == "convolution":
            self.conv.add(args[0].dtype)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("autocast, rnn_dtype", [(torch.bfloat16, torch.float32),
                                                 (torch.float16, torch.float16)])
def test_grus_run_in_the_policys_dtype_under_cpu_autocast(autocast, rnn_dtype):
    """CPU autocast casts the GRU's matrix products to its dtype, as CUDA autocast casts cuDNN's RNN to fp16:
    the model must hold the GRUs to the policy's dtype while the convolutions follow autocast."""
    torch.manual_seed(0)
    model = build(PRESETS["reference"], rnn_dtype=rnn_dtype, rnn_hidden=16, rnn_layers=2).eval()
    x, frames = torch.randn(2, 1, 161, 60), torch.tensor([60, 50])
    recorder = DtypeRecorder(model)
    with torch.no_grad(), torch.autocast("cpu", dtype=autocast), recorder:
        logits, _ = model(x, frames)
    assert recorder.conv == {autocast} and recorder.gru == {rnn_dtype}
    # An unguarded GRU under the same autocast computes in the autocast dtype (what the guard prevents).
    gru = torch.nn.GRU(8, 8)
    recorder = DtypeRecorder(gru)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), recorder:
        gru(torch.randn(5, 2, 8))
    assert recorder.gru == {torch.bfloat16}


@pytest.mark.parametrize("name", ["reference", "v05"])
def test_each_presets_structure_trains_on_tiny_data(tiny_data, name):
    """Full width costs seconds per utterance on 2 cores, so each preset's own layer types, directionality and
    BatchNorm placement train at width 64 (spec Decisions): the CTC loss on 48 utterances must fall
    clearly."""
    torch.manual_seed(0)
    cfg = PRESETS[name]
    model = build(cfg, rnn_hidden=64)
    utts = data.read_manifests(tiny_data, ["train-tiny"])[::12][:48]
    dataset = data.SpeechDataset(tiny_data, utts)
    batches = [train.to_device(features.collate([dataset[i] for i in range(k, k + 8)]), torch.device("cpu"))
               for k in range(0, 48, 8)]
    optimizer = torch.optim.SGD(model.parameters(), lr=3e-3, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(6):
        total = 0.0
        for spect, frames, targets, target_lengths, _ in batches:
            logits, steps = model(spect, frames)
            loss = train.ctc_loss(logits, steps, targets, target_lengths) / 8
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            total += loss.item()
        losses.append(total / len(batches))
    assert losses[-1] < 0.6 * losses[0], losses
