"""dataset=lattice / amazon_baby: LATTICE JSON split folders, their published split and features."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.lattice import Lattice
from mmbench.data.readers import DataFormatError
from mmbench.splits.splitters import PredefinedColumn, PublishedSplit, RandomSplit

REQUIRE_DATA = bool(os.environ.get("MMBENCH_REQUIRE_DATA"))  # then a missing data file fails, not skips
BABY = Path(os.environ.get("MMBENCH_DATA_DIR", "/nonexistent")) / "amazon" / "baby"


def write_folder(root: Path, train=None, val=None, test=None) -> Path:
    """3 users, 4 items (item 3 'D' has no event); maps comma- and tab-separated as both occur in the wild."""
    (root / "5-core").mkdir(parents=True, exist_ok=True)
    parts = {
        "train": train or {"0": [0, 1], "1": [1, 2], "2": [0]},
        "val": val or {"0": [2], "1": [0], "2": [1]},
        "test": test or {"0": [3], "1": [], "2": [2]},
    }
    for p, d in parts.items():
        (root / "5-core" / f"{p}.json").write_text(json.dumps(d))
    (root / "i_id_mapping.csv").write_text("asin,itemID\nB,1\nA,0\nC,2\nD,3\n")
    (root / "u_id_mapping.csv").write_text("user_id\tuserID\nuz\t0\nux\t1\nuy\t2\n")
    return root


def test_reads_the_published_split_with_raw_ids_and_features(tmp_path):
    root = write_folder(tmp_path)
    np.save(root / "image_feat.npy", np.arange(8, dtype=np.float64).reshape(4, 2))  # row k = item index k
    ds = Lattice(str(root)).read()
    assert ds.user_ids.tolist() == ["ux", "uy", "uz"] and ds.item_ids.tolist() == ["A", "B", "C", "D"]
    assert len(ds.interactions) == 10 and ds.interactions.ratings.tolist() == [1.0] * 10
    # user index 0 is 'uz' (contiguous 2), item index 1 is 'B' (contiguous 1)
    assert (ds.interactions.users[:2].tolist(), ds.interactions.items[:2].tolist()) == ([2, 2], [0, 1])
    labels = PublishedSplit().assign(ds)
    assert np.bincount(labels).tolist() == [5, 3, 2]
    first_test = int(np.flatnonzero(labels == 2)[0])
    assert (ds.user_ids[ds.interactions.users[first_test]], ds.item_ids[ds.interactions.items[first_test]]) == (
        "uz",
        "D",
    )
    img = ds.content["image_feat"]
    np.testing.assert_array_equal(img.values, [[0, 1], [2, 3], [4, 5], [6, 7]])
    assert img.mask.all() and set(ds.files) == {
        "5-core/train.json", "5-core/val.json", "5-core/test.json", "i_id_mapping.csv", "u_id_mapping.csv",
        "image_feat.npy",
    }  # fmt: skip


def test_split_fingerprint_covers_the_published_split(tmp_path):
    a = Lattice(str(write_folder(tmp_path / "a"))).read()
    # the same events, one moved from val to test
    b = Lattice(
        str(write_folder(tmp_path / "b", val={"0": [2], "1": [0], "2": []}, test={"0": [3], "1": [], "2": [2, 1]}))
    ).read()
    assert len(a.interactions) == len(b.interactions) and a.published_split is not None
    assert PublishedSplit().fingerprint(a) != PublishedSplit().fingerprint(b)
    assert PublishedSplit().fingerprint(a) == PublishedSplit().fingerprint(Lattice(str(tmp_path / "a")).read())


def test_without_maps_the_indices_are_the_raw_ids(tmp_path):
    root = write_folder(tmp_path)
    ds = Lattice(str(root), item_map=None, user_map=None).read()
    assert ds.user_ids.tolist() == [0, 1, 2] and ds.item_ids.tolist() == [0, 1, 2, 3]


def test_a_json_user_map_like_user2id_json(tmp_path):
    root = write_folder(tmp_path)
    (root / "user2id.json").write_text('{"a": 2, "b": 0, "c": 1}')
    ds = Lattice(str(root), user_map="user2id.json").read()
    assert ds.user_ids.tolist() == ["a", "b", "c"]
    assert ds.user_ids[ds.interactions.users[0]] == "b"  # user index 0 of train.json


def test_malformed_folders_fail_naming_file_and_line(tmp_path):
    root = write_folder(tmp_path, train={"0": [0, 9]})
    with pytest.raises(DataFormatError, match=r"i_id_mapping\.csv: the split files use item index 9, the map"):
        Lattice(str(root)).read()
    root = write_folder(tmp_path)
    (root / "i_id_mapping.csv").write_text("asin,itemID\nA,0\nB,1\nC,1\nD,3\n")
    with pytest.raises(DataFormatError, match=r"i_id_mapping\.csv: line 4: index 1"):
        Lattice(str(root)).read()
    write_folder(tmp_path)
    (root / "5-core" / "val.json").write_text('{"0": [1], "x": [2]}')
    with pytest.raises(DataFormatError, match=r"val\.json: key 'x' is not a user index"):
        Lattice(str(root)).read()
    (root / "5-core" / "val.json").write_text('{"0": [1],\n "1": [2}')
    with pytest.raises(DataFormatError, match=r"val\.json: line 2: not valid JSON"):
        Lattice(str(root)).read()


def test_a_dataset_without_a_published_split_says_which_split_to_use(ml100k_tiny):
    with pytest.raises(ValueError, match="publishes no split"):
        PublishedSplit().assign(ml100k_tiny)
    with pytest.raises(ValueError, match="publishes no split"):
        PredefinedColumn().assign(ml100k_tiny)


@pytest.fixture
def ml100k_tiny():
    from tests.helpers.data import make_dataset

    return make_dataset([1, 1, 2], [1, 2, 1])


def test_pipeline_uses_the_published_split_by_default_and_others_on_request(tmp_path):
    from hydra import initialize_config_dir

    from mmbench import pipeline
    from mmbench.config import CONF_DIR, compose

    root = write_folder(tmp_path / "data")
    base = [
        f"paths.work_dir={tmp_path}",
        f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "dataset=lattice",
        f"dataset.path={root}",
        "model=pop",
        "eval.progress=false",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(base)
        other = compose([*base, "split=random"])
    res = pipeline.run(cfg)
    assert (len(res.split.train), len(res.split.val), len(res.split.test)) == (5, 3, 2)
    assert res.split.directory.parent.name == "lattice"
    assert isinstance(pipeline.instantiate(other.split), RandomSplit)


@pytest.mark.skipif(
    not (BABY / "5-core" / "train.json").is_file() and not REQUIRE_DATA, reason=f"Amazon Baby not found at {BABY}"
)
def test_amazon_baby_is_the_lattice_split_with_mmrec_statistics():
    from hydra import initialize_config_dir
    from hydra.utils import instantiate

    from mmbench.config import CONF_DIR, compose

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(["dataset=amazon_baby"])
    assert cfg.split._target_.endswith("PublishedSplit")
    ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
    assert (ds.name, ds.n_users, ds.n_items, len(ds.interactions)) == ("amazon_baby", 19445, 7050, 160792)
    labels = instantiate(cfg.split).assign(ds)
    assert np.bincount(labels).tolist() == [119674, 20559, 20559]
    assert ds.item_ids[0] == "097293751X" and len(ds.files) == 5
