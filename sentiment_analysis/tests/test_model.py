"""Seq-CNN semantics (Paddle windows, padding, init) and the stacked-LSTM variant."""

import math

import pytest
import torch

from config import PRESETS
from model import SeqCNN, StackedLSTM, build_model, reverse_padded


def _hand_model():
    """E = F = 1, embedding of id i = i, conv weights [1, 10, 100(, 1000)], no bias: each output
    digit shows which position of the window it came from."""
    m = SeqCNN(vocab_size=10, emb_dim=1, num_filters=1, conv_widths=(3, 4))
    with torch.no_grad():
        m.embedding.weight.copy_(torch.arange(10.0)[:, None])
        for conv in m.convs:
            k = conv.kernel_size[0]
            conv.weight.copy_(10.0 ** torch.arange(k, dtype=torch.float32).view(1, 1, k))
            conv.bias.zero_()
    return m


def test_conv_windows_match_paddle():
    m = _hand_model()
    (c3, c4), _ = m.branch_outputs(torch.tensor([[1, 2, 3, 4]]), torch.tensor([4]))
    # width 3: window [t-1, t, t+1], zeros outside: 0+10*1+100*2, 1+10*2+100*3, ...
    assert c3[0, 0].tolist() == [210, 321, 432, 43]
    # width 4: window [t-2, t-1, t, t+1]
    assert c4[0, 0].tolist() == [2100, 3210, 4321, 432]
    # A pad position (id 9, length 3) is seen as zero by the last real window.
    (c3, c4), mask = m.branch_outputs(torch.tensor([[1, 2, 3, 9]]), torch.tensor([3]))
    assert c3[0, 0, :3].tolist() == [210, 321, 32] and c4[0, 0, :3].tolist() == [2100, 3210, 321]
    assert mask.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("cls,kw", [(SeqCNN, dict(emb_dim=8, num_filters=6)),
                                    (StackedLSTM, dict(emb_dim=8, fc_dim=16))])
def test_padding_changes_no_logit(cls, kw):
    torch.manual_seed(0)
    m = cls(vocab_size=20, **kw).eval()
    with torch.no_grad():     # a bias makes ELU(bias) at pad positions a candidate max
        for p in m.parameters():
            p.add_(0.3)
    reviews = [torch.randint(0, 20, (n,)) for n in (5, 1, 9)]
    alone = torch.cat([m(r[None], torch.tensor([len(r)])) for r in reviews])
    L = 9 + 40
    ids = torch.stack([torch.cat([r, torch.full((L - len(r),), 19)]) for r in reviews])
    padded = m(ids, torch.tensor([len(r) for r in reviews]))
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-6)


def test_reverse_padded():
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])[..., None]
    out = reverse_padded(x, torch.tensor([3, 5]))[..., 0]
    assert out.tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4]]


def test_reference_size_and_paddle_init():
    torch.manual_seed(0)
    m = build_model(PRESETS["reference"], vocab_size=5147)
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - 12.6e6) < 0.05e6                   # spec §1: ~12.6M
    conv3 = m.convs[0].weight                         # Paddle filter [3*1024, 1024]
    limit = math.sqrt(6 / (3 * 1024 + 1024))
    assert conv3.abs().max() <= limit and conv3.abs().max() > 0.99 * limit
    assert m.embedding.weight.abs().max() <= math.sqrt(6 / (5147 + 1024))
    assert all(not c.bias.detach().any() for c in m.convs)
    assert not m.fc_bias.detach().any()


def _tiny_cfg(model):
    import dataclasses
    return dataclasses.replace(PRESETS["tiny"], model=model)


@pytest.mark.parametrize("name", ["conv", "lstm"])
def test_forward_backward_tiny_shapes(name):
    torch.manual_seed(0)
    m = build_model(_tiny_cfg(name), vocab_size=30)
    ids = torch.randint(0, 30, (4, 7))
    lengths = torch.tensor([7, 3, 1, 5])
    logits = m(ids, lengths)
    assert logits.shape == (4, 2) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_lstm_is_stacked_three_deep_with_hidden_quarter_of_fc():
    m = build_model(PRESETS["reference"].__class__(model="lstm"), vocab_size=100)
    assert len(m.lstms) == 3 and all(lstm.hidden == 256 for lstm in m.lstms)
    assert m.embedding.weight.shape == (100, 256) and m.fc_in[0].out_features == 1024


def test_reference_preset_is_the_2018_recipe():
    ref, tiny = PRESETS["reference"], PRESETS["tiny"]
    assert (ref.model, ref.emb_dim, ref.num_filters, ref.conv_widths) == ("conv", 1024, 1024, (3, 4))
    assert (ref.batch_size, ref.lr, ref.max_epochs, ref.target) == (128, 5e-4, 100, 0.906)
    assert (ref.vocab_cutoff, ref.expected_vocab_size, ref.eval_every) == (150, 5147, 1)
    assert (tiny.emb_dim, tiny.num_filters, tiny.conv_widths) == (64, 64, (3, 4))
    assert (tiny.batch_size, tiny.lr, tiny.max_epochs, tiny.target) == (32, 2e-3, 6, 0.85)
