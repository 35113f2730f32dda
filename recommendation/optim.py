"""Lazy Adam for NeuMF's embeddings: Adam applied only to the rows a batch looked up, without host syncs.

    embeddings = NeuMF(..., sparse=True).embeddings()
    lazy = LazyAdam([e.weight for e in embeddings], lr=0.0005, betas=(0.9, 0.999), eps=1e-8)

The v0.5 rules allowed lazy Adam for NCF. For a row r looked up in step t (g_r its gradient, duplicates
summed), with the step count t shared by all rows:
    m_r <- beta1 m_r + (1 - beta1) g_r       v_r <- beta2 v_r + (1 - beta2) g_r^2
    w_r <- w_r - lr (m_r / (1 - beta1^t)) / (sqrt(v_r / (1 - beta2^t)) + eps)
and rows not looked up keep their weights and moments. Dense Adam (the reference) also decays every other
row's moments and keeps moving it by its old momentum. These are the semantics of TensorFlow's
LazyAdamOptimizer and of torch.optim.SparseAdam; SparseAdam calls coalesce(), which waits for the device
(the number of distinct rows), and so is not used: the distinct rows are summed here into a tensor of fixed
size, one slot per looked-up row (see sum_duplicate_rows).

Works with torch.amp.GradScaler without host syncs (GradScaler hands grad_scale and found_inf to optimizers
that set _step_supports_amp_scaling, as the fused Adam does).

Also here, for train.py and bench.py under torchrun: data parallelism that keeps the embeddings out of DDP
and exchanges only the rows each rank looked up (data_parallel, exchange_embedding_grads). Imports only
torch, so bench.py can use it on a bare GPU machine.
"""

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def sum_duplicate_rows(ids: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ids [N] (with repeats), rows [N, D] -> (slot_ids [N], slot_sums [N, D]): each distinct id once with the
    sum of its rows, in slots 0..K-1 (K distinct ids, ascending); slots K..N-1 repeat slot K-1.

    The output has a fixed size, so nothing waits for K to reach the host. Writing a row's update once per
    slot is then safe: the repeated slots carry the same id and the same values. The sums are deterministic
    (index_add_ on CPU, index_put_ with accumulate on CUDA; the other one of each pair uses atomics), so
    ranks that sum the same gathered rows get bit-identical tables.
    """
    n = ids.shape[0]
    sorted_ids, order = torch.sort(ids, stable=True)
    starts = torch.ones_like(sorted_ids, dtype=torch.bool)
    starts[1:] = sorted_ids[1:] != sorted_ids[:-1]
    slot = torch.cumsum(starts, 0) - 1  # [N] slot of each sorted row
    sums = scatter_add_rows(torch.zeros_like(rows), slot, rows[order])
    slot_ids = torch.zeros_like(ids).index_put_((slot,), sorted_ids)  # repeats write the same id
    last = torch.minimum(torch.arange(n, device=ids.device), slot[-1])  # slot K-1 for the padding slots
    return slot_ids[last], sums[last]


def scatter_add_rows(out: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """out[ids[k]] += rows[k] in place, deterministically on CPU and CUDA (see sum_duplicate_rows)."""
    if out.device.type == "cpu":
        return out.index_add_(0, ids, rows)
    return out.index_put_((ids,), rows, accumulate=True)


class LazyAdam(torch.optim.Optimizer):
    """Adam over the rows in sparse gradients (nn.Embedding(sparse=True)); see the module docstring."""

    _step_supports_amp_scaling = True  # reads self.grad_scale / self.found_inf set by GradScaler.step

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ValueError("LazyAdam does not take a closure")
        grad_scale = getattr(self, "grad_scale", None)  # the loss scale, when grads are still scaled
        found_inf = getattr(self, "found_inf", None)  # > 0: skip this step (fp16 overflow)
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("LazyAdam needs sparse gradients: nn.Embedding(..., sparse=True)")
                state = self.state[p]
                if not state:
                    # The step count lives on the device, so bias correction and a skipped step need no sync.
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                elif state["step"].device != p.device:  # load_state_dict leaves a loaded step where it was
                    state["step"] = state["step"].to(p.device)
                ids, g = sum_duplicate_rows(p.grad._indices()[0], p.grad._values())  # [N], [N, D]
                if grad_scale is not None:
                    g = g / grad_scale.to(g.dtype)
                skip = None if found_inf is None else found_inf.to(p.device) > 0
                step = state["step"] + (1.0 if skip is None else (~skip).float())
                m = state["exp_avg"][ids].lerp_(g, 1.0 - beta1)  # [N, D]
                v = state["exp_avg_sq"][ids].mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                denom = (v / (1.0 - beta2 ** step)).sqrt_().add_(eps)
                w = p[ids].addcdiv_(m, denom * ((1.0 - beta1 ** step) / lr), value=-1.0)
                if skip is not None:  # an fp16 overflow: keep the old rows
                    m = torch.where(skip, state["exp_avg"][ids], m)
                    v = torch.where(skip, state["exp_avg_sq"][ids], v)
                    w = torch.where(skip, p[ids], w)
                state["exp_avg"].index_copy_(0, ids, m)
                state["exp_avg_sq"].index_copy_(0, ids, v)
                p.index_copy_(0, ids, w)
                state["step"] = step
        return None


def make_optimizers(model: nn.Module, lr: float, betas: tuple[float, float], eps: float,
                    lazy: bool) -> list[torch.optim.Optimizer]:
    """The reference's dense Adam over every parameter (fused), or lazy Adam for the embeddings (which must
    have sparse gradients) and the fused dense Adam for the rest."""
    if not lazy:
        return [torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps, fused=True)]
    tables = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    dense = [p for p in model.parameters() if all(p is not t for t in tables)]
    return [torch.optim.Adam(dense, lr=lr, betas=betas, eps=eps, fused=True),
            LazyAdam(tables, lr=lr, betas=betas, eps=eps)]


def embedding_names(model: nn.Module) -> list[str]:
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Embedding)]


def data_parallel(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """DDP over the dense layers only (MLP and final layer, 107k parameters at reference size).

    The embeddings (sparse=True) are left out, so DDP never all-reduces their 127 MB dense gradient;
    exchange_embedding_grads gathers the rows each rank looked up instead. DDP broadcasts only the parameters
    it owns, so rank 0's embeddings are broadcast here (every rank already built them from the same seed).
    """
    names = embedding_names(model)
    # Not yet a public API (pytorch/pytorch#43690), but the one torchrec and FSDP use to keep parameters
    # out of DDP's reducer; it must be called before DDP is built.
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, names)
    params = dict(model.named_parameters())
    for name in names:
        dist.broadcast(params[name].data, src=0)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def exchange_embedding_grads(embeddings: list[nn.Embedding], lazy: bool) -> None:
    """Replace each embedding's local sparse gradient by the mean over ranks, as DDP would for a dense one.

    Every rank gathers the looked-up ids and gradient rows of all ranks (two collectives for the four
    tables: ~1.5 MB a step at batch 2048 against 127 MB for the dense all-reduce) and keeps them sparse for
    LazyAdam, or sums them into a dense gradient for the reference's dense Adam. Every rank then applies the
    same update to its own copy of the tables.
    """
    grads = [e.weight.grad for e in embeddings]
    ids = [g._indices()[0] for g in grads]  # [n] each, uncoalesced: one per lookup
    rows = [g._values() for g in grads]  # [n, D] each
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    if world_size > 1:
        flat_ids, flat_rows = torch.cat(ids), torch.cat([r.reshape(-1) for r in rows])
        all_ids = flat_ids.new_empty(world_size * flat_ids.numel())
        all_rows = flat_rows.new_empty(world_size * flat_rows.numel())
        dist.all_gather_single(all_ids, flat_ids)
        dist.all_gather_single(all_rows, flat_rows)
        all_ids = all_ids.view(world_size, -1)  # [world, sum n]
        all_rows = all_rows.view(world_size, -1).div_(world_size)  # [world, sum n * D]
        id_at = row_at = 0
        for k, (i, r) in enumerate(zip(ids, rows)):
            n, width = i.numel(), r.numel()
            ids[k] = all_ids[:, id_at:id_at + n].reshape(-1)  # [world * n]
            rows[k] = all_rows[:, row_at:row_at + width].reshape(world_size * n, r.shape[1])
            id_at, row_at = id_at + n, row_at + width
    for e, i, r in zip(embeddings, ids, rows):
        if lazy:
            e.weight.grad = torch.sparse_coo_tensor(i[None], r, e.weight.shape, check_invariants=False)
        else:
            e.weight.grad = scatter_add_rows(torch.zeros_like(e.weight), i, r)
