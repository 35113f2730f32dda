"""The per-sentence beam search that model.beam_search replaced (model.py before issue 17), kept as the
oracle of the batched one: the same translations, hypothesis for hypothesis. Its selection runs in
Python over .tolist() copies each step, sentence by sentence; only its model calls are batched.

Run as a script, it times both on a trained tiny model, as the evaluation runs them (train.translate over
the whole newstest2014 of the tiny data, the preset's decode batches), and checks they agree:

    python3 tests/beam_reference.py DATA_DIR OUTPUT_DIR [--repeats 3]   # a tiny run's data and output
"""

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import EOS_ID, PAD_ID, Transformer, length_penalty  # noqa: E402


@torch.no_grad()
def per_sentence_beam_search(model: Transformer, src: torch.Tensor, beam_size: int = 4, alpha: float = 0.6,
                extra_length: int = 50) -> list[list[int]]:
    """Beam search with the GNMT length penalty; returns the best hypothesis per sentence, EOS cut.

    Each step expands every live beam and takes the 2K best continuations; an EOS among the best K
    finishes a hypothesis (score = log prob / length_penalty), the best K non-EOS ones stay live. A
    sentence is done when it has K finished hypotheses; at src_len + extra_length tokens EOS is forced.
    With K = 1 this is exactly greedy decoding. The decoder runs incrementally with a key/value cache.
    """
    b, k = src.size(0), beam_size
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    cache = model.init_cache(memory)
    max_len = src.size(1) + extra_length
    seqs = torch.zeros(b * k, 1, dtype=torch.long, device=src.device)
    scores = torch.full((b, k), -math.inf, device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    for step in range(max_len):
        logp = model.decode_step(seqs[:, -1], step, mask, cache).float().log_softmax(-1)  # [B*K, V]
        v = logp.size(-1)
        logp[:, PAD_ID] = -math.inf
        if step == max_len - 1:
            logp[:, :EOS_ID] = -math.inf
            logp[:, EOS_ID + 1:] = -math.inf
        cand = (scores.unsqueeze(-1) + logp.view(b, k, v)).view(b, k * v)
        top_scores, top_idx = cand.topk(2 * k, dim=1)  # [B, 2K]
        top_beam, top_tok = (top_idx // v).tolist(), (top_idx % v).tolist()
        top_scores_l = top_scores.tolist()
        new_rows, new_tok = torch.zeros(b, k, dtype=torch.long), torch.zeros(b, k, dtype=torch.long)
        new_scores = torch.full((b, k), -math.inf)
        prefixes = seqs[:, 1:].view(b, k, -1).tolist()
        for i in range(b):
            n_alive = 0
            for j in range(2 * k):
                if done[i] or n_alive == k:
                    break
                s, beam, tok = top_scores_l[i][j], top_beam[i][j], top_tok[i][j]
                if s == -math.inf:
                    break
                if tok == EOS_ID:
                    if j < k:
                        finished[i].append((s / length_penalty(step + 1, alpha), prefixes[i][beam]))
                        done[i] = len(finished[i]) >= k
                else:
                    new_rows[i, n_alive], new_tok[i, n_alive], new_scores[i, n_alive] = beam, tok, s
                    n_alive += 1
            if done[i]:
                new_scores[i] = -math.inf
        if all(done):
            break
        rows = (torch.arange(b)[:, None] * k + new_rows).view(-1).to(src.device)
        seqs = torch.cat([seqs[rows], new_tok.view(-1, 1).to(src.device)], 1)
        for layer_cache in cache:  # follow the surviving beams (memory keys/values are per sentence)
            layer_cache["k"], layer_cache["v"] = layer_cache["k"][rows], layer_cache["v"][rows]
        scores = new_scores.to(src.device)
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]


def main(argv=None) -> int:
    import argparse
    import json
    import time

    import sentencepiece as spm

    import data
    import train
    from config import PRESETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", type=Path, help="tiny data, preprocessed (run_and_time.sh CONFIG=tiny)")
    p.add_argument("output_dir", type=Path, help="that run's OUTPUT_DIR (checkpoint.pt)")
    p.add_argument("--repeats", type=int, default=3, help="timed translations of the test set per search")
    args = p.parse_args(argv)
    cfg = PRESETS["tiny"]
    ckpt = torch.load(args.output_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = Transformer(data.load_manifest(args.data_dir)["vocab_size"], cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=str(data.preprocessed_dir(args.data_dir) / data.SPM_MODEL))
    test_src, test_ref, _ = data.read_parallel(args.data_dir / data.TEST_CORPUS)
    cpu = torch.device("cpu")
    result = {"sentences": len(test_src), "decode_batch_size": cfg.decode_batch_size,
              "threads": torch.get_num_threads()}
    hyps = {}
    for name, search in (("per_sentence", per_sentence_beam_search), ("batched", train.beam_search)):
        train.beam_search = search  # what train.translate calls
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            hyps[name] = train.translate(model, sp, test_src, cfg, cpu, 0, 1)
            times.append(time.perf_counter() - t0)
        result[f"{name}_s"] = round(min(times), 3)
    result["speedup"] = round(result["per_sentence_s"] / result["batched_s"], 2)
    result["same_translations"] = hyps["per_sentence"] == hyps["batched"]
    print(json.dumps(result))
    return 0 if result["same_translations"] else 1


if __name__ == "__main__":
    sys.exit(main())
