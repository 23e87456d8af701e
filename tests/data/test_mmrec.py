"""dataset=mmrec: MMRec's folder (<name>.inter with x_label, *_feat.npy), split=predefined_column end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmbench.data.mmrec import MMRec
from mmbench.data.readers import DataFormatError

INTER = [  # userID itemID rating timestamp x_label
    (0, 0, 5, 100, 0), (0, 1, 4, 101, 0), (0, 2, 3, 102, 1), (0, 3, 5, 103, 2),
    (1, 1, 2, 100, 0), (1, 2, 5, 101, 0), (1, 0, 1, 102, 2),
    (2, 2, 4, 100, 0), (2, 3, 3, 101, 1), (2, 1, 5, 102, 2),
]  # fmt: skip


def write_folder(root: Path, rows=INTER, n_items: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["userID\titemID\trating\ttimestamp\tx_label", *("\t".join(map(str, r)) for r in rows)]
    (root / f"{root.name}.inter").write_text("\n".join(lines) + "\n")
    np.save(root / "image_feat.npy", np.arange(n_items * 3, dtype=np.float32).reshape(n_items, 3))
    np.save(root / "text_feat.npy", -np.arange(n_items * 2, dtype=np.float32).reshape(n_items, 2))
    np.save(root / "audio_feat.npy", np.ones((n_items, 4), np.float32))
    return root


def test_reads_inter_and_every_feature_file_aligned_by_item_id(tmp_path):
    ds = MMRec(str(write_folder(tmp_path / "baby"))).read()
    assert ds.name == "baby" and len(ds.interactions) == 10
    assert ds.item_ids.tolist() == [0, 1, 2, 3, 4]  # item 4 has features, no event: still a candidate
    assert ds.interactions.ratings[:3].tolist() == [5, 4, 3] and ds.interactions.timestamps[0] == 100
    assert sorted(ds.content) == ["audio_feat", "image_feat", "text_feat"]
    np.testing.assert_array_equal(ds.content["image_feat"].values[3], [9, 10, 11])  # row 3 = itemID 3
    np.testing.assert_array_equal(ds.content["text_feat"].values[1], [-2, -3])
    assert ds.published_split["part"].tolist() == [r[4] for r in INTER]
    assert set(ds.files) == {"baby.inter", "image_feat.npy", "text_feat.npy", "audio_feat.npy"}


def test_dataset_mmrec_split_predefined_column_runs_end_to_end(tmp_path):
    from hydra import initialize_config_dir

    from mmbench import pipeline
    from mmbench.config import CONF_DIR, compose

    root = write_folder(tmp_path / "tiny")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp_path}",
                f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
                "dataset=mmrec",
                f"dataset.path={root}",
                "split=predefined_column",
                "model=pop",
                "eval.progress=false",
            ],
        )
    res = pipeline.run(cfg)
    assert (len(res.split.train), len(res.split.val), len(res.split.test)) == (5, 2, 3)
    assert res.split.train.items.tolist() == [0, 1, 1, 2, 2]  # x_label 0 rows, in file order
    assert res.metrics["test/n_users"] == 3


def test_bad_label_and_item_without_features_fail_naming_the_line(tmp_path):
    rows = [*INTER[:4], (1, 1, 2, 100, 3)]
    with pytest.raises(DataFormatError, match=r"bad\.inter: line 6: x_label = 3, expected 0, 1 or 2"):
        MMRec(str(write_folder(tmp_path / "bad", rows))).read()
    rows = [*INTER[:2], (1, 7, 2, 100, 0)]
    with pytest.raises(DataFormatError, match=r"far\.inter: line 4: itemID 7 has no row in the 5-row features"):
        MMRec(str(write_folder(tmp_path / "far", rows))).read()
    root = tmp_path / "hdr"
    root.mkdir()
    (root / "hdr.inter").write_text("user\titemID\tx_label\n0\t0\t0\n")
    with pytest.raises(DataFormatError, match=r"hdr\.inter: line 1: no column 'userID'"):
        MMRec(str(root)).read()
