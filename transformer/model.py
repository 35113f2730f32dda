"""Transformer (big) for WMT en-de, as in the MLPerf v0.5 reference (TF official Transformer, t2t style).

    from model import Transformer; model = Transformer(vocab_size, cfg)
    logits = model(src, tgt)                        # src [B, S], tgt [B, T] int64, pad 0, EOS 1
    hyps = beam_search(model, src, beam_size=4, alpha=0.6, extra_length=50)

What matches the reference (model/transformer.py, attention_layer.py, ffn_layer.py, embedding_layer.py,
model_utils.py @ v0.5): pre-norm residual blocks y = x + Dropout(Sublayer(LayerNorm(x))) with a final
LayerNorm after each stack (eps 1e-6); one embedding matrix shared by encoder input, decoder input and the
pre-softmax projection (no output bias), N(0, d^-0.5) init, outputs scaled by sqrt(d) and zeroed at pads;
t2t sinusoids (sin half then cos half); bias-free Q/K/V/output projections; FFN with bias and ReLU;
Glorot-uniform dense init. The decoder input is the target shifted right with pad id 0 at position 0,
whose zeroed embedding is the reference's all-zero first vector. Only torch is imported (bench.py).

Also here, because train.py and bench.py must agree on it: the mixed-precision policy (precision_policy).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

PAD_ID, EOS_ID = 0, 1
MAX_POSITIONS = 1024  # rows of the precomputed position table; a longer input extends it (decoding only)


def precision_policy(capability: tuple[int, int] | None) -> torch.dtype:
    """The autocast dtype of --amp from the CUDA compute capability (None: the CPU).

    bf16 from Ampere (8.0) on, where tensor cores run it natively; fp16 (with a GradScaler, since its
    range is narrow) on Pascal, Volta and Turing. Decided by capability, not by
    torch.cuda.is_bf16_supported(), which also says True on a P100, where bf16 is only emulated.
    """
    return torch.bfloat16 if capability is None or tuple(capability) >= (8, 0) else torch.float16


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.k = nn.Linear(d_model, d_model, bias=False)
        self.v = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def heads(self, y: torch.Tensor) -> torch.Tensor:
        """[B, L, d] -> [B, h, L, d/h]"""
        b, _, d = y.shape
        return y.view(b, -1, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None, mask: torch.Tensor | None = None,
                causal: bool = False, kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x [B, T, d] attends to memory [B, S, d]; mask [B, 1, 1, S] bool, True = may attend.

        kv: keys and values [B, h, S, d/h] already projected (the decoding cache) instead of memory.
        """
        b, t, d = x.shape
        k, v = kv if kv is not None else (self.heads(self.k(memory)), self.heads(self.v(memory)))
        # SDPA scales queries by (d/h)^-0.5 as the reference does; softmax over masked keys matches the
        # reference's -1e9 bias.
        y = F.scaled_dot_product_attention(self.heads(self.q(x)), k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, relu_dropout: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, ffn_dim), nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(relu_dropout)

    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.relu_dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, mask):
        y = self.norm1(x)
        x = x + self.dropout(self.attn(y, y, mask))
        return x + self.dropout(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.num_heads, cfg.attention_dropout)
        self.norm3 = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.relu_dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, memory, memory_mask):
        # Causal self-attention needs no pad mask: a real position t only sees positions <= t, which are
        # real too; outputs at pad positions are never used.
        y = self.norm1(x)
        x = x + self.dropout(self.self_attn(y, y, causal=True))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory, memory_mask))
        return x + self.dropout(self.ffn(self.norm3(x)))

    def step(self, x: torch.Tensor, cache: dict, memory_mask: torch.Tensor) -> torch.Tensor:
        """Incremental decoding (eval): x [N, 1, d] is the newest position; cache holds the projected
        self-attention keys/values of the earlier positions (extended here) and of the memory."""
        y = self.norm1(x)
        sa = self.self_attn
        cache["k"] = torch.cat([cache["k"], sa.heads(sa.k(y))], dim=2)
        cache["v"] = torch.cat([cache["v"], sa.heads(sa.v(y))], dim=2)
        x = x + sa(y, None, kv=(cache["k"], cache["v"]))  # one query sees every earlier key: causal
        x = x + self.cross_attn(self.norm2(x), None, memory_mask, kv=cache["memory"])
        return x + self.ffn(self.norm3(x))


def sinusoid_positions(length: int, d_model: int) -> torch.Tensor:
    """[length, d]: channels [0, d/2) = sin, [d/2, d) = cos, timescales 1..1e4 (model_utils @ v0.5)."""
    half = d_model // 2
    inv_timescales = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(1e4) / max(half - 1, 1)))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class Transformer(nn.Module):
    def __init__(self, vocab_size: int, cfg):
        super().__init__()
        self.d_model = cfg.d_model
        self.embedding = nn.Embedding(vocab_size, cfg.d_model)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.encoder_norm = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.decoder_norm = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.dropout = nn.Dropout(cfg.dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.embedding.weight, std=cfg.d_model ** -0.5)
        # [MAX_POSITIONS, d], fixed: a buffer moves with the model to its device, so a forward pass copies
        # nothing from the host. Not saved in checkpoints (it is a function of d alone).
        self.register_buffer("positions", sinusoid_positions(MAX_POSITIONS, cfg.d_model), persistent=False)

    def position_table(self, length: int) -> torch.Tensor:
        """[length, d] rows of the sinusoid table (training never exceeds it: max_length <= 256)."""
        if length > self.positions.size(0):  # a test sentence longer than MAX_POSITIONS - 50: extend once
            self.positions = sinusoid_positions(length, self.d_model).to(self.positions.device)
        return self.positions[:length]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, L] -> [B, L, d]: scaled embedding, zero at pads, plus positions, then dropout."""
        x = self.embedding(ids) * (self.d_model ** 0.5) * (ids != PAD_ID).unsqueeze(-1)
        return self.dropout(x + self.position_table(ids.size(1)).to(x.dtype))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src [B, S] -> (memory [B, S, d], mask [B, 1, 1, S] True at real tokens)."""
        mask = (src != PAD_ID)[:, None, None, :]
        x = self.embed(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor,
               last_only: bool = False) -> torch.Tensor:
        """tgt_in [B, T] (starts with pad id 0) -> logits [B, T, V] = h · Eᵀ ([B, 1, V] if last_only)."""
        x = self.embed(tgt_in)
        for layer in self.decoder:
            x = layer(x, memory, mask)
        if last_only:  # decoding needs only the newest position: skip T-1 of the [d x V] projections
            x = x[:, -1:]
        return self.decoder_norm(x) @ self.embedding.weight.t()

    def init_cache(self, memory: torch.Tensor) -> list[dict]:
        """Per decoder layer: empty self-attention keys/values and the projected memory keys/values."""
        cache = []
        for layer in self.decoder:
            ca, sa = layer.cross_attn, layer.self_attn
            empty = sa.heads(memory.new_zeros(memory.size(0), 0, self.d_model))
            cache.append({"k": empty, "v": empty, "memory": (ca.heads(ca.k(memory)), ca.heads(ca.v(memory)))})
        return cache

    def decode_step(self, tokens: torch.Tensor, position: int, mask: torch.Tensor, cache: list[dict]):
        """tokens [N] at `position` (the previous output; pad id 0 at position 0) -> logits [N, V].
        Same result as decode(...)[:, position] over the whole prefix, in O(1) positions of work."""
        x = self.embedding(tokens) * (self.d_model ** 0.5) * (tokens != PAD_ID).unsqueeze(-1)
        x = x + self.position_table(position + 1)[position].to(x.dtype)
        x = self.dropout(x)[:, None, :]
        for layer, layer_cache in zip(self.decoder, cache):
            x = layer.step(x, layer_cache, mask)
        return (self.decoder_norm(x) @ self.embedding.weight.t())[:, 0]

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits [B, T, V] for every target position."""
        memory, mask = self.encode(src)
        tgt_in = F.pad(tgt[:, :-1], (1, 0), value=PAD_ID)  # shift right; position 0 is the zero vector
        return self.decode(tgt_in, memory, mask)


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean over non-pad targets of the cross-entropy against on-value 1 - eps, off-value eps / (V - 1).

    As utils/metrics.padded_cross_entropy_loss @ v0.5 the entropy of the smoothed distribution is
    subtracted, so a perfect model scores 0 (shifts the value, not the gradient).
    """
    v = logits.size(-1)
    logp = F.log_softmax(logits.float(), dim=-1)
    on, off = 1.0 - smoothing, smoothing / (v - 1)
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    xent = on * nll + off * (-logp.sum(-1) - nll)
    normalizing = -(on * math.log(on) + (v - 1) * off * math.log(off + 1e-20))
    weights = (target != PAD_ID).float()
    return ((xent - normalizing) * weights).sum() / weights.sum().clamp(min=1.0)


def length_penalty(length: int, alpha: float) -> float:
    """((5 + length) / 6) ** alpha (GNMT; beam_search.py @ v0.5)."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, extra_length: int = 50) -> list[list[int]]:
    """Argmax decoding; stops at EOS, at most src_len + extra_length tokens (the last one EOS)."""
    memory, mask = model.encode(src)
    max_len = src.size(1) + extra_length
    seqs = torch.zeros(src.size(0), 1, dtype=torch.long, device=src.device)
    for step in range(max_len):
        logp = model.decode(seqs, memory, mask, last_only=True)[:, -1].float().log_softmax(-1)
        logp[:, PAD_ID] = -math.inf
        nxt = logp.argmax(-1) if step < max_len - 1 else torch.full_like(seqs[:, 0], EOS_ID)
        seqs = torch.cat([seqs, nxt[:, None]], 1)
        if (seqs == EOS_ID).any(1).all():
            break
    out = []
    for row in seqs[:, 1:].tolist():
        out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
    return out


@torch.no_grad()
def beam_search(model: Transformer, src: torch.Tensor, beam_size: int = 4, alpha: float = 0.6,
                extra_length: int = 50) -> list[list[int]]:
    """Beam search with the GNMT length penalty; returns the best hypothesis per sentence, EOS cut.

    All B sentences of the batch advance together on src's device (B x K rows through the decoder). Each
    step expands every live beam and takes the 2K best continuations per sentence; an EOS among the best K
    finishes a hypothesis (score = log prob / length_penalty), kept aside in a [B, K] table until the
    sentence has K of them; the best K non-EOS continuations stay live. At src_len + extra_length tokens
    EOS is forced. With K = 1 this is exactly greedy decoding. The decoder runs incrementally with a
    key/value cache. The only host synchronisation per step is the check whether every sentence is done.
    """
    b, k, device = src.size(0), beam_size, src.device
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    cache = model.init_cache(memory)
    max_len = src.size(1) + extra_length
    # tokens [B*K, 1 + max_len]: column 0 is the pad start symbol, column t + 1 the output of step t;
    # columns not yet written stay 0 (pad), which marks the end of a prefix.
    tokens = torch.zeros(b * k, 1 + max_len, dtype=torch.long, device=device)
    scores = torch.full((b, k), -math.inf, device=device)  # log prob of each live beam
    scores[:, 0] = 0.0  # all beams start identical: keep one
    # Finished hypotheses, in the order they finished, plus a last slot k that takes every write that is
    # not a real finish (so each step is one scatter, no data-dependent shapes).
    fin_scores = torch.full((b, k + 1), -math.inf, dtype=torch.float64, device=device)
    fin_tokens = torch.zeros(b, k + 1, max_len, dtype=torch.long, device=device)
    fin_count = torch.zeros(b, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    first_row = torch.arange(b, device=device)[:, None] * k  # [B, 1] row of each sentence's beam 0
    for step in range(max_len):
        logp = model.decode_step(tokens[:, step], step, mask, cache).float().log_softmax(-1)  # [B*K, V]
        v = logp.size(-1)
        logp[:, PAD_ID] = -math.inf
        if step == max_len - 1:
            logp[:, :EOS_ID] = -math.inf
            logp[:, EOS_ID + 1:] = -math.inf
        cand = (scores.unsqueeze(-1) + logp.view(b, k, v)).view(b, k * v)
        top_scores, top_idx = cand.topk(2 * k, dim=1)  # [B, 2K], best first
        top_beam, top_tok = top_idx // v, top_idx % v
        # -inf candidates (dead beams, or fewer than 2K finite ones) neither finish nor live.
        live = (top_scores > -math.inf) & ~done[:, None]
        is_eos = top_tok == EOS_ID

        # An EOS among the best K finishes a hypothesis while the sentence has fewer than K.
        finishing = live & is_eos
        finishing[:, k:] = False
        slot = fin_count[:, None] + finishing.cumsum(1) - 1  # [B, 2K] where each finisher goes
        finishing &= slot < k
        slot = torch.where(finishing, slot, k)
        fin_scores.scatter_(1, slot, top_scores.double() / length_penalty(step + 1, alpha))
        prefix = tokens.view(b, k, -1)[:, :, 1:].gather(1, top_beam[:, :, None].expand(-1, -1, max_len))
        fin_tokens.scatter_(1, slot[:, :, None].expand(-1, -1, max_len), prefix)  # [B, 2K, max_len]
        fin_count += finishing.sum(1)
        done |= fin_count >= k
        if bool(done.all()):
            break

        # The best K non-EOS candidates live on; missing ones are dead beams (row 0, pad, -inf).
        staying = live & ~is_eos & ~done[:, None]
        rank = staying.cumsum(1) - 1
        staying &= rank < k
        rank = torch.where(staying, rank, k)  # [B, 2K] the new beam of each candidate; k: none
        new_beam = torch.zeros(b, k + 1, dtype=torch.long, device=device).scatter_(1, rank, top_beam)[:, :k]
        new_tok = torch.zeros(b, k + 1, dtype=torch.long, device=device).scatter_(1, rank, top_tok)[:, :k]
        scores = torch.full((b, k + 1), -math.inf, device=device).scatter_(1, rank, top_scores)[:, :k]
        rows = (first_row + new_beam).view(-1)  # [B*K] the row each new beam extends
        tokens = tokens[rows]
        tokens[:, step + 1] = new_tok.reshape(-1)
        for layer_cache in cache:  # follow the surviving beams (memory keys/values are per sentence)
            layer_cache["k"], layer_cache["v"] = layer_cache["k"][rows], layer_cache["v"][rows]

    best = fin_scores[:, :k].argmax(1)  # the first of equal scores, as max() over the finish order
    # A sentence that finished nothing (only possible with fewer than K finite beams) gets an all-pad row.
    hyps = fin_tokens[torch.arange(b, device=device), best].tolist()  # [B, max_len], pad after the end
    return [h[: h.index(PAD_ID)] for h in hyps]
