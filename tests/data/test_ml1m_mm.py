"""dataset=ml1m_mm on the real (partial) ML-1M copy: posters by movie id, text, genres, demographics encoded."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.data.ml1m_mm import MovieLens1MMM
from mmbench.encoders import build_user_features
from mmbench.encoders.demographics import DemographicsEncoder


@pytest.fixture(scope="module")
def ds(ml1m_dir):
    return MovieLens1MMM(str(ml1m_dir), download=False).read()


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
