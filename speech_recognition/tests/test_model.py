"""DeepSpeech2: shapes, parameter counts and FLOPs of the presets against the spec, padding independence,
gradients, and that each full preset's layer structure trains (at tiny width) on the tiny data."""

import dataclasses

import pytest
import torch

import data
import train
from config import PRESETS
from model import DeepSpeech2, conv_out_frames, forward_macs, train_flops


def build(cfg, **changes):
    cfg = dataclasses.replace(cfg, **changes)
    return DeepSpeech2(cfg.rnn_layers, cfg.rnn_hidden, cfg.bidirectional, cfg.rnn_batch_norm,
                       cfg.conv_channels)


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


@pytest.mark.parametrize("name", ["reference", "v05"])
def test_each_presets_structure_trains_on_tiny_data(tiny_data, name):
    """Full width costs seconds per utterance on 2 cores, so each preset's own layer types, directionality and
    BatchNorm placement train at width 64 (spec Decisions): the CTC loss on 48 utterances must fall
    clearly."""
    torch.manual_seed(0)
    cfg = PRESETS[name]
    model = build(cfg, rnn_hidden=64)
    utts = data.read_manifests(tiny_data, ["train-tiny"])[::12][:48]
    batches = [data.collate([data.SpeechDataset(tiny_data, utts)[i] for i in range(k, k + 8)])
               for k in range(0, 48, 8)]
    optimizer = torch.optim.SGD(model.parameters(), lr=3e-3, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(6):
        total = 0.0
        for features, frames, targets, target_lengths, _ in batches:
            logits, steps = model(features, frames)
            loss = train.ctc_loss(logits, steps, targets, target_lengths) / 8
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            total += loss.item()
        losses.append(total / len(batches))
    assert losses[-1] < 0.6 * losses[0], losses
