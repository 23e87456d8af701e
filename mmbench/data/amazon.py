"""``dataset=amazon``: Amazon review files of the 2014, 2018 and 2023 releases (McAuley lab), with metadata.

Release, detected from the first review's fields (file names are not trusted):

=======  =========================  =========================================  ======================================
release  reviews file               event fields                               metadata file (beside it, or ``meta``)
=======  =========================  =========================================  ======================================
2014     ``reviews_<Cat>_5.json.gz`` ``reviewerID asin overall unixReviewTime`` ``meta_<Cat>.json.gz`` (Python literals)
         (+ ``helpful``)
2018     ``<Cat>_5.json.gz``          the same (+ ``verified``, ``vote``,        ``meta_<Cat>.json.gz``
                                     ``style``)
2023     ``<Cat>.jsonl.gz``           ``user_id parent_asin rating timestamp``   ``meta_<Cat>.jsonl.gz``
                                     (milliseconds)
=======  =========================  =========================================  ======================================

Every line is one event (repeated reviews are kept as published: ``preprocess.dedup`` merges them; the
number of events repeating an earlier one's user, item, rating and time is logged). Reviews are streamed by
pyarrow; the metadata, one object per item, is read line by line keeping only the reviewed items: JSON first,
``ast.literal_eval`` only for lines the JSON parser rejects (the 2014 metadata is written with Python's
``repr``; the count is logged).

Modalities: ``text`` = title, brand (2023: store), categories, features and description joined;
``image`` = the item's first image URL mapped to ``<image_dir>/<sha1(url)><ext>`` (``ext`` the URL's suffix,
default ``.jpg``) — a missing file masks the item; ``download_images`` fetches the missing files (resumable,
SHA-256 of every file recorded in ``<image_dir>/manifest.tsv`` and checked on resume);
``reviews`` (``review_text: true``) = the review texts (summary + text) of the item's *training* events only,
built after the split (:mod:`mmbench.data.train_content`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, build_dataset
from mmbench.data.ml100k_mm import PosterImages
from mmbench.data.readers import DataFormatError, file_sha256
from mmbench.data.streaming import iter_json_records, numeric, read_table, required_ids
from mmbench.data.train_content import training_texts

log = logging.getLogger(__name__)

# release -> (user, item, rating, timestamp, timestamp divisor, review text fields)
FIELDS = {
    "2014": ("reviewerID", "asin", "overall", "unixReviewTime", 1, ("summary", "reviewText")),
    "2018": ("reviewerID", "asin", "overall", "unixReviewTime", 1, ("summary", "reviewText")),
    "2023": ("user_id", "parent_asin", "rating", "timestamp", 1000, ("title", "text")),
}
_CAT = {"2014": r"^reviews_(.+?)(_5)?\.json", "2018": r"^(.+?)(_5)?\.json", "2023": r"^(.+?)\.jsonl"}


def detect_release(record: dict[str, Any], path: Path) -> str:
    """2023 has ``user_id``/``parent_asin``; 2018 ``verified``/``vote``/``style``; 2014 ``helpful``."""
    if "parent_asin" in record or "user_id" in record:
        return "2023"
    if "reviewerID" in record and "asin" in record:
        if {"verified", "vote", "style"} & set(record):
            return "2018"
        if "helpful" in record:
            return "2014"
        return "2018"
    raise DataFormatError(f"{path}: line 1: not an Amazon review (fields {sorted(record)})")


def image_file(url: str, folder: Path) -> Path:
    """The documented local name of an image URL: ``<folder>/<sha1(url)><suffix>`` (suffix of the URL's path,
    ``.jpg`` when it has none). SHA-1 of the whole URL, because the last path components of Amazon's URLs are
    not unique across size variants."""
    suffix = Path(urlparse(url).path).suffix.lower() or ".jpg"
    return folder / f"{hashlib.sha1(url.encode()).hexdigest()}{suffix if len(suffix) <= 5 else '.jpg'}"


def _manifest(folder: Path) -> dict[str, str]:
    path = folder / "manifest.tsv"
    if not path.is_file():
        return {}
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return dict(zip(df["file"], df["sha256"]))


def download_images(
    urls: Sequence[str],
    folder: str | Path,
    opener: Callable[..., Any] = urllib.request.urlopen,
    timeout: float = 30.0,
) -> int:
    """Fetch every URL not yet in ``folder`` (as :func:`image_file` names it); the number fetched.

    Resumable: a file already listed in ``manifest.tsv`` with its SHA-256 is kept; a file whose bytes no longer
    match is fetched again. Each download goes to a ``.part`` file renamed when complete, and its SHA-256 is
    appended to the manifest. Any network failure stops with an error that names the URL, how many images are
    present, and ``dataset.download_images=false`` (to run on the images there are).
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    known = _manifest(folder)
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        manifest.write_text("file\turl\tsha256\n")
    fetched = 0
    todo = list(dict.fromkeys(u for u in urls if u))
    for k, url in enumerate(todo):
        target = image_file(url, folder)
        if target.is_file() and known.get(target.name) == file_sha256(target):
            continue
        part = target.with_name(target.name + ".part")
        try:
            with opener(url, timeout=timeout) as r, open(part, "wb") as f:
                shutil.copyfileobj(r, f)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            part.unlink(missing_ok=True)
            raise OSError(
                f"downloading image {url} failed ({e}); {k} of {len(todo)} images were checked or fetched into "
                f"{folder} (rerun to resume), or set dataset.download_images=false to use the images present"
            ) from None
        os.replace(part, target)
        with open(manifest, "a") as f:
            f.write(f"{target.name}\t{url}\t{file_sha256(target)}\n")
        fetched += 1
    log.info("images: %d fetched, %d already present in %s", fetched, len(todo) - fetched, folder)
    return fetched


def records_table(path: Path, columns: list[str]) -> pa.Table:
    """``columns`` of a file of Python-literal / JSON lines, parsed line by line (the fallback for loose JSON:
    :func:`iter_json_records` logs how many lines needed ``ast.literal_eval``)."""
    data: dict[str, list] = {c: [] for c in columns}
    for _, rec in iter_json_records(path, literal_fallback=True):
        for c in columns:
            data[c].append(rec.get(c))
    # as text: the numeric readers then name the line of any value that is not a number
    return pa.table({c: pa.array([None if x is None else str(x) for x in v], pa.string()) for c, v in data.items()})


def _text(value: Any) -> str:
    """Metadata values (strings, lists, lists of lists) as one string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        return ", ".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {t}" for k, v in value.items() if (t := _text(v)))
    return str(value)


def _first_image(rec: dict[str, Any]) -> str:
    for key in ("imageURLHighRes", "imageURL"):  # 2018
        if rec.get(key):
            return str(rec[key][0])
    if rec.get("imUrl"):  # 2014
        return str(rec["imUrl"])
    for img in rec.get("images") or []:  # 2023: list of {hi_res, large, thumb, variant}
        if isinstance(img, dict) and (img.get("hi_res") or img.get("large")):
            return str(img.get("hi_res") or img.get("large"))
    return ""


def item_text(rec: dict[str, Any]) -> str:
    """``title. Brand: b. Categories: c. Features: f. description`` from the fields a release has."""
    parts = [_text(rec.get("title"))]
    brand = _text(rec.get("brand") or rec.get("store"))
    cats = _text(rec.get("categories") or rec.get("category") or rec.get("main_category"))
    feats = _text(rec.get("feature") or rec.get("features"))
    parts += [f"Brand: {brand}" if brand else "", f"Categories: {cats}" if cats else ""]
    parts += [f"Features: {feats}" if feats else "", _text(rec.get("description"))]
    return ". ".join(p for p in parts if p)


class Amazon(DatasetLoader):
    """Amazon reviews (2014 / 2018 / 2023, detected) plus optional metadata and images; see the module doc."""

    name = "amazon"

    def __init__(
        self,
        reviews: str,
        meta: str | None = None,
        image_dir: str | None = None,
        image_size: int = 224,
        download_images: bool = False,
        review_text: bool = False,
        name: str = "amazon",
    ) -> None:
        if download_images and image_dir is None:
            raise ValueError("dataset.download_images=true needs dataset.image_dir (where the images go)")
        if image_size < 8:
            raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
        self.reviews, self.meta, self.image_dir, self.image_size = reviews, meta, image_dir, image_size
        self.download_images, self.review_text, self.name = download_images, review_text, name

    def read(self) -> Dataset:
        path = Path(self.reviews).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Amazon reviews file not found: {path}")
        first = next(iter_json_records(path, limit=1, literal_fallback=True), (0, {}))[1]
        release = detect_release(first, path)
        ucol, icol, rcol, tcol, tdiv, text_cols = FIELDS[release]
        cols = [ucol, icol, rcol, tcol, *(text_cols if self.review_text else ())]
        try:
            table = read_table(path, "jsonl", cols, string_columns=(ucol, icol, *text_cols))
        except DataFormatError as e:  # loose JSON (Python literals): parsed line by line, logged
            if "not valid JSON" not in str(e):
                raise
            table = records_table(path, cols)
        users = required_ids(table, ucol, path, "jsonl")
        items = required_ids(table, icol, path, "jsonl")
        ratings = numeric(table, rcol, path, "jsonl", np.float32)
        ts = numeric(table, tcol, path, "jsonl", np.int64) // tdiv
        dup = pd.DataFrame({"u": users, "i": items, "r": ratings, "t": ts}).duplicated()
        log.info(
            "%s: Amazon %s release, %d reviews (%d repeat an earlier line's user, item, rating and time)",
            path, release, len(users), int(dup.sum()),
        )  # fmt: skip
        ds = build_dataset(self.name, users, items, ratings, ts)
        ds.source, ds.files = path.parent, {path.name: file_sha256(path)}
        if self.review_text:
            text = table.column(text_cols[0]).to_pandas().fillna("").astype(str)
            for c in text_cols[1:]:
                text = text.str.cat(table.column(c).to_pandas().fillna("").astype(str), sep=". ")
            text = text.str.strip(". ").to_numpy(object)
            ds.content["reviews"] = training_texts("reviews", users, items, text, ds.item_ids)
        del table
        meta = self._meta_path(path, release)
        if meta is not None:
            self._add_meta(ds, meta)
        return ds

    def _meta_path(self, reviews: Path, release: str) -> Path | None:
        if self.meta is not None:
            p = Path(self.meta).expanduser()
            if not p.is_file():
                raise FileNotFoundError(f"dataset.meta: Amazon metadata file not found: {p}")
            return p
        m = re.match(_CAT[release], reviews.name)
        ext = ".jsonl.gz" if release == "2023" else ".json.gz"
        cand = reviews.parent / f"meta_{m.group(1)}{ext}" if m else None
        if cand is not None and cand.is_file():
            return cand
        log.info("%s: no metadata file (%s): items have no text or image", reviews, cand)
        return None

    def _add_meta(self, ds: Dataset, meta: Path) -> None:
        wanted = set(ds.item_ids.tolist())
        texts: dict[str, str] = {}
        urls: dict[str, str] = {}
        for n, rec in iter_json_records(meta, literal_fallback=True):
            iid = rec.get("parent_asin") or rec.get("asin")
            if iid is None:
                raise DataFormatError(f"{meta}: line {n}: no 'asin' / 'parent_asin' field")
            if iid in wanted and iid not in texts:
                texts[iid], urls[iid] = item_text(rec), _first_image(rec)
        ds.files[meta.name] = file_sha256(meta)
        t = pd.Series(texts, dtype=object).reindex(ds.item_ids).fillna("")
        ds.item_table["text"] = t.to_numpy()
        ds.item_table["image_url"] = pd.Series(urls, dtype=object).reindex(ds.item_ids).fillna("").to_numpy()
        ds.content["text"] = ItemContent("text", t.astype(str).tolist(), (t != "").to_numpy())
        log.info("%s: metadata for %d of %d items", meta, len(texts), ds.n_items)
        if self.image_dir is None:
            return
        folder = Path(self.image_dir).expanduser()
        url_list = ds.item_table["image_url"].tolist()
        if self.download_images:
            download_images(url_list, folder)
        paths = [image_file(u, folder) if u else None for u in url_list]
        paths = [p if p is not None and p.is_file() else None for p in paths]
        mask = np.array([p is not None for p in paths], bool)
        ds.content["image"] = ItemContent("image", PosterImages(paths, self.image_size), mask)
        log.info("images: %d of %d items have one in %s", mask.sum(), len(mask), folder)
