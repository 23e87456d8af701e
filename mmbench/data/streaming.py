"""Streaming table readers shared by the file loaders: pyarrow parses CSV / TSV / JSON lines / Parquet (optionally
compressed, detected from the name) in multi-threaded blocks, never a Python loop over lines.

The hot path never looks at single lines. Only when pyarrow rejects a file (or a value cannot be converted) is
the file scanned line by line to name the first bad line: :class:`DataFormatError` ``<file>: line N: ...``.
Line numbers count physical lines (1-based, the header is line 1) and assume one record per line.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mmbench.data.readers import DataFormatError

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
BLOCK_SIZE = 1 << 24  # 16 MiB blocks: few enough Python round trips, small enough to stream


def detect_format(path: str | Path) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``parquet`` from the file name (a compression suffix is looked through)."""
    name = Path(path).name.lower()
    for suf in _COMPRESSED:
        name = name.removesuffix(suf)
    fmt = _SUFFIX_FORMAT.get(Path(name).suffix)
    if fmt is None:
        raise DataFormatError(
            f"{path}: cannot tell the format from the name; give the format ({', '.join(FORMATS)}) explicitly"
        )
    return fmt


def check_format(fmt: str, what: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"{what}={fmt!r}: choose one of {FORMATS} (or null to detect it from the file name)")


def open_text(path: str | Path, encoding: str = "utf-8") -> io.TextIOBase:
    """The file as text, decompressed by its name's suffix (for headers and error scans, not the hot path)."""
    return io.TextIOWrapper(pa.input_stream(str(path)), encoding=encoding, errors="replace", newline="")


def read_header(path: str | Path, sep: str) -> list[str]:
    with open_text(path) as f:
        first = f.readline().rstrip("\r\n")
    return next(csv.reader([first], delimiter=sep)) if first else []


def read_table(
    path: str | Path,
    fmt: str | None = None,
    columns: list[str] | None = None,
    sep: str | None = None,
    string_columns: tuple[str, ...] = (),
) -> pa.Table:
    """``columns`` of a file (all when None) as a pyarrow table.

    CSV/TSV need a header line; ``string_columns`` are read as text (ids keep leading zeros). JSON lines read
    only ``columns`` (other fields, whatever their types, are ignored). A missing column or a malformed line
    raises :class:`DataFormatError` naming the file and the line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    fmt = fmt or detect_format(path)
    check_format(fmt, "format")
    if fmt == "parquet":
        return _read_parquet(path, columns)
    if fmt == "jsonl":
        return _read_jsonl(path, columns, string_columns)
    return _read_csv(path, sep or ("\t" if fmt == "tsv" else ","), columns, string_columns)


def _read_parquet(path: Path, columns: list[str] | None) -> pa.Table:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataFormatError(f"{path}: not a Parquet file ({e})") from None
    missing = [c for c in columns or [] if c not in schema.names]
    if missing:
        raise DataFormatError(f"{path}: no column {missing[0]!r} (columns: {schema.names})")
    return pq.read_table(path, columns=columns)


def _read_csv(path: Path, sep: str, columns: list[str] | None, string_columns: tuple[str, ...]) -> pa.Table:
    header = read_header(path, sep)
    missing = [c for c in columns or [] if c not in header]
    if missing:
        raise DataFormatError(f"{path}: line 1: no column {missing[0]!r} in header {header} (separator {sep!r})")
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: pa.string() for c in string_columns},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as e:
        line, what = _locate_csv_error(path, sep, len(header))
        raise DataFormatError(f"{path}: line {line}: {what}" if line else f"{path}: {e}") from None


def _locate_csv_error(path: Path, sep: str, n_fields: int) -> tuple[int | None, str]:
    """Error path only: the first line whose field count differs from the header's."""
    with open_text(path) as f:
        for n, row in enumerate(csv.reader(f, delimiter=sep), start=1):
            if row and len(row) != n_fields:
                return n, f"{len(row)} fields, the header has {n_fields}: {sep.join(row)[:200]!r}"
    return None, ""


def _read_jsonl(path: Path, columns: list[str] | None, string_columns: tuple[str, ...]) -> pa.Table:
    parse = pajson.ParseOptions(newlines_in_values=False)
    if columns is not None:
        # Types of the wanted fields from the first record; all other fields are ignored, so their type
        # changes (common in review dumps) cannot fail the read.
        first = next(iter_json_records(path, limit=1), (0, {}))[1]
        fields = [
            pa.field(c, pa.string() if c in string_columns else _arrow_type(first.get(c), string_columns))
            for c in columns
        ]
        parse = pajson.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(path, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE), parse_options=parse)
    except pa.ArrowInvalid as e:
        line, what = locate_json_error(path, columns)
        raise DataFormatError(f"{path}: line {line}: {what}" if line else f"{path}: {e}") from None
    if columns is not None:
        absent = [c for c in columns if table.num_rows and table.column(c).null_count == table.num_rows]
        if absent:
            raise DataFormatError(f"{path}: no record has the field {absent[0]!r}")
    return table


def _arrow_type(value: Any, string_columns: tuple[str, ...]) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int | float):  # float64 for ints too: a later 4.5 must not fail an int64 column
        return pa.float64()
    if isinstance(value, list):
        return pa.list_(pa.string()) if all(isinstance(v, str) for v in value) else pa.string()
    return pa.string()


def locate_json_error(path: Path, columns: list[str] | None) -> tuple[int | None, str]:
    """Error path only: the first line that is not a JSON object, or whose wanted field changes type."""
    seen: dict[str, type] = {}
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                return n, f"not valid JSON ({e.msg} at column {e.colno})"
            if not isinstance(rec, dict):
                return n, f"expected a JSON object, got {type(rec).__name__}"
            for c in columns or []:
                v = rec.get(c)
                if v is None:
                    continue
                kind = float if isinstance(v, int | float) and not isinstance(v, bool) else type(v)
                if seen.setdefault(c, kind) is not kind:
                    return n, f"field {c!r} = {v!r} is a {type(v).__name__}, earlier lines hold {seen[c].__name__}s"
    return None, ""


def iter_json_records(
    path: str | Path, limit: int | None = None, literal_fallback: bool = False
) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of a JSON-lines file, one Python object per line.

    For metadata files only (a few per dataset, not the event hot path). With ``literal_fallback`` a line that
    is not JSON is read as a Python literal (``ast.literal_eval``: the 2014 Amazon metadata is written with
    ``repr``); the count of such lines is logged. A line that is neither fails naming the file and line.
    """
    n_literal = 0
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if limit is not None and n > limit:
                break
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                if not literal_fallback:
                    raise DataFormatError(f"{path}: line {n}: not valid JSON ({e.msg} at column {e.colno})") from None
                try:
                    rec = ast.literal_eval(line.strip())
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    raise DataFormatError(
                        f"{path}: line {n}: neither JSON nor a Python literal ({e.msg} at column {e.colno})"
                    ) from None
                n_literal += 1
            if not isinstance(rec, dict):
                raise DataFormatError(f"{path}: line {n}: expected an object, got {type(rec).__name__}")
            yield n, rec
    if n_literal:
        log.info("%s: %d lines are Python literals, not JSON: read with ast.literal_eval", path, n_literal)


def row_line(path: str | Path, fmt: str, row: int) -> str:
    """Where data row ``row`` (0-based) of a file is, for messages: ``line N`` (text) or ``row N`` (Parquet).

    Error path only: scans the file to skip blank lines, as the readers do."""
    if fmt == "parquet":
        return f"row {row + 1}"
    k = -1 if fmt in ("csv", "tsv") else 0  # the header is no data row
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                if k == row:
                    return f"line {n}"
                k += 1
    return f"data row {row + 1}"


def _canonical_int(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """``col`` as int64 when every value is a canonically written integer, else unchanged."""
    try:
        ints = pc.cast(col, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return col
    padded = pc.and_(pc.greater(pc.utf8_length(col), 1), pc.or_(pc.starts_with(col, "0"), pc.starts_with(col, "-0")))
    odd = pc.or_(padded, pc.or_(pc.starts_with(col, "+"), pc.match_substring(col, " ")))
    return col if pc.any(odd).as_py() else ints


def required_ids(table: pa.Table, column: str, path: Path, fmt: str, int_if_canonical: bool = False) -> np.ndarray:
    """An id column as numpy (int64 if integral, else str objects); an empty id fails naming file and line.

    With ``int_if_canonical`` a text column whose every value is an integer written canonically (no leading
    zero, no sign but ``-``) becomes int64: ``7`` is the integer 7, while ``007`` keeps the whole column text."""
    col = table.column(column)
    if int_if_canonical and pa.types.is_string(col.type):
        col = _canonical_int(col)
    if pa.types.is_floating(col.type):
        bad = pc.fill_null(pc.not_equal(pc.floor(col), col), True)
        if pc.any(bad).as_py():
            row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise DataFormatError(
                f"{path}: {row_line(path, fmt, row)}: {column!r} = {col[row].as_py()!r} is not a whole-number id"
            )
        col = pc.cast(col, pa.int64())
    elif not pa.types.is_integer(col.type):
        col = pc.cast(col, pa.string())
    missing = pc.is_null(col) if not pa.types.is_string(col.type) else pc.or_(pc.is_null(col), pc.equal(col, ""))
    if pc.any(missing).as_py():
        row = int(np.flatnonzero(missing.to_numpy(zero_copy_only=False))[0])
        raise DataFormatError(f"{path}: {row_line(path, fmt, row)}: empty {column!r}")
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64, copy=False)
    return col.to_numpy(zero_copy_only=False).astype(object)


def numeric(table: pa.Table, column: str, path: Path, fmt: str, dtype: type = np.float64) -> np.ndarray:
    """A numeric column as numpy; a missing or non-numeric value fails naming file, line and value."""
    col = table.column(column)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        values = pd.to_numeric(pd.Series(col.to_numpy(zero_copy_only=False), dtype=object), errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataFormatError(
                f"{path}: {row_line(path, fmt, row)}: {column!r} = {col[row].as_py()!r} is not a number"
            )
        return values.to_numpy(dtype)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        raise DataFormatError(f"{path}: column {column!r} has type {col.type}, expected numbers")
    if col.null_count:
        row = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
        raise DataFormatError(f"{path}: {row_line(path, fmt, row)}: empty {column!r}")
    return col.to_numpy().astype(dtype, copy=False)


def timestamps(table: pa.Table, column: str, path: Path, fmt: str) -> np.ndarray:
    """Seconds since the epoch (int64): numbers as they are, date/time strings or timestamps parsed (UTC)."""
    col = table.column(column)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return _epoch_seconds(pd.to_datetime(pd.Series(col.to_pandas()), utc=True))
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        raw = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        num = pd.to_numeric(raw, errors="coerce")
        if num.notna().all():
            return num.to_numpy(np.int64)
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataFormatError(
                f"{path}: {row_line(path, fmt, row)}: {column!r} = {raw.iloc[row]!r} is neither a number nor a date"
            )
        return _epoch_seconds(parsed)
    return numeric(table, column, path, fmt, np.int64)


def _epoch_seconds(t: pd.Series) -> np.ndarray:
    return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
