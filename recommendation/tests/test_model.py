"""NeuMF: sizes, initialisation, forward semantics (GMF first, user first), gradients."""

import math

import pytest
import torch

from config import ML20M_ITEMS, ML20M_USERS, PRESETS
from model import NeuMF, autocast_dtype, train_flops_per_sample


def test_reference_size_matches_the_v05_logs():
    cfg = PRESETS["reference"]
    with torch.device("meta"):
        model = NeuMF(ML20M_USERS, ML20M_ITEMS, cfg.mf_dim, cfg.mlp_layer_sizes)
    assert sum(p.numel() for p in model.parameters()) == 31_832_577  # NVIDIA v0.5 result_0.txt
    assert [(m.in_features, m.out_features) for m in model.mlp] == [(256, 256), (256, 128), (128, 64)]
    assert model.mlp_user_embed.embedding_dim == 128 and model.final.in_features == 128


def test_train_flops_per_sample():
    cfg = PRESETS["reference"]
    assert train_flops_per_sample(cfg.mf_dim, cfg.mlp_layer_sizes) == 3 * 213_312  # 0.213 MFLOP forward


def test_initialisation():
    torch.manual_seed(0)
    model = NeuMF(3000, 2000, 16, (64, 32, 16))
    for embed in (model.mf_user_embed, model.mf_item_embed, model.mlp_user_embed, model.mlp_item_embed):
        assert embed.weight.mean().abs() < 1e-3 and abs(embed.weight.std().item() - 0.01) < 5e-4
    for layer in model.mlp:  # Glorot uniform fills [-limit, limit] nearly to the edge
        limit = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= limit and layer.weight.abs().max() > 0.95 * limit
    limit = math.sqrt(3 / model.final.in_features)
    assert model.final.weight.abs().max() <= limit


def test_forward_is_gmf_then_mlp_user_first():
    torch.manual_seed(0)
    model = NeuMF(5, 7, 4, (6, 4, 3))
    user, item = torch.tensor([0, 4, 2]), torch.tensor([6, 1, 1])
    gmf = model.mf_user_embed.weight[user] * model.mf_item_embed.weight[item]
    x = torch.cat((model.mlp_user_embed.weight[user], model.mlp_item_embed.weight[item]), 1)
    for layer in model.mlp:
        x = torch.relu(x @ layer.weight.T + layer.bias)
    expected = torch.cat((gmf, x), 1) @ model.final.weight.T + model.final.bias
    torch.testing.assert_close(model(user, item), expected.squeeze(1))


@pytest.mark.parametrize("preset", ["tiny", "reference"])
def test_every_parameter_gets_a_finite_gradient(preset):
    cfg = PRESETS[preset]
    model = NeuMF(50, 40, cfg.mf_dim, cfg.mlp_layer_sizes)
    user, item = torch.randint(50, (64,)), torch.randint(40, (64,))
    logits = model(user, item)
    assert logits.shape == (64,)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.rand(64).round()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_sparse_embeddings_give_the_looked_up_rows():
    torch.manual_seed(0)
    dense, sparse = NeuMF(50, 40, 4, (8, 4)), NeuMF(50, 40, 4, (8, 4), sparse=True)
    sparse.load_state_dict(dense.state_dict())
    user, item = torch.tensor([3, 7, 3]), torch.tensor([1, 1, 2])
    for model in (dense, sparse):
        model(user, item).sum().backward()
    g = sparse.mf_user_embed.weight.grad
    assert g.is_sparse and g._indices()[0].tolist() == [3, 7, 3]  # one row per lookup, repeats kept
    for d, s in zip(dense.embeddings(), sparse.embeddings()):
        torch.testing.assert_close(s.weight.grad.to_dense(), d.weight.grad)
    assert not sparse.mlp[0].weight.grad.is_sparse


@pytest.mark.parametrize("capability, dtype", [
    ((6, 0), torch.float16),  # P100: no bf16 tensor cores (torch.cuda.is_bf16_supported() says True anyway)
    ((7, 0), torch.float16),  # V100
    ((7, 5), torch.float16),  # T4
    ((8, 0), torch.bfloat16),  # A100
    ((9, 0), torch.bfloat16),  # H100, H200
    ((10, 0), torch.bfloat16),  # B200
    (None, torch.bfloat16),  # CPU
])
def test_training_precision_follows_the_compute_capability(capability, dtype):
    assert autocast_dtype(capability) == dtype
