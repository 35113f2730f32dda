"""model.py: the MSRA ResNet-50-FPN Mask R-CNN (structure, size, gradients) and the R-50.pkl blob loader."""

import numpy as np
import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.ops import FrozenBatchNorm2d

import config
import model


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_is_the_reference_model():
    m = model.build_model()
    # torchvision's maskrcnn_resnet50_fpn is the same network; untrained it has BatchNorm2d, whose affine
    # parameters are buffers in our FrozenBatchNorm2d.
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=81)
    tv_bn = sum(count(mod) for mod in tv.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    assert count(m) == count(tv) - tv_bn == 44_347_573
    # Spec section 1's parts (computed there, millions): backbone 23.5, FPN 3.3, RPN 0.6, box 14.3, mask 2.6.
    parts = {"body": m.backbone.body, "fpn": m.backbone.fpn, "rpn": m.rpn,
             "box": torch.nn.ModuleList([m.roi_heads.box_head, m.roi_heads.box_predictor]),
             "mask": torch.nn.ModuleList([m.roi_heads.mask_head, m.roi_heads.mask_predictor])}
    millions = {k: round(count(v) / 1e6, 1) for k, v in parts.items()}
    assert millions == {"body": 23.5, "fpn": 3.3, "rpn": 0.6, "box": 14.3, "mask": 2.6}


def test_msra_body_stride_in_1x1_frozen_bn_and_frozen_stem():
    body = model.build_model().backbone.body
    for name in ("layer2", "layer3", "layer4"):
        first = getattr(body, name)[0]
        assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)  # STRIDE_IN_1X1
        assert first.downsample[0].stride == (2, 2)
    assert body.layer1[0].conv1.stride == (1, 1)
    bns = [mod for mod in body.modules() if isinstance(mod, FrozenBatchNorm2d)]
    assert len(bns) == 1 + 3 * 16 + 4 and all(bn.eps == 0.0 for bn in bns)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in body.modules())
    frozen = {n for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in body.named_parameters() if n.startswith(("conv1.", "layer1."))}


def tiny_model():
    return model.build_model(**config.model_kwargs(config.PRESETS["tiny"]))


def test_tiny_forward_backward_and_inference():
    torch.manual_seed(0)
    m = tiny_model()
    images = [torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8),
              torch.randint(0, 256, (3, 128, 96), dtype=torch.uint8)]
    masks = torch.zeros(2, 96, 128, dtype=torch.uint8)
    masks[0, 10:40, 20:60] = 1
    masks[1, 50:90, 70:120] = 1
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 60.0, 40.0], [70.0, 50.0, 120.0, 90.0]]),
                "labels": torch.tensor([1, 3]), "masks": masks},
               {"boxes": torch.tensor([[5.0, 5.0, 50.0, 70.0]]), "labels": torch.tensor([2]),
                "masks": torch.zeros(1, 128, 96, dtype=torch.uint8).index_fill_(1, torch.arange(5, 70), 1)}]
    m.train()
    losses = m(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, p in m.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    m.eval()
    with torch.no_grad():
        out = m(images)
    assert len(out) == 2 and out[1]["masks"].shape[1:] == (1, 128, 96)  # pasted into the original image


def detectron_blobs(stem_width: int, rng: np.random.Generator) -> dict:
    """R-50.pkl's blob names and shapes, written from the Detectron naming scheme (not from model.py)."""
    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    blobs = {"conv1_w": arr(stem_width, 3, 7, 7), "conv1_b": arr(stem_width),
             "res_conv1_bn_s": arr(stem_width), "res_conv1_bn_b": arr(stem_width),
             "fc1000_w": arr(1000, 32 * stem_width), "fc1000_b": arr(1000)}
    in_channels = stem_width
    for stage, n in zip((2, 3, 4, 5), model.STAGE_BLOCKS):
        width = stem_width * 2 ** (stage - 2)
        for i in range(n):
            p = f"res{stage}_{i}_"
            if i == 0:
                blobs[p + "branch1_w"] = arr(4 * width, in_channels, 1, 1)
                blobs[p + "branch1_bn_s"], blobs[p + "branch1_bn_b"] = arr(4 * width), arr(4 * width)
            shapes = {"a": (width, in_channels, 1, 1), "b": (width, width, 3, 3),
                      "c": (4 * width, width, 1, 1)}
            for branch, shape in shapes.items():
                blobs[f"{p}branch2{branch}_w"] = arr(*shape)
                blobs[f"{p}branch2{branch}_bn_s"] = arr(shape[0])
                blobs[f"{p}branch2{branch}_bn_b"] = arr(shape[0])
            in_channels = 4 * width
    return blobs


def test_every_detectron_blob_is_loaded():
    body = model.ResNetBody(stem_width=8)
    blobs = detectron_blobs(8, np.random.default_rng(0))
    # stem, fc1000, 16 blocks x 3 branches x (w, s, b), 4 shortcuts x (w, s, b)
    assert len(blobs) == 4 + 2 + 16 * 3 * 3 + 4 * 3
    model.load_c2_backbone(body, {"blobs": blobs})
    assert torch.equal(body.conv1.weight, torch.from_numpy(blobs["conv1_w"]))
    assert torch.equal(body.bn1.weight, torch.from_numpy(blobs["res_conv1_bn_s"]))
    assert torch.equal(body.layer1[0].downsample[0].weight, torch.from_numpy(blobs["res2_0_branch1_w"]))
    assert torch.equal(body.layer1[0].downsample[1].bias, torch.from_numpy(blobs["res2_0_branch1_bn_b"]))
    assert torch.equal(body.layer3[5].conv2.weight, torch.from_numpy(blobs["res4_5_branch2b_w"]))
    assert torch.equal(body.layer4[2].bn3.weight, torch.from_numpy(blobs["res5_2_branch2c_bn_s"]))
    assert torch.equal(body.layer2[1].bn1.bias, torch.from_numpy(blobs["res3_1_branch2a_bn_b"]))
    assert all(float(bn.running_var.min()) == 1.0 and float(bn.running_mean.abs().max()) == 0.0
               for bn in body.modules() if isinstance(bn, FrozenBatchNorm2d))
    # A frozen BN with scale s and shift b computes s * x + b.
    x = torch.randn(1, 8, 4, 4)
    expected = x * body.bn1.weight.view(1, -1, 1, 1) + body.bn1.bias.view(1, -1, 1, 1)
    assert torch.allclose(body.bn1(x), expected, atol=1e-6)


def test_missing_misshaped_or_extra_blobs_are_named():
    body = model.ResNetBody(stem_width=8)
    blobs = detectron_blobs(8, np.random.default_rng(0))
    missing = {k: v for k, v in blobs.items() if k != "res4_3_branch2b_bn_s"}
    with pytest.raises(ValueError, match=r"res4_3_branch2b_bn_s \(for layer3\.3\.bn2\.weight\) is missing"):
        model.load_c2_backbone(body, missing)
    misshaped = {**blobs, "res3_0_branch1_w": np.zeros((64, 32, 3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"blob res3_0_branch1_w has shape \(64, 32, 3, 3\), "
                                         r"layer2\.0\.downsample\.0\.weight needs \(64, 32, 1, 1\)"):
        model.load_c2_backbone(body, misshaped)
    extra = {**blobs, "res6_0_branch2a_w": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="not used by the model: res6_0_branch2a_w"):
        model.load_c2_backbone(body, extra)


def test_input_is_bgr_0_255_minus_the_caffe2_mean():
    m = tiny_model().eval()
    seen = {}
    m.transform.register_forward_pre_hook(lambda module, args: seen.setdefault("images", args[0]))
    image = torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8)
    with torch.no_grad():
        m([image])
    assert torch.equal(seen["images"][0], image[[2, 1, 0]].float())  # BGR, 0-255
    normalised = m.transform.normalize(seen["images"][0])
    mean = torch.tensor([102.9801, 115.9465, 122.7717]).view(3, 1, 1)
    assert torch.allclose(normalised, image[[2, 1, 0]].float() - mean)  # std 1


def test_rpn_ignores_anchors_crossing_the_border():
    torch.manual_seed(0)
    m = tiny_model().train()
    assert m.rpn.min_size == 0.0  # no proposal is dropped for its size
    seen = {}
    m.rpn.anchor_generator.register_forward_hook(lambda module, args, out: seen.setdefault("anchors", out))
    sampler = m.rpn.fg_bg_sampler

    def recording_sampler(labels):
        seen["labels"] = labels
        return sampler(labels)

    m.rpn.fg_bg_sampler = recording_sampler
    image = torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8)
    target = {"boxes": torch.tensor([[0.0, 0.0, 30.0, 40.0]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 96, 128, dtype=torch.uint8)}
    m([image], [target])
    anchors, labels = seen["anchors"][0], seen["labels"][0]
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] < 128) & (anchors[:, 3] < 96)
    assert 0 < int(inside.sum()) < len(anchors)
    assert (labels[~inside] == -1).all()  # straddling anchors: neither positive nor negative
    assert (labels[inside] == 1).any() and (labels[inside] == 0).any()


def test_box_loss_is_smooth_l1_with_beta_1():
    # One image, 4 sampled RoIs of which 2 foreground (classes 1 and 3), K = 4 classes.
    logits = torch.zeros(4, 4)
    regression = torch.zeros(4, 16)
    regression[0, 4:8] = torch.tensor([0.5, -0.5, 2.0, 0.0])  # class 1's deltas of RoI 0
    regression[1, 12:16] = torch.tensor([0.0, 0.0, 0.0, 3.0])  # class 3's deltas of RoI 1
    regression[2, 4:8] = 100.0  # background RoI: no box loss
    labels = [torch.tensor([1, 3, 0, 0])]
    targets = [torch.zeros(4, 4)]
    loss_classifier, loss_box_reg = model.fastrcnn_loss_reference(logits, regression, labels, targets)
    # beta 1: 0.5 d^2 for |d| < 1, else |d| - 0.5; summed, divided by the 4 sampled RoIs.
    expected = (0.125 + 0.125 + 1.5 + 0.0) + 2.5
    assert float(loss_box_reg) == pytest.approx(expected / 4)
    assert float(loss_classifier) == pytest.approx(float(torch.log(torch.tensor(4.0))))


def test_training_uses_the_reference_box_loss():
    torch.manual_seed(0)
    m = tiny_model().train()
    seen = {}
    heads = m.roi_heads
    select = heads.select_training_samples

    def recording_select(proposals, targets):
        seen["sampled"] = select(proposals, targets)
        return seen["sampled"]

    heads.select_training_samples = recording_select
    heads.box_predictor.register_forward_hook(lambda module, args, out: seen.setdefault("out", out))
    image = torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8)
    masks = torch.zeros(1, 96, 128, dtype=torch.uint8)
    masks[0, 20:60, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20.0, 90.0, 60.0]]), "labels": torch.tensor([2]), "masks": masks}
    losses = m([image], [target])
    _, _, labels, regression_targets = seen["sampled"]
    class_logits, box_regression = seen["out"]
    fg = torch.cat(labels) > 0
    assert fg.any()
    chosen = box_regression.reshape(len(fg), -1, 4)[fg, torch.cat(labels)[fg]]
    beta_1 = torch.nn.functional.smooth_l1_loss(chosen, torch.cat(regression_targets)[fg], beta=1.0,
                                                reduction="sum") / len(fg)
    assert losses["loss_box_reg"].item() == pytest.approx(beta_1.item())
    beta_9th = torch.nn.functional.smooth_l1_loss(chosen, torch.cat(regression_targets)[fg], beta=1 / 9,
                                                  reduction="sum") / len(fg)
    assert beta_9th.item() != pytest.approx(beta_1.item())  # the two betas differ on these RoIs
