"""dataset=ml1m / ml1m_mm on the real (partial) ML-1M copy: counts, the not-official warning, demographics,
posters by movie id, download and offline behaviour."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mmbench.data import ml1m
from mmbench.data.ml1m import MovieLens1M
from mmbench.data.ml1m_mm import MovieLens1MMM
from mmbench.data.ml100k import DataNotFoundError
from mmbench.encoders import build_user_features
from mmbench.encoders.demographics import DemographicsEncoder


@pytest.fixture(scope="module")
def ml1m_dir() -> Path:
    d = os.environ.get("MMBENCH_DATA_DIR")
    if d and (Path(d) / "movielens" / "ml-1m" / "ratings.dat").is_file():
        return Path(d).resolve()
    if os.environ.get("MMBENCH_REQUIRE_DATA"):
        pytest.fail(f"ML-1M not found under MMBENCH_DATA_DIR={d!r} and MMBENCH_REQUIRE_DATA is set")
    pytest.skip(f"ML-1M not found under MMBENCH_DATA_DIR={d!r}")


@pytest.fixture(scope="module")
def ds(ml1m_dir):
    return MovieLens1MMM(str(ml1m_dir), download=False).read()


def test_counts_match_the_files_and_the_prefix_warns(ml1m_dir, caplog):
    with caplog.at_level(logging.WARNING, "mmbench.data.ml1m"):
        plain = MovieLens1M(str(ml1m_dir), download=False).read()
    folder = ml1m_dir / "movielens" / "ml-1m"
    rows = np.loadtxt(folder / "ratings.dat", delimiter=":", usecols=(0, 2, 4, 6), dtype=np.int64)
    assert len(plain.interactions) == len(rows) == 487_650
    assert plain.n_users == len(np.unique(rows[:, 0])) == 2_999  # users 1..2,999 (data README)
    assert plain.n_items == len(np.unique(rows[:, 1])) == 3_615
    assert plain.content == {} and set(plain.user_content) == {"demographics"}
    assert "not the official MovieLens-1M: it has 487,650 ratings of 2,999 users on 3,615 movies" in caplog.text
    assert "1,000,209" in caplog.text
    for name, digest in plain.files.items():
        assert digest == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert set(plain.files) == {"ratings.dat", "movies.dat", "users.dat"}


def test_official_counts_do_not_warn(ml1m_dir, caplog, monkeypatch):
    monkeypatch.setattr(ml1m, "OFFICIAL", {"ratings": 487_650, "users": 2_999, "movies": 3_615})
    with caplog.at_level(logging.WARNING, "mmbench.data.ml1m"):
        MovieLens1M(str(ml1m_dir), download=False).read()
    assert "not the official" not in caplog.text


def test_mm_modalities(ds, ml1m_dir):
    posters = {p.stem for p in (ml1m_dir / "movielens" / "posters" / "images").iterdir()}
    expected = np.array([str(i) in posters for i in ds.item_ids])
    np.testing.assert_array_equal(ds.content["image"].mask, expected)
    assert expected.sum() == 3_609  # 6 rated movies of the prefix have no poster
    toy = int(np.flatnonzero(ds.item_ids == 1)[0])
    assert ds.content["text"].values[toy] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert ds.content["genres"].values.shape == (3_615, 18)  # ML-1M's 18 genres (README)
    assert ds.content["genres"].values[toy].sum() == 3
    assert ds.content["image"].values[toy].shape == (3, 224, 224)
    assert ds.name == "ml1m_mm" and ds.item_table.loc[toy, "poster_id"] == 1
    les = int(np.flatnonzero(ds.item_ids == 73)[0])  # movies.dat is latin-1: "Mis\xe9rables"
    assert ds.content["text"].values[les] == "Misérables, Les (1995). Genres: Drama, Musical."


def test_demographics_of_ml1m_encode(ds):
    """Age groups, gender, occupation and zip prefix (first digit) one-hot, one category of each per user."""
    enc = DemographicsEncoder(numeric=(), categorical=("age_group", "gender", "occupation", "zip_prefix"))
    feats, _, _ = build_user_features({"demographics": enc}, ds, "/nonexistent-unused")
    x = feats["demographics"].values
    t = ds.user_table
    widths = [t[c].nunique() for c in ("age_group", "gender", "occupation", "zip_prefix")]
    assert x.shape == (2_999, sum(widths)) and widths[:2] == [7, 2]
    np.testing.assert_array_equal(x.sum(1), 4)  # one category per column for every user
    assert feats["demographics"].mask.all()
    # the default encoder (numeric age, categorical gender and occupation) works too: age is the group's code
    default, _, _ = build_user_features({"demographics": DemographicsEncoder()}, ds, "/nonexistent-unused")
    assert default["demographics"].values.shape == (2_999, 1 + 2 + widths[2])


def test_no_data_no_network_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(ml1m.urllib.request, "urlopen", offline)
    with pytest.raises(DataNotFoundError) as e:
        MovieLens1M(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache")).read()
    msg = str(e.value)
    assert "MMBENCH_DATA_DIR" in msg and str(tmp_path / "data") in msg and "no network" in msg and "ml-1m" in msg
    with pytest.raises(DataNotFoundError, match="dataset.download=true"):
        MovieLens1M(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), download=False).read()


def test_download_checks_the_md5(tmp_path, monkeypatch, ml1m_dir):
    zpath = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name in ml1m.FILES:
            z.write(ml1m_dir / "movielens" / "ml-1m" / name, f"ml-1m/{name}")
    url = zpath.as_uri()
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        ml1m.resolve_ml1m(None, str(tmp_path / "cache"), True, url)
    monkeypatch.setattr(ml1m, "ZIP_MD5", hashlib.md5(zpath.read_bytes()).hexdigest())
    root = ml1m.resolve_ml1m(None, str(tmp_path / "cache"), True, url)
    assert (root / "ratings.dat").is_file()
    assert ml1m.resolve_ml1m(None, str(tmp_path / "cache"), False) == root  # the cache is found next time
