"""scripts/peers/common.py: the split in RecBole's and MMRec's formats, and a peer's scores ranked by mmbench."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.data.interactions import Dataset, Interactions
from mmbench.data.synthetic import Synthetic
from mmbench.encoders.base import ModalityFeatures
from mmbench.evaluation.evaluator import Evaluator
from mmbench.splits.base import Split
from scripts.peers.common import (
    evaluate_peer,
    export_mmrec,
    export_recbole,
    import_scores,
    mmbench_row,
    run_peer,
    seed_summary,
)


def make_split(inter: Interactions, labels: np.ndarray, tmp: Path) -> Split:
    return Split(*(inter.subset(labels == k) for k in range(3)), fingerprint="f" * 64, directory=tmp)


@pytest.fixture()
def data(tmp_path) -> tuple[Dataset, Split]:
    ds = Synthetic(n_users=30, n_items=40, interactions_per_user=10, seed=5).read()
    labels = np.random.default_rng(0).choice(3, size=len(ds.interactions), p=[0.7, 0.15, 0.15])
    return ds, make_split(ds.interactions, labels, tmp_path)


def pairs(users, items) -> list[tuple[str, str]]:
    return sorted(zip(map(str, users), map(str, items), strict=True))


def test_export_recbole_writes_its_benchmark_files(data, tmp_path):
    ds, split = data
    paths = export_recbole(ds, split, tmp_path / "out", "toy")
    assert {p.name for p in paths.values()} == {"toy.train.inter", "toy.valid.inter", "toy.test.inter"}
    assert {p.parent for p in paths.values()} == {tmp_path / "out" / "toy"}
    for part in ("train", "val", "test"):
        text = paths[part].read_text().splitlines()
        assert text[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
        inter = getattr(split, part)
        assert len(text) == len(inter) + 1
        back = pd.read_csv(paths[part], sep="\t", dtype=str)
        expected = pairs(ds.user_ids[inter.users], ds.item_ids[inter.items])  # raw ids, as tokens
        assert pairs(back.iloc[:, 0], back.iloc[:, 1]) == expected
        assert np.allclose(back.iloc[:, 2].astype(float), inter.ratings)
        assert (back.iloc[:, 3].astype(float) == inter.timestamps).all()


def test_export_mmrec_writes_its_inter_file_and_features(data, tmp_path):
    ds, split = data
    rng = np.random.default_rng(1)
    mask = rng.random(ds.n_items) < 0.8
    image = ModalityFeatures("image", mask, rng.normal(size=(ds.n_items, 6)).astype(np.float32))
    text = ModalityFeatures("text", np.ones(ds.n_items, bool), rng.normal(size=(ds.n_items, 4)).astype(np.float32))
    folder = export_mmrec(ds, split, {"image": image, "text": text}, tmp_path, "toy")
    lines = (folder / "toy.inter").read_text().splitlines()
    assert lines[0] == "userID\titemID\trating\ttimestamp\tx_label"
    back = pd.read_csv(folder / "toy.inter", sep="\t")
    assert len(back) == len(split.train) + len(split.val) + len(split.test)
    assert back["x_label"].value_counts().to_dict() == {0: len(split.train), 1: len(split.val), 2: len(split.test)}
    for label, part in enumerate((split.train, split.val, split.test)):
        rows = back[back["x_label"] == label]
        assert pairs(rows["userID"], rows["itemID"]) == pairs(part.users, part.items)  # contiguous ids
    # MMRec's own counts: item_num = max itemID + 1 = the feature files' rows
    assert back["itemID"].max() + 1 == ds.n_items and back["userID"].max() + 1 == ds.n_users
    img, txt = np.load(folder / "image_feat.npy"), np.load(folder / "text_feat.npy")
    assert img.shape == (ds.n_items, 6) and txt.shape == (ds.n_items, 4) and img.dtype == np.float32
    assert (img[~mask] == 0).all() and np.array_equal(img[mask], image.values[mask])
    assert np.array_equal(txt, text.values)


def test_export_mmrec_refuses_a_last_item_without_events(data, tmp_path):
    ds, split = data
    keep = lambda x: x.subset(x.items != ds.n_items - 1)  # noqa: E731
    short = Split(keep(split.train), keep(split.val), keep(split.test), split.fingerprint, split.directory)
    with pytest.raises(ValueError, match=f"item {ds.n_items - 1} .* has no event"):
        export_mmrec(ds, short, {}, tmp_path, "toy")
    with pytest.raises(ValueError, match="MMRec reads only modalities"):
        export_mmrec(ds, split, {"audio": ModalityFeatures("audio", np.ones(ds.n_items, bool))}, tmp_path, "toy")


def fake_peer(folder: Path, users: list[str], items: list[str], scores: np.ndarray) -> Path:
    """A runner's output (scores.npy, users.txt, items.txt), rows and columns in the peer's own order."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "scores.npy", scores.astype(np.float32))
    (folder / "users.txt").write_text("".join(f"{u}\n" for u in users))
    (folder / "items.txt").write_text("".join(f"{i}\n" for i in items))
    return folder


def u(*x: int) -> np.ndarray:
    return np.array(x)


def part(users: list[int], items: list[int]) -> Interactions:
    n = len(users)
    return Interactions(np.array(users), np.array(items), np.ones(n, np.float32), np.zeros(n, np.int64), 2, 5)


def test_peer_scores_are_mapped_and_ranked_by_mmbench(tmp_path):
    """Two users (raw 10, 20), five items (raw 100..104). Train: u0-i0, u1-i1; val: u0-i1, u1-i2; test: u0-{i2,i3},
    u1-i4. The peer lists users 20, 10 and items 104, 103, 102, 101 (it never saw 100).
    u0 (raw 10): i1 0.95 (val: masked), i4 0.7, i2 0.6, i3 0.2 -> ranking i4, i2, i3: hits at ranks 2 and 3;
        ndcg@2 = (1/log2 3) / (1 + 1/log2 3) = 0.386853, recall@2 = 1/2, mrr@2 = 1/2.
    u1 (raw 20): i1 train and i2 val masked, i0 unknown (-inf), i3 0.9, i4 0.1 -> i4 at rank 2:
        ndcg@2 = 1/log2 3 = 0.630930, recall@2 = 1, mrr@2 = 1/2."""
    split = Split(part([0, 1], [0, 1]), part([0, 1], [1, 2]), part([0, 0, 1], [2, 3, 4]), "f" * 64, tmp_path)
    scores = np.array([[0.1, 0.9, 0.8, 0.5], [0.7, 0.2, 0.6, 0.95]])  # rows 20, 10; columns 104, 103, 102, 101
    folder = fake_peer(tmp_path / "peer", ["20", "10"], ["104", "103", "102", "101"], scores)
    mapped = import_scores(folder, u(10, 20), u(100, 101, 102, 103, 104))
    assert np.array_equal(mapped[0], np.array([-np.inf, 0.95, 0.6, 0.2, 0.7], np.float32))
    assert np.array_equal(mapped[1], np.array([-np.inf, 0.5, 0.8, 0.9, 0.1], np.float32))
    ev = Evaluator(ks=[1, 2], metrics=["ndcg", "recall", "hit", "mrr"], progress=False, sparse_quantile=None)
    r = evaluate_peer(mapped, split, ev)
    assert r.n_users == 2
    g = 1 / np.log2(3)
    assert r.means["ndcg@2"] == pytest.approx((g / (1 + g) + g) / 2)
    assert r.means["ndcg@2"] == pytest.approx(0.508891, abs=1e-6)
    assert r.means["recall@2"] == pytest.approx(0.75)
    assert r.means["hit@1"] == 0 and r.means["mrr@2"] == pytest.approx(0.5)


def test_import_scores_rejects_unknown_ids_nan_and_bad_shapes(tmp_path):
    ok = dict(users=["1", "2"], items=["a", "b"])
    f = fake_peer(tmp_path / "a", ["1", "9"], ok["items"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"users.txt: line 2: id '9' is not in mmbench's split"):
        import_scores(f, np.array([1, 2]), np.array(["a", "b"]))
    f = fake_peer(tmp_path / "b", ok["users"], ok["items"], np.array([[0.0, np.nan], [1, 2]]))
    with pytest.raises(ValueError, match="NaN score, e.g. user '1', item 'b'"):
        import_scores(f, np.array([1, 2]), np.array(["a", "b"]))
    f = fake_peer(tmp_path / "c", ok["users"], ["a"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"shape \(2, 2\), but users.txt/items.txt list 2 x 1"):
        import_scores(f, np.array([1, 2]), np.array(["a", "b"]))


def test_seed_summary_gives_mean_and_sample_sd_per_model_side_and_settings():
    rows = [
        {"model": "bpr", "side": "mmbench", "settings": "d", "seed": s, "ndcg@20": v, "recall@20": v + 0.1}
        | {"epochs": e, "fit_s": f, "wall_s": f + 1.0}
        for s, v, e, f in ((0, 0.30, 90, 10.0), (1, 0.32, 100, 12.0), (2, 0.31, 80, 30.0))
    ] + [{"model": "bpr", "side": "MMRec", "settings": "mmbench", "seed": 0, "ndcg@20": 0.3, "recall@20": 0.4}]
    mmb, peer = seed_summary(rows)
    # mean 0.31, sample sd sqrt(((-0.01)^2 + 0.01^2 + 0) / 2) = 0.01
    assert mmb == {
        "model": "bpr", "side": "mmbench", "settings": "d", "seeds": "0 1 2",
        "ndcg@20": "0.3100 ± 0.0100", "recall@20": "0.4100 ± 0.0100",
        "epochs": "90", "fit_s": 12.0, "wall_s": 13.0,
    }  # fmt: skip
    assert peer["seeds"] == "0" and peer["ndcg@20"] == "0.3000 ± 0.0000"
    assert peer["fit_s"] is None and peer["epochs"] is None


def test_mmbench_row_reads_the_run_and_refuses_another_split(tmp_path):
    split = Split(*(part([0], [0]) for _ in range(3)), "abc", tmp_path)
    m = {"test/ndcg@20": 0.3, "test/recall@20": 0.4, "test/ndcg@10": 0.2, "test/recall@10": 0.1}
    m |= {"test/n_users": 943.0, "fit/epochs": 85.0, "time/fit_s": 15.5}
    run = {"metrics": m, "fingerprint": "abc", "wall_s": 16.0}
    assert mmbench_row(run, "bpr", 2, split) == {
        "model": "bpr", "side": "mmbench", "settings": "conf/model defaults", "seed": 2,
        "ndcg@20": 0.3, "recall@20": 0.4, "ndcg@10": 0.2, "recall@10": 0.1,
        "n_users": 943, "epochs": 85, "fit_s": 15.5, "wall_s": 16.0,
    }  # fmt: skip
    with pytest.raises(AssertionError, match="another split"):
        mmbench_row(run | {"fingerprint": "xyz"}, "bpr", 2, split)


def test_run_peer_takes_a_relative_python_from_the_callers_folder(tmp_path, monkeypatch):
    """The README's commands pass ``--peer-python ../mmbench-peers/venv/bin/python``; the runner runs in its own
    ``out`` folder, where that relative path does not exist."""
    env = tmp_path / "env"
    env.mkdir()
    (env / "python").symlink_to(sys.executable)  # a venv's python is a link: it must be kept, not resolved
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import json, pathlib, sys\n"
        "job = json.loads(pathlib.Path(sys.argv[1]).read_text())\n"
        "pathlib.Path('result.json').write_text(json.dumps({'echo': job['x'], 'python': sys.executable}))\n"
    )
    monkeypatch.chdir(tmp_path)
    res = run_peer("env/python", runner, {"x": 7}, tmp_path / "runs" / "one")
    assert res["echo"] == 7 and res["python"] == str(env / "python") and res["wall_s"] > 0
