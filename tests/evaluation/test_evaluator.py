import numpy as np
import pytest
import torch

from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.base import Capabilities, Recommender
from tests.helpers.data import make_interactions
from tests.helpers.models import SCORES, Fixed


def test_masks_excluded_items_and_ranks_the_rest():
    train = make_interactions([(0, 0), (1, 4)], 3, 5)
    val = make_interactions([(0, 1)], 3, 5)
    test = make_interactions([(0, 2), (1, 0), (2, 3)], 3, 5)
    ev = Evaluator(ks=[1, 2], metrics=["hit", "recall"], progress=False)
    r = ev.evaluate(Fixed(SCORES), test, [train, val], keep_topk=True)
    # user 0: items 0 (train) and 1 (val) masked -> ranks 2, 3; user 1: 4 masked -> 3, 2; user 2: 0, 1
    np.testing.assert_array_equal(r.topk_items, [[2, 3], [3, 2], [0, 1]])
    np.testing.assert_array_equal(r.per_user["hit@1"], [1, 0, 0])
    np.testing.assert_array_equal(r.per_user["hit@2"], [1, 0, 0])
    assert r.means["recall@2"] == pytest.approx(1 / 3)
    assert torch.isfinite(torch.tensor(r.topk_scores)).all()


def test_only_users_with_relevant_items_and_threshold():
    test = make_interactions([(0, 2), (1, 0)], 3, 5, ratings=[5, 2])
    ev = Evaluator(ks=[3], metrics=["hit"], positive_threshold=4, progress=False)
    r = ev.evaluate(Fixed(SCORES), test, [])
    assert r.users.tolist() == [0] and r.n_users == 1


def test_batches_do_not_change_results_and_respect_batch_size():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 30)).tolist()
    pairs = [(u, i) for u in range(50) for i in rng.choice(30, 4, replace=False)]
    target = make_interactions(pairs[::2], 50, 30)
    train = make_interactions(pairs[1::2], 50, 30)
    a_model, b_model = Fixed(scores), Fixed(scores)
    a = Evaluator(batch_size=7, progress=False).evaluate(a_model, target, [train])
    b = Evaluator(batch_size=512, progress=False).evaluate(b_model, target, [train])
    assert max(a_model.batches) <= 7 and len(a_model.batches) == 8
    for k in a.per_user:
        np.testing.assert_allclose(a.per_user[k], b.per_user[k])


def test_rating_metrics_for_models_that_predict():
    class Rating(Fixed):
        capabilities = Capabilities(predicts_ratings=True)

        def predict(self, users, items):
            return self.scores[users, items]

    target = make_interactions([(0, 0), (1, 1)], 3, 5, ratings=[4, 4])
    r = Evaluator(ks=[1], metrics=["hit"], progress=False).evaluate(Rating(SCORES), target, [])
    assert r.means["rmse"] == pytest.approx(np.sqrt((1 + 4) / 2))
    assert r.means["mae"] == pytest.approx(1.5)


def test_no_ranking_metric_ranks_nothing_and_still_gives_rating_metrics():
    """eval=rating (conf/eval/rating.yaml, Surprise's protocol): the model is never asked for full scores."""

    class RatingOnly(Fixed):
        capabilities = Capabilities(predicts_ratings=True)

        def predict(self, users, items):
            return self.scores[users, items]

        def score(self, users, items=None):
            raise AssertionError("a rating-only evaluation must not rank")

    target = make_interactions([(0, 0), (1, 1), (1, 2)], 3, 5, ratings=[4, 4, 2])
    r = Evaluator(metrics=[], progress=False).evaluate(RatingOnly(SCORES), target, [], keep_topk=True)
    errors = [SCORES[0][0] - 4, SCORES[1][1] - 4, SCORES[1][2] - 2]
    assert r.means["rmse"] == pytest.approx(np.sqrt(np.mean(np.square(errors))))
    assert r.means["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert set(r.means) == {"rmse", "mae"} and r.per_user == {} and r.topk_items is None
    assert r.users.tolist() == [0, 1] and r.n_users == 2


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="ndcg"):
        Evaluator(metrics=["ndgc"])


def test_auc_over_the_full_ranking_with_masking():
    # user 0: item 0 in train (masked), relevant {2}; negatives {1, 3, 4} scored 4, 2, 1 vs 3 -> AUC 2/3
    # user 1: relevant {0} scored lowest of the candidates {0, 1, 2, 3} -> AUC 0
    train = make_interactions([(0, 0), (1, 4)], 3, 5)
    test = make_interactions([(0, 2), (1, 0)], 3, 5)
    ev = Evaluator(ks=[2], metrics=["recall", "auc"], progress=False)
    r = ev.evaluate(Fixed(SCORES), test, [train])
    np.testing.assert_allclose(r.per_user["auc"], [2 / 3, 0.0])
    assert set(r.per_user) == {"recall@2", "auc"}
    assert ev.metric_keys == ["recall@2", "auc"]
    with pytest.raises(ValueError, match="auc"):
        Evaluator(metrics=["aucc"])


def test_ties_are_broken_in_a_seeded_random_order_per_user_not_by_id():
    n, users = 1000, 40
    target = make_interactions([(u, i) for u in range(users) for i in range(10)], users, n)  # lowest ids relevant
    flat = Fixed([[1.0] * n] * users)
    ev = Evaluator(ks=[10], metrics=["hit"], progress=False)
    a = ev.evaluate(flat, target, [], keep_topk=True)
    b = Evaluator(ks=[10], metrics=["hit"], batch_size=7, progress=False).evaluate(flat, target, [], keep_topk=True)
    c = Evaluator(ks=[10], metrics=["hit"], tie_seed=1, progress=False).evaluate(flat, target, [], keep_topk=True)
    np.testing.assert_array_equal(a.topk_items, b.topk_items)  # reproducible, whatever the batching
    assert not np.array_equal(a.topk_items, c.topk_items)  # the seed decides, not the ids
    assert len({tuple(row) for row in a.topk_items.tolist()}) == users  # every user has an own order
    # a random top-10 of 1000 items hits one of 10 relevant items with probability ~0.096
    assert a.means["hit@10"] < 0.3
    expected = [float(bool(set(row) & set(range(10)))) for row in a.topk_items.tolist()]
    np.testing.assert_array_equal(a.per_user["hit@10"], expected)


def test_sparse_bucket_is_the_users_with_fewest_training_events():
    # training counts: user 0 -> 3, user 1 -> 1, user 2 -> 0, user 3 -> 2; 25% quantile of [3,1,0,2] = 0.75
    train = make_interactions([(0, 0), (0, 1), (0, 4), (1, 4), (3, 0), (3, 1)], 4, 5)
    test = make_interactions([(0, 2), (1, 0), (2, 0), (3, 4)], 4, 5)
    scores = [[5, 4, 3, 2, 1], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [1, 2, 3, 4, 5]]
    ev = Evaluator(ks=[1], metrics=["hit"], progress=False, sparse_quantile=0.25)
    r = ev.evaluate(Fixed(scores), test, [train])
    assert r.per_user["hit@1"].tolist() == [1, 0, 1, 1]
    assert ev.sparse_means(r, train) == {"sparse/hit@1": 1.0, "sparse/n_users": 1.0}  # user 2 only
    ev.sparse_quantile = 0.5  # median 1.5: users 1 and 2
    assert ev.sparse_means(r, train) == {"sparse/hit@1": 0.5, "sparse/n_users": 2.0}
    assert Evaluator(sparse_quantile=None, progress=False).sparse_means(r, train) == {}
    with pytest.raises(ValueError, match="sparse_quantile"):
        Evaluator(sparse_quantile=1.5)


def test_a_masked_item_is_never_a_hit_and_short_lists_are_misses():
    # the case: 5 items, train {0..3}, test {0, 4}: only item 4 is rankable; item 0 (masked) never counts
    train = make_interactions([(0, 0), (0, 1), (0, 2), (0, 3)], 1, 5)
    test = make_interactions([(0, 0), (0, 4)], 1, 5)
    ev = Evaluator(ks=[10], metrics=["recall", "precision", "ndcg", "hit", "map", "mrr"], progress=False)
    r = ev.evaluate(Fixed([[5, 4, 3, 2, 1]]), test, [train], keep_topk=True)
    assert r.means["recall@10"] == 0.5  # item 4 of {0, 4}
    assert r.means["precision@10"] == pytest.approx(1 / 10)  # precision still divides by K
    assert r.means["ndcg@10"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert r.means["map@10"] == pytest.approx(1 / 2) and r.means["mrr@10"] == 1.0 and r.means["hit@10"] == 1.0
    assert r.topk_items.tolist() == [[4, -1, -1, -1, -1]]  # empty slots: item -1, score NaN
    assert r.topk_scores[0, 0] == 1 and np.isnan(r.topk_scores[0, 1:]).all()


def test_non_candidates_are_never_hits():
    # candidates="target": only items of the target part rank; an excluded target item never counts
    train = make_interactions([(0, 1)], 1, 6)
    test = make_interactions([(0, 1), (0, 2)], 1, 6)
    ev = Evaluator(ks=[5], metrics=["recall", "hit"], candidates="target", progress=False)
    r = ev.evaluate(Fixed([[6, 5, 4, 3, 2, 1]]), test, [train], keep_topk=True)
    assert r.topk_items.tolist() == [[2, -1, -1, -1, -1]]
    assert r.means["recall@5"] == 0.5


def reference_topk(scores: np.ndarray, keys: np.ndarray, k: int) -> list[list[int]]:
    """Plain Python: sort every item by (-score, key), take k."""
    return [sorted(range(len(row)), key=lambda i: (-row[i], key_row[i]))[:k] for row, key_row in zip(scores, keys)]


def test_ties_are_ordered_by_the_hash_keys_everywhere():
    from mmbench.evaluation.evaluator import tie_keys

    rng = np.random.default_rng(3)
    n_users, n_items, k = 30, 2000, 20
    scores = rng.integers(0, 3, (n_users, n_items)).astype(np.float32)  # ~667 ties at the top, across K
    scores[:, :5] = 3.0  # and a few clear winners above the tie block
    model = Fixed(scores.tolist())
    target = make_interactions([(u, i) for u in range(n_users) for i in rng.choice(n_items, 30)], n_users, n_items)
    keys = tie_keys(torch.arange(n_users), n_items, seed=0).numpy()
    expected = reference_topk(scores, keys, k)
    by_topk = torch.topk(torch.tensor(scores), k, dim=1).indices.tolist()
    assert by_topk != expected  # torch.topk's own tie order is not the rule
    runs = [
        Evaluator(ks=[10, k], metrics=["ndcg", "mrr"], batch_size=b, progress=False).evaluate(
            model, target, [], keep_topk=True
        )
        for b in (512, 7)
    ]
    for r in runs:
        assert r.topk_items.tolist() == expected
    for key in runs[0].per_user:
        np.testing.assert_array_equal(runs[0].per_user[key], runs[1].per_user[key])


def test_select_topk_with_infinities_and_small_rows():
    from mmbench.evaluation.evaluator import select_topk

    scores = torch.tensor([[1.0, float("-inf"), 1.0, 2.0], [float("-inf")] * 4])
    keys = torch.tensor([[4, 3, 2, 1], [1, 2, 3, 4]])
    items, top = select_topk(scores, keys, 3)
    assert items.tolist() == [[3, 2, 0], [0, 1, 2]]
    assert top[0].tolist() == [2.0, 1.0, 1.0]
    assert select_topk(scores, keys, 10)[0].tolist() == [[3, 2, 0, 1], [0, 1, 2, 3]]


@pytest.mark.parametrize("levels", [3, 50, None])  # many ties across the cut, a few, none (continuous scores)
def test_select_topk_hashes_keys_only_where_they_decide_and_matches_the_full_sort(levels):
    from mmbench.evaluation.evaluator import pair_keys, select_topk, tie_keys

    rng = np.random.default_rng(7)
    n_users, n_items, k = 40, 300, 20
    scores = rng.random((n_users, n_items)) if levels is None else rng.integers(0, levels, (n_users, n_items))
    scores = torch.tensor(scores, dtype=torch.float32)
    scores[0, 5:] = float("-inf")  # fewer rankable items than k
    scores[1, :] = 1.0  # one tie over the whole row
    users = torch.arange(100, 100 + n_users)
    keys = tie_keys(users, n_items, seed=4)
    asked: list[int] = []

    def key_of(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        asked.append(int(torch.broadcast_tensors(rows, cols)[0].numel()))
        return pair_keys(users[rows], cols, n_items, 4)

    by_fn, top_fn = select_topk(scores, key_of, k)
    by_tensor, top_tensor = select_topk(scores, keys, k)
    expected = reference_topk(scores.numpy(), keys.numpy(), k)
    assert by_fn.tolist() == by_tensor.tolist() == expected
    torch.testing.assert_close(top_fn, top_tensor)
    # keys are hashed for the k chosen of every row, and in rows with a tie across the cut for the columns at v
    s, v = scores.numpy(), torch.topk(scores, k, dim=1).values[:, -1:].numpy()
    tied_rows = (s >= v).sum(1) > k
    assert sum(asked) == n_users * k + int((s == v)[tied_rows].sum())
    if levels is None:
        assert tied_rows.tolist() == [True, True] + [False] * (n_users - 2)  # the -inf row and the all-equal row


class Dropout(torch.nn.Module, Recommender):
    """Scores through dropout: random in training mode, fixed in eval mode."""

    capabilities = Capabilities(predicts_ratings=True)

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(4, 20))
        self.drop = torch.nn.Dropout(0.5)
        self.seen_training = []

    def fit(self, train, val=None):
        return self

    def score(self, users, items=None):
        self.seen_training.append(self.training)
        return self.drop(self.emb[users] @ self.emb.T.repeat(1, 5))

    def predict(self, users, items):
        self.seen_training.append(self.training)
        return self.score(users)[torch.arange(len(users)), items]


def test_scoring_runs_in_eval_mode_and_restores_the_mode():
    model = Dropout()
    target = make_interactions([(u, i) for u in range(4) for i in (1, 7, 13)], 4, 20, ratings=[3.0] * 12)
    ev = Evaluator(ks=[5], metrics=["ndcg"], progress=False, batch_size=2)
    a, b = ev.evaluate(model, target, []), ev.evaluate(model, target, [])
    assert a.means == b.means
    assert model.training  # restored
    assert model.seen_training and not any(model.seen_training)
    model.eval()
    ev.evaluate(model, target, [])
    assert not model.training


def test_nan_scores_fail_naming_the_model_user_and_item():
    scores = [list(map(float, row)) for row in SCORES]
    scores[1][2] = float("nan")
    target = make_interactions([(0, 1), (1, 3)], len(scores), len(scores[0]))
    with pytest.raises(FloatingPointError, match=r"Fixed.score gave 1 NaN scores .* user 1, item 2"):
        Evaluator(ks=[2], progress=False).evaluate(Fixed(scores), target)


def test_infinite_scores_of_both_signs_are_ranked_not_taken_for_nan():
    # +inf and -inf sum to NaN: the cheap gate fires, the cell-by-cell test finds no NaN, and ranking goes on
    scores = [list(map(float, row)) for row in SCORES]
    scores[0][0], scores[0][1] = float("inf"), float("-inf")
    target = make_interactions([(0, 0), (1, 3)], len(scores), len(scores[0]))
    result = Evaluator(ks=[1], metrics=["hit"], progress=False).evaluate(Fixed(scores), target, keep_topk=True)
    assert result.topk_items[0, 0] == 0 and result.per_user["hit@1"][0] == 1.0
