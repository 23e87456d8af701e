"""Any MovieLens release folder (``dataset=movielens``), recognised by its files.

* ``u.data`` (+ ``u.item``, ``u.user``): ML-100K;
* ``ratings.dat`` (+ ``movies.dat``, ``users.dat`` for ML-1M, ``tags.dat`` for ML-10M): ``::``-separated;
* ``ratings.csv`` (+ ``movies.csv``, ``tags.csv``): ML-20M, ML-25M, ML-32M, ml-latest(-small), with header lines.

Ratings are parsed by pyarrow's multi-threaded C++ CSV reader (``::`` is read as ``:`` with the empty field
between the two colons checked to be empty), so a 25M-row file loads in seconds; only when that parser fails
does a line-by-line scan run, to name the file and line that is wrong. Items get a text (``text_template`` over
title, year and genres), a genre multi-hot (``genres``), posters (``image``, from ``posters``) and, when the
release has tags, a ``tags`` text built from the training part of the split only
(:class:`mmbench.data.train_content.TrainTags`). Users get ``demographics`` where the release has them.
The catalogue is the users and movies with at least one rating (as MovieLens' published counts are).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, UserContent, build_dataset
from mmbench.data.ml100k import GENRES as ML100K_GENRES
from mmbench.data.ml100k_mm import PosterImages, match_posters, split_title
from mmbench.data.readers import DataFormatError, file_sha256, read_delimited
from mmbench.data.train_content import TrainTags

log = logging.getLogger(__name__)

# ML-1M's users.dat codes (its README).
ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
]
NO_GENRE = "(no genres listed)"
RATINGS = ("user", "item", "rating", "timestamp")
_CSV_HEADERS = {
    "ratings.csv": "userId,movieId,rating,timestamp",
    "movies.csv": "movieId,title,genres",
    "tags.csv": "userId,movieId,tag,timestamp",
}


def detect_release(folder: str | Path) -> str:
    """``"100k"`` (``u.data``), ``"dat"`` (``ratings.dat``: ML-1M, ML-10M) or ``"csv"`` (``ratings.csv``)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset.path={str(folder)!r}: no such folder")
    for marker, kind in (("u.data", "100k"), ("ratings.dat", "dat"), ("ratings.csv", "csv")):
        if (folder / marker).is_file():
            return kind
    raise DataFormatError(
        f"{folder}: not a MovieLens release folder: none of u.data (ML-100K), ratings.dat (ML-1M, ML-10M), "
        f"ratings.csv (ML-20M, ML-25M, ML-32M, ml-latest) is there (found {sorted(p.name for p in folder.iterdir())})"
    )


# ---------------------------------------------------------------------------------------------- ratings (fast)


def read_ratings(path: str | Path) -> dict[str, np.ndarray]:
    """``user`` / ``item`` (int64), ``rating`` (float32), ``timestamp`` (int64) of a ratings file, by its name:
    ``u.data`` (tab), ``ratings.dat`` (``::``) or ``ratings.csv`` (comma, header ``userId,movieId,rating,
    timestamp``). A malformed line raises :class:`DataFormatError` naming the file and line."""
    path = Path(path)
    if path.name.endswith(".csv"):
        _check_header(path, _CSV_HEADERS["ratings.csv"])
        sep, header = ",", True
    else:
        sep, header = ("::", False) if path.name.endswith(".dat") else ("\t", False)
    names = list(RATINGS)
    types = {"user": pa.int64(), "item": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}
    if sep == "::":  # read as ':'-separated: the (empty) fields between the colons must stay empty
        names = ["user", "_0", "item", "_1", "rating", "_2", "timestamp"]
        types |= {"_0": pa.null(), "_1": pa.null(), "_2": pa.null()}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(header), block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=sep[0], quote_char=False, double_quote=False),
            convert_options=pacsv.ConvertOptions(column_types=types),  # all columns: the null ones are checked
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        _locate_bad_line(path, sep, header, str(e))
    if any(table.column(c).null_count for c in RATINGS):  # an empty field
        _locate_bad_line(path, sep, header, "an empty field")
    out = {c: table.column(c).to_numpy() for c in RATINGS}
    del table
    if not np.isfinite(out["rating"]).all():  # "nan" / "inf" parse as floats
        _locate_bad_line(path, sep, header, "a rating that is not a finite number")
    return out


def _locate_bad_line(path: Path, sep: str, header: bool, reason: str) -> NoReturn:
    """The slow exact scan, run only after the fast parser failed: raise naming the first bad line."""
    convert = (int, int, float, int)
    with open(path, encoding="latin-1") as f:  # any byte decodes; the fields checked are ASCII numbers
        for lineno, line in enumerate(f, 1):
            if header and lineno == 1:
                continue
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split(sep)
            if len(fields) != len(RATINGS):
                raise DataFormatError(
                    f"{path}: line {lineno}: {len(fields)} fields, expected {len(RATINGS)} "
                    f"({sep!r}-separated {', '.join(RATINGS)}): {line[:200]!r}"
                )
            for name, value, conv in zip(RATINGS, fields, convert):
                try:
                    if not math.isfinite(conv(value)):
                        raise ValueError(value)
                except ValueError:
                    raise DataFormatError(
                        f"{path}: line {lineno}: field {name!r} = {value!r} is not a number"
                        if value
                        else f"{path}: line {lineno}: field {name!r} is empty"
                    ) from None
    raise DataFormatError(f"{path}: could not be parsed ({reason})")


def _check_header(path: Path, expected: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        got = f.readline().rstrip("\r\n").lstrip("\ufeff")
    if got != expected:
        raise DataFormatError(f"{path}: line 1: header {got!r} != expected {expected!r}")


# ---------------------------------------------------------------------------------------- side tables (small)


def _decode(path: Path) -> str:
    """UTF-8 where the bytes are valid UTF-8 (ML-10M and later), else latin-1 (ML-1M's movies.dat)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_dat(path: str | Path, names: list[str], numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """A small ``::``-separated file (movies.dat, users.dat, tags.dat) as strings, ``numeric`` columns as int64;
    each non-blank line must have exactly ``len(names)`` fields."""
    path = Path(path)
    lines = pd.Series(_decode(path).splitlines(), dtype=object)
    lineno = np.arange(1, len(lines) + 1)
    keep = (lines.str.len() > 0).to_numpy()
    lines, lineno = lines[keep].reset_index(drop=True), lineno[keep]
    parts = lines.str.split("::", regex=False)
    count = parts.str.len().to_numpy()
    bad = np.flatnonzero(count != len(names))
    if len(bad):
        b = int(bad[0])
        raise DataFormatError(
            f"{path}: line {lineno[b]}: {count[b]} fields, expected {len(names)} ('::'-separated {', '.join(names)})"
        )
    df = pd.DataFrame(parts.tolist(), columns=names, dtype=object)
    return _numeric(df, numeric, path, lineno)


def read_csv_table(path: str | Path, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """A small MovieLens CSV (movies.csv, tags.csv: quoted fields, UTF-8) with its documented header."""
    path = Path(path)
    expected = _CSV_HEADERS[path.name]
    _check_header(path, expected)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", engine="c")
    except pd.errors.ParserError as e:
        raise DataFormatError(f"{path}: {e}") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e})") from e
    # pandas skips blank lines: recover file line numbers only to report an error (rare path)
    return _numeric(df, numeric, path, None)


def _numeric(df: pd.DataFrame, numeric: tuple[str, ...], path: Path, lineno: np.ndarray | None) -> pd.DataFrame:
    for col in numeric:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy())
        if len(bad):
            row = int(bad[0])
            line = lineno[row] if lineno is not None else _csv_line(path, row)
            raise DataFormatError(f"{path}: line {line}: field {col!r} = {df[col].iloc[row]!r} is not a number")
        df[col] = num.astype(np.int64)
    return df


def _csv_line(path: Path, row: int) -> int:
    """File line of data row ``row`` of a CSV with a header (blank lines and quoted newlines accounted for); only
    called to report an error."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        n = -1
        for rec in reader:
            n += bool(rec)
            if n == row:
                return reader.line_num
    return row + 2


# ------------------------------------------------------------------------------------------------- the reader


def read_movies(folder: Path, kind: str) -> tuple[pd.DataFrame, str]:
    """Movie table indexed by raw movie id: ``title`` (as published, year included), ``year`` (Int64) and
    ``genres`` (``"A|B"``, empty for none); and the file name read."""
    if kind == "100k":
        name = "u.item"
        t = read_delimited(
            folder / name,
            ["item", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES],
            "|",
            numeric=("item", *ML100K_GENRES),
            encoding="latin-1",
            required=("item", "title", *ML100K_GENRES),
        )
        flags = t[ML100K_GENRES].to_numpy() == 1
        genres = ["|".join(g for g, f in zip(ML100K_GENRES, row) if f) for row in flags]
        movies = pd.DataFrame({"title": t["title"].astype(str), "genres": genres})
        movies.index = pd.Index(t["item"].astype(np.int64), name="item")
        release = pd.to_datetime(t["release_date"], format="%d-%b-%Y", errors="coerce").dt.year.to_numpy()
        fallback = pd.array(np.where(np.isnan(release), -1, release).astype(np.int64), dtype="Int64")
    else:
        name = "movies.dat" if kind == "dat" else "movies.csv"
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: the release's movie table is needed for items")
        t = read_dat(folder / name, ["item", "title", "genres"], ("item",)) if kind == "dat" else None
        if t is None:
            t = read_csv_table(folder / name, ("movieId",)).rename(columns={"movieId": "item"})
        genres = t["genres"].astype(str).replace(NO_GENRE, "")
        movies = pd.DataFrame({"title": t["title"].astype(str).to_numpy(), "genres": genres.to_numpy()})
        movies.index = pd.Index(t["item"].to_numpy(np.int64), name="item")
        fallback = pd.array(np.full(len(t), -1, np.int64), dtype="Int64")
    years = pd.Series(pd.array([split_title(s)[1] for s in movies["title"]], dtype="Int64"), index=movies.index)
    years = years.fillna(pd.Series(fallback, index=movies.index))
    movies["year"] = years.where(years >= 0, pd.NA)
    dup = movies.index.duplicated()
    if dup.any():
        raise DataFormatError(f"{folder / name}: movie id {movies.index[dup][0]} is listed twice")
    return movies, name


def read_users(folder: Path, kind: str, zip_prefix_digits: int) -> tuple[pd.DataFrame | None, str | None]:
    """User table indexed by raw user id (ML-100K: age, gender, occupation, zip_code; ML-1M: gender, age (group
    code), age_group, occupation, zip_code), with ``zip_prefix`` (the first ``zip_prefix_digits`` characters);
    ``None`` for releases without demographics."""
    if kind == "100k":
        name = "u.user"
        users = read_delimited(
            folder / name, ["user", "age", "gender", "occupation", "zip_code"], "|", numeric=("user", "age")
        ).astype({"user": np.int64, "age": np.int64})
    elif kind == "dat" and (folder / "users.dat").is_file():
        name = "users.dat"
        users = read_dat(folder / name, ["user", "gender", "age", "occupation", "zip_code"], ("user", "age"))
        occ = pd.to_numeric(users["occupation"], errors="coerce")
        bad = ~occ.isin(range(len(ML1M_OCCUPATIONS))) | ~users["age"].isin(list(ML1M_AGES))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(
                f"{folder / name}: line {row + 1}: age {users['age'].iloc[row]!r} / occupation "
                f"{users['occupation'].iloc[row]!r} is not one of ML-1M's codes (README)"
            )
        users["age_group"] = users["age"].map(ML1M_AGES)
        users["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[occ.to_numpy(np.int64)]
        users = users[["user", "gender", "age", "age_group", "occupation", "zip_code"]]
    else:
        return None, None
    users["zip_prefix"] = users["zip_code"].astype(str).str.strip().str[:zip_prefix_digits]
    return users.set_index("user"), name


def read_tags(folder: Path, kind: str) -> tuple[pd.DataFrame | None, str | None]:
    """Tag events ``user``, ``item`` (raw ids), ``tag`` of ``tags.dat`` / ``tags.csv``; ``None`` when absent."""
    if kind == "dat" and (folder / "tags.dat").is_file():
        name = "tags.dat"
        t = read_dat(folder / name, ["user", "item", "tag", "timestamp"], ("user", "item"))
    elif kind == "csv" and (folder / "tags.csv").is_file():
        name = "tags.csv"
        t = read_csv_table(folder / name, ("userId", "movieId")).rename(columns={"userId": "user", "movieId": "item"})
    else:
        return None, None
    return t[["user", "item", "tag"]], name


def item_texts(movies: pd.DataFrame, template: str) -> list[str]:
    """One string per movie from ``template`` (fields ``title`` without the year, ``year``, ``genres``)."""
    out = []
    for title_year, year, genres in zip(movies["title"], movies["year"], movies["genres"]):
        title, _ = split_title(str(title_year))
        names = ", ".join(g for g in str(genres).split("|") if g)
        try:
            out.append(template.format(title=title, year="" if pd.isna(year) else int(year), genres=names))
        except (KeyError, IndexError) as e:
            raise ValueError(
                f"dataset.text_template={template!r}: unknown field {e}; use title, year, genres"
            ) from None
    return out


def genre_multihot(genres: pd.Series) -> tuple[np.ndarray, list[str]]:
    """float32 multi-hot over the sorted genres that occur, and those genre names."""
    dummies = genres.astype(str).str.get_dummies(sep="|")
    dummies = dummies[[c for c in sorted(dummies.columns) if c]]
    return dummies.to_numpy(np.float32), list(dummies.columns)


def poster_paths(
    poster_dir: Path, titles: list[str], movie_ids: np.ndarray, kind: str
) -> tuple[list[Path | None], np.ndarray]:
    """Each movie's poster file (``None``: none) and the poster id used. Posters are ``<id>.jpg`` in
    ``poster_dir/images`` (or ``poster_dir``), keyed by the MovieLens movie id of ML-1M and later releases;
    ML-100K numbers its movies on its own, so they are matched by title and year to ``ml-1m-movies.dat`` (the
    poster folder's id list, as ``dataset=ml100k_mm`` does)."""
    poster_dir = Path(poster_dir).expanduser()
    images = poster_dir / "images" if (poster_dir / "images").is_dir() else poster_dir
    if not images.is_dir():
        raise FileNotFoundError(f"dataset.posters={str(poster_dir)!r}: no such folder")
    if kind == "100k":
        listing = poster_dir / "ml-1m-movies.dat"
        if not listing.is_file():
            raise FileNotFoundError(
                f"{listing} not found: ML-100K movies are joined to posters by title through the poster folder's "
                "ml-1m-movies.dat (ML-100K's own ids are not poster ids)"
            )
        known = read_dat(listing, ["id", "title", "genres"], ("id",))
        ids, _ = match_posters(titles, known)
    else:
        ids = np.asarray(movie_ids, np.int64)
    present = {p.stem for p in images.glob("*.jpg")}
    paths = [images / f"{m}.jpg" if m >= 0 and str(m) in present else None for m in ids]
    return paths, ids


def read_movielens(
    folder: str | Path,
    name: str,
    posters: str | Path | None = None,
    image_size: int = 224,
    text_template: str = "{title} ({year}). Genres: {genres}.",
    zip_prefix_digits: int = 1,
    max_tags: int = 50,
    content: bool = True,
) -> Dataset:
    """The whole release in ``folder`` as a :class:`Dataset` named ``name`` (see the module docstring)."""
    folder = Path(folder).expanduser()
    kind = detect_release(folder)
    ratings_file = {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[kind]
    r = read_ratings(folder / ratings_file)
    files = [ratings_file]
    movies, movies_file = read_movies(folder, kind)
    files.append(movies_file)
    users, users_file = read_users(folder, kind, zip_prefix_digits)
    if users_file:
        files.append(users_file)
    rated_users, rated_items = pd.unique(r["user"]), pd.unique(r["item"])
    unknown = ~pd.Index(rated_items).isin(movies.index)
    if unknown.any():
        log.warning(
            "%s: %d rated movie ids are not in %s (e.g. %s): their text and genres are missing",
            folder / ratings_file,
            int(unknown.sum()),
            movies_file,
            rated_items[unknown][:3].tolist(),
        )
    movies = movies[movies.index.isin(rated_items)]  # the catalogue: movies with a rating
    if users is not None:
        users = users[users.index.isin(rated_users)]
    ds = build_dataset(name, r["user"], r["item"], r["rating"], r["timestamp"], users, movies)
    del r
    ds.source = folder
    if users is not None:
        known = ds.user_table[["gender", "age", "occupation"]].notna().any(axis=1).to_numpy()
        ds.user_content = {"demographics": UserContent("demographics", ds.user_table, known)}
    tags, tags_file = read_tags(folder, kind)
    if content:
        table = ds.item_table
        has_row = table["title"].notna().to_numpy()
        filled = table.assign(title=table["title"].fillna(""), genres=table["genres"].fillna(""))
        multihot, genre_names = genre_multihot(filled["genres"])
        ds.content = {
            "text": ItemContent("text", item_texts(filled, text_template), has_row),
            "genres": ItemContent("genres", multihot, multihot.sum(1) > 0),
        }
        log.info("%s: %d genres %s", folder, len(genre_names), genre_names)
        if posters is not None:
            paths, ids = poster_paths(Path(posters), filled["title"].tolist(), ds.item_ids, kind)
            mask = np.array([p is not None for p in paths])
            ds.item_table["poster_id"] = ids
            ds.content["image"] = ItemContent("image", PosterImages(paths, image_size), mask)
            log.info("posters: %d of %d items", mask.sum(), len(mask))
        if tags is not None:
            files.append(tags_file)
            ds.content["tags"] = ItemContent(
                "tags",
                TrainTags.from_raw(ds, tags["user"].to_numpy(), tags["item"].to_numpy(), tags["tag"], max_tags),
                np.zeros(ds.n_items, bool),
            )
    ds.files = {f: file_sha256(folder / f) for f in files}
    log.info(
        "%s (%s): %d ratings, %d users, %d movies%s",
        folder,
        ratings_file,
        len(ds.interactions),
        ds.n_users,
        ds.n_items,
        f", tags in {tags_file}" if tags is not None else "",
    )
    return ds


class MovieLens(DatasetLoader):
    """Any MovieLens release folder ``path`` (``dataset=movielens dataset.path=<folder>``): ratings, item
    ``text`` / ``genres`` / ``tags`` (train-only) / ``image`` (with ``posters``), user ``demographics`` where
    the release has them."""

    name = "movielens"

    def __init__(
        self,
        path: str,
        posters: str | None = None,
        image_size: int = 224,
        text_template: str = "{title} ({year}). Genres: {genres}.",
        zip_prefix_digits: int = 1,
        max_tags: int = 50,
    ) -> None:
        _check_args(image_size, zip_prefix_digits, max_tags)
        self.path, self.posters, self.image_size = path, posters, image_size
        self.text_template, self.zip_prefix_digits, self.max_tags = text_template, zip_prefix_digits, max_tags

    def read(self) -> Dataset:
        return read_movielens(
            self.path,
            self.name,
            self.posters,
            self.image_size,
            self.text_template,
            self.zip_prefix_digits,
            self.max_tags,
        )


def _check_args(image_size: int, zip_prefix_digits: int, max_tags: int) -> None:
    if image_size < 8:
        raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
    if zip_prefix_digits < 1:
        raise ValueError(f"dataset.zip_prefix_digits={zip_prefix_digits}: must be at least 1")
    if max_tags < 1:
        raise ValueError(f"dataset.max_tags={max_tags}: must be at least 1")
