"""DemographicsEncoder: exact standardised / one-hot values on a hand-made user table, masks, ML-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.data.interactions import UserContent
from mmbench.encoders import build_user_features
from mmbench.encoders.demographics import DemographicsEncoder


def table_content(table: pd.DataFrame) -> UserContent:
    return UserContent("demographics", table, np.ones(len(table), bool))


def test_age_standardised_gender_and_occupation_one_hot():
    t = pd.DataFrame(
        {
            "age": [20, 30, 40, 30],
            "gender": ["M", "F", "M", "F"],
            "occupation": ["writer", "artist", "writer", "none"],
            "zip_code": ["1", "2", "3", "4"],
        }
    )
    x = DemographicsEncoder().extract(table_content(t), None)
    z = 10 / np.sqrt(50)  # ages 20 30 40 30: mean 30, population std sqrt(50)
    # columns: age_z, F, M, artist, none, writer (categories sorted)
    expected = [
        [-z, 0, 1, 0, 0, 1],
        [0, 1, 0, 1, 0, 0],
        [z, 0, 1, 0, 0, 1],
        [0, 1, 0, 0, 1, 0],
    ]
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert x.dtype == np.float32


def test_user_missing_a_column_is_masked_and_left_out_of_the_statistics():
    t = pd.DataFrame({"age": [10.0, 20.0, np.nan, 30.0], "gender": ["M", "F", "F", None]})
    enc = DemographicsEncoder(numeric=["age"], categorical=["gender"])
    c = UserContent("demographics", t, np.array([True, True, True, False]))
    assert enc.mask(c, None).tolist() == [True, True, False, False]
    x = enc.extract(c, None)
    # statistics over users 0 and 1 only: mean 15, std 5; user 3's "None" gender is no category
    np.testing.assert_allclose(x, [[-1, 0, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_constant_column_and_bad_inputs():
    t = pd.DataFrame({"age": [33, 33], "gender": ["F", "F"]})
    x = DemographicsEncoder(categorical=["gender"]).extract(table_content(t), None)
    np.testing.assert_array_equal(x, [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"no column\(s\) \['occupation'\].*columns: \['age', 'gender'\]"):
        DemographicsEncoder().extract(table_content(t), None)
    with pytest.raises(TypeError, match="needs a table"):
        DemographicsEncoder().extract(UserContent("demographics", np.zeros((2, 3)), np.ones(2, bool)), None)
    with pytest.raises(ValueError, match="at least one"):
        DemographicsEncoder(numeric=[], categorical=[])


def test_ml100k_demographics(ml100k, tmp_path):
    feats, tags, times = build_user_features({"demographics": DemographicsEncoder()}, ml100k, tmp_path)
    f = feats["demographics"]
    assert f.values.shape == (943, 1 + 2 + 21) and f.mask.all()
    age = ml100k.user_table["age"].to_numpy(float)
    np.testing.assert_allclose(f.values[:, 0], (age - age.mean()) / age.std(), rtol=1e-5)
    assert np.all(f.values[:, 1:3].sum(1) == 1) and np.all(f.values[:, 3:].sum(1) == 1)
    # user 1: 24, M, technician; occupation columns in sorted order
    occupations = sorted(ml100k.user_table["occupation"].unique())
    assert f.values[0, 1:3].tolist() == [0, 1] and f.values[0, 3 + occupations.index("technician")] == 1
    # no split given: fitted on every user, and tagged so
    assert tags.keys() == {f"user_encoder.demographics{k}" for k in ("", ".fit", ".cache_key", ".features_sha256")}
    assert tags["user_encoder.demographics"] == "DemographicsEncoder" and tags["user_encoder.demographics.fit"] == "all"
    assert set(times) == {"time/encode_user_demographics_s"}


def test_statistics_come_from_the_training_users_only():
    t = pd.DataFrame(
        {"age": [20, 30, 40, 30], "gender": ["M", "F", "M", "F"], "occupation": ["writer", "artist", "writer", "none"]}
    )
    fit = np.array([True, True, False, False])  # users 2 and 3 are held out (cold users)
    x = DemographicsEncoder().extract(table_content(t), None, fit=fit)
    # ages of the training users 20, 30: mean 25, population std 5; occupations seen in training: artist, writer
    expected = [
        [-1, 0, 1, 0, 1],
        [1, 1, 0, 1, 0],
        [3, 0, 1, 0, 1],
        [1, 1, 0, 0, 0],  # 'none' was never seen in training: zeros
    ]
    np.testing.assert_allclose(x, expected)
    assert DemographicsEncoder(transductive=True).fit_rows(fit) is None
    assert DemographicsEncoder().fit_rows(fit) is fit
