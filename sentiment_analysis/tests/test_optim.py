"""The embedding's lazy Adam against a port of 2018 Paddle's adam op (SelectedRows path), its
GradScaler path, the rows a padded batch looks up, and which parameters get which Adam."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from config import PRESETS
from model import build_model
from optim import LazyAdam, build_optimizers, rows_in_batch

LR, B1, B2, EPS = 0.05, 0.9, 0.999, 1e-8


def paddle_adam_selected_rows(param, m1, m2, pows, rows, values, lr=LR, b1=B1, b2=B2, eps=EPS):
    """A port, in plain Python floats, of one step of PaddlePaddle's adam op on a SelectedRows
    gradient as of April 2018 (paddle/fluid/operators/adam_op.h: MergeAdd, then
    SparseAdamFunctor over the merged rows) followed by AdamOptimizer._finish_update.
    param, m1, m2: lists of rows (lists of floats), changed in place; pows: [b1^t, b2^t], changed
    in place; rows: one word id per token of the batch, repeats included; values: one gradient
    row per token."""
    # MergeAdd: the distinct rows (a std::set, so sorted), each the sum of its tokens' rows.
    merged_rows = sorted(set(rows))
    merged = {r: [0.0] * len(param[0]) for r in merged_rows}
    for r, value in zip(rows, values):
        merged[r] = [a + b for a, b in zip(merged[r], value)]
    b1_pow, b2_pow = pows
    lr_t = lr * (math.sqrt(1 - b2_pow) / (1 - b1_pow))
    for r in merged_rows:
        for j, g in enumerate(merged[r]):
            mom1 = b1 * m1[r][j] + (1 - b1) * g
            mom2 = b2 * m2[r][j] + (1 - b2) * g * g
            param[r][j] = param[r][j] - lr_t * (mom1 / (math.sqrt(mom2) + eps))
            m1[r][j], m2[r][j] = mom1, mom2
    pows[0], pows[1] = b1_pow * b1, b2_pow * b2          # scale ops appended by _finish_update


class TinyEmbeddingNet(torch.nn.Module):
    """Embedding -> tanh(linear) -> max over time -> scalar, with Seq-CNN's padding rule (pad
    positions zeroed, so they get no gradient) and, like the real model's max over time, many
    tokens whose gradient is exactly zero. `silent` ids are multiplied by 0: present in the batch
    with a zero gradient."""

    def __init__(self, vocab=10, dim=3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embedding = torch.nn.Embedding(vocab, dim).double()
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab, dim, generator=g, dtype=torch.float64))
        self.register_buffer("proj", torch.randn(dim, 4, generator=g, dtype=torch.float64))
        self.register_buffer("out", torch.randn(4, generator=g, dtype=torch.float64))

    def forward(self, ids, lengths, silent=()):
        looked = self.embedding(ids)                                         # [b, L, E]
        keep = torch.arange(ids.shape[1])[None, :] < lengths[:, None]        # [b, L]
        for s in silent:
            keep = keep & (ids != s)
        h = torch.tanh((looked * keep[..., None]) @ self.proj)               # [b, L, 4]
        return (h.amax(dim=1) @ self.out).sum(), looked


# Each step: padded ids (pad id 0), lengths, ids silenced. Step 1 pads with id 0 while no real
# token is 0; step 2 has 0 as a real word and repeats 5 three times; step 3 silences word 1, which
# moved in step 1 (so Paddle still moves it by its momentum); rows 7-9 first appear late.
STEPS = [
    ([[1, 2, 2, 3], [4, 1, 0, 0]], [4, 2], ()),
    ([[5, 6, 5, 5], [0, 7, 0, 0]], [4, 2], ()),
    ([[1, 8, 1, 2], [2, 9, 3, 0]], [4, 3], (1,)),
    ([[3, 3, 3, 3], [6, 0, 0, 0]], [4, 1], ()),
]


def _paddle_run(net):
    """The port over STEPS; its SelectedRows come from the looked-up rows' gradients of the
    same net (one row per real token, pads excluded as Paddle's LoD batches have none)."""
    param = net.embedding.weight.detach().tolist()
    m1 = [[0.0] * len(param[0]) for _ in param]
    m2 = [[0.0] * len(param[0]) for _ in param]
    pows, history = [B1, B2], []
    for ids, lengths, silent in STEPS:
        with torch.no_grad():
            net.embedding.weight.copy_(torch.tensor(param, dtype=torch.float64))
        ids_t, lengths_t = torch.tensor(ids), torch.tensor(lengths)
        loss, looked = net(ids_t, lengths_t, silent)
        looked.retain_grad()
        loss.backward()
        rows = [ids[b][t] for b in range(len(ids)) for t in range(lengths[b])]
        values = [looked.grad[b, t].tolist() for b in range(len(ids)) for t in range(lengths[b])]
        paddle_adam_selected_rows(param, m1, m2, pows, rows, values)
        history.append([torch.tensor(x, dtype=torch.float64) for x in (param, m1, m2)])
    return history


def _torch_run(net, opt, lazy: bool):
    table = net.embedding.weight
    history = []
    for ids, lengths, silent in STEPS:
        ids_t, lengths_t = torch.tensor(ids), torch.tensor(lengths)
        opt.zero_grad(set_to_none=True)
        loss, _ = net(ids_t, lengths_t, silent)
        loss.backward()
        before = table.detach().clone()
        if lazy:
            opt.step(rows_in_batch(ids_t, lengths_t, table.shape[0]))
        else:
            opt.step()
        state = opt.state[table]
        history.append((before, [table.detach().clone(), state["exp_avg"].clone(),
                                 state["exp_avg_sq"].clone()]))
    return history


def test_lazy_adam_matches_a_port_of_paddles_april_2018_rule():
    expected = _paddle_run(TinyEmbeddingNet())
    net = TinyEmbeddingNet()
    got = _torch_run(net, LazyAdam([net.embedding.weight], lr=LR, betas=(B1, B2), eps=EPS),
                     lazy=True)
    for step, ((before, ours), theirs) in enumerate(zip(got, expected), 1):
        for name, a, b in zip(("param", "moment1", "moment2"), ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15, msg=f"step {step} {name}")
        # Rows no real token looked up keep weights and moments bit for bit.
        ids, lengths, _ = STEPS[step - 1]
        present = {ids[b][t] for b in range(len(ids)) for t in range(lengths[b])}
        for r in set(range(10)) - present:
            assert torch.equal(ours[0][r], before[r]), (step, r)
    # Step 1: the pad id 0 is no token of the batch and keeps its moments at 0.
    assert not got[0][1][1][0].any()
    # Step 3: word 1 is present with a zero gradient, and still moves (by its momentum).
    assert got[1][1][1][1].any()
    assert not torch.equal(got[2][1][0][1], got[2][0][1])


def test_dense_adam_is_not_the_2018_rule():
    """What the folder did before: torch Adam on every row moves rows absent from the batch, so
    the port tells the two apart (the test above can fail)."""
    expected = _paddle_run(TinyEmbeddingNet())
    net = TinyEmbeddingNet()
    got = _torch_run(net, torch.optim.Adam([net.embedding.weight], lr=LR, betas=(B1, B2),
                                           eps=EPS), lazy=False)
    # Words with momentum after step 1 and no token in step 2 (2, 4) still move in step 2.
    before, after = got[1][0], got[1][1][0]
    absent = [r for r in (2, 4) if got[0][1][1][r].any()]
    assert absent and all(not torch.equal(after[r], before[r]) for r in absent)
    assert not torch.allclose(got[-1][1][0], expected[-1][0], rtol=1e-6, atol=1e-9)


def test_rows_in_batch_counts_real_tokens_only():
    ids = torch.tensor([[3, 3, 1, 0], [2, 0, 0, 0]])      # pads are id 0
    counts = rows_in_batch(ids, torch.tensor([3, 1]), 5)
    assert counts.tolist() == [0, 1, 1, 2, 0]
    rows_in_batch(torch.tensor([[0, 4]]), torch.tensor([2]), 5, out=counts)   # a second chunk
    assert counts.tolist() == [1, 1, 1, 2, 1]


def _scaled_step(scaler, opt, table, ids, lengths, poison=False):
    opt.zero_grad(set_to_none=True)
    loss = (table[ids] * (torch.arange(ids.numel()).view(*ids.shape, 1) + 1.0)).tanh().sum()
    scaler.scale(loss).backward()
    if poison:
        table.grad[2, 0] = float("inf")                 # an fp16 overflow in one row
    scaler.step(opt, rows_in_batch(ids, lengths, table.shape[0]))
    scaler.update()


def test_grad_scaler_path_unscales_on_the_device_and_skips_overflowed_steps():
    """The fp16 (pre-Ampere) branch, run on the CPU: GradScaler hands LazyAdam the scale and the
    overflow flag instead of unscaling and deciding on the host."""
    torch.manual_seed(0)
    ids, lengths = torch.tensor([[1, 2, 2], [3, 1, 0]]), torch.tensor([3, 2])
    tables = [torch.nn.Parameter(torch.randn(6, 4)) for _ in range(2)]
    tables[1].data.copy_(tables[0].data)
    opts = [LazyAdam([t], lr=LR) for t in tables]
    scaled = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000)
    plain = torch.amp.GradScaler("cpu", enabled=False)
    for _ in range(2):
        _scaled_step(scaled, opts[0], tables[0], ids, lengths)
        _scaled_step(plain, opts[1], tables[1], ids, lengths)
    # Scaling by a power of two and dividing back is exact: the same step as without a scaler.
    assert torch.equal(tables[0].detach(), tables[1].detach())
    state = {k: v.clone() for k, v in opts[0].state[tables[0]].items()}
    before = tables[0].detach().clone()
    _scaled_step(scaled, opts[0], tables[0], ids, lengths, poison=True)
    assert torch.equal(tables[0].detach(), before)                 # skipped: nothing moves
    for k, v in opts[0].state[tables[0]].items():
        assert torch.equal(v, state[k]), k                         # not even the beta powers
    assert scaled.get_scale() == 2.0**9                            # and the scale backs off
    _scaled_step(scaled, opts[0], tables[0], ids, lengths)
    _scaled_step(plain, opts[1], tables[1], ids, lengths)
    assert torch.equal(tables[0].detach(), tables[1].detach())


@pytest.mark.parametrize("mode", ["lazy", "dense"])
def test_every_parameter_gets_exactly_one_adam(mode):
    cfg = dataclasses.replace(PRESETS["tiny"], embedding_adam=mode)
    model = build_model(cfg, vocab_size=30)
    dense, lazy = build_optimizers(model, cfg)
    owned = [p for opt in (dense, lazy) if opt is not None for g in opt.param_groups
             for p in g["params"]]
    assert sorted(map(id, owned)) == sorted(map(id, model.parameters()))
    if mode == "lazy":
        assert [p for g in lazy.param_groups for p in g["params"]] == [model.embedding.weight]
    else:
        assert lazy is None
    for opt in (dense, lazy):
        if opt is not None:
            assert opt.defaults["lr"] == cfg.lr and opt.defaults["eps"] == cfg.adam_eps
            assert tuple(opt.defaults["betas"]) == (cfg.adam_beta1, cfg.adam_beta2)


def test_lazy_adam_rejects_what_it_cannot_update():
    with pytest.raises(ValueError, match="2-D"):
        LazyAdam([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    table = torch.nn.Parameter(torch.zeros(4, 2))
    opt = LazyAdam([table], lr=0.1)
    F.embedding(torch.tensor([1]), table).sum().backward()
    with pytest.raises(ValueError, match="rows has shape"):
        opt.step(torch.ones(5))
