"""Lazy Adam and the exchange of embedding rows between ranks (optim.py)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import optim
from model import NeuMF


def test_sum_duplicate_rows_matches_coalesce():
    torch.manual_seed(0)
    ids = torch.randint(0, 12, (40,))  # many repeats
    rows = torch.randn(40, 3, dtype=torch.float64)
    slot_ids, sums = optim.sum_duplicate_rows(ids, rows)
    expected = torch.sparse_coo_tensor(ids[None], rows, (12, 3), check_invariants=True).coalesce()
    k = expected._nnz()
    assert torch.equal(slot_ids[:k], expected._indices()[0])
    torch.testing.assert_close(sums[:k], expected._values())
    # The padding slots repeat the last distinct row, so writing every slot writes each row's one value.
    assert (slot_ids[k:] == slot_ids[k - 1]).all() and torch.equal(sums[k:], sums[k - 1].expand(40 - k, 3))


def sparse_grad(ids, rows, n):
    return torch.sparse_coo_tensor(ids[None], rows, (n, rows.shape[1]), check_invariants=True)


def test_lazy_adam_matches_sparse_adam_and_leaves_absent_rows_alone():
    """torch.optim.SparseAdam has lazy Adam's semantics (it only needs coalesce(), a host sync, for them)."""
    torch.manual_seed(0)
    weight = torch.randn(20, 4, dtype=torch.float64)
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    lazy = optim.LazyAdam([ours], lr=0.01, betas=(0.25, 0.5), eps=1e-8)
    sparse_adam = torch.optim.SparseAdam([theirs], lr=0.01, betas=(0.25, 0.5), eps=1e-8)
    for _ in range(5):
        ids = torch.randint(0, 10, (16,))  # rows 10..19 never looked up
        rows = torch.randn(16, 4, dtype=torch.float64)
        ours.grad, theirs.grad = sparse_grad(ids, rows, 20), sparse_grad(ids, rows, 20)
        lazy.step()
        sparse_adam.step()
        torch.testing.assert_close(ours.detach(), theirs.detach())
    assert torch.equal(ours.detach()[10:], weight[10:])
    state = lazy.state[ours]
    assert (state["exp_avg"][10:] == 0).all() and (state["exp_avg_sq"][10:] == 0).all()
    assert state["step"].item() == 5


def test_lazy_adam_is_dense_adam_when_every_row_is_present():
    torch.manual_seed(0)
    weight = torch.randn(6, 3, dtype=torch.float64)
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    lazy = optim.LazyAdam([ours], lr=0.005, betas=(0.9, 0.999), eps=1e-8)
    adam = torch.optim.Adam([theirs], lr=0.005, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(4):
        ids = torch.cat((torch.arange(6), torch.randint(0, 6, (6,))))
        rows = torch.randn(12, 3, dtype=torch.float64)
        ours.grad = sparse_grad(ids, rows, 6)
        theirs.grad = ours.grad.to_dense()
        lazy.step()
        adam.step()
    torch.testing.assert_close(ours.detach(), theirs.detach())


def test_lazy_adam_takes_gradscalers_scale_and_skips_overflowed_steps():
    weight = torch.randn(8, 2)
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    lazy = optim.LazyAdam([ours], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    reference = optim.LazyAdam([theirs], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    ids, rows = torch.tensor([1, 3, 3]), torch.randn(3, 2)
    ours.grad, theirs.grad = sparse_grad(ids, rows * 1024, 8), sparse_grad(ids, rows, 8)
    lazy.grad_scale, lazy.found_inf = torch.tensor(1024.0), torch.tensor(0.0)  # as GradScaler.step sets them
    lazy.step()
    reference.step()
    torch.testing.assert_close(ours.detach(), theirs.detach())
    before = ours.detach().clone()
    lazy.found_inf = torch.tensor(1.0)  # an fp16 overflow: nothing moves, the step count stays
    lazy.step()
    assert torch.equal(ours.detach(), before) and lazy.state[ours]["step"].item() == 1


def test_gradscaler_drives_lazy_adam():
    model = NeuMF(10, 8, 2, (4, 2), sparse=True)
    optimizers = optim.make_optimizers(model, 0.01, (0.9, 0.999), 1e-8, lazy=True)
    assert [type(o).__name__ for o in optimizers] == ["Adam", "LazyAdam"]
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)  # the fp16 path's scaler, on the CPU
    before = model.mf_user_embed.weight.detach().clone()
    loss = model(torch.tensor([1, 2]), torch.tensor([3, 4])).sum()
    scaler.scale(loss).backward()
    for o in optimizers:
        scaler.step(o)
    scaler.update()
    moved = (model.mf_user_embed.weight.detach() != before).any(dim=1)
    assert moved.tolist() == [i in (1, 2) for i in range(10)]


def test_one_rank_exchange_gives_the_dense_gradient():
    """Without other ranks, the exchanged gradient is the one a dense embedding gets."""
    torch.manual_seed(0)
    dense = NeuMF(30, 20, 4, (8, 4))
    sparse = NeuMF(30, 20, 4, (8, 4), sparse=True)
    sparse.load_state_dict(dense.state_dict())
    users, items = torch.randint(0, 30, (64,)), torch.randint(0, 20, (64,))
    for model in (dense, sparse):
        torch.nn.functional.binary_cross_entropy_with_logits(
            model(users, items), (users % 2).float()).backward()
    optim.exchange_embedding_grads(sparse.embeddings(), lazy=False)
    for d, s in zip(dense.embeddings(), sparse.embeddings()):
        assert not s.weight.grad.is_sparse
        torch.testing.assert_close(s.weight.grad, d.weight.grad)


def _two_ranks(rank: int, port: int, lazy: bool, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(rank)  # different tables per rank: data_parallel must broadcast rank 0's
    model = NeuMF(30, 20, 4, (8, 4), sparse=True)
    ddp = optim.data_parallel(model, torch.device("cpu"))
    torch.manual_seed(10 + rank)  # each rank its own batch
    users, items = torch.randint(0, 30, (16,)), torch.randint(0, 20, (16,))
    torch.nn.functional.binary_cross_entropy_with_logits(ddp(users, items), (users % 2).float()).backward()
    optim.exchange_embedding_grads(model.embeddings(), lazy)
    grads = [e.weight.grad.to_dense() if lazy else e.weight.grad for e in model.embeddings()]
    results[rank] = {"state": {k: v.clone() for k, v in model.state_dict().items()}, "grads": grads,
                     "users": users, "items": items, "ignored": sorted(ddp.parameters_to_ignore)}
    dist.destroy_process_group()


@pytest.mark.parametrize("lazy", [False, True])
def test_two_ranks_exchange_rows_not_dense_gradients(lazy):
    """Two gloo ranks: DDP leaves the embeddings out, and the gathered rows give every rank the mean of the
    ranks' gradients, which is what DDP's all-reduce would have given."""
    with mp.Manager() as manager:
        results = manager.dict()
        port = 29_000 + os.getpid() % 1000 + (500 if lazy else 0)
        mp.spawn(_two_ranks, args=(port, lazy, results), nprocs=2)
        r0, r1 = results[0], results[1]
    assert r0["ignored"] == ["mf_item_embed.weight", "mf_user_embed.weight", "mlp_item_embed.weight",
                             "mlp_user_embed.weight"]
    for name, value in r0["state"].items():
        assert torch.equal(value, r1["state"][name]), name  # rank 0's tables broadcast, DDP's own the rest
    # The mean gradient, computed here in one process from both ranks' batches.
    model = NeuMF(30, 20, 4, (8, 4))
    model.load_state_dict(r0["state"])
    mean = [torch.zeros_like(e.weight) for e in model.embeddings()]
    for r in (r0, r1):
        model.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(
            model(r["users"], r["items"]), (r["users"] % 2).float()).backward()
        for m, e in zip(mean, model.embeddings()):
            m += e.weight.grad / 2
    for m, g0, g1 in zip(mean, r0["grads"], r1["grads"]):
        assert torch.equal(g0, g1)
        torch.testing.assert_close(g0, m)
