"""MovieLens-1M in its official layout (ratings.dat, movies.dat, users.dat), found like ML-100K."""

from __future__ import annotations

import logging
from pathlib import Path

from mmbench.data.base import DatasetLoader
from mmbench.data.grouplens import Release, resolve
from mmbench.data.interactions import Dataset
from mmbench.data.movielens import read_movielens

log = logging.getLogger(__name__)

URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ZIP_MD5 = "c4d9eecfca2ab87c1945afe126590906"  # published checksum of ml-1m.zip
FILES = ("ratings.dat", "movies.dat", "users.dat")
# The official release's counts (its README and GroupLens' page): what a local copy is compared with. The files'
# own SHA-256 are not published and could not be computed here (no copy of the full release), so a local folder is
# checked by these counts, a download by the zip's MD5 and these counts.
OFFICIAL = {"ratings": 1_000_209, "users": 6_040, "movies": 3_706}


RELEASE = Release("MovieLens-1M", "ml-1m", FILES)  # the files' SHA-256 are not published: the zip's MD5 is checked


def resolve_ml1m(data_dir: str | None, cache_dir: str, download: bool, url: str = URL) -> Path:
    """Folder holding ratings.dat: ``$MMBENCH_DATA_DIR/movielens/ml-1m``, then the cache, then a download."""
    return resolve(RELEASE, data_dir, cache_dir, download, url, ZIP_MD5)


def check_official(ds: Dataset) -> bool:
    """Compare the ratings, users and rated movies read with the official release's counts; warn (never refuse)
    when they differ, e.g. the partial copy of ``../shared/data``. True when they match."""
    got = {"ratings": len(ds.interactions), "users": ds.n_users, "movies": ds.n_items}
    if got == OFFICIAL:
        return True
    log.warning(
        "%s is not the official MovieLens-1M: it has %s ratings of %s users on %s movies, the official release "
        "%s / %s / %s (checked: these counts; the files' SHA-256 are tagged data_sha256.* on every run, so tables "
        "never mix copies)",
        ds.source,
        *(f"{got[k]:,}" for k in OFFICIAL),
        *(f"{OFFICIAL[k]:,}" for k in OFFICIAL),
    )
    return False


class MovieLens1M(DatasetLoader):
    """6,040 users, 3,706 rated movies, 1,000,209 ratings 1-5 with timestamps (official release), user
    demographics (gender, age group, occupation, zip code; the user modality ``demographics``). No item content
    (``dataset=ml1m_mm`` adds it). A copy whose counts differ from the official ones is read with a warning."""

    name = "ml1m"

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str = "~/.cache/mmbench",
        download: bool = True,
        zip_prefix_digits: int = 1,
    ) -> None:
        if zip_prefix_digits < 1:
            raise ValueError(f"dataset.zip_prefix_digits={zip_prefix_digits}: must be at least 1")
        self.data_dir, self.cache_dir, self.download = data_dir, cache_dir, download
        self.zip_prefix_digits = zip_prefix_digits

    def read(self) -> Dataset:
        root = resolve_ml1m(self.data_dir, self.cache_dir, self.download)
        ds = read_movielens(root, self.name, zip_prefix_digits=self.zip_prefix_digits, content=False)
        check_official(ds)
        return ds
