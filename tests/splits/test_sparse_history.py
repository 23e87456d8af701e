"""split=sparse_history: truncated users keep exactly their first min(k, n) training events, val / test and the
other users are the base split's, the fingerprint covers k / share / order / seed, groups survive a reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR, compose
from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import EvalResult, group_means
from mmbench.splits import load_or_create
from mmbench.splits.sparse_history import SparseHistory
from mmbench.splits.splitters import LeaveLastOut, RandomSplit


@pytest.fixture(scope="module")
def synth():
    ds = Synthetic(n_users=60, n_items=90, interactions_per_user=20, seed=1).read()
    # distinct, shuffled timestamps so "first by time" differs from event order
    ts = np.random.default_rng(5).permutation(len(ds.interactions)).astype(np.int64)
    object.__setattr__(ds.interactions, "timestamps", ts)
    return ds


def rows(inter, mask=None):
    keep = np.ones(len(inter), bool) if mask is None else mask
    return set(zip(inter.users[keep].tolist(), inter.items[keep].tolist(), inter.timestamps[keep].tolist()))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_truncated_users_keep_their_first_k_training_events_by_time(synth, tmp_path, k):
    base = load_or_create(synth, RandomSplit(seed=3), tmp_path)
    sp = load_or_create(synth, SparseHistory(RandomSplit(seed=3), share=0.25, k=k, order="time", seed=7), tmp_path)
    truncated = sp.groups["truncated"]
    assert len(truncated) == 15  # 25% of the 60 users with training events
    for u in range(synth.n_users):
        mine = base.train.users == u
        got = rows(sp.train, sp.train.users == u)
        if u in truncated:
            ts = base.train.timestamps[mine]
            first = np.sort(ts)[: min(k, len(ts))]  # independent: the k smallest timestamps of the base train
            assert sorted(t for _, _, t in got) == first.tolist()
            assert got <= rows(base.train, mine) and len(got) == min(k, mine.sum())
        else:
            assert got == rows(base.train, mine)
    assert rows(sp.val) == rows(base.val) and rows(sp.test) == rows(base.test)


def test_random_order_is_seeded_and_a_subset(synth, tmp_path):
    a = SparseHistory(RandomSplit(), share=0.5, k=2, order="random", seed=1).assign(synth)
    b = SparseHistory(RandomSplit(), share=0.5, k=2, order="random", seed=1).assign(synth)
    np.testing.assert_array_equal(a, b)
    base = RandomSplit().assign(synth)
    assert ((a == base) | ((base == 0) & (a == -1))).all()  # only training events are dropped
    counts = np.bincount(synth.interactions.users[a == 0], minlength=synth.n_users)
    assert (counts == 2).sum() == 30  # the 30 truncated users keep 2 each; the others keep their >= 14


def test_fingerprint_covers_k_share_order_seed_and_base(synth):
    def fp(**kw):
        args = {"base": RandomSplit(), "share": 0.2, "k": 3, "order": "time", "seed": 0} | kw
        return SparseHistory(**args).fingerprint(synth)

    ref = fp()
    assert ref == fp()
    others = [
        fp(k=1),
        fp(share=0.3),
        fp(order="random"),
        fp(seed=1),
        fp(base=RandomSplit(seed=1)),
        fp(base=LeaveLastOut()),
    ]
    assert len({ref, *others}) == 7


def test_groups_are_saved_and_read_back(synth, tmp_path):
    first = load_or_create(synth, SparseHistory(RandomSplit(), share=0.1, k=1), tmp_path)
    meta = json.loads((first.directory / "split.json").read_text())
    assert meta["groups"]["truncated"] == synth.user_ids[first.groups["truncated"]].tolist()
    again = load_or_create(synth, SparseHistory(RandomSplit(), share=0.1, k=1), tmp_path)
    np.testing.assert_array_equal(again.groups["truncated"], first.groups["truncated"])
    users = np.arange(synth.n_users)
    per_user = {"ndcg@10": users / 10.0}
    evaluated = users[::2]
    result = EvalResult({}, evaluated, {"ndcg@10": per_user["ndcg@10"][::2]})
    means = group_means(result, {"truncated": np.isin(evaluated, again.groups["truncated"])})
    inside = [u for u in users[::2] if u in set(first.groups["truncated"].tolist())]
    assert means["truncated/n_users"] == len(inside)
    assert means["truncated/ndcg@10"] == pytest.approx(np.mean(inside) / 10)


def test_config_composes_with_another_base(synth):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(["split=sparse_history", "split@split.base=leave_last", "split.k=5"])
    sh = instantiate(cfg.split)
    assert isinstance(sh.base, LeaveLastOut) and sh.k == 5 and sh.share == 0.2 and sh.order == "time"


def test_bad_arguments():
    for kw, msg in [({"k": 0}, "split.k"), ({"share": 0}, "split.share"), ({"order": "x"}, "split.order")]:
        with pytest.raises(ValueError, match=msg):
            SparseHistory(RandomSplit(), **kw)


def test_pipeline_logs_truncated_user_metrics(tmp_path):
    from urllib.parse import urlparse

    import pandas as pd
    from mlflow.tracking import MlflowClient

    from mmbench import pipeline
    from tests.helpers.config import cfg_for

    res = pipeline.run(cfg_for(tmp_path, "model=pop", "split=sparse_history", "split.k=1", "split.share=0.3"))
    m = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.metrics
    art = Path(urlparse(res.artifact_uri).path)
    meta = json.loads((art / "split" / "split.json").read_text())
    for part in ("val", "test"):
        per_user = pd.read_csv(art / "metrics" / f"per_user_{part}.tsv", sep="\t")
        mine = per_user[per_user["user"].isin(meta["groups"]["truncated"])]
        assert 0 < len(mine) < len(per_user)
        assert m[f"{part}/truncated/ndcg_at_10"] == pytest.approx(mine["ndcg@10"].mean())
        assert m[f"{part}/truncated/n_users"] == len(mine)
