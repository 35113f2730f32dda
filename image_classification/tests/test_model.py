"""ResNet-50 v1.5: size, topology against torchvision, the reference's initialisation, BN settings, FLOPs,
and the weight-decay parameter groups (no decay on BN)."""

import math

import pytest
import torch
import torchvision
from torch import nn

from model import TRUNCATED_NORMAL_STD, forward_macs, param_groups, resnet50


def test_parameter_count_1000_and_1001_classes():
    with torch.device("meta"):
        assert sum(p.numel() for p in resnet50(1000).parameters()) == 25_557_032
        assert sum(p.numel() for p in resnet50(1001).parameters()) == 25_557_032 + 2_049


def test_same_modules_and_shapes_as_torchvision_resnet50():
    with torch.device("meta"):
        ours = {k: v.shape for k, v in resnet50(1000).state_dict().items()}
        theirs = {k: v.shape for k, v in torchvision.models.resnet50().state_dict().items()}
    assert ours == theirs


def test_v15_stride_is_in_the_3x3_conv_and_every_stage_projects():
    model = resnet50(10, width=8)
    for name, stride in (("layer1", 1), ("layer2", 2), ("layer3", 2), ("layer4", 2)):
        first = getattr(model, name)[0]
        assert first.conv1.stride == (1, 1) and first.conv2.stride == (stride, stride)
        assert first.downsample is not None and first.downsample[0].stride == (stride, stride)
        assert all(block.downsample is None for block in getattr(model, name)[1:])
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 10)


def test_tiny_width_has_stage_outputs_32_to_256():
    model = resnet50(10, width=8)
    assert [getattr(model, f"layer{i}")[-1].conv3.out_channels for i in range(1, 5)] == [32, 64, 128, 256]
    assert model.fc.in_features == 256


def test_forward_macs_match_the_spec():
    assert forward_macs(224) == pytest.approx(4.089e9, rel=1e-3)


def test_reference_initialisation_and_batch_norm():
    torch.manual_seed(0)
    model = resnet50(1000, width=16)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(1 / fan_in) / TRUNCATED_NORMAL_STD  # TF truncated-normal variance scaling
            w = m.weight
            assert w.abs().max() <= 2 * std + 1e-7  # cut at 2 std of the underlying normal
            if w.numel() > 5000:
                assert w.std().item() == pytest.approx(math.sqrt(1 / fan_in), rel=0.06)
        elif isinstance(m, nn.BatchNorm2d):
            assert m.momentum == 0.1 and m.eps == 1e-5  # TF decay 0.9
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)  # no zero-init of the last gamma
    limit = math.sqrt(6 / (model.fc.in_features + model.fc.out_features))  # Glorot uniform
    assert model.fc.weight.abs().max() <= limit and model.fc.weight.abs().max() > 0.95 * limit
    assert torch.all(model.fc.bias == 0)
    v06 = resnet50(1000, width=16, fc_init="normal")
    assert v06.fc.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_weight_decay_skips_batch_norm_only():
    model = resnet50(10, width=8)
    decay, no_decay = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert {n for n in names.values() if "bn" in n or "downsample.1" in n} == {names[id(p)] for p in
                                                                                no_decay["params"]}
    assert "fc.bias" in decayed and "fc.weight" in decayed and "conv1.weight" in decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    # With zero gradients, one SGD step shrinks exactly the decayed tensors.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    nn.init.ones_(model.bn1.bias)  # beta 0 would not show a decay
    before["bn1.bias"] = model.bn1.bias.detach().clone()
    torch.optim.SGD(param_groups(model, 0.1), lr=1.0, momentum=0.9).step()
    for n, p in model.named_parameters():
        if n in decayed:
            assert torch.allclose(p, before[n] * 0.9), n
        else:
            assert torch.equal(p, before[n]), n


def test_every_parameter_gets_a_finite_gradient():
    torch.manual_seed(0)
    model = resnet50(10, width=8).to(memory_format=torch.channels_last)
    x = (torch.rand(4, 3, 64, 64) * 255 - 120).contiguous(memory_format=torch.channels_last)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
