"""Write segmentation labels back into the user's own transcript table, row for row.

The command line reads a transcript table with :func:`manifoldseg.io.read_transcripts` (which
may drop control probes and low-quality rows), segments it, and writes the *original* table back:
every row in its original order with all its original columns, plus the label and confidence
columns. Rows the reader dropped get label -1 and an empty (NaN) confidence.

CSV to CSV keeps every original value as the text it was (the table is read as strings), and the
leading ``#`` comment lines of Stereo-seq GEM files are copied too.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._constants import BACKGROUND
from ._validate import InputError

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")


def table_format(path: str | os.PathLike) -> str | None:
    """The table suffix of an output path (``.csv``, ``.csv.gz``, ... ``.parquet``) or None."""
    name = Path(path).name.lower()
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def _source(path: Path):
    from .io._transcripts import _inspect

    return _inspect(path, "points")


def table_columns(path: str | os.PathLike) -> list[str]:
    """Column names of a transcript table (CSV, TSV, GEM, Parquet), read from its header only."""
    return list(_source(Path(path)).columns)


def full_labels(
    n_rows: int, input_row: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidence for every row of the original table (-1 / NaN for dropped rows)."""
    input_row = np.asarray(input_row, dtype=np.int64)
    if input_row.size and (input_row.min() < 0 or input_row.max() >= n_rows):
        raise InputError(
            f"obs['input_row'] points outside the table of {n_rows} rows; the table changed since it was read. "
            "Run the command again."
        )
    lab = np.full(n_rows, BACKGROUND, dtype=np.int64)
    lab[input_row] = np.asarray(labels, dtype=np.int64)
    conf = np.full(n_rows, np.nan, dtype=np.float32)
    if confidence is not None:
        conf[input_row] = np.round(np.asarray(confidence, dtype=np.float64), 4)
    return lab, conf


def _comment_lines(src) -> str:
    if not src.skiprows:
        return ""
    opener = gzip.open if src.compression == "gzip" else open
    with opener(src.path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        return "".join(fh.readline() for _ in range(src.skiprows))


def write_labeled_table(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    n_rows: int,
    labels: np.ndarray,
    confidence: np.ndarray,
    label_column: str,
    confidence_column: str,
    output_format: str,
) -> None:
    """Write the original table at ``input_path`` with two added columns to ``output_path``.

    Parameters
    ----------
    input_path
        The transcript table that was segmented (CSV, TSV, GEM, optionally gzipped, or Parquet).
    output_path
        Where to write (a temporary path; the caller moves it into place).
    n_rows
        Data rows the reader saw (``uns["manifoldseg_io"]["n_rows_read"]``); checked against the
        table read again.
    labels, confidence
        One value per row of the original table (see :func:`full_labels`).
    label_column, confidence_column
        Names of the added columns (must not exist in the table).
    output_format
        The output's suffix (:func:`table_format`), e.g. ``".csv.gz"`` or ``".parquet"``.
    """
    src = _source(Path(input_path))
    if label_column in src.columns or confidence_column in src.columns:
        raise InputError(
            f"the input table already has a column {label_column!r} or {confidence_column!r}; pass --key-added "
            "<another name>."
        )
    text_out = not output_format.startswith((".parquet", ".pq"))
    if src.kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(src.path)
        _check_rows(table.num_rows, n_rows, src.label)
        if not text_out:
            table = table.append_column(label_column, pa.array(labels, type=pa.int64()))
            table = table.append_column(confidence_column, pa.array(confidence, type=pa.float32(), from_pandas=True))
            pq.write_table(table, output_path)
            return
        frame = table.to_pandas()
        header = ""
    elif src.kind == "csv":
        read = {"dtype": str, "keep_default_na": False, "na_filter": False} if text_out else {}
        try:
            frame = pd.read_csv(
                src.path, sep=src.sep, skiprows=src.skiprows, compression=src.compression, low_memory=False, **read
            )
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
            raise InputError(f"could not read {src.label!r} again to write the labels back: {err}") from err
        _check_rows(len(frame), n_rows, src.label)
        header = _comment_lines(src) if text_out else ""
    else:  # pragma: no cover - the command line only sends tables here
        raise InputError(f"{src.label!r} is not a transcript table; write the result as .h5ad instead.")

    frame[label_column] = labels
    frame[confidence_column] = confidence
    if not text_out:
        frame.to_parquet(output_path, index=False)
        return
    sep = "\t" if output_format.startswith(".tsv") else ","
    opener = gzip.open if output_format.endswith(".gz") else open
    with opener(output_path, "wt", encoding="utf-8", newline="") as fh:
        if header:
            fh.write(header)
        frame.to_csv(fh, sep=sep, index=False, lineterminator="\n")


def _check_rows(found: int, expected: int, label: str) -> None:
    if found != expected:
        raise InputError(
            f"{label!r} now has {found} data rows but {expected} were segmented; the file changed while "
            "manifoldseg ran. Run the command again."
        )
