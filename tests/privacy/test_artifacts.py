"""Run artifacts carry no more personal data than ids: a fusion_rec run with the demographics user encoder on
ML-100K-MM, every file it leaves (MLflow artifacts, the logged model, checkpoints, split files) scanned for the
users' demographic rows, raw (zip codes) or encoded (each user's feature vector as float32 bytes)."""

import io
import re
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from mmbench.config import compose
from mmbench.data.ml100k_mm import MovieLens100KMM
from mmbench.encoders.demographics import DemographicsEncoder


def blobs(path: Path):
    """The bytes of ``path`` and, for a zip (torch checkpoints and models), of each member."""
    data = path.read_bytes()
    yield str(path), data
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                yield f"{path}!{name}", z.read(name)


class Scanner:
    """How many users' demographic rows a byte string holds: zip codes as whole tokens, or the 96 bytes of a
    user's encoded row (age z-score, gender and occupation one-hot, float32) anywhere."""

    def __init__(self, table, encoded: np.ndarray) -> None:
        zips = sorted({str(z) for z in table["zip_code"]})
        self.zip_re = re.compile(
            rb"(?<![0-9A-Za-z.])(" + b"|".join(re.escape(z.encode()) for z in zips) + rb")(?![0-9A-Za-z])"
        )
        rows = np.unique(encoded.astype(np.float32), axis=0)
        self.rows = [r.tobytes() for r in rows]

    def __call__(self, data: bytes) -> tuple[int, int]:
        return len(set(self.zip_re.findall(data))), sum(r in data for r in self.rows)


@pytest.fixture(scope="module")
def users(data_dir):
    ds = MovieLens100KMM(str(data_dir), download=False, image_size=32).read()
    return ds.user_table, ds.user_content["demographics"], ds.user_ids


def encoded(users, fit=None) -> np.ndarray:
    """The demographics encoder's rows as a run computes them (z-scores fitted on ``fit``: the training users)."""
    _, content, ids = users
    return DemographicsEncoder().extract(content, ids, fit)


def test_the_scanner_finds_the_table_raw_and_encoded(users):
    table, x = users[0], encoded(users)
    scan = Scanner(table, x)
    assert scan(table.to_csv().encode())[0] >= 700  # ML-100K: 795 distinct zip codes
    assert scan(b"header" + x.tobytes())[1] >= 100
    assert scan(b"run 0a55414b score 0.55414 item 55414x") == (0, 0)


@pytest.mark.slow
def test_no_run_artifact_contains_the_demographics_table(users, tmp_path):
    from mmbench.pipeline import run

    cfg = compose(
        [
            f"paths.work_dir={tmp_path}",
            f"paths.cache_dir={tmp_path}/cache",
            f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "dataset=ml100k_mm",
            "dataset.image_size=32",
            "model=fusion_rec",
            "+encoder@encoders.genres=multihot",
            "+encoder@user_encoders.demographics=demographics",
            "trainer.max_epochs=1",
            "eval.progress=false",
            "trainer.enable_progress_bar=false",
        ]
    )
    result = run(cfg)
    assert result.metrics["model/size_mb"] > 0  # the model was logged and is scanned below
    train = result.split.train
    scan = Scanner(users[0], encoded(users, np.bincount(train.users, minlength=train.n_users) > 0))
    roots = [Path(urlparse(result.artifact_uri).path), tmp_path / "mlartifacts"]
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pkl" for p in files) and any(p.suffix == ".ckpt" for p in files)
    leaks = {}
    for f in files:
        for name, data in blobs(f):
            zips, rows = scan(data)
            if zips >= 10 or rows:
                leaks[name] = (zips, rows)
    assert not leaks, f"demographic rows in artifacts (zip codes, encoded rows): {leaks}"
    # the released model still makes the run's test lists
    import pandas as pd
    import torch

    topk = torch.load(next(p for p in files if p.name == "topk.pkl"), weights_only=False)
    lists = pd.read_csv(next(p for p in files if p.name == "test_topk.tsv"), sep="\t")
    first = lists[lists["user"].isin(lists["user"].unique()[:50])]
    got = topk.recommend(first["user"].unique())
    assert got["item"].tolist() == first["item"].tolist()
