"""Seq-CNN (the benchmark model) and the stacked-LSTM variant of the 2018 reference, in PyTorch.

    from model import build_model
    model = build_model(cfg, vocab_size)     # cfg.model: "conv" (benchmark) or "lstm"
    logits = model(ids, lengths)             # ids [B, L] int64 (padded), lengths [B] -> [B, 2]

The 2018 code (mlcommons/training sentiment_analysis/paddle/train.py @ aa596ff4) fed Paddle LoD
tensors: every review had its own length and no padding existed. Here reviews are padded to the
longest in their chunk, and both models are written so that padding changes no logit:
pad positions are zeroed before the convolution (Paddle's sequence_conv sees zeros outside a
review) and set to -inf before every max over time. Nothing in this file reads files or knows
about distributed training.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def xavier_uniform_paddle_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Paddle Fluid's default Xavier init: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), where the
    fans come from Paddle's 2-D parameter shape (not from PyTorch's layout of the same weights)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-a, a)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B] lengths -> [B, L] bool, True at real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_max_over_time(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """h [B, C, L], mask [B, L] -> [B, C]: Paddle's sequence_pool(pool_type="max") per review."""
    return h.masked_fill(~mask[:, None, :], float("-inf")).amax(dim=2)


class SeqCNN(nn.Module):
    """convolution_net of train.py @ aa596ff4 (after Johnson & Zhang 2014):

    embedding [V, E] -> two parallel branches, each sequence_conv (context width k, F filters,
    bias) + ELU + max over time -> one FC over both pooled vectors (a weight per input, one
    shared bias) -> 2 logits (the softmax lives in the loss).

    Paddle's sequence_conv window starts at -(k // 2): width 3 covers [t-1, t, t+1], width 4
    covers [t-2, t-1, t, t+1]; positions outside the review are zeros; output length = input
    length. That is Conv1d(E, F, k) with k//2 zeros on the left and k-1-k//2 on the right.
    """

    def __init__(self, vocab_size: int, emb_dim: int, num_filters: int,
                 conv_widths=(3, 4), num_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, num_filters, k) for k in conv_widths)
        # Paddle's fc over a list of inputs keeps one weight per input and a single bias.
        self.fcs = nn.ModuleList(nn.Linear(num_filters, num_classes, bias=False)
                                 for _ in conv_widths)
        self.fc_bias = nn.Parameter(torch.zeros(num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Paddle shapes: embedding [V, E]; conv filter [k*E, F]; each FC weight [F, 2].
        v, e = self.embedding.weight.shape
        xavier_uniform_paddle_(self.embedding.weight, v, e)
        for conv in self.convs:
            f, e, k = conv.weight.shape
            xavier_uniform_paddle_(conv.weight, k * e, f)
            nn.init.zeros_(conv.bias)
        for fc in self.fcs:
            c, f = fc.weight.shape
            xavier_uniform_paddle_(fc.weight, f, c)
        nn.init.zeros_(self.fc_bias)

    def branch_outputs(self, ids: torch.Tensor, lengths: torch.Tensor):
        """ids [B, L] (pad ids arbitrary), lengths [B] -> ([ELU(conv_k) [B, F, L] per width],
        mask [B, L])."""
        mask = length_mask(lengths, ids.shape[1])                     # [B, L]
        x = self.embedding(ids) * mask[..., None].to(self.embedding.weight.dtype)  # [B, L, E]
        x = x.transpose(1, 2)                                         # [B, E, L]
        outs = []
        for conv in self.convs:
            k = conv.kernel_size[0]
            outs.append(F.elu(conv(F.pad(x, (k // 2, k - 1 - k // 2)))))   # [B, F, L]
        return outs, mask

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # ids [B, L], lengths [B] -> logits [B, num_classes]
        outs, mask = self.branch_outputs(ids, lengths)
        logits = self.fc_bias
        for h, fc in zip(outs, self.fcs):
            logits = logits + fc(masked_max_over_time(h, mask))       # [B, 2]
        return logits


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, L, D]: reverse each review's first lengths[b] steps, leave the padding where it is."""
    b, L = x.shape[:2]
    t = torch.arange(L, device=x.device)[None, :].expand(b, L)
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)   # [B, L]
    return x.gather(1, idx[..., None].expand_as(x))


class PeepholeLSTM(nn.Module):
    """Paddle Fluid's dynamic_lstm with its defaults: the input is already the 4H gate
    pre-activations (a preceding FC made them), peephole connections on, sigmoid gates, tanh
    cell and candidate. Runs forward in time; reverse direction = reverse_padded around it.
    A Python loop over time: slow, but this model is not the benchmark."""

    def __init__(self, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.weight_hh = nn.Parameter(torch.empty(hidden, 4 * hidden))   # Paddle [H, 4H]
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        self.peephole = nn.Parameter(torch.zeros(3, hidden))             # w_ic, w_fc, w_oc
        xavier_uniform_paddle_(self.weight_hh, hidden, 4 * hidden)

    def forward(self, gates_x: torch.Tensor) -> torch.Tensor:
        # gates_x [B, L, 4H] -> hidden states [B, L, H]
        b, L, _ = gates_x.shape
        h = gates_x.new_zeros(b, self.hidden)
        c = gates_x.new_zeros(b, self.hidden)
        w_ic, w_fc, w_oc = self.peephole
        out = []
        for t in range(L):
            g = gates_x[:, t] + h @ self.weight_hh + self.bias
            g_c, g_i, g_f, g_o = g.chunk(4, dim=1)        # Paddle's order {c, i, f, o}
            i = torch.sigmoid(g_i + w_ic * c)
            f = torch.sigmoid(g_f + w_fc * c)
            c = f * c + i * torch.tanh(g_c)
            o = torch.sigmoid(g_o + w_oc * c)
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)


class StackedLSTM(nn.Module):
    """stacked_lstm_net of train.py @ aa596ff4 (`-m lstm`; crashed there with a TypeError, so it
    never ran in 2018). Not the benchmark model.

    embedding [V, 256] -> FC(1024) -> LSTM(hidden 256); then for layers 2..3: FC over
    [previous FC out, previous LSTM out] -> 1024, LSTM, layer 2 reversed, layer 3 forward.
    Head: max over time of the last FC output (1024) and the last LSTM output (256) -> FC(2).
    """

    def __init__(self, vocab_size: int, emb_dim: int = 256, fc_dim: int = 1024,
                 num_layers: int = 3, num_classes: int = 2):
        super().__init__()
        hidden = fc_dim // 4              # dynamic_lstm(size=fc_dim): size is 4 x hidden
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.fc_in = nn.ModuleList([nn.Linear(emb_dim, fc_dim)])
        self.fc_h = nn.ModuleList([None])  # layer 1 has no LSTM input
        for _ in range(1, num_layers):
            self.fc_in.append(nn.Linear(fc_dim, fc_dim))               # from previous FC (+ bias)
            self.fc_h.append(nn.Linear(hidden, fc_dim, bias=False))    # from previous LSTM
        self.lstms = nn.ModuleList(PeepholeLSTM(hidden) for _ in range(num_layers))
        self.head_fc = nn.Linear(fc_dim, num_classes)
        self.head_h = nn.Linear(hidden, num_classes, bias=False)
        for lin in [*self.fc_in, *self.fc_h[1:], self.head_fc, self.head_h]:
            out_f, in_f = lin.weight.shape
            xavier_uniform_paddle_(lin.weight, in_f, out_f)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        v, e = self.embedding.weight.shape
        xavier_uniform_paddle_(self.embedding.weight, v, e)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])                     # [B, L]
        x = self.embedding(ids)                                       # [B, L, E]
        fc, h = None, None
        for layer, lstm in enumerate(self.lstms):
            fc = self.fc_in[layer](x if layer == 0 else fc)           # [B, L, 1024]
            if layer > 0:
                fc = fc + self.fc_h[layer](h)
            if layer % 2 == 1:   # stacked layers i = 2, 4, ... run reversed (is_reverse=i % 2 == 0)
                h = reverse_padded(lstm(reverse_padded(fc, lengths)), lengths)
            else:
                h = lstm(fc)                                          # [B, L, 256]
        pooled_fc = masked_max_over_time(fc.transpose(1, 2), mask)    # [B, 1024]
        pooled_h = masked_max_over_time(h.transpose(1, 2), mask)      # [B, 256]
        return self.head_fc(pooled_fc) + self.head_h(pooled_h)


def build_model(cfg, vocab_size: int) -> nn.Module:
    if cfg.model == "conv":
        return SeqCNN(vocab_size, cfg.emb_dim, cfg.num_filters, cfg.conv_widths, cfg.num_classes)
    if cfg.model == "lstm":
        return StackedLSTM(vocab_size, cfg.lstm_emb_dim, cfg.lstm_fc_dim, cfg.lstm_layers,
                           cfg.num_classes)
    raise ValueError(f"unknown model {cfg.model!r} (expected 'conv' or 'lstm')")


def train_flops_per_token(cfg) -> float:
    """Seq-CNN training FLOPs per token (spec §1): forward 2 x sum(widths) x E x F multiply-adds
    counted as 2 FLOPs, training ~ 3 x forward; embedding, ELU and FC are negligible."""
    return 3 * 2 * sum(cfg.conv_widths) * cfg.emb_dim * cfg.num_filters
