"""The Minigo residual policy/value network (MLPerf v0.5 dual_net.py, spec section 1.3), in PyTorch.

    net = DualNet(board_size=9)                   # k = 32 filters, 9 residual blocks, value FC 64
    logits, value = net(planes)                   # planes (B, 17, 9, 9) float -> (B, 82), (B,)

Value is from BLACK's point of view (+1 = black wins), in (-1, 1) by tanh. Sizes derive from N as in the
reference: k = 2^round(log2(N^2 / 3)), value FC 2k, N residual blocks; 191,386 parameters at N = 9.
BN momentum 0.003 is TF's 0.997 in PyTorch's convention; the heads' BNs have no scale/offset.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_PLANES = 17  # features.py: 16 history planes + the colour plane
BN_MOMENTUM = 0.003  # TF batch_normalization(momentum=0.997)
BN_EPS = 1e-5


def default_sizes(board_size: int) -> tuple[int, int, int]:
    """(filters k, value FC width, residual blocks) of dual_net.get_default_hyperparams."""
    k = 2 ** round(math.log2(board_size * board_size / 3))
    return k, 2 * k, board_size


class ResidualBlock(nn.Module):
    def __init__(self, k: int, bn_momentum: float):
        super().__init__()
        self.conv1 = nn.Conv2d(k, k, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(k, eps=BN_EPS, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(k, k, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(k, eps=BN_EPS, momentum=bn_momentum)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class DualNet(nn.Module):
    def __init__(self, board_size: int = 9, filters: int | None = None, fc_width: int | None = None,
                 blocks: int | None = None, bn_momentum: float = BN_MOMENTUM):
        super().__init__()
        k, fc, n_blocks = default_sizes(board_size)
        k, fc = filters or k, fc_width or fc
        n_blocks = n_blocks if blocks is None else blocks
        self.board_size = board_size
        points = board_size * board_size
        self.stem = nn.Sequential(nn.Conv2d(NUM_PLANES, k, 3, padding=1),
                                  nn.BatchNorm2d(k, eps=BN_EPS, momentum=bn_momentum), nn.ReLU())
        self.tower = nn.Sequential(*[ResidualBlock(k, bn_momentum) for _ in range(n_blocks)])
        self.policy_conv = nn.Conv2d(k, 2, 1)
        self.policy_bn = nn.BatchNorm2d(2, eps=BN_EPS, momentum=bn_momentum, affine=False)
        self.policy_fc = nn.Linear(2 * points, points + 1)
        self.value_conv = nn.Conv2d(k, 1, 1)
        self.value_bn = nn.BatchNorm2d(1, eps=BN_EPS, momentum=bn_momentum, affine=False)
        self.value_fc1 = nn.Linear(points, fc)
        self.value_fc2 = nn.Linear(fc, 1)
        for m in self.modules():  # TF defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.tower(self.stem(x))  # (B, k, N, N)
        p = F.relu(self.policy_bn(self.policy_conv(h))).flatten(1)  # (B, 2 N^2)
        logits = self.policy_fc(p)  # (B, N^2 + 1)
        v = F.relu(self.value_bn(self.value_conv(h))).flatten(1)  # (B, N^2)
        value = torch.tanh(self.value_fc2(F.relu(self.value_fc1(v)))).squeeze(1)  # (B,)
        return logits, value


def l2_parameters(model: nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the reference's L2 term covers: every trainable variable not named "bias" (conv and
    dense kernels and the trunk BN gamma/beta; spec 1.4, pitfall 6)."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            out += list(m.parameters(recurse=False))  # gamma and beta (none in the heads)
        elif isinstance(m, nn.Conv2d | nn.Linear):
            out.append(m.weight)
    return out


def from_state_dict(state: dict[str, torch.Tensor]) -> DualNet:
    """A DualNet with the sizes a saved state dict has (board size, filters, value FC, blocks), loaded."""
    points = state["policy_fc.weight"].shape[0] - 1
    board_size = math.isqrt(points)
    blocks = len({k.split(".")[1] for k in state if k.startswith("tower.")})
    net = DualNet(board_size, filters=state["stem.0.weight"].shape[0],
                  fc_width=state["value_fc1.weight"].shape[0], blocks=blocks)
    net.load_state_dict(state)
    return net
