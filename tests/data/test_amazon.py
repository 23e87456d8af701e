"""dataset=amazon: the three releases, metadata (JSON and Python literals), images, training-only review text."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmbench.data.amazon import Amazon, download_images, image_file
from mmbench.data.preprocess import Preprocess
from mmbench.data.readers import DataFormatError
from mmbench.data.train_content import TrainingTexts, content_for_training
from mmbench.splits.splitters import RandomSplit

REQUIRE_DATA = bool(os.environ.get("MMBENCH_REQUIRE_DATA"))  # then a missing data file fails, not skips
FASHION = (
    Path(os.environ.get("MMBENCH_DATA_DIR", "/nonexistent")) / "amazon" / "fashion-2018" / "AMAZON_FASHION_5.json.gz"
)


def gz_lines(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def review14(u, i, r, t, text="ok"):
    return json.dumps(
        {"reviewerID": u, "asin": i, "helpful": [0, 0], "reviewText": text, "overall": r, "summary": "s",
         "unixReviewTime": t, "reviewTime": "x"}
    )  # fmt: skip


@pytest.mark.skipif(not FASHION.is_file() and not REQUIRE_DATA, reason=f"{FASHION} not found")
def test_real_fashion_2018_counts_and_duplicates():
    ds = Amazon(str(FASHION)).read()
    assert (len(ds.interactions), ds.n_users, ds.n_items) == (3176, 406, 31)  # every review line, as published
    assert set(ds.files) == {"AMAZON_FASHION_5.json.gz"}
    # the default preprocessing (dedup=last) keeps one event per (user, item): 3,042 pairs
    assert len(Preprocess()(ds).interactions) == 3042
    assert ds.interactions.ratings.min() == 1 and ds.interactions.ratings.max() == 5


def test_2014_reviews_with_python_literal_metadata_and_local_images(tmp_path, caplog):
    reviews = gz_lines(tmp_path / "reviews_Toys_5.json.gz", [review14("u1", "A", 5, 100), review14("u2", "B", 3, 50)])
    url = "http://ecx.images-amazon.com/images/I/51abc.jpg"
    meta = [
        # 2014 metadata is written with Python's repr: single quotes, nested lists
        repr({"asin": "A", "title": "Red Car", "imUrl": url, "categories": [["Toys", "Cars"]], "brand": "Acme"}),
        json.dumps({"asin": "B", "title": "Doll", "description": "Soft."}),
        repr({"asin": "Z", "title": "never reviewed"}),
    ]
    gz_lines(tmp_path / "meta_Toys.json.gz", meta)
    (tmp_path / "img").mkdir()
    Image.new("RGB", (9, 9), (0, 255, 0)).save(image_file(url, tmp_path / "img"), format="JPEG")
    with caplog.at_level(logging.INFO):
        ds = Amazon(str(reviews), image_dir=str(tmp_path / "img"), image_size=8).read()
    assert "2 lines are Python literals" in caplog.text and "2014 release" in caplog.text
    assert ds.item_ids.tolist() == ["A", "B"] and ds.interactions.timestamps.tolist() == [100, 50]
    assert ds.content["text"].values == ["Red Car. Brand: Acme. Categories: Toys, Cars", "Doll. Soft."]
    assert ds.content["image"].mask.tolist() == [True, False]
    assert ds.content["image"].values[0][1].min() > 200  # green
    assert image_file(url, Path("/f")).name == hashlib.sha1(url.encode()).hexdigest() + ".jpg"
    assert set(ds.files) == {"reviews_Toys_5.json.gz", "meta_Toys.json.gz"}


def test_loose_json_reviews_are_read_as_python_literals(tmp_path, caplog):
    lines = [repr({"reviewerID": "u1", "asin": "A", "helpful": [0, 0], "overall": 4.0, "unixReviewTime": 7}),
             review14("u2", "A", 2.0, 8)]  # fmt: skip
    with caplog.at_level(logging.INFO):
        ds = Amazon(str(gz_lines(tmp_path / "reviews_L_5.json.gz", lines))).read()
    assert ds.user_ids.tolist() == ["u1", "u2"] and ds.interactions.ratings.tolist() == [4.0, 2.0]
    assert ds.interactions.timestamps.tolist() == [7, 8] and "1 lines are Python literals" in caplog.text


def test_2023_release_fields_and_millisecond_timestamps(tmp_path):
    reviews = gz_lines(
        tmp_path / "Toys.jsonl.gz",
        [json.dumps({"rating": 4.0, "title": "t", "text": "x", "asin": "c1", "parent_asin": "P", "user_id": "U",
                     "timestamp": 1588615855070, "verified_purchase": True})],
    )  # fmt: skip
    gz_lines(
        tmp_path / "meta_Toys.jsonl.gz",
        [json.dumps({"parent_asin": "P", "title": "Kite", "store": "Sky", "features": ["light", "red"],
                     "categories": ["Toys", "Outdoor"], "description": [], "images": [{"large": "http://i/k.jpg"}]})],
    )  # fmt: skip
    ds = Amazon(str(reviews)).read()
    assert ds.item_ids.tolist() == ["P"] and ds.interactions.timestamps.tolist() == [1588615855]
    assert ds.content["text"].values == ["Kite. Brand: Sky. Categories: Toys, Outdoor. Features: light, red"]
    assert ds.item_table["image_url"].tolist() == ["http://i/k.jpg"]


def test_malformed_review_line_fails_naming_file_and_line(tmp_path):
    reviews = gz_lines(tmp_path / "X_5.json.gz", [review14("u1", "A", 5, 1), '{"reviewerID": "u2", "asin": '])
    with pytest.raises(DataFormatError, match=r"X_5\.json\.gz: line 2: neither JSON nor a Python literal"):
        Amazon(str(reviews)).read()
    reviews = gz_lines(tmp_path / "Y_5.json.gz", [review14("u1", "A", 5, 1), review14("u2", "B", "five", 2)])
    with pytest.raises(DataFormatError, match=r"Y_5\.json\.gz: line 2"):
        Amazon(str(reviews)).read()


def test_image_download_is_resumable_checksummed_and_fails_clearly_offline(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    urls = []
    for k in range(3):
        Image.new("RGB", (4, 4), (k, 0, 0)).save(src / f"{k}.png")
        urls.append((src / f"{k}.png").as_uri())
    dest = tmp_path / "images"
    assert download_images(urls, dest) == 3
    manifest = (dest / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 4 and manifest[1].split("\t")[2] == hashlib.sha256((src / "0.png").read_bytes()).hexdigest()
    assert download_images(urls, dest) == 0  # resumed: nothing to fetch
    image_file(urls[1], dest).write_bytes(b"truncated")  # a damaged file no longer matches its checksum
    assert download_images(urls, dest) == 1
    assert image_file(urls[1], dest).read_bytes() == (src / "1.png").read_bytes()

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    with pytest.raises(OSError, match=r"downloading image http://x/n\.jpg failed.*download_images=false"):
        download_images([*urls, "http://x/n.jpg"], dest, opener=offline)
    assert not list(dest.glob("*.part"))


def test_review_text_uses_training_reviews_only(tmp_path):
    lines = [review14(u, i, 5, t, f"{u} on {i}") for t, (u, i) in enumerate(
        [("u1", "A"), ("u1", "B"), ("u1", "C"), ("u2", "A"), ("u2", "B"), ("u2", "C"), ("u3", "A"), ("u3", "B")]
    )]  # fmt: skip
    ds = Amazon(str(gz_lines(tmp_path / "R_5.json.gz", lines)), review_text=True).read()
    assert isinstance(ds.content["reviews"].values, TrainingTexts)
    with pytest.raises(TypeError, match="depends on the split"):
        ds.content["reviews"].values[0]
    labels = RandomSplit(0.0, 0.34, seed=1).assign(ds)
    train = ds.interactions.subset(labels == 0)
    held = ds.interactions.subset(labels == 2)
    assert len(held) > 0
    ds = content_for_training(ds, train)
    texts = dict(zip(ds.item_ids, ds.content["reviews"].values))
    for u, i in zip(ds.user_ids[held.users], ds.item_ids[held.items]):
        assert f"{u} on {i}" not in texts[i]  # no held-out review reaches an item's text
    for u, i in zip(ds.user_ids[train.users], ds.item_ids[train.items]):
        assert f"s. {u} on {i}" in texts[i]
    assert np.array_equal(ds.content["reviews"].mask, [t != "" for t in ds.content["reviews"].values])


def test_pipeline_builds_review_text_after_the_split(tmp_path):
    """Without the pipeline's content_for_training step the tfidf encoder would read the deferred texts and fail."""
    from hydra import initialize_config_dir

    from mmbench import pipeline
    from mmbench.config import CONF_DIR, compose

    lines = [review14(f"u{u}", f"I{i}", 4, u * 10 + i, f"word{u}{i}") for u in range(6) for i in range(5)]
    reviews = gz_lines(tmp_path / "R_5.json.gz", lines)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp_path}",
                f"paths.cache_dir={tmp_path}/cache",
                f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
                "dataset=amazon",
                f"dataset.reviews={reviews}",
                "dataset.review_text=true",
                "+encoder@encoders.reviews=tfidf",
                "model=pop",
                "eval.progress=false",
            ],
        )
    res = pipeline.run(cfg)
    assert res.metrics["time/encode_reviews_s"] >= 0 and len(res.split.train) == 18  # 3 of 5 per user
