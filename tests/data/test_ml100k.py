import urllib.error
import zipfile

import numpy as np
import pytest

from mmbench.data import grouplens, ml100k
from mmbench.data.grouplens import DataNotFoundError
from mmbench.data.ml100k import MovieLens100K


def test_reads_official_layout(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k.interactions)) == (943, 1682, 100_000)
    assert np.bincount(ml100k.interactions.users).min() >= 20
    assert ml100k.item_table.loc[0, "title"] == "Toy Story (1995)"
    assert ml100k.item_table.loc[0, ["Animation", "Children's", "Comedy"]].tolist() == [1, 1, 1]
    assert ml100k.user_table.loc[0, ["age", "gender", "occupation"]].tolist() == [24, "M", "technician"]
    assert set(np.unique(ml100k.interactions.ratings)) == {1, 2, 3, 4, 5}


def test_no_data_no_network_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(grouplens.urllib.request, "urlopen", offline)
    loader = MovieLens100K(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as e:
        loader.read()
    msg = str(e.value)
    assert "MMBENCH_DATA_DIR" in msg and str(tmp_path / "data") in msg and "no network" in msg


def test_download_checks_the_checksum(tmp_path, monkeypatch, data_dir):
    zpath = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name in ("u.data", "u.item", "u.user"):
            z.write(data_dir / "movielens" / "ml-100k" / name, f"ml-100k/{name}")
    url = zpath.as_uri()
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        ml100k.resolve_ml100k(None, str(tmp_path / "cache"), True, url)
    # with the checksum of this zip, the download is accepted and its files verified
    import hashlib

    monkeypatch.setattr(ml100k, "ZIP_MD5", hashlib.md5(zpath.read_bytes()).hexdigest())
    root = ml100k.resolve_ml100k(None, str(tmp_path / "cache"), True, url)
    assert (root / "u.data").is_file()
    assert ml100k.resolve_ml100k(None, str(tmp_path / "cache"), False) == root  # the cache is found next time


def test_data_files_digests_are_recorded(ml100k, data_dir):
    """Each file read is hashed (chunked) and equals hashlib's digest of the whole file: the run tags them."""
    import hashlib

    assert set(ml100k.files) == {"u.data", "u.item", "u.user"}
    for name, digest in ml100k.files.items():
        assert digest == hashlib.sha256((data_dir / "movielens" / "ml-100k" / name).read_bytes()).hexdigest()
    assert ml100k.restrict(np.arange(10)).files == ml100k.files
