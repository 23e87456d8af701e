"""MovieLens-100K with item posters, item text and genres as modalities (``dataset=ml100k_mm``).

Posters come from ``<data_dir>/movielens/posters`` (keyed by MovieLens-1M movie id, see the data
README). ML-100K numbers its items on its own, so items are joined to posters by normalised title
and year: first exactly, then by a few conservative fallbacks (alternative titles in parentheses,
a leading article written in front, a subtitle added in ML-1M) that are accepted only when exactly
one ML-1M movie of the same year qualifies. Items without a poster keep their place, image masked.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent
from mmbench.data.ml100k import GENRES, MovieLens100K

log = logging.getLogger(__name__)

POSTER_SUBDIR = Path("movielens") / "posters"
_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)(?:\s*\(V\))?\s*$")
_PAREN = re.compile(r"\(([^()]*)\)")
_ARTICLES = ("the", "a", "an", "la", "le", "les", "il", "das", "der", "die", "el", "l")


def split_title(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; no year gives ``None``."""
    m = _YEAR.match(title.strip())
    return (m.group(1), int(m.group(2))) if m else (title.strip(), None)


def normalise(text: str) -> str:
    """Lower-case ASCII words separated by single spaces (accents and punctuation dropped)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _article_front(name: str) -> str:
    """``"godfather the"`` -> ``"the godfather"`` (titles are filed as "Godfather, The")."""
    words = name.split()
    if len(words) > 1 and words[-1] in _ARTICLES:
        return " ".join([words[-1], *words[:-1]])
    return name


def _aliases(title: str) -> set[str]:
    """Every name a title is known by: the main title and each parenthesised alternative, both
    as filed and with a trailing article moved to the front."""
    names = {_PAREN.sub(" ", title), *_PAREN.findall(title)}
    out = set()
    for n in names:
        n = normalise(n.replace(",", " ,"))
        if n:
            out |= {n, _article_front(n)}
    return out


def match_posters(titles: Sequence[str], movies: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """ML-1M movie id for each ML-100K title (-1: none) and how it matched (0 none, 1 exact, 2 fallback).

    ``movies`` has columns ``id`` and ``title`` (``ml-1m-movies.dat``). A fallback match needs the same
    year and exactly one candidate, so an ambiguous title stays unmatched rather than matched wrongly.
    """
    exact: dict[tuple[str, int | None], list[int]] = {}
    by_year: dict[int | None, list[tuple[int, set[str], str]]] = {}
    for mid, t in zip(movies["id"].to_numpy(), movies["title"].astype(str)):
        name, year = split_title(t)
        exact.setdefault((normalise(name), year), []).append(int(mid))
        by_year.setdefault(year, []).append(
            (int(mid), _aliases(name), _article_front(normalise(_PAREN.sub(" ", name))))
        )
    out = np.full(len(titles), -1, np.int64)
    how = np.zeros(len(titles), np.int8)
    for k, t in enumerate(titles):
        name, year = split_title(str(t))
        if year is None:
            continue
        hit = exact.get((normalise(name), year), [])
        if len(hit) == 1:
            out[k], how[k] = hit[0], 1
            continue
        mine = _aliases(name)
        main = _article_front(normalise(_PAREN.sub(" ", name)))
        cands = {
            mid
            for mid, theirs, their_main in by_year.get(year, [])
            if mine & theirs
            or (len(main) >= 6 and re.search(rf"(^| ){re.escape(main)}($| )", their_main))
            or (len(their_main) >= 6 and re.search(rf"(^| ){re.escape(their_main)}($| )", main))
        }
        if len(cands) == 1:
            out[k], how[k] = cands.pop(), 2
    return out, how


def load_image(path: Path, size: int) -> np.ndarray:
    """uint8 ``(3, size, size)`` RGB array; the format is read from the file's content, not its name."""
    with Image.open(path) as im:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


class PosterImages(Sequence):
    """Lazy per-item poster images: ``self[i]`` reads and resizes item ``i``'s file on demand
    (zeros where there is no poster), so the dataset holds paths, not pixels."""

    def __init__(self, paths: Sequence[Path | None], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        p = self.paths[i]
        if p is None:
            return np.zeros((3, self.size, self.size), np.uint8)
        return load_image(p, self.size)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def take(self, items: np.ndarray) -> PosterImages:
        """The images of ``items``, in that order, still lazy."""
        return PosterImages([self.paths[int(i)] for i in items], self.size)

    def fingerprint(self) -> str:
        """SHA-256 over the image files' bytes (and the size), for feature-cache keys."""
        h = hashlib.sha256(f"size={self.size}".encode())
        for p in self.paths:
            h.update(b"\0" if p is None else Path(p).read_bytes())
            h.update(b"|")
        return h.hexdigest()


class MovieLens100KMM(DatasetLoader):
    """ML-100K (same loader) plus modalities ``image`` (posters), ``text`` (a template over title,
    year and genres) and ``genres`` (19-dim multi-hot). Users keep ML-100K's ``demographics`` modality
    (age, gender, occupation; ``conf/encoder/demographics.yaml`` encodes it)."""

    name = "ml100k_mm"

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str = "~/.cache/mmbench",
        download: bool = True,
        image_size: int = 224,
        text_template: str = "{title} ({year}). Genres: {genres}.",
        fallback_matching: bool = True,
    ) -> None:
        if image_size < 8:
            raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
        self.data_dir, self.cache_dir, self.download = data_dir, cache_dir, download
        self.image_size, self.text_template = image_size, text_template
        self.fallback_matching = fallback_matching

    def read(self) -> Dataset:
        ds = MovieLens100K(self.data_dir, self.cache_dir, self.download).read()
        ds.name = self.name
        poster_dir = ds.source.parent / "posters"
        table = ds.item_table
        movies_file = poster_dir / "ml-1m-movies.dat"
        if not movies_file.is_file():
            raise FileNotFoundError(f"{movies_file} not found: ml100k_mm needs the posters beside ml-100k")
        movies = pd.read_csv(
            movies_file, sep="::", engine="python", names=["id", "title", "genres"], encoding="latin-1"
        )
        ids, how = match_posters(table["title"].astype(str).tolist(), movies)
        if not self.fallback_matching:
            ids[how == 2] = -1
        paths = [poster_dir / "images" / f"{m}.jpg" if m >= 0 else None for m in ids]
        paths = [p if p is not None and p.is_file() else None for p in paths]
        mask = np.array([p is not None for p in paths])
        table["poster_id"] = ids
        log.info("posters: %d of %d items (%d by fallback matching)", mask.sum(), len(mask), (how == 2).sum())

        genres = table[GENRES].to_numpy(np.float32)
        ds.content = {
            "image": ItemContent("image", PosterImages(paths, self.image_size), mask),
            "text": ItemContent("text", self.texts(table), np.ones(len(table), bool)),
            "genres": ItemContent("genres", genres, genres.sum(1) > 0),
        }
        return ds

    def texts(self, table: pd.DataFrame) -> list[str]:
        """One string per item from ``text_template`` (fields ``title``, ``year``, ``genres``)."""
        flags = table[GENRES].to_numpy()
        out = []
        for title_year, row in zip(table["title"].astype(str), flags):
            title, year = split_title(title_year)
            names = ", ".join(g for g, f in zip(GENRES, row) if f == 1)
            try:
                out.append(self.text_template.format(title=title, year="" if year is None else year, genres=names))
            except (KeyError, IndexError) as e:
                raise ValueError(
                    f"dataset.text_template={self.text_template!r}: unknown field {e}; use title, year, genres"
                ) from None
        return out
