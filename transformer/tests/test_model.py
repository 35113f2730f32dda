"""Model: shapes and gradients, the causal mask, beam search, loss, positions, the LR schedule, the
precision policy."""

import math
from pathlib import Path

import pytest
import torch
from beam_reference import per_sentence_beam_search

import model as M
import train
from config import PRESETS

FOLDER = Path(__file__).resolve().parents[1]

TINY = PRESETS["tiny"]


def _model(seed=0, vocab=50):
    torch.manual_seed(seed)
    return M.Transformer(vocab, TINY)


def _batch(b=3, s=7, t=6, vocab=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (b, s), generator=g)
    tgt = torch.randint(3, vocab, (b, t), generator=g)
    src[:, -1] = tgt[:, -1] = M.EOS_ID
    src[0, 4:] = 0
    src[0, 3] = M.EOS_ID
    tgt[1, 3:] = 0
    tgt[1, 2] = M.EOS_ID
    return src, tgt


def test_forward_backward_every_parameter_gets_a_gradient():
    m = _model()
    src, tgt = _batch()
    logits = m(src, tgt)
    assert logits.shape == (3, 6, 50)
    loss = M.label_smoothed_loss(logits, tgt, 0.1)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_reference_size_and_shared_embedding():
    with torch.device("meta"):
        big = M.Transformer(33708, PRESETS["reference"])
    n = sum(p.numel() for p in big.parameters())
    assert abs(n - 210.8e6) < 0.1e6  # spec section 1: 210.8M with the 33,708-entry vocabulary
    names = [k for k, _ in big.named_parameters()]
    assert sum("embedding" in k for k in names) == 1  # one matrix: encoder, decoder and softmax


def test_decoder_output_at_t_ignores_tokens_after_t():
    m = _model().eval()
    src, tgt = _batch()
    memory, mask = m.encode(src)
    tgt_in = torch.nn.functional.pad(tgt[:, :-1], (1, 0))
    out = m.decode(tgt_in, memory, mask)
    changed = tgt_in.clone()
    changed[:, 3:] = torch.randint(3, 50, changed[:, 3:].shape)
    out2 = m.decode(changed, memory, mask)
    assert torch.allclose(out[:, :3], out2[:, :3], atol=1e-5)
    assert not torch.allclose(out[:, 3:], out2[:, 3:], atol=1e-3)
    last = m.decode(tgt_in, memory, mask, last_only=True)  # what decoding uses
    assert last.shape == (3, 1, 50) and torch.allclose(last[:, 0], out[:, -1], atol=1e-5)


def test_incremental_decoding_matches_the_full_decoder():
    m = _model().eval()
    src, tgt = _batch()
    memory, mask = m.encode(src)
    tgt_in = torch.nn.functional.pad(tgt[:, :-1], (1, 0))
    full = m.decode(tgt_in, memory, mask)
    cache = m.init_cache(memory)
    steps = [m.decode_step(tgt_in[:, t], t, mask, cache) for t in range(tgt_in.size(1))]
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-4)


def test_encoder_ignores_padding():
    m = _model().eval()
    src, _ = _batch()
    mem, mask = m.encode(src[:1, :4])
    padded = torch.cat([src[:1, :4], torch.zeros(1, 5, dtype=torch.long)], 1)
    mem2, _ = m.encode(padded)
    assert torch.allclose(mem, mem2[:, :4], atol=1e-5)


def _trained_copy_model():
    """A tiny model trained briefly to copy its input, so decoding has real choices to make."""
    torch.manual_seed(0)
    m = M.Transformer(20, TINY)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(60):
        src = torch.randint(3, 20, (32, 6))
        src[:, -1] = M.EOS_ID
        loss = M.label_smoothed_loss(m(src, src), src, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


def test_beam_one_equals_greedy_and_beam_four_is_sane():
    m = _trained_copy_model()
    src = torch.randint(3, 20, (8, 6), generator=torch.Generator().manual_seed(3))
    src[:, -1] = M.EOS_ID
    src[2, 3:] = 0
    src[2, 2] = M.EOS_ID
    greedy = M.greedy_decode(m, src, extra_length=5)
    assert M.beam_search(m, src, beam_size=1, alpha=0.6, extra_length=5) == greedy
    beam4 = M.beam_search(m, src, beam_size=4, alpha=0.6, extra_length=5)
    assert len(beam4) == 8
    for h in beam4:
        assert M.EOS_ID not in h and M.PAD_ID not in h and len(h) <= src.size(1) + 5 - 1


@pytest.mark.parametrize("vocab,beam,extra", [(20, 4, 5), (20, 1, 5), (20, 3, 8), (5, 4, 4), (3, 2, 3)])
def test_batched_beam_search_equals_the_per_sentence_search(vocab, beam, extra):
    """Same hypotheses as the per-sentence search it replaced: a trained copy model (EOS at different
    steps per sentence), tiny vocabularies (fewer than 2K finite candidates, dead beams, sentences that
    finish nothing before the forced EOS) and an untrained model running into the length limit."""
    trained = _trained_copy_model() if vocab == 20 else None
    for m in filter(None, [trained, _model(seed=vocab + beam, vocab=vocab).eval()]):
        src = torch.randint(2, vocab, (9, 6), generator=torch.Generator().manual_seed(beam))  # 2: UNK
        src[:, -1] = M.EOS_ID
        src[2, 3:] = 0
        src[2, 2] = M.EOS_ID
        expected = per_sentence_beam_search(m, src, beam, 0.6, extra)
        assert M.beam_search(m, src, beam, 0.6, extra) == expected
        if m is trained:
            assert any(expected)  # not a trivial agreement on empty outputs


def test_untrained_model_stops_at_the_length_limit():
    m = _model().eval()
    src, _ = _batch()
    for hyps in (M.greedy_decode(m, src, extra_length=3), M.beam_search(m, src, 2, 0.6, extra_length=3)):
        assert all(len(h) <= src.size(1) + 3 - 1 for h in hyps)


def test_label_smoothing_matches_the_reference_formula():
    logits = torch.randn(2, 3, 5)
    target = torch.tensor([[1, 2, 0], [3, 4, 1]])
    loss = M.label_smoothed_loss(logits, target, 0.1)
    logp = logits.log_softmax(-1)
    total, n = 0.0, 0
    for b in range(2):
        for t in range(3):
            if target[b, t] == 0:
                continue
            dist = torch.full((5,), 0.1 / 4)
            dist[target[b, t]] = 0.9
            const = -(0.9 * math.log(0.9) + 4 * (0.1 / 4) * math.log(0.1 / 4))
            total += float(-(dist * logp[b, t]).sum()) - const
            n += 1
    assert loss.item() == pytest.approx(total / n, rel=1e-5)


def test_positions_are_sin_then_cos():
    pe = M.sinusoid_positions(10, 8)
    assert torch.allclose(pe[0], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1.0]))
    inv = torch.exp(torch.arange(4) * -(math.log(1e4) / 3))
    assert torch.allclose(pe[7, :4], torch.sin(7 * inv)) and torch.allclose(pe[7, 4:], torch.cos(7 * inv))


def test_position_table_is_a_buffer_built_once(monkeypatch):
    """The table is a (non-persistent) buffer, so .to(device) moves it with the weights and no forward pass
    builds it on the host and copies it over (a blocking copy per step on a GPU)."""
    m = _model().eval()
    assert "positions" in dict(m.named_buffers()) and "positions" not in m.state_dict()
    assert torch.equal(m.positions, M.sinusoid_positions(M.MAX_POSITIONS, TINY.d_model))
    src, tgt = _batch()
    expected = m(src, tgt)
    monkeypatch.setattr(M, "sinusoid_positions", lambda *a: pytest.fail("position table rebuilt"))
    assert torch.equal(m(src, tgt), expected)
    memory, mask = m.encode(src)
    m.decode_step(tgt[:, 0], 3, mask, m.init_cache(memory))
    monkeypatch.undo()
    long = torch.randint(3, 50, (1, M.MAX_POSITIONS + 5))  # longer than the table: extended, same values
    assert m.embed(long).shape == (1, M.MAX_POSITIONS + 5, TINY.d_model)
    assert torch.equal(m.positions, M.sinusoid_positions(M.MAX_POSITIONS + 5, TINY.d_model))


@pytest.mark.parametrize("capability,dtype", [((6, 0), torch.float16), ((7, 0), torch.float16),
                                              ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                              ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16),
                                              ((10, 0), torch.bfloat16), ((12, 0), torch.bfloat16),
                                              (None, torch.bfloat16)])
def test_precision_policy_by_compute_capability(capability, dtype):
    """bf16 from Ampere on; fp16 (+ GradScaler) on P100 (6.0), V100 (7.0) and T4 (7.5); None = CPU."""
    assert M.precision_policy(capability) == dtype


def test_train_and_bench_decide_precision_by_capability_only():
    # torch.cuda.is_bf16_supported() is True on a P100 (emulated bf16): it must not pick the dtype.
    for name in ("train.py", "bench.py"):
        source = (FOLDER / name).read_text()
        assert "is_bf16_supported" not in source and "precision_policy(" in source, name


def test_lr_schedule_peak_for_the_reference_config():
    ref = PRESETS["reference"]
    lr = train.lr_lambda(ref.d_model, ref.learning_rate, ref.warmup_steps)
    values = [lr(s) for s in range(1, 40001, 50)]
    peak_step = 1 + 50 * max(range(len(values)), key=values.__getitem__)
    assert lr(16000) == pytest.approx(4.94e-4, abs=1e-6)
    assert abs(peak_step - 16000) <= 50 and max(values) <= lr(16000)
    assert lr(8000) == pytest.approx(lr(16000) / 2) and lr(64000) == pytest.approx(lr(16000) / 2)


def test_bench_prints_one_json_line(capsys):
    import json

    import bench

    assert bench.main(["--config", "tiny", "--device", "cpu", "--steps", "1", "--batch-size", "4"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["benchmark"] == "transformer" and line["batch_size"] == 4
    assert line["samples_per_s"] > 0 and line["tflops"] > 0
    ref = PRESETS["reference"]  # the spec's per-token counts for big: 0.53 GFLOP source, 0.74 target
    assert bench.train_flops_per_pair(ref, 33708, 1, 0) / 1e9 == pytest.approx(0.528, abs=0.002)
    assert bench.train_flops_per_pair(ref, 33708, 0, 1) / 1e9 == pytest.approx(0.736, abs=0.002)
