"""NeuMF (He et al., "Neural Collaborative Filtering", WWW'17) as MLPerf Training v0.5 ran it.

GMF branch (elementwise product of user and item embeddings) and MLP branch (concatenated user and item
embeddings through Linear+ReLU layers), concatenated (GMF first) into one Linear to a logit.
Initialisation as neumf.py @ c097c799: embeddings N(0, 0.01), MLP weights Glorot-uniform, final weight
LeCun-uniform, biases PyTorch's default. No dropout, no regularisation. The sigmoid is applied by the caller
(BCEWithLogitsLoss in training, torch.sigmoid in evaluation).

    model = NeuMF(138_493, 26_744, mf_dim=64, mlp_layer_sizes=(256, 256, 128, 64))  # 31,832,577 parameters

sparse=True gives the four embeddings sparse gradients (the looked-up rows only, duplicates not summed):
what lazy Adam and the row all-gather of train.py need instead of a dense 127 MB gradient per step.
Also here: the training precision policy (autocast_dtype), a pure function of the compute capability.
"""

import math

import torch
from torch import nn


class NeuMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, mf_dim: int, mlp_layer_sizes: tuple[int, ...],
                 sparse: bool = False):
        super().__init__()
        if mlp_layer_sizes[0] % 2:
            raise ValueError(f"mlp_layer_sizes[0] must be even (user + item halves): {mlp_layer_sizes[0]}")
        self.mf_user_embed = nn.Embedding(n_users, mf_dim, sparse=sparse)
        self.mf_item_embed = nn.Embedding(n_items, mf_dim, sparse=sparse)
        self.mlp_user_embed = nn.Embedding(n_users, mlp_layer_sizes[0] // 2, sparse=sparse)
        self.mlp_item_embed = nn.Embedding(n_items, mlp_layer_sizes[0] // 2, sparse=sparse)
        self.mlp = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in zip(mlp_layer_sizes[:-1], mlp_layer_sizes[1:]))
        self.final = nn.Linear(mlp_layer_sizes[-1] + mf_dim, 1)

        for embed in self.embeddings():
            nn.init.normal_(embed.weight, 0.0, 0.01)
        for layer in self.mlp:  # Glorot (Xavier) uniform: limit sqrt(6 / (fan_in + fan_out))
            nn.init.xavier_uniform_(layer.weight)
        limit = math.sqrt(3.0 / self.final.in_features)  # LeCun uniform: limit sqrt(3 / fan_in)
        nn.init.uniform_(self.final.weight, -limit, limit)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """user, item: [B] integer ids -> logits [B]."""
        gmf = self.mf_user_embed(user) * self.mf_item_embed(item)  # [B, mf_dim]
        mlp = torch.cat((self.mlp_user_embed(user), self.mlp_item_embed(item)), dim=1)  # [B, layers[0]]
        for layer in self.mlp:
            mlp = torch.relu(layer(mlp))  # [B, layers[-1]] after the last
        return self.final(torch.cat((gmf, mlp), dim=1)).squeeze(1)  # [B]

    def embeddings(self) -> list[nn.Embedding]:
        return [self.mf_user_embed, self.mf_item_embed, self.mlp_user_embed, self.mlp_item_embed]


def autocast_dtype(capability: tuple[int, int] | None) -> torch.dtype:
    """The half precision of --amp training: bf16 on CPU (capability None) and from Ampere (8.0) on; fp16,
    with a loss scaler, on Pascal, Volta and Turing, where bf16 is only emulated (and where
    torch.cuda.is_bf16_supported() still says True, so it is not asked)."""
    return torch.bfloat16 if capability is None or tuple(capability) >= (8, 0) else torch.float16


def train_flops_per_sample(mf_dim: int, mlp_layer_sizes: tuple[int, ...]) -> float:
    """Training FLOPs of one (user, item, label) sample: 3x the forward's multiply-adds x 2 (spec section 1).

    Embedding lookups are memory traffic, not FLOPs. Reference size: 0.213 MFLOP forward, 0.64 MFLOP training.
    """
    linear = sum(a * b for a, b in zip(mlp_layer_sizes[:-1], mlp_layer_sizes[1:]))
    linear += mlp_layer_sizes[-1] + mf_dim  # final layer
    return 3.0 * (2.0 * linear + mf_dim)  # + mf_dim: the GMF elementwise product
