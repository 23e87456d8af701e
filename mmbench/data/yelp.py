"""``dataset=yelp``: the Yelp Open Dataset's JSON-lines files in one folder (``path``).

* ``yelp_academic_dataset_review.json``: events (``user_id``, ``business_id``, ``stars`` as the rating, ``date``
  as the timestamp, UTC), streamed by pyarrow;
* ``yelp_academic_dataset_business.json``: the catalogue; modality ``text`` = ``name. Categories: ...
  Attributes: key: value; ...`` (attribute values as written, nested ones flattened), plus ``city``, ``state``
  and ``stars`` in the item table;
* ``yelp_academic_dataset_user.json`` (optional): user modality ``features`` = ``review_count``, ``useful``,
  ``funny``, ``cool``, ``fans``, ``average_stars``;
* ``photos.json`` + ``photos/<photo_id>.jpg`` (optional, the Yelp Photos download): modality ``image`` = the
  business's first photo (file order) whose file exists; businesses without one are masked.

Reviews of a business that is not in the business file (an excerpt, or mismatched dumps) are dropped and
counted in the log (``unknown_businesses: drop``): the business file is the catalogue, and an item with no
name, category or photo would only be noise in a multimodal benchmark. ``unknown_businesses: keep`` keeps them
as items without content (masked). Review text becomes modality ``reviews`` (training reviews only) with
``review_text: true``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, UserContent, build_dataset
from mmbench.data.lattice import resolve_folder
from mmbench.data.ml100k_mm import PosterImages
from mmbench.data.readers import DataFormatError, file_sha256
from mmbench.data.streaming import iter_json_records, numeric, read_table, required_ids, timestamps
from mmbench.data.train_content import training_texts

log = logging.getLogger(__name__)

REVIEWS = "yelp_academic_dataset_review.json"
BUSINESSES = "yelp_academic_dataset_business.json"
USERS = "yelp_academic_dataset_user.json"
PHOTOS = "photos.json"
USER_FEATURES = ("review_count", "useful", "funny", "cool", "fans", "average_stars")


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return str(value)


def business_text(rec: dict[str, Any]) -> str:
    """``name. Categories: c. Attributes: k: v; ...`` (the parts a business has)."""
    parts = [str(rec.get("name") or "").strip()]
    if rec.get("categories"):
        parts.append(f"Categories: {rec['categories']}")
    attrs = rec.get("attributes") or {}
    if isinstance(attrs, dict) and attrs:
        parts.append("Attributes: " + "; ".join(f"{k}: {_flat(v)}" for k, v in attrs.items() if v is not None))
    return ". ".join(p for p in parts if p)


class Yelp(DatasetLoader):
    """Yelp Open Dataset: reviews, businesses, optional users and photos; see the module doc."""

    name = "yelp"

    def __init__(
        self,
        path: str | None,
        unknown_businesses: str = "drop",
        review_text: bool = False,
        photo_dir: str | None = None,
        image_size: int = 224,
        name: str = "yelp",
    ) -> None:
        if unknown_businesses not in ("drop", "keep"):
            raise ValueError(f"dataset.unknown_businesses={unknown_businesses!r}: choose drop or keep")
        if image_size < 8:
            raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
        self.path, self.unknown_businesses, self.review_text = path, unknown_businesses, review_text
        self.photo_dir, self.image_size, self.name = photo_dir, image_size, name

    def read(self) -> Dataset:
        root = resolve_folder(self.path, "dataset yelp")
        rpath, bpath = root / REVIEWS, root / BUSINESSES
        for p in (rpath, bpath):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: a Yelp folder holds {REVIEWS} and {BUSINESSES}")
        cols = ["user_id", "business_id", "stars", "date", *(["text"] if self.review_text else [])]
        table = read_table(rpath, "jsonl", cols, string_columns=("user_id", "business_id", "date", "text"))
        users = required_ids(table, "user_id", rpath, "jsonl")
        items = required_ids(table, "business_id", rpath, "jsonl")
        ratings = numeric(table, "stars", rpath, "jsonl", np.float32)
        ts = timestamps(table, "date", rpath, "jsonl")
        text = table.column("text").to_pandas().fillna("").to_numpy(object) if self.review_text else None
        del table

        business = self._businesses(bpath)
        known = pd.Index(business.index).isin(items)
        known_review = pd.Index(items).isin(business.index)
        n_unknown = int((~known_review).sum())
        if n_unknown:
            log.warning(
                "%s: %d of %d reviews are of %d businesses not in %s: %s",
                rpath, n_unknown, len(items), len(set(items[~known_review])), bpath.name,
                "dropped" if self.unknown_businesses == "drop" else "kept as items without content",
            )  # fmt: skip
        if self.unknown_businesses == "drop":
            users, items, ratings, ts = (
                users[known_review],
                items[known_review],
                ratings[known_review],
                ts[known_review],
            )
            text = text[known_review] if text is not None else None
        if len(users) == 0:
            raise DataFormatError(f"{rpath}: no review is of a business in {bpath}")
        log.info("%s: %d of %d businesses have reviews", bpath, int(known.sum()), len(business))
        user_table = self._users(root / USERS, users)
        ds = build_dataset(self.name, users, items, ratings, ts, user_table, business)
        ds.source = root
        ds.files = {p.name: file_sha256(p) for p in (rpath, bpath, root / USERS, root / PHOTOS) if p.is_file()}
        has_text = ds.item_table["text"].notna().to_numpy() & (ds.item_table["text"].fillna("") != "").to_numpy()
        ds.content["text"] = ItemContent("text", ds.item_table["text"].fillna("").astype(str).tolist(), has_text)
        if text is not None:
            ds.content["reviews"] = training_texts("reviews", users, items, text, ds.item_ids)
        if user_table is not None:
            x = ds.user_table[list(USER_FEATURES)].to_numpy(np.float64)
            ok = np.isfinite(x).all(1)
            ds.user_content["features"] = UserContent("features", np.where(ok[:, None], x, 0).astype(np.float32), ok)
        self._photos(ds, root)
        return ds

    def _businesses(self, path: Path) -> pd.DataFrame:
        """One row per business (metadata: parsed line by line, nested attributes kept as text)."""
        ids, rows = [], []
        for n, rec in iter_json_records(path):
            bid = rec.get("business_id")
            if not bid:
                raise DataFormatError(f"{path}: line {n}: no 'business_id'")
            ids.append(bid)
            rows.append((business_text(rec), rec.get("city"), rec.get("state"), rec.get("stars")))
        table = pd.DataFrame(rows, columns=["text", "city", "state", "stars"], index=pd.Index(ids, dtype=object))
        dup = table.index.duplicated()
        if dup.any():
            raise DataFormatError(f"{path}: business_id {table.index[dup][0]!r} appears twice")
        return table

    @staticmethod
    def _users(path: Path, users: np.ndarray) -> pd.DataFrame | None:
        if not path.is_file():
            return None
        table = read_table(path, "jsonl", ["user_id", *USER_FEATURES], string_columns=("user_id",))
        ids = required_ids(table, "user_id", path, "jsonl")
        df = pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False) for c in USER_FEATURES}, index=ids)
        df = df[~df.index.duplicated()]
        return df[df.index.isin(users)]  # the user file lists every Yelp user; keep the reviewers

    def _photos(self, ds: Dataset, root: Path) -> None:
        meta = root / PHOTOS
        if not meta.is_file():
            return
        folder = Path(self.photo_dir).expanduser() if self.photo_dir else root / "photos"
        first: dict[str, Path] = {}
        for _, rec in iter_json_records(meta):
            bid, pid = rec.get("business_id"), rec.get("photo_id")
            if bid and pid and bid not in first and (folder / f"{pid}.jpg").is_file():
                first[bid] = folder / f"{pid}.jpg"
        paths = [first.get(b) for b in ds.item_ids]
        mask = np.array([p is not None for p in paths], bool)
        ds.content["image"] = ItemContent("image", PosterImages(paths, self.image_size), mask)
        log.info("%s: photos for %d of %d businesses (folder %s)", meta, mask.sum(), len(mask), folder)
