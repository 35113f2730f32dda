"""HR@K and NDCG@K with the exact ranking semantics of the MLPerf v0.5 NCF reference, vectorised.

The reference (ncf.py @ c097c799, eval_one) scores each user's candidates -- its negatives in file order with
the test positive appended last -- puts them in a dict `{item: score}` and takes `heapq.nlargest(K, dict,
key=dict.get)`:
  - duplicate items collapse into one entry (negatives are drawn with replacement);
  - a positive that was also drawn as a negative is one entry, at the position of its FIRST occurrence;
  - nlargest keeps the earlier-inserted item on equal scores, so the positive loses ties against every item
    inserted before it (all of them, unless it was also drawn as a negative).
Hence, for one user with positive p, its score s (the last column) and its first column c:
    rank = #{distinct items i != p : score_i > s, or score_i == s and first column of i < c}
and the user is a hit if rank < K; NDCG = log(2) / log(rank + 2) for a hit, else 0 (the reference's getNDCG).
Scores are compared after the sigmoid, as the reference did (the sigmoid can turn distinct logits into ties).
tests/test_metrics.py cross-checks this against a dict + heapq.nlargest port on random scores with ties.
"""

import math

import torch


def prepare_candidates(negatives: torch.Tensor, positives: torch.Tensor):
    """negatives [U, N], positives [U] -> (items [U, N+1], counted [U, N+1] bool, positive_column [U]).

    items: the negatives then the positive (last column), as the reference builds them.
    counted: True at the first occurrence of every distinct item other than the positive.
    positive_column: the first column holding the positive (N when it was not drawn as a negative).
    Computed once per run; evaluations then only need scores.
    """
    items = torch.cat((negatives, positives[:, None]), dim=1)
    sorted_items, order = torch.sort(items, dim=1, stable=True)  # equal items keep column order
    first_sorted = torch.ones_like(sorted_items, dtype=torch.bool)
    first_sorted[:, 1:] = sorted_items[:, 1:] != sorted_items[:, :-1]
    first = torch.empty_like(first_sorted).scatter_(1, order, first_sorted)
    is_positive = items == positives[:, None]
    counted = first & ~is_positive
    positive_column = is_positive.int().argmax(dim=1)  # first True
    return items, counted, positive_column


def positive_rank(scores: torch.Tensor, counted: torch.Tensor, positive_column: torch.Tensor) -> torch.Tensor:
    """scores [U, N+1] (positive's score in the last column) -> 0-based rank of the positive [U] (int64)."""
    s = scores[:, -1:]
    column = torch.arange(scores.shape[1], device=scores.device)
    ahead = (scores > s) | ((scores == s) & (column[None, :] < positive_column[:, None]))
    return (ahead & counted).sum(dim=1)


def hit_and_ndcg(rank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """0-based ranks [U] -> (hit [U] float64, ndcg [U] float64) at cutoff k."""
    hit = rank < k
    ndcg = math.log(2.0) / torch.log(rank.double() + 2.0)
    return hit.double(), torch.where(hit, ndcg, torch.zeros_like(ndcg))
