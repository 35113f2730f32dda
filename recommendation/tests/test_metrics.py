"""HR@10 / NDCG@10 against the reference's dict + heapq.nlargest ranking (ties, duplicates, the positive
drawn as a negative)."""

import heapq
import math

import numpy as np
import torch

from metrics import hit_and_ndcg, positive_rank, prepare_candidates


def reference_eval_one(negatives: list[int], positive: int, score_of, k: int = 10) -> tuple[int, float]:
    """Port of eval_one in ncf.py @ c097c799: dict keyed by item, heapq.nlargest, positive appended last."""
    items = list(negatives) + [positive]
    map_item_score = {item: score_of(item) for item in items}
    ranked = heapq.nlargest(k, map_item_score, key=map_item_score.get)
    hit = int(positive in ranked)
    ndcg = next((math.log(2) / math.log(i + 2) for i, item in enumerate(ranked) if item == positive), 0.0)
    return hit, ndcg


def vectorised(negatives, positives, score_table, k=10):
    """score_table[u, item] gives every candidate of user u its score (duplicates share one score)."""
    items, counted, column = prepare_candidates(torch.as_tensor(negatives), torch.as_tensor(positives))
    scores = torch.gather(torch.as_tensor(score_table), 1, items)
    return hit_and_ndcg(positive_rank(scores, counted, column), k)


def test_perfect_scorer_hits_everyone():
    rng = np.random.default_rng(0)
    negatives = rng.integers(0, 50, (20, 30))
    positives = np.arange(50, 70)
    table = rng.random((20, 70)) * 0.5
    table[np.arange(20), positives] = 1.0
    hit, ndcg = vectorised(negatives, positives, table)
    assert hit.mean() == 1.0 and ndcg.mean() == 1.0


def test_constant_scorer_loses_every_tie():
    negatives = np.arange(1, 31)[None, :].repeat(4, 0)  # the positive (0) is not among them
    hit, _ = vectorised(negatives, np.zeros(4, dtype=np.int64), np.full((4, 31), 0.5))
    assert hit.sum() == 0


def test_rank_counts_distinct_items_and_ndcg_formula():
    # Positive 0 scores 0.5; better items 3 (three times), 4: two distinct items ahead -> rank 2.
    negatives = np.array([[3, 3, 1, 4, 3, 2]])
    table = np.array([[0.5, 0.1, 0.2, 0.9, 0.8]])
    items, counted, column = prepare_candidates(torch.as_tensor(negatives), torch.tensor([0]))
    rank = positive_rank(torch.gather(torch.as_tensor(table), 1, items), counted, column)
    assert rank.tolist() == [2]
    hit, ndcg = hit_and_ndcg(rank, 2)
    assert hit.tolist() == [0.0] and ndcg.tolist() == [0.0]
    hit, ndcg = hit_and_ndcg(rank, 3)
    assert hit.tolist() == [1.0] and math.isclose(ndcg.item(), math.log(2) / math.log(4))


def test_duplicates_and_the_positive_among_negatives_do_not_change_the_rank():
    rng = np.random.default_rng(1)
    table = rng.permutation(200)[None, :] / 200.0  # distinct scores
    base = rng.choice(np.arange(1, 200), 40, replace=False)[None, :]
    with_duplicates = np.concatenate([base, base[:, :15], [[0, 0]]], axis=1)  # 15 repeats, the positive twice
    ranks = []
    for negatives in (base, with_duplicates, rng.permutation(with_duplicates[0])[None, :]):
        items, counted, column = prepare_candidates(torch.as_tensor(negatives), torch.tensor([0]))
        ranks.append(positive_rank(torch.gather(torch.as_tensor(table), 1, items), counted, column).item())
    assert ranks[0] == ranks[1] == ranks[2]


def test_matches_the_reference_on_random_scores_with_ties_and_duplicates():
    rng = np.random.default_rng(2)
    users, n_neg, n_items = 400, 30, 60  # 30 draws from 60 items: many duplicates, often the positive too
    negatives = rng.integers(0, n_items, (users, n_neg))
    positives = rng.integers(0, n_items, users)
    table = rng.integers(0, 6, (users, n_items)) / 5.0  # 6 score levels: ties everywhere
    hit, ndcg = vectorised(negatives, positives, table)
    expected = [reference_eval_one(negatives[u].tolist(), int(positives[u]), lambda i, u=u: table[u, i])
                for u in range(users)]
    assert hit.tolist() == [float(h) for h, _ in expected]
    np.testing.assert_allclose(ndcg.numpy(), [n for _, n in expected])
    # The cases the reference's ordering decides are really exercised:
    assert (negatives == positives[:, None]).any(axis=1).sum() > 50
    assert 0 < hit.sum() < users
