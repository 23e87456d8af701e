import math

import pytest
import torch

from mmbench.evaluation.metrics import RANKING_METRICS, mae, metric_for, metric_key, rmse

# three users, top-3 lists: hits and number of relevant items
HITS = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.float64)
N_REL = torch.tensor([2.0, 5.0, 1.0], dtype=torch.float64)
L2, L3, L4 = math.log2(2), math.log2(3), math.log2(4)

EXPECTED_AT_3 = {
    "precision": [2 / 3, 1 / 3, 0],
    "recall": [1.0, 1 / 5, 0],  # divides by |R| (5 for user 2, not min(K, |R|) = 3)
    "hit": [1, 1, 0],
    "ndcg": [(1 / L2 + 1 / L4) / (1 / L2 + 1 / L3), (1 / L3) / (1 / L2 + 1 / L3 + 1 / L4), 0],
    "map": [(1 / 1 + 2 / 3) / 2, (1 / 2) / 3, 0],
    "mrr": [1, 1 / 2, 0],
}
EXPECTED_AT_1 = {
    "precision": [1, 0, 0],
    "recall": [0.5, 0, 0],
    "hit": [1, 0, 0],
    "ndcg": [1, 0, 0],
    "map": [1, 0, 0],
    "mrr": [1, 0, 0],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_AT_3))
def test_hand_computed_values(name):
    fn = RANKING_METRICS[name].fn
    torch.testing.assert_close(fn(HITS, N_REL, 3), torch.tensor(EXPECTED_AT_3[name], dtype=torch.float64))
    torch.testing.assert_close(fn(HITS, N_REL, 1), torch.tensor(EXPECTED_AT_1[name], dtype=torch.float64))


def test_ndcg_of_ideal_ranking_is_one_when_fewer_relevant_than_k():
    hits = torch.tensor([[1, 1, 0, 0, 0]], dtype=torch.float64)
    assert RANKING_METRICS["ndcg"].fn(hits, torch.tensor([2.0], dtype=torch.float64), 5).item() == pytest.approx(1)


def test_rating_metrics():
    pred, truth = torch.tensor([3.0, 4.0, 5.0]), torch.tensor([4.0, 4.0, 3.0])
    assert rmse(pred, truth) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae(pred, truth) == pytest.approx(1.0)


def test_directions_and_names():
    assert metric_for("val/ndcg@10").mode == "max"
    assert metric_for("rmse").mode == "min"
    assert metric_key("val/ndcg@10") == "val/ndcg_at_10"
    with pytest.raises(KeyError, match="recall"):
        metric_for("ndgc@10")
