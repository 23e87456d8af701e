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


def test_auc_and_full_map_hand_computed():
    from mmbench.evaluation.metrics import FULL_RANKING_METRICS

    # user 0: relevant {0, 2}, item 4 excluded (its high score must not count), negatives {1, 3}
    #   pairs (0,1) (0,3) won, (2,1) (2,3) lost -> AUC 2/4; descending order 0,1,3,2 -> AP (1/1 + 2/4) / 2
    # user 1: relevant {0}, negatives {1, 2, 3}: tie with 1 (1/2), beats 2 and 3 -> AUC 2.5/3; AP 1
    scores = torch.tensor([[0.9, 0.8, 0.3, 0.5, 5.0], [1.0, 1.0, 0.0, 0.5, 0.2]])
    relevant = torch.tensor([[1, 0, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    candidate = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    auc = FULL_RANKING_METRICS["auc"].fn(scores, relevant, candidate)
    torch.testing.assert_close(auc, torch.tensor([0.5, 2.5 / 3], dtype=torch.float64))
    ap = FULL_RANKING_METRICS["map_full"].fn(scores, relevant, candidate)
    torch.testing.assert_close(ap, torch.tensor([0.75, 1.0], dtype=torch.float64))
    assert metric_for("auc").mode == "max"


def test_auc_matches_the_pair_count_on_random_scores():
    from mmbench.evaluation.metrics import FULL_RANKING_METRICS

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (8, 30), generator=g).float()  # many ties
    relevant = torch.rand(8, 30, generator=g) < 0.2
    relevant[:, 0] = True
    candidate = (torch.rand(8, 30, generator=g) < 0.8) | relevant
    relevant[:, 1], candidate[:, 1] = False, True  # at least one negative
    got = FULL_RANKING_METRICS["auc"].fn(scores, relevant, candidate)
    for r in range(8):
        pos = scores[r][relevant[r]]
        neg = scores[r][candidate[r] & ~relevant[r]]
        d = pos[:, None] - neg[None, :]
        expected = ((d > 0).double() + 0.5 * (d == 0).double()).mean()
        assert got[r].item() == pytest.approx(expected.item())
