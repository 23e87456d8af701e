import tempfile

import pytest
import torch

from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    ds = Preprocess()(Synthetic(n_users=150, n_items=200, seed=0).read())
    return load_or_create(ds, RandomSplit(), tmp_path_factory.mktemp("splits"))


def test_early_stopping_restores_the_best_validation_epoch(split, tmp_path, monkeypatch):
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)
    model = BPR(embedding_dim=16)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the checkpoint goes without checkpoint_dir
    rep = NeuralTrainer(max_epochs=40, patience=3, batch_size=256, enable_progress_bar=False).fit(
        model, split.train, split.val, ev
    )
    assert rep.best_epoch is not None and rep.epochs <= 40
    # its temporary checkpoint folder is gone once the best weights are loaded (no file left per run)
    assert rep.checkpoint is None and list(tmp_path.glob("mmbench-ckpt-*")) == []
    # the model left behind is the best checkpoint: its validation score is the recorded best
    again = ev.evaluate(model, split.val, [split.train]).means["ndcg@10"]
    assert again == pytest.approx(rep.best_score, abs=1e-6)


def test_monitor_must_be_a_computed_validation_metric(split):
    ev = Evaluator(ks=[10], metrics=["recall"], progress=False)
    with pytest.raises(ValueError, match="not computed"):
        NeuralTrainer(max_epochs=1, monitor="ndcg@10").fit(BPR(), split.train, split.val, ev)
    with pytest.raises(KeyError):
        NeuralTrainer(monitor="ndgc@10")


def test_rating_models_can_select_the_epoch_by_validation_rmse(split, tmp_path):
    from mmbench.encoders import build_features
    from mmbench.encoders.image import SeedCNN
    from mmbench.encoders.text import LSTMEncoder
    from mmbench.models.multimodal.seed_cnn_lstm import SeedCNNLSTMPersonal

    ds = Preprocess()(Synthetic(n_users=150, n_items=200, seed=0).read())
    feats, _, _ = build_features(
        {
            "image": SeedCNN(image_size=8, out_dim=8),
            "text": LSTMEncoder(vocab_size=50, embed_dim=8, hidden_dim=8, max_len=4),
        },
        ds,
        tmp_path,
    )
    model = SeedCNNLSTMPersonal(embedding_dim=4)
    model.set_features(feats)
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)
    rep = NeuralTrainer(max_epochs=6, patience=2, batch_size=512, monitor="rmse", enable_progress_bar=False).fit(
        model, split.train, split.val, ev
    )
    assert rep.best_epoch is not None and rep.best_score is not None
    assert ev.rating_means(model, split.val)["rmse"] == pytest.approx(rep.best_score, abs=1e-5)
    with pytest.raises(ValueError, match="predicts ratings"):
        NeuralTrainer(max_epochs=1, monitor="rmse").fit(BPR(), split.train, split.val, ev)


class UserIdLoss(BPR):
    """BPR whose loss is the mean user id of the batch (plus 0 x the weights, so it has a gradient): the epoch's
    train/loss is then known without training, the mean user id over the epoch's rows."""

    def loss(self, batch):
        return batch[0].double().mean() + 0.0 * self.user_emb.weight.sum()


def test_train_loss_is_the_epoch_mean_over_rows(split, tmp_path):
    import pandas as pd
    from pytorch_lightning.loggers import CSVLogger

    # 300-row batches: the epoch's last batch is smaller, so a mean of batch means would differ from the row mean
    assert len(split.train) % 300
    logger = CSVLogger(tmp_path, name="run")
    NeuralTrainer(max_epochs=2, batch_size=300, enable_progress_bar=False).fit(
        UserIdLoss(embedding_dim=4), split.train, logger=logger
    )
    logged = pd.read_csv(f"{logger.log_dir}/metrics.csv")["train/loss"].dropna().tolist()
    assert logged == pytest.approx([split.train.users.mean()] * 2, rel=1e-6)


@pytest.mark.parametrize("batches_per_call", [1, 3, 1000])
def test_updates_are_a_plain_loop_of_optimizer_steps_whatever_the_batches_per_call(split, batches_per_call):
    import pytorch_lightning as pl
    import torch

    # the reference: zero the gradients, loss, backward, step, for every batch of the sampler's epochs, by hand
    pl.seed_everything(0, workers=True, verbose=False)
    ref = BPR(embedding_dim=8)
    ref.build(split.train)
    opt = ref.configure_optimizer()
    batches = ref.train_data(split.train, 128, 0)
    for _ in range(3):
        for batch in batches:
            opt.zero_grad()
            ref.loss(batch).backward()
            opt.step()
    model = BPR(embedding_dim=8)
    trainer = NeuralTrainer(max_epochs=3, batch_size=128, enable_progress_bar=False, batches_per_call=batches_per_call)
    rep = trainer.fit(model, split.train)
    assert rep.steps == 3 * len(batches)  # one optimizer step per batch, counted by Lightning
    for key, value in ref.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key  # bit for bit


def test_batches_per_call_must_be_positive():
    with pytest.raises(ValueError, match="trainer.batches_per_call=0"):
        NeuralTrainer(batches_per_call=0)


class ShiftedBPR(BPR):
    """BPR plus one dense parameter: with ``sparse`` it trains with two optimizers (lazy Adam for the tables, Adam for
    the shift)."""

    def build(self, train):
        super().build(train)
        self.shift = torch.nn.Parameter(torch.zeros(1))

    def loss(self, batch):
        return super().loss(batch) + self.shift.pow(2).sum()


@pytest.mark.parametrize(("sparse", "n_optimizers"), [(False, 1), (True, 2)])
def test_steps_count_batches_whatever_the_number_of_optimizers(split, sparse, n_optimizers):
    model = ShiftedBPR(sparse=sparse)
    rep = NeuralTrainer(max_epochs=3, batch_size=256, enable_progress_bar=False).fit(model, split.train)
    optimizers = model.configure_optimizer()
    assert len(optimizers if isinstance(optimizers, list) else [optimizers]) == n_optimizers
    assert rep.steps == 3 * -(-len(split.train) // 256)  # Lightning's global step counts every optimizer's steps
