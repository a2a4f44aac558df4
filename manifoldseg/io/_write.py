"""Atomic writers: a temporary file in the target's folder, then ``os.replace``.

A failed or interrupted write leaves no partial output and no temporary file, and an existing
output is never replaced unless ``overwrite=True`` (``--force`` on the command line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .._validate import InputError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["atomic_path", "write_h5ad", "write_table"]

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")


def _check_target(path: Path, overwrite: bool, directory: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already exists and would be overwritten; pass overwrite=True "
            "(--force on the command line) or choose another output path."
        )
    if path.is_dir() and not directory:
        raise InputError(f"{str(path)!r} is a folder; give a file path for the output.")
    parent = path.parent
    if not parent.exists():
        raise InputError(f"the output folder {str(parent)!r} does not exist; create it first (mkdir -p).")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    Parameters
    ----------
    path
        The final output path.
    overwrite
        Replace an existing output. Otherwise an existing ``path`` raises ``FileExistsError``
        before anything is written.
    directory
        The output is a folder (e.g. a zarr store); the yielded path does not exist yet.

    Yields
    ------
    pathlib.Path
        Where to write. On an exception inside the block the temporary file or folder is removed
        and the exception propagates; ``path`` is untouched.

    Examples
    --------
    >>> with atomic_path("cells.geojson") as tmp:  # doctest: +SKIP
    ...     tmp.write_text(text)
    """
    path = Path(path)
    _check_target(path, overwrite, directory)
    parent = path.parent if str(path.parent) else Path(".")
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp"))
        shutil.rmtree(tmp)
    else:
        fd, name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        # mkstemp makes 0600 files: give the output the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
        tmp = Path(name)
    try:
        yield tmp
        if directory and path.exists():
            trash = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.", suffix=".old"))
            shutil.rmtree(trash)
            os.replace(path, trash)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(trash, path)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def write_h5ad(adata: AnnData, path: str | os.PathLike, *, overwrite: bool = False, compression: str | None = None) -> Path:
    """Write an AnnData to ``.h5ad`` atomically.

    Parameters
    ----------
    adata
        The AnnData to write.
    path
        Output path (``.h5ad``).
    overwrite
        Replace an existing file; otherwise ``FileExistsError``.
    compression
        Passed to :meth:`anndata.AnnData.write_h5ad` (``None`` or ``"gzip"``).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        adata.write_h5ad(tmp, compression=compression)
    return path


def _table_format(path: Path) -> str:
    name = path.name.lower()
    for suffix in _TABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(
        f"cannot tell the table format of {str(path)!r} from its name; use one of the suffixes "
        f"{', '.join(_TABLE_SUFFIXES)}."
    )


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False, index: bool = False) -> Path:
    """Write a table atomically as CSV, TSV (optionally gzipped) or Parquet, chosen by suffix.

    Parameters
    ----------
    df
        The table.
    path
        Output path ending in ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.parquet`` or ``.pq``.
    overwrite
        Replace an existing file; otherwise ``FileExistsError``.
    index
        Also write the DataFrame's index.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    fmt = _table_format(path)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"write_table expects a pandas DataFrame, got {type(df).__name__}.")
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt in (".parquet", ".pq"):
            df.to_parquet(tmp, index=index)
        else:
            sep = "\t" if fmt.startswith(".tsv") else ","
            compression = "gzip" if fmt.endswith(".gz") else None
            df.to_csv(tmp, sep=sep, index=index, compression=compression)
    return path
