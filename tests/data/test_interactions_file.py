"""dataset=interactions: a user's own file in every format, side tables as modalities, errors naming file and line."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmbench.data.interactions_file import InteractionsFile
from mmbench.data.readers import DataFormatError, file_sha256

ROWS = [("u2", "b", 4.0, 30), ("u1", "a", 5.0, 10), ("u1", "c", 3.0, 20), ("u3", "a", 1.0, 40)]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["uid", "iid", "stars", "ts"])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz", "jsonl", "jsonl.gz", "parquet"])
def test_every_format_gives_the_same_dataset(tmp_path, fmt):
    df, path = _frame(), tmp_path / f"events.{fmt}"
    if fmt.startswith("csv") or fmt == "tsv":
        text = df.to_csv(sep="\t" if fmt == "tsv" else ",", index=False)
        path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    elif fmt.startswith("jsonl"):
        text = "".join(json.dumps(r) + "\n" for r in df.to_dict("records"))
        path.write_bytes(gzip.compress(text.encode()) if fmt.endswith(".gz") else text.encode())
    else:
        df.to_parquet(path)
    ds = InteractionsFile(str(path), user_col="uid", item_col="iid", rating_col="stars", timestamp_col="ts").read()
    assert ds.user_ids.tolist() == ["u1", "u2", "u3"] and ds.item_ids.tolist() == ["a", "b", "c"]
    inter = ds.interactions
    # file order is kept; ids are positions in the sorted raw ids
    assert inter.users.tolist() == [1, 0, 0, 2] and inter.items.tolist() == [1, 0, 2, 0]
    assert inter.ratings.tolist() == [4.0, 5.0, 3.0, 1.0] and inter.timestamps.tolist() == [30, 10, 20, 40]
    assert ds.files == {path.name: file_sha256(path)}


def test_defaults_without_rating_and_timestamp_and_integer_ids(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user,item,other\n10,7,x\n2,7,y\n10,3,z\n")
    ds = InteractionsFile(str(p)).read()
    assert ds.user_ids.tolist() == [2, 10] and ds.item_ids.tolist() == [3, 7]
    assert ds.interactions.ratings.tolist() == [1.0, 1.0, 1.0] and ds.interactions.timestamps.tolist() == [0, 0, 0]


def test_ids_with_leading_zeros_stay_text(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user,item\n007,0972937519\n7,5\n")
    ds = InteractionsFile(str(p)).read()
    assert ds.user_ids.tolist() == ["007", "7"] and ds.item_ids.tolist() == ["0972937519", "5"]
    (tmp_path / "i.csv").write_text("item,title\n5,five\n0972937519,book\n")
    ds = InteractionsFile(str(p), item_path=str(tmp_path / "i.csv"), item_text_cols=["title"]).read()
    assert ds.content["text"].values == ["book", "five"]


def test_date_timestamps_are_parsed_as_utc_seconds(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user,item,when\n1,1,1970-01-02\n1,2,1970-01-01T00:01:00Z\n")
    ds = InteractionsFile(str(p), timestamp_col="when").read()
    assert ds.interactions.timestamps.tolist() == [86400, 60]


def test_item_and_user_tables_become_modalities(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "img" / "a.png")
    (tmp_path / "e.csv").write_text("user,item\n1,a\n2,b\n")
    (tmp_path / "items.csv").write_text(
        "item,title,desc,picture,f1,f2\na,Red hat,Warm,a.png,1,2\nb,Blue,,missing.png,3,\nz,Zed,Only here,,5,6\n"
    )
    (tmp_path / "users.tsv").write_text("user\tage\tbio\n1\t30\tlikes hats\n")
    ds = InteractionsFile(
        str(tmp_path / "e.csv"),
        item_path=str(tmp_path / "items.csv"),
        item_text_cols=["title", "desc"],
        item_image_col="picture",
        image_dir=str(tmp_path / "img"),
        image_size=8,
        item_feature_cols=["f1", "f2"],
        user_path=str(tmp_path / "users.tsv"),
        user_feature_cols=["age"],
        user_text_cols=["bio"],
    ).read()
    assert ds.item_ids.tolist() == ["a", "b", "z"]  # an item only in the table stays in the catalogue
    assert ds.content["text"].values == ["Red hat. Warm", "Blue", "Zed. Only here"]
    img = ds.content["image"]
    assert img.mask.tolist() == [True, False, False]
    assert img.values[0].shape == (3, 8, 8) and img.values[0][0].min() == 255 and img.values[0][1].max() == 0
    feats = ds.content["features"]
    assert feats.mask.tolist() == [True, False, True]
    np.testing.assert_array_equal(feats.values, [[1, 2], [0, 0], [5, 6]])
    assert ds.user_content["features"].mask.tolist() == [True, False]
    assert ds.user_content["features"].values[0].tolist() == [30.0]
    assert ds.user_content["text"].values[0] == "likes hats" and ds.user_content["text"].mask.tolist() == [True, False]
    assert set(ds.files) == {"e.csv", "items.csv", "users.tsv"}


def test_a_row_with_a_missing_field_fails_naming_file_and_line(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user,item,rating\n1,2,3\n\n4,5,6\n7,8\n")
    with pytest.raises(DataFormatError, match=r"e\.csv: line 5: 2 fields, the header has 3"):
        InteractionsFile(str(p), rating_col="rating").read()


def test_a_non_numeric_rating_fails_naming_file_line_and_value(tmp_path):
    p = tmp_path / "e.csv.gz"
    p.write_bytes(gzip.compress(b"user,item,rating\n1,2,3\n\n4,5,five\n"))
    with pytest.raises(DataFormatError, match=r"e\.csv\.gz: line 4: 'rating' = 'five' is not a number"):
        InteractionsFile(str(p), rating_col="rating").read()


def test_bad_json_line_and_missing_column_fail_clearly(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text('{"user": 1, "item": 2}\n{"user": 3, "item": 4\n')
    with pytest.raises(DataFormatError, match=r"e\.jsonl: line 2: not valid JSON"):
        InteractionsFile(str(p)).read()
    q = tmp_path / "e.csv"
    q.write_text("user,product\n1,2\n")
    with pytest.raises(DataFormatError, match=r"e\.csv: line 1: no column 'item' in header \['user', 'product'\]"):
        InteractionsFile(str(q)).read()


def test_empty_id_and_repeated_side_row_fail_naming_the_line(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user,item\n1,a\n,b\n")
    with pytest.raises(DataFormatError, match=r"e\.csv: line 3: empty 'user'"):
        InteractionsFile(str(p)).read()
    p.write_text("user,item\n1,a\n")
    (tmp_path / "i.csv").write_text("item,title\na,x\nb,y\na,z\n")
    with pytest.raises(DataFormatError, match=r"i\.csv: line 4: 'item' = 'a' repeats an earlier row"):
        InteractionsFile(str(p), item_path=str(tmp_path / "i.csv"), item_text_cols=["title"]).read()


def test_config_builds_the_loader_and_checks_its_keys(tmp_path):
    from hydra import initialize_config_dir

    from mmbench.config import CONF_DIR, ConfigError, compose, validate

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(["dataset=interactions", f"dataset.path={tmp_path}/x.csv"])
        validate(cfg)
        bad = compose(["dataset=interactions", "dataset.path=x", "+dataset.usr_col=u"])
    with pytest.raises(ConfigError, match="usr_col"):
        validate(bad)
