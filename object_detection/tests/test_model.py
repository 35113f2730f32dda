"""model.py: the MSRA ResNet-50-FPN Mask R-CNN (structure, size, gradients), the R-50.pkl blob loader against
the real file's blob list, torchvision's RoI heads with the reference's box loss, the batched mask pasting,
and mixed precision that keeps the geometry in fp32."""

import os
import pickle

import numpy as np
import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.ops import FrozenBatchNorm2d

import config
import data
import make_tiny_dataset
import model

R50_BLOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "R-50.pkl.blobs")


def real_r50_blobs() -> dict[str, tuple[int, ...]]:
    """Blob name -> shape of Detectron's ImageNet R-50.pkl, from the fixture (its header says where from)."""
    shapes = {}
    with open(R50_BLOBS) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, shape = line.split()
                shapes[name] = tuple(int(d) for d in shape.split(","))
    return shapes


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
    """R-50.pkl's blobs for a ResNet-50 of the given stem width, written from the Detectron naming scheme (not
    from model.py): each conv X has X_w, X_b (zero in the real file), X_bn_s, X_bn_b; at stem width 64 these
    are the real file's blobs (test_the_blob_scheme_is_the_real_files)."""
    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def conv(name, *shape):
        blobs[name + "_w"], blobs[name + "_b"] = arr(*shape), np.zeros(shape[0], np.float32)
        bn = "res_conv1_bn" if name == "conv1" else name + "_bn"
        blobs[bn + "_s"], blobs[bn + "_b"] = arr(shape[0]), arr(shape[0])

    blobs = {"fc1000_w": arr(1000, 32 * stem_width), "fc1000_b": arr(1000)}
    conv("conv1", stem_width, 3, 7, 7)
    in_channels = stem_width
    for stage, n in zip((2, 3, 4, 5), model.STAGE_BLOCKS):
        width = stem_width * 2 ** (stage - 2)
        for i in range(n):
            p = f"res{stage}_{i}_"
            if i == 0:
                conv(p + "branch1", 4 * width, in_channels, 1, 1)
            conv(p + "branch2a", width, in_channels, 1, 1)
            conv(p + "branch2b", width, width, 3, 3)
            conv(p + "branch2c", 4 * width, width, 1, 1)
            in_channels = 4 * width
    return blobs


def test_the_blob_scheme_is_the_real_files():
    blobs = detectron_blobs(64, np.random.default_rng(0))
    assert {k: v.shape for k, v in blobs.items()} == real_r50_blobs()


def test_a_pickle_with_exactly_the_real_r50_blobs_loads(tmp_path):
    """R-50.pkl's 214 blobs (names and shapes from public records, tests/fixtures/R-50.pkl.blobs) load into
    the full-width body: every conv and BN gets its blob; the conv biases and fc1000 are known and unused."""
    rng = np.random.default_rng(0)
    blobs = {name: rng.standard_normal(shape, np.float32) for name, shape in real_r50_blobs().items()}
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps(blobs, protocol=2))  # as Detectron's pickle_caffe_blobs.py wrote it
    body = model.ResNetBody(stem_width=64)
    model.load_c2_backbone(body, data.read_detectron_weights(str(path)))
    for name, p in list(body.named_parameters()) + list(body.named_buffers()):
        if not name.endswith(("running_mean", "running_var")):
            assert torch.equal(p, torch.from_numpy(blobs[model.c2_blob_name(name)])), name


def test_every_detectron_blob_is_loaded():
    body = model.ResNetBody(stem_width=8)
    blobs = detectron_blobs(8, np.random.default_rng(0))
    # stem, fc1000, 16 blocks x 3 branches x (w, b, s, b), 4 shortcuts x (w, b, s, b)
    assert len(blobs) == 4 + 2 + 16 * 3 * 4 + 4 * 4
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
    momentum = {**blobs, "res2_0_branch2a_w_momentum": blobs["res2_0_branch2a_w"]}  # not in R-50.pkl
    with pytest.raises(ValueError, match="not used by the model: res2_0_branch2a_w_momentum"):
        model.load_c2_backbone(body, momentum)
    bias = {**blobs, "res3_1_branch2b_b": np.zeros(32, np.float32)}  # that conv has 16 output channels
    with pytest.raises(ValueError, match=r"blob res3_1_branch2b_b has shape \(32,\), the bias of "
                                         r"layer2\.1\.conv2 would be \(16,\)"):
        model.load_c2_backbone(body, bias)


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


@pytest.mark.parametrize("capability, dtype", [((6, 0), torch.float16), ((7, 0), torch.float16),
                                               ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                               ((9, 0), torch.bfloat16), ((10, 0), torch.bfloat16),
                                               (None, torch.bfloat16)])
def test_precision_policy_is_bf16_from_ampere_fp16_before(capability, dtype):
    assert model.precision_policy(capability) == dtype  # P100 6.0 and V100 7.0: fp16 + loss scaling


def tiny_detector():
    """The tiny model with make_tiny_dataset.py's R-50.pkl weights (its scales keep the activations O(1); a
    body with random convs under identity BN gives degenerate boxes), in eval mode."""
    m = tiny_model()
    model.load_c2_backbone(m.backbone.body, make_tiny_dataset.backbone_blobs(np.random.default_rng(0)))
    return m.eval()


def two_images():
    images = [torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8),
              torch.randint(0, 256, (3, 128, 96), dtype=torch.uint8)]
    masks = [torch.zeros(2, 96, 128, dtype=torch.uint8), torch.zeros(1, 128, 96, dtype=torch.uint8)]
    masks[0][0, 10:40, 20:60] = 1
    masks[0][1, 50:90, 70:120] = 1
    masks[1][0, 5:70, 5:50] = 1
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 60.0, 40.0], [70.0, 50.0, 120.0, 90.0]]),
                "labels": torch.tensor([1, 3]), "masks": masks[0]},
               {"boxes": torch.tensor([[5.0, 5.0, 50.0, 70.0]]), "labels": torch.tensor([2]),
                "masks": masks[1]}]
    return images, targets


def test_roi_heads_are_torchvisions_but_for_the_box_loss():
    """ReferenceRoIHeads runs torchvision's RoIHeads: on the same features and proposals, torchvision's own
    RoIHeads (same modules) gives the same detections and masks, and in training (same random sampling) the
    same classifier and mask losses; only loss_box_reg differs, the reference's beta 1 against 1/9."""
    torch.manual_seed(0)
    m = tiny_detector()
    ours = m.roi_heads
    theirs = RoIHeads(ours.box_roi_pool, ours.box_head, ours.box_predictor, 0.5, 0.5,
                      ours.fg_bg_sampler.batch_size_per_image, 0.25, None, ours.score_thresh, ours.nms_thresh,
                      ours.detections_per_img, mask_roi_pool=ours.mask_roi_pool, mask_head=ours.mask_head,
                      mask_predictor=ours.mask_predictor)
    images, targets = two_images()
    seen = {}
    hook = ours.register_forward_pre_hook(lambda module, args: seen.update(args=args))  # its inputs
    m.eval()
    with torch.no_grad():
        m(images)
        features, proposals, image_shapes = seen["args"][:3]
        a, _ = ours(features, proposals, image_shapes)
        b, _ = theirs.eval()(features, proposals, image_shapes)
    assert len(a[0]["boxes"]) > 0
    for x, y in zip(a, b):
        assert x.keys() == y.keys() == {"boxes", "labels", "scores", "masks"}
        assert all(torch.equal(x[k], y[k]) for k in x)
    m.train()
    m(images, targets)
    hook.remove()
    features, proposals, image_shapes, targets_t = seen["args"]
    torch.manual_seed(1)
    _, a = ours(features, proposals, image_shapes, targets_t)
    torch.manual_seed(1)
    _, b = theirs.train()(features, proposals, image_shapes, targets_t)
    assert a.keys() == b.keys() == {"loss_classifier", "loss_box_reg", "loss_mask"}
    assert torch.equal(a["loss_classifier"], b["loss_classifier"])
    assert torch.equal(a["loss_mask"], b["loss_mask"])
    assert a["loss_box_reg"].detach().item() != pytest.approx(b["loss_box_reg"].detach().item())


def test_batched_paste_is_torchvisions_paste():
    """model.paste_masks (one batched product) pastes what torchvision's paste_masks_in_image (the reference's
    Masker, one mask at a time) pastes: the same probabilities up to fp32 rounding, the same pixels > 0.5;
    boxes touching the borders, a sub-pixel box and one covering the whole image included."""
    g = torch.Generator().manual_seed(0)
    for height, width in [(96, 128), (427, 640)]:
        masks = torch.rand(40, 1, 28, 28, generator=g)
        corner = torch.rand(40, 2, generator=g) * torch.tensor([width, height])
        size = torch.rand(40, 2, generator=g) ** 3 * torch.tensor([width, height])  # mostly small boxes
        boxes = torch.cat([corner, corner + size], 1)
        boxes[0] = torch.tensor([3.2, 4.7, 3.4, 5.1])
        boxes[1] = torch.tensor([0.0, 0.0, width, height])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)  # detections are clipped to the image
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        expected = paste_masks_in_image(masks, boxes, (height, width))
        pasted = model.paste_masks(masks, boxes, (height, width))
        assert pasted.shape == expected.shape == (40, 1, height, width)
        assert torch.allclose(pasted, expected, rtol=0, atol=1e-6)
        assert torch.equal(pasted > 0.5, expected > 0.5)
    assert model.paste_masks(masks[:0], boxes[:0], (height, width)).shape == (0, 1, height, width)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_geometry_stays_fp32_under_autocast(dtype):
    """Under CPU autocast the convolutions and heads run in bf16/fp16 but anchors, proposals, the boxes the
    mask head pools and the detections are fp32, and given the same network outputs they are the fp32 model's:
    the autocast run's head outputs replayed into the same model without autocast give the same detections."""
    torch.manual_seed(0)
    m = tiny_detector()
    images, targets = two_images()
    heads = {"rpn": m.rpn.head, "box": m.roi_heads.box_predictor, "mask": m.roi_heads.mask_predictor}
    outputs, seen = {}, {}  # (hooks that return None leave inputs and outputs as they are)
    hooks = [module.register_forward_hook(lambda mod, args, out, k=k: outputs.update({k: out}))
             for k, module in heads.items()]
    hooks += [m.roi_heads.box_head.register_forward_hook(lambda mod, args, out: seen.update(fc7=out)),
              m.rpn.anchor_generator.register_forward_hook(lambda mod, args, out: seen.update(anchors=out)),
              m.roi_heads.register_forward_pre_hook(lambda mod, args: seen.update(proposals=args[1])),
              m.roi_heads.mask_roi_pool.register_forward_pre_hook(
                  lambda mod, args: seen.update(mask_boxes=args[1]))]
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        mixed = m(images)
    for h in hooks:
        h.remove()
    assert seen["fc7"].dtype == dtype  # autocast was on: the box head ran in half precision
    for key in ("anchors", "proposals", "mask_boxes"):
        assert {t.dtype for t in seen[key]} == {torch.float32}, key
    assert all(len(d["boxes"]) > 0 for d in mixed)
    assert {d[k].dtype for d in mixed for k in ("boxes", "scores", "masks")} == {torch.float32}
    # The same network outputs, now with everything in fp32.
    replay = [module.register_forward_hook(lambda mod, args, out, k=k: outputs[k])
              for k, module in heads.items()]
    with torch.no_grad():
        exact = m(images)
    for h in replay:
        h.remove()
    for x, y in zip(mixed, exact):
        assert all(torch.equal(x[k], y[k]) for k in ("boxes", "labels", "scores", "masks"))
    # Training: the sampled proposals, their regression targets and the losses are fp32 too.
    m.train()
    sampled = {}
    select = m.roi_heads.select_training_samples
    m.roi_heads.select_training_samples = lambda p, t: sampled.setdefault("out", select(p, t))
    with torch.autocast("cpu", dtype=dtype):
        losses = m(images, targets)
    proposals, _, _, regression_targets = sampled["out"]
    assert {t.dtype for t in [*proposals, *regression_targets]} == {torch.float32}
    assert {v.dtype for v in losses.values()} == {torch.float32}
    assert all(torch.isfinite(v) for v in losses.values())


def test_compiled_trunk_gives_the_eager_step():
    """--compile (model.compile_trunk: ResNet body + FPN and RPN head through torch.compile, dynamic shapes)
    on the CPU: one training step's losses and gradients are the eager model's within fp32 tolerance, for two
    image shapes in one batch. The graphs are captured (dynamo, dynamic shapes) and differentiated (AOT
    autograd) as train.py --compile does; the backend here is aot_eager, which runs them with eager kernels:
    inductor's C++ code generation took 132 s of this 2-core machine for the same step (losses and gradients
    within the same tolerance), beyond the suite's budget."""
    torch.manual_seed(0)
    m = tiny_detector().train()
    images, targets = two_images()
    runs = []
    for compiled in (False, True):
        if compiled:
            model.compile_trunk(m, backend="aot_eager")
        m.zero_grad()
        torch.manual_seed(1)  # the same anchor and RoI sampling
        losses = m(images, targets)
        sum(losses.values()).backward()
        grad = m.backbone.fpn.layer_blocks[0][0].weight.grad.clone()
        runs.append(({k: v.detach() for k, v in losses.items()}, grad))
    (eager, eager_grad), (comp, comp_grad) = runs
    assert eager.keys() == comp.keys()
    for k in eager:
        assert torch.allclose(eager[k], comp[k], rtol=1e-4, atol=1e-6), (k, eager[k], comp[k])
    assert float((comp_grad - eager_grad).norm() / eager_grad.norm()) < 1e-4
