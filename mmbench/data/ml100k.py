"""MovieLens-100K in its official layout (u.data, u.item, u.user)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.data.base import DatasetLoader
from mmbench.data.grouplens import Release, resolve
from mmbench.data.interactions import Dataset, UserContent, build_dataset
from mmbench.data.readers import file_sha256, read_delimited

log = logging.getLogger(__name__)

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ZIP_MD5 = "0e33842e24a9c977be4e0107933c0723"  # published checksum of ml-100k.zip
# SHA-256 of the files mmbench reads, checked after every download (the official release never changes).
FILE_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


RELEASE = Release("MovieLens-100K", "ml-100k", tuple(FILE_SHA256), FILE_SHA256)


def resolve_ml100k(data_dir: str | None, cache_dir: str, download: bool, url: str = URL) -> Path:
    """Folder holding u.data: ``$MMBENCH_DATA_DIR/movielens/ml-100k``, then the cache, then a download."""
    return resolve(RELEASE, data_dir, cache_dir, download, url, ZIP_MD5)


class MovieLens100K(DatasetLoader):
    """943 users, 1,682 movies, 100,000 ratings 1-5 with timestamps, user demographics, genres.

    The user table is also the user modality ``demographics`` (``user_content``), for
    ``+encoder@user_encoders.demographics=demographics``."""

    name = "ml100k"

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str = "~/.cache/mmbench",
        download: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.download = download

    def read(self) -> Dataset:
        root = resolve_ml100k(self.data_dir, self.cache_dir, self.download)
        ratings = read_delimited(
            root / "u.data",
            ["user", "item", "rating", "timestamp"],
            "\t",
            numeric=("user", "item", "rating", "timestamp"),
        )
        users = read_delimited(
            root / "u.user", ["user", "age", "gender", "occupation", "zip_code"], "|", numeric=("user", "age")
        )
        items = read_delimited(
            root / "u.item",
            ["item", "title", "release_date", "video_release_date", "imdb_url", *GENRES],
            "|",
            numeric=("item", *GENRES),
            encoding="latin-1",
            required=("item", "title", *GENRES),
        )
        users = users.astype({"user": np.int64, "age": np.int64}).set_index("user")
        items = items.astype({"item": np.int64, **{g: np.int8 for g in GENRES}}).set_index("item")
        items["year"] = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.astype(
            "Int64"
        )
        ds = build_dataset(
            self.name,
            ratings["user"].to_numpy(np.int64),
            ratings["item"].to_numpy(np.int64),
            ratings["rating"].to_numpy(np.float32),
            ratings["timestamp"].to_numpy(np.int64),
            users,
            items,
        )
        ds.source = root
        ds.files = {name: file_sha256(root / name) for name in FILE_SHA256}
        known = ds.user_table[["age", "gender", "occupation"]].notna().any(axis=1).to_numpy()
        ds.user_content = {"demographics": UserContent("demographics", ds.user_table, known)}
        return ds
