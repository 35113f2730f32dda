"""Mask R-CNN R-50-FPN (MSRA "v1" ResNet body, frozen BN), built from torchvision.models.detection parts.

Spec section 1 (e2e_mask_rcnn_R_50_FPN_1x.yaml + defaults.py @ v0.5). What this file settles:
  - the ResNet body written out (60 lines) so that the stride-2 of res3/res4/res5 sits in the FIRST 1x1 conv
    of the first block (STRIDE_IN_1X1=True), its widths scale for the tiny preset, and every BN is a
    FrozenBatchNorm2d with no eps (affine scale/shift from R-50.pkl, never updated); stem + res2 are frozen
    (FREEZE_CONV_BODY_AT=2). Module names follow torchvision's ResNet (conv1, bn1, layer1..4, downsample).
  - FPN on C2..C5 with P6 = max-pool(P5) (torchvision's FeaturePyramidNetwork + LastLevelMaxPool: 1x1 lateral,
    nearest 2x top-down, 3x3 output, kaiming-uniform a=1 init, no ReLU), anchors 32..512 on P2..P6, ratios
    0.5/1/2; RPN head 3x3 conv + ReLU, 1x1 objectness and deltas, N(0, 0.01) init.
  - box head RoIAlign 7x7 (sampling 2, aligned=False, level mapper 224/4/1e-6: torchvision's defaults),
    2 x FC 1024 (kaiming-uniform a=1), class logits N(0, 0.01) and class-specific deltas N(0, 0.001), weights
    (10, 10, 5, 5); mask head RoIAlign 14x14 -> 4 x [3x3 conv 256 + ReLU] -> 2x2 transposed conv -> 1x1 conv
    to the classes, kaiming-normal (fan_out, relu).
  - input: uint8 RGB images as data.py gives them; `forward` flips them to BGR 0-255 and the transform
    subtracts the Caffe2 pixel mean with std 1, resizes (shorter side 800, longer <= 1333) and pads to 32.
  - proposals: 2000 pre-NMS per level in training, 1000 at test; 1000 post-NMS per image in training (the
    rules' "1000 x images per chip" for the reference's 2000 per 2-image batch), 1000 per image at test.
  - RPN targets ignore anchors that cross the image border (STRADDLE_THRESH=0); no proposal is dropped for
    its size (MIN_SIZE=0): `ReferenceRPN`.
  - the box-head loss: smooth-L1 with beta 1 (torchvision: 1/9): `ReferenceRoIHeads` runs torchvision's
    RoIHeads and recomputes only that loss.
  - mixed precision (`precision_policy`): the geometry stays fp32 under autocast (the heads hand on fp32
    outputs, the anchors are fp32; see the comment above Fp32AnchorGenerator).
  - inference: each image's masks pasted in one batched operation (`paste_masks`, the reference's Masker), and
    `to_detections`, the outputs on the host with each thresholded mask as its RLE run boundaries.
`load_c2_backbone` copies the Detectron blobs of R-50.pkl into the body (names as maskrcnn-benchmark's
c2_model_loading.py @ v0.5 maps them).
Still torchvision's behaviour, not yet the reference's (spec section 5): the mask targets come from
full-image bitmasks via RoIAlign (allowed by the rules), images are resized by interpolating tensors (the
reference resizes with PIL to integer sizes), and boxes are continuous coordinates (no Detectron "+1").
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, expand_boxes, expand_masks
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

PIXEL_MEAN_BGR = [102.9801, 115.9465, 122.7717]  # Caffe2 convention: BGR, 0-255, std 1
STAGE_BLOCKS = (3, 4, 6, 3)  # ResNet-50: res2..res5


def frozen_bn(channels: int) -> FrozenBatchNorm2d:
    return FrozenBatchNorm2d(channels, eps=0.0)  # Detectron's AffineChannel: scale and shift, no eps


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with the stride in the first 1x1 (MSRA ResNet, STRIDE_IN_1X1=True)."""

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        out_channels = 4 * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride, bias=False)
        self.bn1 = frozen_bn(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = frozen_bn(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = frozen_bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:  # projection shortcut on the first block of a stage
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), frozen_bn(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNetBody(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and res2..res5; stem_width 64 = ResNet-50, 8 = tiny /8."""

    def __init__(self, stem_width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = frozen_bn(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = stem_width
        for stage, blocks in enumerate(STAGE_BLOCKS):
            width = stem_width * 2 ** stage
            layer = []
            for i in range(blocks):
                layer.append(Bottleneck(in_channels, width, stride=2 if i == 0 and stage > 0 else 1))
                in_channels = 4 * width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.out_channels = [stem_width * 4 * 2 ** s for s in range(4)]  # C2..C5
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # MSRA fill; R-50.pkl overwrites these
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # FREEZE_CONV_BODY_AT=2: the stem and res2 get no gradients.
        for module in (self.conv1, self.layer1):
            for p in module.parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # used through IntermediateLayerGetter
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ReferenceRPN(RegionProposalNetwork):
    """torchvision's RPN with two settings of the reference: STRADDLE_THRESH=0 and MIN_SIZE=0.

    Anchors that cross the border of the (resized, unpadded) image are ignored when labelling RPN targets
    (label -1, after matching, so they are not positives even as a ground truth's best match), as
    maskrcnn-benchmark's RPN loss does; and no proposal is dropped for being small (torchvision: < 1e-3).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_size = 0.0
        self._image_sizes: list[tuple[int, int]] = []  # (h, w) of the images of the current forward

    def forward(self, images, features, targets=None):
        self._image_sizes = list(images.image_sizes)
        return super().forward(images, features, targets)

    def assign_targets_to_anchors(self, anchors, targets):
        labels, matched_gt_boxes = super().assign_targets_to_anchors(anchors, targets)
        for labels_per_image, a, (h, w) in zip(labels, anchors, self._image_sizes):
            inside = (a[:, 0] >= 0) & (a[:, 1] >= 0) & (a[:, 2] < w) & (a[:, 3] < h)
            labels_per_image[~inside] = -1.0
        return labels, matched_gt_boxes


def precision_policy(capability: tuple[int, int] | None) -> torch.dtype:
    """The autocast dtype of --amp from the CUDA compute capability (None: the CPU): bf16 from Ampere (8.0)
    on, fp16 with loss scaling before it. Never torch.cuda.is_bf16_supported(): it says True on a P100 (6.0),
    which only emulates bf16."""
    return torch.bfloat16 if capability is None or capability >= (8, 0) else torch.float16


# Mixed precision keeps the geometry in fp32. Under autocast the convolutions and linear layers run in
# bf16/fp16 and so would everything computed from their outputs: torchvision's BoxCoder decodes in the dtype
# of the deltas and the AnchorGenerator builds anchors in the dtype of the features, so anchors, proposals and
# detections would be bf16, whose spacing is 4 px between 512 and 1024 (8 px above). The heads below hand
# their outputs on in fp32 (a cast of [N, A, H, W] logits/deltas and [R, K]/[R, 4K] predictions, small next to
# the convolutions), the anchors are built in fp32, and from there every box op (decode, clip, IoU, NMS,
# encode, RoIAlign boxes, the losses) is elementwise or fp32 under autocast. Without autocast the casts are
# no-ops.
class Fp32AnchorGenerator(AnchorGenerator):
    """torchvision's anchors, in fp32 whatever the dtype of the feature maps."""

    def forward(self, image_list, feature_maps):
        # Only the maps' sizes, dtype and device are read: hand it empty fp32 stand-ins [0, H_l, W_l].
        return super().forward(image_list, [f.new_empty((0, *f.shape[-2:]), dtype=torch.float32)
                                            for f in feature_maps])


class Fp32OutRPNHead(RPNHead):
    """RPN head: 3x3 conv + ReLU, 1x1 objectness [N, A, H, W] and deltas [N, 4A, H, W] per level, in fp32."""

    def forward(self, x):
        logits, deltas = super().forward(x)
        return [t.float() for t in logits], [t.float() for t in deltas]


class Fp32OutBoxPredictor(FastRCNNPredictor):
    """Class logits [R, K] and class-specific deltas [R, 4K] of the box head, in fp32."""

    def forward(self, x):
        scores, deltas = super().forward(x)
        return scores.float(), deltas.float()


class Fp32OutMaskPredictor(MaskRCNNPredictor):
    """Mask logits [R, K, 28, 28], in fp32 (the 0.5 threshold and the mask loss see full precision)."""

    def forward(self, x):
        return super().forward(x).float()


def fastrcnn_loss_reference(class_logits: torch.Tensor, box_regression: torch.Tensor,
                            labels: list[torch.Tensor], regression_targets: list[torch.Tensor]):
    """Box-head losses: softmax CE over all sampled RoIs; smooth-L1 with beta 1 (the reference's; torchvision
    uses 1/9) on the ground-truth class's deltas of the foreground RoIs, summed, / the number of sampled RoIs.

    class_logits [R, K], box_regression [R, 4K] (R = sampled RoIs of the batch); labels, regression_targets:
    per image [R_i] and [R_i, 4].
    """
    labels = torch.cat(labels)
    regression_targets = torch.cat(regression_targets)
    loss_classifier = F.cross_entropy(class_logits, labels)
    fg = torch.where(labels > 0)[0]
    box_regression = box_regression.reshape(len(labels), -1, 4)
    loss_box_reg = F.smooth_l1_loss(box_regression[fg, labels[fg]], regression_targets[fg], beta=1.0,
                                    reduction="sum") / labels.numel()
    return loss_classifier, loss_box_reg


class ReferenceRoIHeads(RoIHeads):
    """torchvision's RoIHeads (sampling, box and mask branches, inference) run as they are, with the
    reference's box-regression loss: smooth-L1 with beta 1 where torchvision's fastrcnn_loss uses 1/9. The
    sampled RoIs' labels and regression targets (select_training_samples) and the box predictor's outputs (a
    forward hook) are kept during forward, and loss_box_reg is computed again from them; torchvision's
    classifier loss is the reference's and stays."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._seen: dict = {}
        self.box_predictor.register_forward_hook(self._keep_box_outputs)

    def _keep_box_outputs(self, module, args, output):
        if self.training:
            self._seen["box_outputs"] = output  # (class_logits [R, K], box_regression [R, 4K])

    def select_training_samples(self, proposals, targets):
        sampled = super().select_training_samples(proposals, targets)
        self._seen["sampled"] = sampled  # (proposals, matched_idxs, labels, regression_targets), per image
        return sampled

    def forward(self, features, proposals, image_shapes, targets=None):
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if self.training:
            _, _, labels, regression_targets = self._seen.pop("sampled")
            class_logits, box_regression = self._seen.pop("box_outputs")
            _, losses["loss_box_reg"] = fastrcnn_loss_reference(class_logits, box_regression, labels,
                                                                 regression_targets)
        return result, losses


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """torchvision's paste_masks_in_image (the reference's Masker, before its threshold) in one operation.

    masks [N, 1, M, M] probabilities, boxes [N, 4] x1, y1, x2, y2 in the image's pixels -> [N, 1, H, W]. As
    the reference: each mask gets a 1-pixel zero border (M + 2), its box grows by (M + 2) / M and is cast to
    integers (truncated), the mask is resized bilinearly (align_corners=False) to the box's int(x2 - x1 + 1) x
    int(y2 - y1 + 1) pixels and written into a zero image at (x1, y1), clipped by the image. torchvision does
    that one mask at a time, each with a few host syncs (int(box)); bilinear resizing is separable, so here
    every pixel of every mask is one product W_y [N, H, M+2] @ mask [N, M+2, M+2] @ W_x^T [N, M+2, W] of
    interpolation weights that are zero outside the box.
    """
    masks, scale = expand_masks(masks.float(), padding=1)
    boxes = expand_boxes(boxes, scale).to(torch.int64)
    height, width = image_size
    size = masks.shape[-1]
    weights_y = _paste_weights(boxes[:, 1], boxes[:, 3], height, size)
    weights_x = _paste_weights(boxes[:, 0], boxes[:, 2], width, size)
    with torch.autocast(masks.device.type, enabled=False):  # autocast would run these products in bf16/fp16
        return (weights_y @ masks[:, 0] @ weights_x.transpose(1, 2))[:, None]


def _paste_weights(first: torch.Tensor, last: torch.Tensor, length: int, size: int) -> torch.Tensor:
    """[N, length, size]: the weights with which image row (or column) j takes the rows of a mask of `size`
    rows resized to last - first + 1 rows (at least 1) and written from row `first` on: F.interpolate's
    bilinear source index (j - first + 0.5) * size / rows - 0.5, clamped at 0, its floor and the next row (the
    last one repeats), weights 1 - frac and frac; zero where j is outside the pasted rows."""
    rows = (last - first + 1).clamp(min=1)
    # The kernel's fp32 scale (float) size / rows (a true division: `size / tensor` would multiply by a
    # rounded reciprocal) and source index scale * (j + 0.5) - 0.5 rounded once (as a fused multiply-add): the
    # products in fp64 are exact. Its weights come out bit for bit (every output size 1..1400 checked on the
    # CPU).
    scale = torch.full_like(rows, size, dtype=torch.float32) / rows
    local = torch.arange(length, device=first.device)[None, :] - first[:, None]  # [N, length]
    inside = ((local >= 0) & (local < rows[:, None])).float()
    source = (scale[:, None].double() * (local + 0.5) - 0.5).float().clamp(min=0)
    lower = source.long().clamp(max=size - 1)
    frac = source - lower
    upper = (lower + 1).clamp(max=size - 1)
    weights = torch.zeros(len(first), length, size, device=first.device)
    weights.scatter_add_(2, lower[..., None], ((1 - frac) * inside)[..., None])
    return weights.scatter_add_(2, upper[..., None], (frac * inside)[..., None])


MASK_THRESHOLD = 0.5  # the reference's Masker: a pixel belongs to the mask when its probability is > 0.5


def mask_changes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Thresholded masks bool [N, H, W] -> (positions int32 [C], counts int64 [N]): for each mask in turn the
    flat indices, in COCO's column-major pixel order, of the pixels that differ from the one before (the first
    pixel counts as a change when it is set). These are the boundaries of COCO's RLE runs (metrics.rle_encode
    turns them into counts), found on the device for all masks of an image at once."""
    n, height, width = masks.shape
    flat = masks.transpose(1, 2).reshape(n, width * height)  # column-major, as COCO's RLE
    change = torch.cat([flat[:, :1], flat[:, 1:] != flat[:, :-1]], dim=1)
    mask_index, position = change.nonzero(as_tuple=True)  # row-major: sorted by mask, then by position
    return position.int(), torch.bincount(mask_index, minlength=len(masks))


def to_detections(image_ids: list[int], outputs: list[dict]) -> list[dict]:
    """The model's eval outputs of a batch (boxes [N, 4], scores [N], labels [N] and masks [N, 1, H, W]
    probabilities, on the device) -> per image a dict of host arrays: image_id, boxes float32 [N, 4], scores
    float32 [N], labels int64 [N], and for the masks height, width, mask_changes int32 [C] (mask_changes of
    every mask in turn, thresholded > 0.5) and mask_change_counts int64 [N]. One nonzero per image (a sync)
    and one copy to the host per field for the whole batch. Outputs without masks give detections without."""
    fields: dict[str, list[torch.Tensor]] = {"boxes": [], "scores": [], "labels": [], "mask_changes": [],
                                             "mask_change_counts": []}
    sizes = []  # per image: detections, mask changes, mask height and width
    for out in outputs:
        fields["boxes"].append(out["boxes"].float())
        fields["scores"].append(out["scores"].float())
        fields["labels"].append(out["labels"])
        size = (len(out["boxes"]), 0, None, None)
        if "masks" in out:
            masks = out["masks"][:, 0]
            changes, counts = mask_changes(masks > MASK_THRESHOLD)  # the reference's Masker: > 0.5
            fields["mask_changes"].append(changes)
            fields["mask_change_counts"].append(counts)
            size = (len(out["boxes"]), len(changes), masks.shape[-2], masks.shape[-1])
        sizes.append(size)
    host = {k: torch.cat(v).cpu().numpy() for k, v in fields.items() if v}
    detections, n0, c0 = [], 0, 0
    for image_id, (n, c, height, width) in zip(image_ids, sizes):
        det = {"image_id": int(image_id)}
        for k in ("boxes", "scores", "labels"):
            det[k] = host[k][n0:n0 + n]
        if height is not None:
            det.update(height=int(height), width=int(width), mask_changes=host["mask_changes"][c0:c0 + c],
                       mask_change_counts=host["mask_change_counts"][n0:n0 + n])
        detections.append(det)
        n0, c0 = n0 + n, c0 + c
    return detections


class BatchedPasteTransform(GeneralizedRCNNTransform):
    """torchvision's transform (normalise, resize, pad to 32; boxes back to the original image) whose
    postprocess pastes each image's masks with paste_masks, in one operation, instead of one mask at a
    time."""

    def postprocess(self, result, image_shapes, original_image_sizes):
        if self.training:
            return result
        masks = [r.pop("masks", None) for r in result]
        result = super().postprocess(result, image_shapes, original_image_sizes)
        for r, m, size in zip(result, masks, original_image_sizes):
            if m is not None:
                r["masks"] = paste_masks(m, r["boxes"], size)  # [N, 1, H, W] probabilities
        return result


class MaskRCNNR50FPN(MaskRCNN):
    """torchvision's MaskRCNN fed uint8 RGB images: they become BGR 0-255 floats before the transform."""

    def forward(self, images, targets=None):
        images = [img.flip(0).float() for img in images]  # RGB -> BGR, 0-255
        return super().forward(images, targets)


def build_model(num_classes: int = 81, stem_width: int = 64, fpn_channels: int = 256,
                anchor_sizes=(32, 64, 128, 256, 512), box_mlp: int = 1024, mask_channels: int = 256,
                min_size: int = 800, max_size: int = 1333, rpn_batch_size_per_image: int = 256,
                rpn_pre_nms_top_n_train: int = 2000, rpn_post_nms_top_n_train: int = 1000,
                rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                box_batch_size_per_image: int = 512, box_detections_per_img: int = 100) -> MaskRCNNR50FPN:
    """Mask R-CNN R-50-FPN with the reference's defaults (spec section 1); num_classes counts background."""
    body = ResNetBody(stem_width)
    backbone = BackboneWithFPN(body, return_layers={f"layer{k}": str(k - 1) for k in range(1, 5)},
                               in_channels_list=body.out_channels, out_channels=fpn_channels,
                               extra_blocks=LastLevelMaxPool())
    anchors = Fp32AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    box_head = TwoMLPHead(fpn_channels * 7 * 7, box_mlp)
    for fc in (box_head.fc6, box_head.fc7):
        nn.init.kaiming_uniform_(fc.weight, a=1)
        nn.init.zeros_(fc.bias)
    box_predictor = Fp32OutBoxPredictor(box_mlp, num_classes)
    nn.init.normal_(box_predictor.cls_score.weight, std=0.01)
    nn.init.normal_(box_predictor.bbox_pred.weight, std=0.001)
    nn.init.zeros_(box_predictor.cls_score.bias)
    nn.init.zeros_(box_predictor.bbox_pred.bias)
    mask_head = MaskRCNNHeads(fpn_channels, [mask_channels] * 4, dilation=1)
    mask_predictor = Fp32OutMaskPredictor(mask_channels, mask_channels, num_classes)
    model = MaskRCNNR50FPN(
        backbone, num_classes=None, min_size=min_size, max_size=max_size,
        image_mean=PIXEL_MEAN_BGR, image_std=[1.0, 1.0, 1.0],
        rpn_anchor_generator=anchors, rpn_head=Fp32OutRPNHead(fpn_channels, 3),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=rpn_batch_size_per_image,
        box_head=box_head, box_predictor=box_predictor, box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img, mask_head=mask_head, mask_predictor=mask_predictor)
    rpn = model.rpn  # rebuilt as ReferenceRPN with the same parts and settings
    model.rpn = ReferenceRPN(rpn.anchor_generator, rpn.head, 0.7, 0.3, rpn_batch_size_per_image, 0.5,
                             rpn._pre_nms_top_n, rpn._post_nms_top_n, rpn.nms_thresh, rpn.score_thresh)
    heads = model.roi_heads  # rebuilt as ReferenceRoIHeads with the same parts and settings
    model.roi_heads = ReferenceRoIHeads(
        heads.box_roi_pool, heads.box_head, heads.box_predictor, 0.5, 0.5, box_batch_size_per_image, 0.25,
        None, heads.score_thresh, heads.nms_thresh, heads.detections_per_img,
        mask_roi_pool=heads.mask_roi_pool, mask_head=heads.mask_head, mask_predictor=heads.mask_predictor)
    t = model.transform  # rebuilt as BatchedPasteTransform with the same settings
    model.transform = BatchedPasteTransform(t.min_size, t.max_size, t.image_mean, t.image_std,
                                            t.size_divisible)
    return model


def compile_trunk(model: MaskRCNNR50FPN, backend: str = "inductor") -> None:
    """torch.compile (in place: the state_dict's names stay) the convolutional trunk, the ResNet body + FPN
    and the RPN head (~80 % of the forward FLOPs, spec section 1), with dynamic shapes: the padded image size
    changes from batch to batch. The rest (anchors, proposals, NMS, sampling, RoIAlign, the small heads) is
    data-dependent Python around torchvision ops and stays eager."""
    model.backbone.compile(dynamic=True, backend=backend)
    model.rpn.head.compile(dynamic=True, backend=backend)


# Blobs of R-50.pkl that the model does not use (Detectron did not either): the ImageNet classifier, and a
# bias for every convolution ("<conv>_b", beside "<conv>_w"). Detectron's tools/pickle_caffe_blobs.py, which
# converted MSRA's Caffe ResNet-50 into R-50.pkl, gives every Caffe convolution without a bias a zero one
# (add_missing_biases; conv1 had its own), and Detectron's and maskrcnn-benchmark's ResNets build their convs
# without biases. tests/fixtures/R-50.pkl.blobs lists the real file's blobs and says where the list is from.
UNUSED_C2_BLOBS = ("fc1000_w", "fc1000_b")


def param_groups(model: nn.Module, cfg) -> list[dict]:
    """The reference's solver/build.py: every trainable parameter whose name holds "bias" gets
    base_lr x bias_lr_factor and weight_decay_bias; the others base_lr and weight_decay. "base_lr" stays in
    each group so the schedule can scale it (train.py's set_lr). cfg: a config.Config."""
    weights, biases = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (biases if "bias" in name else weights).append(p)
    return [{"params": weights, "base_lr": cfg.base_lr, "weight_decay": cfg.weight_decay},
            {"params": biases, "base_lr": cfg.base_lr * cfg.bias_lr_factor,
             "weight_decay": cfg.weight_decay_bias}]


def c2_blob_name(name: str) -> str:
    """A ResNetBody parameter/buffer name -> its Detectron blob (c2_model_loading.py @ v0.5, inverted)."""
    parts = name.split(".")
    suffix = {"weight": "s", "bias": "b"}
    if parts[0] == "conv1":
        return "conv1_w"
    if parts[0] == "bn1":
        return f"res_conv1_bn_{suffix[parts[1]]}"
    stage, block = int(parts[0][len("layer"):]) + 1, parts[1]  # layer1 = res2
    prefix = f"res{stage}_{block}_"
    if parts[2] == "downsample":
        return prefix + ("branch1_w" if parts[3] == "0" else f"branch1_bn_{suffix[parts[4]]}")
    branch = "abc"[int(parts[2][-1]) - 1]  # conv1/bn1 -> branch2a, ...
    if parts[2].startswith("conv"):
        return f"{prefix}branch2{branch}_w"
    return f"{prefix}branch2{branch}_bn_{suffix[parts[3]]}"


def load_c2_backbone(body: ResNetBody, blobs: dict) -> None:
    """Copy Detectron blobs (R-50.pkl's dict, or {"blobs": dict}) into the body; BN gets mean 0 / var 1.

    Every conv weight and BN scale/shift must have its blob with the right shape, and every other blob must be
    one that R-50.pkl holds and the reference does not use (UNUSED_C2_BLOBS, and each conv's bias, which must
    then have the conv's output width): otherwise ValueError naming the blob.
    """
    blobs = blobs.get("blobs", blobs)
    used = set()
    with torch.no_grad():
        for name, tensor in list(body.named_parameters()) + list(body.named_buffers()):
            if name.endswith("running_mean"):
                tensor.zero_()
                continue
            if name.endswith("running_var"):
                tensor.fill_(1.0)
                continue
            blob_name = c2_blob_name(name)
            if blob_name not in blobs:
                raise ValueError(f"backbone weights: blob {blob_name} (for {name}) is missing")
            value = torch.as_tensor(blobs[blob_name], dtype=torch.float32)
            if value.shape != tensor.shape:
                raise ValueError(f"backbone weights: blob {blob_name} has shape {tuple(value.shape)}, "
                                 f"{name} needs {tuple(tensor.shape)}")
            tensor.copy_(value)
            used.add(blob_name)
            bias = blob_name.removesuffix("_w") + "_b"
            if blob_name.endswith("_w") and bias in blobs:  # the conv's unused (zero) bias [C_out]
                shape = tuple(np.shape(blobs[bias]))
                if shape != (tensor.shape[0],):
                    raise ValueError(f"backbone weights: blob {bias} has shape {shape}, the bias of "
                                     f"{name.removesuffix('.weight')} would be ({tensor.shape[0]},)")
                used.add(bias)
    unused = sorted(k for k in blobs if k not in used and k not in UNUSED_C2_BLOBS)
    if unused:
        raise ValueError(f"backbone weights: blobs not used by the model: {', '.join(unused[:10])}")
