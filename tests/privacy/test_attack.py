import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.models.neural.bpr import BPR
from mmbench.privacy.attack import MembershipInference, auc, pair_scores
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer
from tests.helpers.data import make_interactions
from tests.helpers.models import Fixed


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    ds = Preprocess()(Synthetic(n_users=200, n_items=150, seed=1).read())
    return load_or_create(ds, RandomSplit(), tmp_path_factory.mktemp("splits"))


def test_auc_is_sklearns_roc_auc_with_ties():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 300).astype(float), rng.integers(1, 6, 200).astype(float)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[pos, neg])
    assert auc(pos, neg) == pytest.approx(expected, abs=1e-12)
    assert auc(np.array([2.0, 3.0]), np.array([1.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        auc(np.array([1.0]), np.array([]))


def test_pair_scores_are_the_models_scores_and_the_items_rank_from_the_bottom():
    scores = torch.tensor([[0.1, 0.5, 0.3, 0.9], [2.0, 1.0, 0.0, 3.0], [0.0, 0.0, 1.0, 0.0]])
    pairs = make_interactions([(1, 0), (0, 1), (2, 2), (0, 3), (2, 0)], 3, 4)
    score, frac = pair_scores(Fixed(scores.tolist()), pairs, batch_users=2)  # batches split the users
    assert score.tolist() == pytest.approx([2.0, 0.5, 1.0, 0.9, 0.0])
    # items scored strictly lower, out of 4: user 1 item 0 beats 1.0 and 0.0; user 2 item 0 beats nothing
    assert frac.tolist() == [2 / 4, 2 / 4, 3 / 4, 3 / 4, 0 / 4]


def test_a_model_that_never_saw_the_data_gives_an_auc_of_one_half(split):
    """Built but untrained: members and non-members of a per-user random split are exchangeable. With ~3,300
    members and ~500 non-members the AUC's standard error is about 0.014; the tolerance 0.05 is 3.5 of them."""
    torch.manual_seed(0)
    model = BPR(embedding_dim=32)
    model.build(split.train)
    out = MembershipInference()(model, split.train, split.test)
    assert out["privacy/mia_nonmembers"] == len(split.test)
    assert out["privacy/mia_members"] == np.isin(split.train.users, split.test.users).sum()
    assert out["privacy/mia_auc"] == pytest.approx(0.5, abs=0.05)
    assert out["privacy/mia_auc_rank"] == pytest.approx(0.5, abs=0.05)


def test_an_overfit_model_gives_its_training_events_away(split):
    """Large embeddings, no regularisation, many epochs, no early stopping: training events score far above the
    held-out events of the same users."""
    model = BPR(embedding_dim=64, reg=0.0, optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    NeuralTrainer(max_epochs=40, batch_size=512, enable_progress_bar=False).fit(model, split.train)
    out = MembershipInference()(model, split.train, split.test)
    assert out["privacy/mia_auc"] > 0.75
    assert out["privacy/mia_auc_rank"] > 0.75
