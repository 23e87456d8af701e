"""dataset=ml1m on the real (partial) ML-1M copy: counts, the not-official warning, digests, download and offline
behaviour."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import zipfile

import numpy as np
import pytest

from mmbench.data import grouplens, ml1m
from mmbench.data.grouplens import DataNotFoundError
from mmbench.data.ml1m import MovieLens1M


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


def test_no_data_no_network_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(grouplens.urllib.request, "urlopen", offline)
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
