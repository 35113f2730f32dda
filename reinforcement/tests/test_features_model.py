"""Input planes, symmetries, the network's shapes and parameter count, and the search's network wrapper."""

import numpy as np
import pytest
import torch

import features
import model
from go import WHITE, Position
from selfplay import NetworkEvaluator


def test_planes_from_the_movers_view_with_history():
    p = Position(5).play_move(0).play_move(24).play_move(12)  # B a5, W e1, B c3; white to move
    x = features.extract_features(p)
    assert x.shape == (17, 5, 5) and x.dtype == np.uint8
    assert p.to_play == WHITE
    assert x[0].sum() == 1 and x[0, 4, 4] == 1  # plane 0: the mover's (white's) stones now
    assert x[1].sum() == 2 and x[1, 0, 0] == 1 and x[1, 2, 2] == 1  # plane 1: black's stones now
    assert x[3].sum() == 1 and x[3, 2, 2] == 0  # t-1: black had only a5
    assert x[4].sum() == 0 and x[5].sum() == 1  # t-2: white had nothing yet, black a5
    assert x[6:16].sum() == 0  # t-3 is the empty board, repeated as the oldest for t-4..t-7
    assert x[16].sum() == 0  # white to move
    q = p.play_move(p.pass_move)
    y = features.extract_features(q)
    assert y[16].sum() == 25  # black to move
    assert (y[0] == y[2]).all()  # a pass is a history step with no change


def test_symmetries_invert_and_agree_between_planes_and_policy():
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 2, (17, 5, 5)).astype(np.uint8)
    pi = rng.random(26).astype(np.float32)
    images = set()
    for s in range(8):
        inv = features.invert_symmetry(s)
        turned = features.apply_symmetry_planes(s, planes)
        assert (features.apply_symmetry_planes(inv, turned) == planes).all()
        turned_pi = features.apply_symmetry_policy(s, pi, 5)
        assert np.allclose(features.apply_symmetry_policy(inv, turned_pi, 5), pi)
        # A stone at point m of the planes lands where the policy entry m lands.
        one = np.zeros((1, 5, 5), dtype=np.uint8)
        one[0, 0, 1] = 1
        hot = np.zeros(26, dtype=np.float32)
        hot[1] = 1
        moved = features.apply_symmetry_policy(s, hot, 5)
        assert moved[25] == 0 and features.apply_symmetry_planes(s, one).reshape(25)[np.argmax(moved)] == 1
        images.add(features.apply_symmetry_planes(s, planes).tobytes())
    assert len(images) == 8


def test_reference_network_shape_and_parameter_count():
    net = model.DualNet(board_size=9)
    assert sum(p.numel() for p in net.parameters()) == 191_386  # spec 1.3
    assert model.default_sizes(9) == (32, 64, 9)
    assert net.policy_bn.weight is None and net.value_bn.weight is None  # heads' BN: no scale/offset
    assert net.stem[1].momentum == pytest.approx(0.003)
    logits, value = net(torch.zeros(3, 17, 9, 9))
    assert logits.shape == (3, 82) and value.shape == (3,)


def test_every_parameter_gets_a_gradient_and_l2_set():
    torch.manual_seed(0)
    net = model.DualNet(board_size=5, filters=8, fc_width=16, blocks=2)
    logits, value = net(torch.rand(4, 17, 5, 5))
    (logits.logsumexp(1).sum() + value.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    l2 = {id(p) for p in model.l2_parameters(net)}
    names = {n for n, p in net.named_parameters() if id(p) in l2}
    assert "stem.0.weight" in names and "stem.1.weight" in names and "stem.1.bias" in names  # BN beta too
    assert "stem.0.bias" not in names and "value_fc2.bias" not in names  # but no conv/dense bias
    assert (value.abs() < 1).all()


def test_evaluator_inverts_the_symmetry():
    """A net whose policy points at the first black stone it sees: the evaluator must map it back."""

    class PointAtBlack(torch.nn.Module):
        def forward(self, x):
            black = torch.where(x[:, 16:17] > 0, x[:, 0:1], x[:, 1:2]).flatten(1)  # (B, 25)
            logits = torch.cat([black * 20, torch.zeros(len(x), 1)], 1)
            return logits, torch.zeros(len(x))

    pos = Position(5).play_move(7)  # B at (1,2); white to move
    ev = NetworkEvaluator(PointAtBlack(), seed=0)
    for _ in range(10):
        probs, values = ev.run_many([pos, pos, pos])
        assert (probs.argmax(1) == 7).all() and probs.shape == (3, 26)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and values.shape == (3,)


def test_evaluator_runs_the_real_model_in_eval_mode():
    net = model.DualNet(board_size=5, filters=8, fc_width=16, blocks=1)
    net.train()
    probs, values = NetworkEvaluator(net).run_many([Position(5)])
    assert not net.training and probs.shape == (1, 26) and -1 < values[0] < 1
