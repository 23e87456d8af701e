"""Strict delimited-file reading: a malformed line fails naming the file and line number."""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


class DataFormatError(ValueError):
    """A data file does not have the documented layout."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (data files can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_delimited(
    path: str | Path,
    names: list[str],
    sep: str,
    numeric: tuple[str, ...] = (),
    encoding: str = "utf-8",
    header: bool = False,
    required: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Read a delimited file with exactly ``len(names)`` fields per line.

    Blank lines are skipped (their count is logged). A line with too many or too
    few fields, an empty required field, or a non-numeric value in a ``numeric``
    column raises :class:`DataFormatError` with ``path:line``.
    """
    path = Path(path)
    first = 2 if header else 1  # file line number of data row 0
    if header:
        with open(path, encoding=encoding) as f:
            got = f.readline().rstrip("\r\n").split(sep)
        if got != names:
            raise DataFormatError(f"{path}: line 1: header {got} != expected {names}")
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            names=names,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            encoding=encoding,
            engine="c",
        )
    except pd.errors.ParserError as e:  # too many fields on some line
        raise DataFormatError(f"{path}: {e}") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not {encoding} text ({e})") from e
    blank = (df == "").all(axis=1) | df.isna().all(axis=1)
    if blank.any():
        log.info("%s: skipped %d blank lines", path, int(blank.sum()))
        df = df[~blank]
    required = tuple(names) if required is None else required
    for col in required:
        bad = df[col].isna() | (df[col] == "")
        if bad.any():
            line = int(df.index[bad.to_numpy()][0]) + first
            raise DataFormatError(f"{path}: line {line}: missing field {col!r} (expected {len(names)} fields: {names})")
    for col in numeric:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & (df[col] != "")
        if bad.any():
            line = int(df.index[bad.to_numpy()][0]) + first
            raise DataFormatError(f"{path}: line {line}: field {col!r} = {df[col][bad].iloc[0]!r} is not a number")
        df[col] = num
    return df.reset_index(drop=True)
