"""ResNet-50 v1.5 as in the MLPerf Training v0.5 reference (TF official models), on torchvision's blocks.

    from model import resnet50, param_groups
    model = resnet50(num_classes=1000)            # 25,557,032 parameters, torchvision's resnet50 exactly
    model = resnet50(num_classes=10, width=8)     # the tiny preset: same topology, stage widths 8/16/32/64

Topology (spec section 1): stem conv 7x7/2 (64) -> BN -> ReLU -> max-pool 3x3/2; four stages of
post-activation bottleneck blocks [3, 4, 6, 3] with inner widths w, 2w, 4w, 8w (w = 64), expansion 4, the
stride-2 in the 3x3 conv of the first block of stages 2-4 ("v1.5"; torchvision's Bottleneck does the same);
a 1x1 conv + BN shortcut on the first block of every stage; global average pool -> fully connected. The
module tree and parameter names are torchvision's ResNet's, so `width=64` is torchvision's resnet50 with
another init.

Initialisation (spec section 1, closed division needs the reference's distributions): every conv kernel from
TF's variance_scaling_initializer(scale=1, fan_in, truncated_normal), i.e. N(0, (sqrt(1/fan_in)/0.8796)^2) cut
at +-2 std; BN gamma 1, beta 0, no zero-init of the last gamma; dense kernel Glorot uniform (TF default) and
zero bias (v0.5; `fc_init="normal"` gives the v0.6+ N(0, 0.01)). BN momentum 0.1 (= TF decay 0.9), eps 1e-5.

This module imports only torch and torchvision (bench.py runs it on a bare GPU machine).
"""

import math

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

BLOCKS = (3, 4, 6, 3)  # ResNet-50
BN_MOMENTUM = 0.1  # PyTorch convention: TF batch_norm decay 0.9 (resnet_model.py @ v0.5 _BATCH_NORM_DECAY)
BN_EPS = 1e-5  # resnet_model.py @ v0.5 _BATCH_NORM_EPSILON
# std of a unit normal truncated at +-2 std is 0.87962566; TF divides by it so the kept samples have the
# intended variance (variance_scaling_initializer, distribution="truncated_normal").
TRUNCATED_NORMAL_STD = 0.87962566103423978


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ResNet(nn.Module):
    """torchvision's ResNet layout with a configurable base width (64 for the real model)."""

    def __init__(self, num_classes: int = 1000, width: int = 64, blocks=BLOCKS, fc_init: str = "glorot"):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = batch_norm(width)
        self.relu = nn.ReLU(inplace=True)
        # PyTorch pads 1 on both sides; TF SAME pads (0, 1): same 56x56 output, windows shifted by a pixel.
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, blocks[0], stride=1)
        self.layer2 = self._make_layer(width * 2, blocks[1], stride=2)
        self.layer3 = self._make_layer(width * 4, blocks[2], stride=2)
        self.layer4 = self._make_layer(width * 8, blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * Bottleneck.expansion, num_classes)
        self.reset_parameters(fc_init)

    def _make_layer(self, planes: int, n: int, stride: int) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        # The reference projects on the first block of every stage, stage 1 (stride 1, 64 -> 256) included.
        downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, kernel_size=1, stride=stride, bias=False),
                                   batch_norm(out))
        # base_width=64 makes Bottleneck's inner width equal `planes` whatever the base width of the model.
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, norm_layer=batch_norm)]
        self.inplanes = out
        layers += [Bottleneck(out, planes, norm_layer=batch_norm) for _ in range(1, n)]
        return nn.Sequential(*layers)

    @torch.no_grad()
    def reset_parameters(self, fc_init: str = "glorot") -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                std = math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STD
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)  # no zero-init of the last gamma in any reference version
                nn.init.zeros_(m.bias)
        if fc_init == "glorot":  # v0.5: tf.layers.dense defaults
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)
        elif fc_init == "normal":  # v0.6+ (mlcommons/training 6cb3d426): N(0, 0.01), zero bias
            nn.init.normal_(self.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.fc.bias)
        else:
            raise ValueError(f"fc_init must be 'glorot' or 'normal', not {fc_init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [N, w, H/4, W/4]
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [N, 32w, H/32, W/32]
        return self.fc(torch.flatten(self.avgpool(x), 1))  # [N, num_classes] logits


def resnet50(num_classes: int = 1000, width: int = 64, fc_init: str = "glorot") -> ResNet:
    return ResNet(num_classes, width, BLOCKS, fc_init)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """SGD parameter groups: weight decay on conv kernels, the dense kernel and the dense bias; none on BN.

    The reference adds wd * sum(w^2) / 2 over every trainable variable whose name lacks "batch_normalization"
    (resnet_run_loop.py @ v0.5, exclude_batch_norm), whose gradient is SGD's weight_decay=wd on those tensors.
    """
    bn = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
          for p in m.parameters(recurse=False)}
    decay = [p for p in model.parameters() if id(p) not in bn]
    no_decay = [p for p in model.parameters() if id(p) in bn]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def forward_macs(image_size: int = 224, width: int = 64, num_classes: int = 1000) -> int:
    """Multiply-accumulates of conv and fc layers for one image (4.089 G at 224 px, spec section 1)."""
    macs = 0
    size = (image_size + 2 * 3 - 7) // 2 + 1  # stem conv
    macs += size * size * width * 3 * 49
    size = (size + 2 - 3) // 2 + 1  # max-pool
    inplanes = width
    for stage, n in enumerate(BLOCKS):
        planes = width * 2 ** stage
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            out_size = (size + 2 - 3) // stride + 1
            macs += size * size * inplanes * planes  # 1x1 reduce
            macs += out_size * out_size * planes * planes * 9  # 3x3 (stride here: v1.5)
            macs += out_size * out_size * planes * planes * 4  # 1x1 expand
            if b == 0:
                macs += out_size * out_size * inplanes * planes * 4  # projection shortcut
            inplanes, size = planes * 4, out_size
    return macs + inplanes * num_classes
