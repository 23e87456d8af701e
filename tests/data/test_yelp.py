"""dataset=yelp: reviews, businesses as text, photos as images, users' numbers, unknown businesses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from mmbench.data.readers import DataFormatError
from mmbench.data.yelp import Yelp

REQUIRE_DATA = bool(os.environ.get("MMBENCH_REQUIRE_DATA"))  # then a missing data file fails, not skips
EXCERPT = Path(os.environ.get("MMBENCH_DATA_DIR", "/nonexistent")) / "yelp" / "excerpt"


def jl(path: Path, records: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in records))  # no final newline, as in the real dump


def write_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    jl(
        root / "yelp_academic_dataset_review.json",
        [
            {"user_id": "ua", "business_id": "b1", "stars": 4.0, "text": "tasty", "date": "2018-07-07 22:09:11"},
            {"user_id": "ub", "business_id": "b2", "stars": 2, "text": "meh", "date": "2019-01-01 00:00:00"},
            {"user_id": "ua", "business_id": "gone", "stars": 5.0, "text": "?", "date": "2019-01-02 00:00:00"},
        ],
    )  # fmt: skip
    jl(
        root / "yelp_academic_dataset_business.json",
        [
            {"business_id": "b1", "name": "Cafe", "city": "X", "state": "PA", "stars": 4.5,
             "categories": "Food, Coffee", "attributes": {"WiFi": "u'free'", "Ambience": {"hip": True}}},
            {"business_id": "b2", "name": "Shop", "categories": None, "attributes": None},
        ],
    )  # fmt: skip
    jl(
        root / "yelp_academic_dataset_user.json",
        [{"user_id": "ua", "review_count": 10, "useful": 1, "funny": 0, "cool": 2, "fans": 3, "average_stars": 4.1},
         {"user_id": "zz", "review_count": 1, "useful": 0, "funny": 0, "cool": 0, "fans": 0, "average_stars": 1.0}],
    )  # fmt: skip
    (root / "photos").mkdir()
    Image.new("RGB", (12, 12), (0, 0, 255)).save(root / "photos" / "p2.jpg")
    jl(
        root / "photos.json",
        [{"photo_id": "p1", "business_id": "b1", "label": "food"},  # no file: the next photo is used
         {"photo_id": "p2", "business_id": "b1", "label": "inside"}],
    )  # fmt: skip
    return root


def test_reads_reviews_businesses_users_and_photos(tmp_path):
    ds = Yelp(str(write_folder(tmp_path / "y")), image_size=8).read()
    assert len(ds.interactions) == 2  # the review of the unknown business 'gone' is dropped
    assert ds.item_ids.tolist() == ["b1", "b2"] and ds.user_ids.tolist() == ["ua", "ub"]
    assert ds.interactions.ratings.tolist() == [4.0, 2.0]
    assert ds.interactions.timestamps.tolist() == [1531001351, 1546300800]  # UTC seconds
    assert ds.content["text"].values == [
        "Cafe. Categories: Food, Coffee. Attributes: WiFi: u'free'; Ambience: hip True",
        "Shop",
    ]
    assert ds.content["image"].mask.tolist() == [True, False] and ds.content["image"].values[0][2].min() > 200
    feats = ds.user_content["features"]
    assert feats.mask.tolist() == [True, False] and feats.values[0].tolist() == [10, 1, 0, 2, 3, pytest.approx(4.1)]
    assert len(ds.files) == 4


def test_unknown_businesses_can_be_kept_without_content(tmp_path):
    ds = Yelp(str(write_folder(tmp_path / "y")), unknown_businesses="keep").read()
    assert ds.item_ids.tolist() == ["b1", "b2", "gone"] and len(ds.interactions) == 3
    assert ds.content["text"].mask.tolist() == [True, True, False]


def test_a_bad_line_fails_naming_file_and_line(tmp_path):
    root = write_folder(tmp_path / "y")
    with open(root / "yelp_academic_dataset_business.json", "a") as f:
        f.write('\n{"business_id": "b3", "name": ')
    with pytest.raises(DataFormatError, match=r"business\.json: line 3: not valid JSON"):
        Yelp(str(root)).read()


@pytest.mark.skipif(not EXCERPT.is_dir() and not REQUIRE_DATA, reason=f"{EXCERPT} not found")
def test_real_excerpt_keeps_the_77_reviews_of_known_businesses():
    ds = Yelp(str(EXCERPT)).read()
    assert len(ds.interactions) == 77 and ds.n_items == 1000  # the business file is the catalogue
    assert ds.content["text"].mask.all()
    kept = Yelp(str(EXCERPT), unknown_businesses="keep").read()
    assert len(kept.interactions) == 999 and kept.content["text"].mask.sum() == 1000
