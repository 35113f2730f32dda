"""Adam as the 2018 reference ran it: lazy on the embedding table, dense on everything else.

    from optim import build_optimizers, rows_in_batch
    dense_adam, embedding_adam = build_optimizers(model, cfg, fused=True)
    rows = rows_in_batch(ids, lengths, vocab_size)       # [V] count of each id's real tokens
    dense_adam.step(); embedding_adam.step(rows)         # (or scaler.step(embedding_adam, rows))

The reference's embedding was `fluid.layers.embedding(..., is_sparse=True)` trained by
`fluid.optimizer.Adam` (mlcommons/training sentiment_analysis/paddle/train.py @ aa596ff4, run in
the April 2018 image `paddle:benchmark12042018`). In the PaddlePaddle of that time
(paddle/fluid/operators/adam_op.h, SparseAdamFunctor, added by PR #7045 in January 2018 and
made to update every row by PR #13456 in September 2018; python/paddle/fluid/optimizer.py,
AdamOptimizer):

- the embedding's gradient is a SelectedRows: one row per token of the batch (Paddle's LoD
  sequences have no padding), a word seen twice giving two rows;
- the adam op first merges duplicated rows by adding them (math::scatter::MergeAdd): the merged
  row of word r is the sum of its tokens' gradients, i.e. row r of a dense embedding gradient;
- then only the merged rows are updated, each with the same rule as the dense op:
      m_r <- b1 m_r + (1 - b1) g_r
      v_r <- b2 v_r + (1 - b2) g_r^2
      p_r <- p_r - lr sqrt(1 - b2^t) / (1 - b1^t) * m_r / (sqrt(v_r) + eps)
  (epsilon added to sqrt(v), not to the bias-corrected sqrt(v / (1 - b2^t)) as torch.optim.Adam
  does); every other row keeps its p, m and v;
- b1^t and b2^t are accumulators set to b1 and b2 at start-up and multiplied by b1 and b2 after
  every optimizer step (`_finish_update`), so t counts the run's steps, not the row's updates.

Which rows are updated is decided by presence in the batch, not by a non-zero gradient: a word
whose tokens all lose the max-over-time contributes zero gradient and is still updated (its
moments decay, it moves by m). Here the gradient stays dense (DDP all-reduces it as any other),
and `rows_in_batch` counts the real tokens of each id, padding excluded.
"""

import torch


def rows_in_batch(ids: torch.Tensor, lengths: torch.Tensor, num_rows: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """ids [b, L] padded word ids, lengths [b] -> [num_rows] float: how many real tokens of each
    id the batch holds (pad positions are not looked up in Paddle's LoD batches, so they do not
    count). Adds into `out` when given (a batch run as several chunks). No host sync."""
    if out is None:
        out = torch.zeros(num_rows, dtype=torch.float32, device=ids.device)
    real = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]   # [b, L]
    return out.index_add_(0, ids.reshape(-1), real.reshape(-1).to(out.dtype))


class LazyAdam(torch.optim.Optimizer):
    """2018 Paddle's sparse Adam (see the module docstring) for 2-D tables with a dense gradient:
    step(rows) updates row r only where rows[r] > 0.

    GradScaler support without a host sync (fp16 before Ampere): GradScaler hands over
    `grad_scale` and `found_inf` (tensors) instead of unscaling and deciding on the host; the
    gradients are divided by grad_scale here and a step with found_inf changes nothing, not even
    the beta powers, as a skipped step of any torch optimizer."""

    _step_supports_amp_scaling = True

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"LazyAdam updates rows of 2-D tables, got shape "
                                     f"{tuple(p.shape)}")

    @torch.no_grad()
    def step(self, rows: torch.Tensor, closure=None):
        """rows [num_rows]: > 0 for the rows the batch looked up (rows_in_batch)."""
        grad_scale = getattr(self, "grad_scale", None)      # set by GradScaler.step
        found_inf = getattr(self, "found_inf", None)
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if rows.shape != p.shape[:1]:
                    raise ValueError(f"rows has shape {tuple(rows.shape)}, the table "
                                     f"{tuple(p.shape)}")
                state = self.state[p]
                if not state:
                    # Paddle's accumulators: moments 0, beta powers b1 and b2 (t = 1 first).
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["beta1_pow"] = torch.full((), b1, dtype=p.dtype, device=p.device)
                    state["beta2_pow"] = torch.full((), b2, dtype=p.dtype, device=p.device)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                b1_pow, b2_pow = state["beta1_pow"], state["beta2_pow"]
                g = p.grad if grad_scale is None else p.grad / grad_scale.to(p.dtype)
                update = (rows > 0)[:, None]                              # [V, 1]
                if found_inf is not None:
                    ok = found_inf.to(p.device) == 0                      # [] bool
                    update = update & ok
                lr_t = lr * torch.sqrt(1 - b2_pow) / (1 - b1_pow)         # [] on the device
                m_new = b1 * m + (1 - b1) * g                             # [V, E]
                v_new = b2 * v + (1 - b2) * g * g
                p_new = p - lr_t * (m_new / (torch.sqrt(v_new) + eps))
                m.copy_(torch.where(update, m_new, m))
                v.copy_(torch.where(update, v_new, v))
                p.copy_(torch.where(update, p_new, p))
                # _finish_update: the powers advance once per (taken) optimizer step.
                if found_inf is None:
                    b1_pow.mul_(b1)
                    b2_pow.mul_(b2)
                else:
                    b1_pow.copy_(torch.where(ok, b1_pow * b1, b1_pow))
                    b2_pow.copy_(torch.where(ok, b2_pow * b2, b2_pow))
        return None


def build_optimizers(model: torch.nn.Module, cfg, fused: bool = False):
    """-> (torch Adam over every parameter but the embedding table, LazyAdam over the table), or
    (torch Adam over everything, None) when cfg.embedding_adam == "dense". Hyper-parameters from
    cfg (lr, adam_beta1, adam_beta2, adam_eps); fused: torch's fused Adam kernel (CUDA)."""
    kw = dict(lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps)
    if cfg.embedding_adam == "dense":
        return torch.optim.Adam(model.parameters(), fused=fused, **kw), None
    if cfg.embedding_adam != "lazy":
        raise ValueError(f"embedding_adam {cfg.embedding_adam!r}: expected 'lazy' or 'dense'")
    table = model.embedding.weight
    rest = [p for p in model.parameters() if p is not table]
    return torch.optim.Adam(rest, fused=fused, **kw), LazyAdam([table], **kw)
