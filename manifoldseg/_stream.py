"""Whole sections from disk in bounded memory: chunked reading, per-tile shards, incremental output.

:func:`segment_file` segments a transcript table (Parquet, CSV, CSV.gz, TSV, GEM) or an ``.h5ad``
of spots that need not fit in memory, and writes the labelled result incrementally, without ever
holding a spots x genes matrix or a pandas table of the whole section:

1. **Scan** (:meth:`TableStream.scan`, :meth:`SpotsStream.scan`): the input is read in chunks of
   at most ``chunk_rows`` rows (Parquet record batches, CSV chunks, h5py row ranges of
   ``obsm["spatial"]`` and ``X``), only the columns needed. Table chunks go through the same
   column mapping, control-probe and ``min_qv`` filters and checks as
   :func:`manifoldseg.io.read_transcripts`. The scan keeps the bounds, the row counts, the sorted
   gene vocabulary and one bit per row (kept or dropped).
2. **Route** (:func:`route`): a second pass writes every kept row to the shard files of the
   bucket (a square of a grid over the section) that holds it, in a temporary folder, and keeps
   the central window of the section (:func:`manifoldseg._tiling.central_sample`, about 300,000
   spots at most) on which the section-wide parameters are learnt (cell diameter, the segmenter's
   section parameters, link radius) as :func:`manifoldseg._tiling.segment_tiled` learns them.
3. **Segment** (:func:`segment_stream`): the tiles of :class:`manifoldseg._tiling.TileLayout` run
   through the same Dask runner and :func:`manifoldseg._tiling.run_tile`; a task's payload is the
   shard folder and the buckets its tile overlaps (no arrays), so a worker loads only its own tile
   from disk. Results are stitched by :class:`manifoldseg._tiling.Stitcher` as they arrive.
4. **Write** (:func:`write_labeled_stream`, :func:`write_h5ad_stream`): a table is read again in
   chunks and written with the label and confidence columns appended (Parquet row groups or CSV
   chunks); an ``.h5ad`` is copied and the new ``obs`` columns written into the copy through h5py.
   Both go to a temporary file renamed into place only on success.

Same labels as the in-memory path (``read_transcripts`` + ``segment_tiled``) for the same seed and
tile size: both learn the section-wide parameters on the same central window
(:func:`manifoldseg._tiling.prepare_section`).

Memory: per spot the driver keeps the coordinates (float64 x, y: 16 bytes), the total counts
(float32 for float counts, whose sums are exact in float32: 4 bytes), one kept bit and the
stitcher's arrays (20 bytes), then the int64 labels (8 bytes, while the stitcher frees 8 of its
own) and no genes: at most about 48 bytes per spot of arrays. Measured with
``benchmarks/memory.py --io-only`` (a trivial segmenter, one process), the driver's peak resident
memory grows by about 35 bytes per transcript (0.43 GB at 2M transcripts, 0.64 GB at 8M, Python
and its libraries included); readers and writers hold one chunk of ``chunk_rows`` rows. A worker
holds one tile; the section parameters are learnt on at most about 300,000 spots. Workers must
see the shard folder (``tmp_dir``, by default the system's temporary folder, ``$TMPDIR``): on a
cluster of several machines, put it on a shared file system. Shards take about 45 bytes per row
on disk.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._constants import BACKGROUND, CONFIDENCE_SUFFIX
from ._validate import InputError

if TYPE_CHECKING:
    from ._tiling import TiledResult, TileLayout

logger = logging.getLogger("manifoldseg")

__all__ = ["segment_file", "segment_table", "TableStream", "SpotsStream", "estimate_rows", "DEFAULT_CHUNK_ROWS"]

#: rows per chunk read from the input
DEFAULT_CHUNK_ROWS = 1_000_000
#: routing grid: about this many spots per bucket (``tile_size="auto"``)
BUCKET_SPOTS = 50_000
#: at most this many bucket files
MAX_BUCKETS = 4096


# --------------------------------------------------------------------------- row mask


class _RowMask:
    """One bit per input row (kept by the reader or dropped), stored per chunk, packed."""

    def __init__(self):
        self.starts: list[int] = []
        self.lengths: list[int] = []
        self.bits: list[np.ndarray | None] = []  # None: every row of the chunk kept

    def append(self, start: int, keep: np.ndarray) -> None:
        self.starts.append(int(start))
        self.lengths.append(len(keep))
        self.bits.append(None if keep.all() else np.packbits(keep))

    def get(self, a: int, b: int) -> np.ndarray:
        """The kept flags of input rows ``a .. b-1``."""
        out = np.empty(b - a, dtype=bool)
        i = max(0, bisect.bisect_right(self.starts, a) - 1)
        pos = a
        while pos < b:
            if i >= len(self.starts):
                raise InputError("the input has more rows than when it was first read; the file changed while "
                                 "manifoldseg ran. Run the command again.")
            s, n, bits = self.starts[i], self.lengths[i], self.bits[i]
            lo, hi = pos - s, min(n, b - s)
            out[pos - a : pos - a + hi - lo] = True if bits is None else np.unpackbits(bits, count=n)[lo:hi]
            pos += hi - lo
            i += 1
        return out


# --------------------------------------------------------------------------- the chunked reader


@dataclass
class _Parsed:
    """One chunk after the reader's filters: kept rows only."""

    keep: np.ndarray  # (rows of the chunk,) bool
    coords: np.ndarray  # (kept, 2 or 3) float64 in um
    genes: np.ndarray  # (kept,) index in the chunk's sorted gene names
    names: np.ndarray  # the chunk's sorted gene names
    counts: np.ndarray  # (kept,) float32
    prior: np.ndarray | None  # (kept,) raw prior values
    n_controls: int
    n_low_qv: int


class TableStream:
    """A transcript table read in chunks through :func:`manifoldseg.io.read_transcripts`' rules.

    Parameters
    ----------
    path
        CSV, CSV.gz, TSV, GEM or Parquet table.
    chunk_rows
        At most this many rows are read at a time.
    prior_column
        A column of nucleus ids (numbers, or text ids; ``-1``/empty outside nuclei) used as prior.
    drop_controls, min_qv, **reader_kwargs
        As in :func:`manifoldseg.io.read_transcripts` (``platform``, ``x``, ``y``, ``z``,
        ``gene``, ``count``, ``pixel_size``, ``z_scale``, ``control_prefixes``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        prior_column: str | None = None,
        drop_controls: bool = True,
        min_qv: float | None = None,
        **reader_kwargs,
    ):
        from .io._transcripts import _plan_read

        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
            raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
        self.chunk_rows = int(chunk_rows)
        self.prior_column = prior_column
        self.drop_controls = bool(drop_controls)
        self.min_qv = min_qv
        keep = [prior_column] if prior_column is not None else []
        self.plan = _plan_read(path, min_qv=min_qv, keep_columns=keep, **reader_kwargs)
        src = self.plan.src
        if src.kind not in ("parquet", "csv"):
            raise InputError(
                f"{src.label!r} is not a CSV/TSV/Parquet table; only tables are read in chunks. Read it with "
                "ms.io.read_transcripts and segment it in memory."
            )
        self.label = src.label
        self.path = src.path
        self.kind = src.kind
        self.columns = list(src.columns)
        # instrumentation: the largest frame any read produced, and how many
        self.max_rows_read = 0
        self.n_frames = 0
        # filled by scan()
        self.n_rows = 0
        self.n_kept = 0
        self.mask = _RowMask()
        self.genes: np.ndarray | None = None
        self.lo = self.hi = self.origin = None
        self.dim = 2
        self.n_controls = 0
        self.n_low_qv = 0
        self.prior_numeric = True

    # ---------------------------------------------------------------- raw frames

    def frames(self, columns: list[str] | None, *, text: bool = False,
               dtypes: dict[str, Any] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(first row, frame)`` for consecutive chunks of at most ``chunk_rows`` rows.

        ``columns=None`` reads every column; ``text=True`` reads a CSV as strings (values kept as
        written); ``dtypes`` sets CSV column types.
        """
        start = 0
        for df in self._raw_frames(columns, text=text, dtypes=dtypes):
            n = len(df)
            self.n_frames += 1
            self.max_rows_read = max(self.max_rows_read, n)
            yield start, df
            start += n

    def _raw_frames(self, columns, *, text, dtypes):
        src = self.plan.src
        if self.kind == "parquet":
            for batch in self.batches(columns):
                yield batch.to_pandas()
            return
        kw: dict[str, Any] = {"sep": src.sep, "skiprows": src.skiprows, "compression": src.compression,
                              "usecols": columns, "chunksize": self.chunk_rows, "low_memory": False}
        if text:
            kw.update(dtype=str, keep_default_na=False, na_filter=False)
        elif dtypes is not None:
            kw["dtype"] = dtypes
        else:
            kw["dtype"] = {c: "category" for c in self.plan.categorical if columns is None or c in columns}
        try:
            with pd.read_csv(src.path, **kw) as reader:
                yield from reader
        except (pd.errors.ParserError, pd.errors.EmptyDataError, EOFError, OSError, UnicodeDecodeError,
                ValueError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(
                f"could not read {src.label!r} as a {'tab' if src.sep == chr(9) else 'comma'}-separated table: {msg}. "
                "The file may be truncated or not a table."
            ) from err

    def batches(self, columns: list[str] | None, *, dictionary: bool = True):
        """Parquet record batches of at most ``chunk_rows`` rows (the reader's text columns as
        dictionaries unless ``dictionary=False``)."""
        import pyarrow.parquet as pq

        cats = [c for c in self.plan.categorical if columns is None or c in columns] if dictionary else None
        try:
            # pre_buffer=False: pyarrow's pre-buffering reads ahead and keeps the column chunks of every row
            # group still to come, which holds most of the compressed file in memory during each pass
            pf = pq.ParquetFile(self.path, read_dictionary=cats, pre_buffer=False)
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=columns):
                self.max_rows_read = max(self.max_rows_read, batch.num_rows)
                yield batch
        except (OSError, ValueError) as err:
            raise InputError(f"could not read {self.label!r} as Parquet: {err}") from err

    # ---------------------------------------------------------------- one chunk

    def parse(self, df: pd.DataFrame) -> _Parsed:
        """The reader's filters and checks on one chunk (see :func:`manifoldseg.io.read_transcripts`)."""
        from .io._transcripts import _control_rows, _coords_of, _counts_of, _gene_codes, _qv_values

        plan = self.plan
        roles = plan.roles
        n = len(df)
        codes, names = _gene_codes(df[roles["gene"]], roles["gene"], self.label)
        keep = np.ones(n, dtype=bool)
        n_controls = n_low = 0
        if self.drop_controls:
            control = _control_rows(df, plan, codes, names)
            n_controls = int(control.sum())
            keep &= ~control
        if self.min_qv is not None:
            qv = _qv_values(df, plan, self.min_qv)
            low = ~(qv >= self.min_qv) & keep
            n_low = int(low.sum())
            keep &= ~low
        sub = df if keep.all() else df.iloc[np.flatnonzero(keep)]
        coords = _coords_of(sub, plan) if len(sub) else np.zeros((0, 3 if plan.z_col else 2))
        counts = _counts_of(sub, plan)
        if counts.size and (not np.isfinite(counts).all() or (counts < 0).any()):
            from ._validate import check_counts

            check_counts(sparse.csr_matrix(counts[:, None]), name=f"count column {roles['count']!r} of {self.label!r}")
        prior = sub[self.prior_column].to_numpy() if self.prior_column is not None else None
        return _Parsed(keep, coords, codes[keep], names, counts, prior, n_controls, n_low)

    # ---------------------------------------------------------------- pass 1

    def scan(self) -> TableStream:
        """Pass 1: row counts, kept rows, bounds, gene vocabulary (sorted) and checks."""
        t0 = time.perf_counter()
        genes: set[str] = set()
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        origin = np.full(3, np.inf)
        n_rows = n_kept = 0
        for start, df in self.frames(self.plan.usecols):
            p = self.parse(df)
            self.mask.append(start, p.keep)
            n_rows += len(df)
            n_kept += len(p.coords)
            self.n_controls += p.n_controls
            self.n_low_qv += p.n_low_qv
            if len(p.coords):
                self.dim = p.coords.shape[1]
                lo = np.minimum(lo, p.coords[:, :2].min(axis=0))
                hi = np.maximum(hi, p.coords[:, :2].max(axis=0))
                origin[: self.dim] = np.minimum(origin[: self.dim], p.coords.min(axis=0))
                genes.update(p.names[np.unique(p.genes)].tolist())
            if p.prior is not None and self.prior_numeric:
                self.prior_numeric = _numeric_ids(p.prior) is not None
        if n_rows == 0:
            raise InputError(f"{self.label!r} has a header but no data rows: there are no transcripts to read.")
        if n_kept == 0:
            raise InputError(
                f"{self.label!r}: no rows left after dropping {self.n_controls} control-probe rows and "
                f"{self.n_low_qv} rows below min_qv; pass drop_controls=False or a lower min_qv."
            )
        self.n_rows, self.n_kept = n_rows, n_kept
        self.genes = np.array(sorted(genes), dtype=object).astype(str)
        self.lo, self.hi = lo, hi
        self.origin = origin[: self.dim]
        logger.info("scanned %s: %d of %d rows kept, %d genes, %.1f s", self.label, n_kept, n_rows,
                    len(self.genes), time.perf_counter() - t0)
        return self


    # ---------------------------------------------------------------- pass 2 protocol

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    count_dtype = np.float32

    def kept_chunks(self) -> Iterator[_Kept]:
        """The kept rows chunk by chunk, genes numbered in the sorted vocabulary (one entry a row)."""
        prior_codes = _PriorCodes()
        for start, df in self.frames(self.plan.usecols):
            p = self.parse(df)
            if not np.array_equal(p.keep, self.mask.get(start, start + len(df))):
                raise InputError(f"{self.label!r} changed while manifoldseg read it; run the command again.")
            prior = None
            if self.prior_column is not None:
                prior = _numeric_ids(p.prior) if self.prior_numeric else prior_codes(p.prior)
            gene = np.searchsorted(self.genes, p.names)[p.genes].astype(np.int32)
            yield _Kept(p.coords, np.arange(len(gene) + 1, dtype=np.int64), gene, p.counts, prior)


def _numeric_ids(values: np.ndarray) -> np.ndarray | None:
    """Integer ids (-1 outside nuclei) when every value is a number (as the command line reads them)."""
    s = pd.Series(values)
    if not isinstance(s.dtype, pd.CategoricalDtype) and s.dtype.kind in "biuf":
        v = s.to_numpy(dtype=np.float64)
        return np.where(np.isfinite(v) & (v >= 0), np.nan_to_num(v, nan=-1.0), -1).astype(np.int64)
    num = pd.to_numeric(s.astype(str).str.strip(), errors="coerce")
    if num.notna().all() and (num == num.round()).all():
        v = num.to_numpy(dtype=np.float64)
        return np.where(v >= 0, v, -1).astype(np.int64)
    return None


class _PriorCodes:
    """Text nucleus ids numbered in order of first appearance (``pd.factorize`` over the whole column)."""

    _BACKGROUND = {"", "-1", "nan", "none", "unassigned", "background"}

    def __init__(self):
        self.ids: dict[str, int] = {}

    def __call__(self, values: np.ndarray) -> np.ndarray:
        text = pd.Series(values).astype(str).str.strip()
        bg = text.str.lower().isin(self._BACKGROUND).to_numpy()
        out = np.full(len(text), -1, dtype=np.int64)
        codes, uniq = pd.factorize(text[~bg])
        lookup = np.array([self.ids.setdefault(u, len(self.ids)) for u in uniq], dtype=np.int64)
        out[~bg] = lookup[codes] if len(uniq) else out[~bg]
        return out


# --------------------------------------------------------------------------- h5ad of spots


class SpotsStream:
    """An ``.h5ad`` of spots read by row ranges through h5py (``obsm[spatial_key]`` and rows of a
    CSR or dense ``X``); nothing of the whole section is loaded but its shape.

    Parameters
    ----------
    path
        The ``.h5ad`` file (only read).
    chunk_rows
        At most this many spots are read at a time.
    spatial_key
        ``obsm`` key of the coordinates (um).
    prior_column
        ``obs`` column of nucleus ids (integers or a categorical; -1 / NaN outside nuclei).
    """

    def __init__(self, path: str | os.PathLike, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 spatial_key: str = "spatial", prior_column: str | None = None):
        import h5py

        from ._validate import MissingKeyError, _fmt_list
        from .io._h5ad import _HDF5_MAGIC, _check_input_file

        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
            raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
        self.path = Path(path)
        self.label = str(path)
        _check_input_file(self.path)
        with open(self.path, "rb") as fh:
            if fh.read(8) != _HDF5_MAGIC:
                raise InputError(f"{self.label!r} is not a valid h5ad file (it is not HDF5).")
        self.chunk_rows = int(chunk_rows)
        self.spatial_key = spatial_key
        self.prior_column = prior_column
        try:
            with h5py.File(self.path, "r") as f:
                obsm = f.get("obsm")
                if obsm is None or spatial_key not in obsm or not isinstance(obsm[spatial_key], h5py.Dataset):
                    keys = list(obsm.keys()) if obsm is not None else []
                    raise MissingKeyError(
                        f"{self.label!r} has no obsm[{spatial_key!r}] array; obsm keys present: {_fmt_list(keys)}. "
                        "Pass spatial_key=<one of them>."
                    )
                X = f["X"]
                if isinstance(X, h5py.Group):
                    enc = X.attrs.get("encoding-type")
                    if enc != "csr_matrix":
                        raise InputError(
                            f"{self.label!r} stores X as {enc!r}; reading by rows needs CSR or dense X. Convert it "
                            "(adata.X = adata.X.tocsr(); adata.write_h5ad(...)) or segment it in memory."
                        )
                    shape = tuple(int(v) for v in X.attrs["shape"])
                    dt = X["data"].dtype
                else:
                    shape, dt = X.shape, X.dtype
                self.n_rows, self.n_genes = int(shape[0]), int(shape[1])
                self.dense = not isinstance(X, h5py.Group)
                if prior_column is not None and prior_column not in f["obs"]:
                    raise KeyError(
                        f"prior_key={prior_column!r} is not a column of obs in {self.label!r} (columns: "
                        f"{_fmt_list(f['obs'].keys())}); pass the obs column of nucleus ids, or prior_key=None."
                    )
        except OSError as err:
            raise InputError(f"{self.label!r} is not a valid h5ad file or is truncated or corrupt ({err}).") from err
        self.count_dtype = np.dtype(np.float32) if dt.kind in "fb" else dt
        self.kind = "h5ad"
        self.max_rows_read = 0
        self.n_frames = 0
        self.n_kept = 0
        self.lo = self.hi = self.origin = None
        self.dim = 2
        self.n_controls = self.n_low_qv = 0

    def _chunks(self) -> Iterator[_Kept]:
        import h5py

        from ._validate import check_coordinates, check_counts

        with h5py.File(self.path, "r") as f:
            sp, X = f["obsm"][self.spatial_key], f["X"]
            for a in range(0, self.n_rows, self.chunk_rows):
                b = min(a + self.chunk_rows, self.n_rows)
                coords = check_coordinates(sp[a:b], name=f"obsm[{self.spatial_key!r}] of {self.label!r}")
                if self.dense:
                    mat = sparse.csr_matrix(X[a:b])
                else:
                    ptr = X["indptr"][a : b + 1].astype(np.int64)
                    mat = sparse.csr_matrix((X["data"][ptr[0] : ptr[-1]], X["indices"][ptr[0] : ptr[-1]],
                                             ptr - ptr[0]), shape=(b - a, self.n_genes))
                mat = check_counts(mat, n_obs=b - a, name=f"X of {self.label!r}")
                self.n_frames += 1
                self.max_rows_read = max(self.max_rows_read, b - a)
                prior = None if self.prior_column is None else self._prior(f["obs"][self.prior_column], a, b)
                yield _Kept(coords, mat.indptr.astype(np.int64), mat.indices.astype(np.int32),
                            mat.data.astype(self.count_dtype, copy=False), prior)

    def _prior(self, elem, a: int, b: int) -> np.ndarray:
        """Nucleus ids of rows a..b-1, as :func:`manifoldseg.pp._api._prior` reads an obs column."""
        import h5py

        key = self.prior_column
        if isinstance(elem, h5py.Group):
            enc = elem.attrs.get("encoding-type")
            if enc == "categorical":
                return elem["codes"][a:b].astype(np.int64)
            if enc in ("nullable-integer", "nullable-boolean"):
                vals = elem["values"][a:b].astype(np.float64)
                vals[elem["mask"][a:b].astype(bool)] = -1
            else:
                raise ValueError(f"obs[{key!r}] must hold integer nucleus ids (-1 outside nuclei).")
        else:
            vals = elem[a:b]
            if vals.dtype.kind not in "iuf":
                raise ValueError(f"obs[{key!r}] must hold integer nucleus ids (-1 outside nuclei).")
            vals = vals.astype(np.float64)
        vals = np.where(np.isfinite(vals), vals, -1)
        if np.any(vals != np.round(vals)):
            raise ValueError(f"obs[{key!r}] holds fractional values: pass integer nucleus ids (-1 or NaN outside "
                             "nuclei).")
        return np.where(vals < 0, -1, vals).astype(np.int64)

    def scan(self) -> SpotsStream:
        """Pass 1: bounds and checks of coordinates and counts."""
        lo, hi, origin = np.full(2, np.inf), np.full(2, -np.inf), np.full(3, np.inf)
        for ch in self._chunks():
            self.dim = ch.coords.shape[1]
            if len(ch.coords):
                lo = np.minimum(lo, ch.coords[:, :2].min(axis=0))
                hi = np.maximum(hi, ch.coords[:, :2].max(axis=0))
                origin[: self.dim] = np.minimum(origin[: self.dim], ch.coords.min(axis=0))
        if self.n_rows == 0:
            raise InputError(f"{self.label!r} has no spots.")
        self.n_kept = self.n_rows
        self.lo, self.hi, self.origin = lo, hi, origin[: self.dim]
        return self

    def kept_chunks(self) -> Iterator[_Kept]:
        return self._chunks()


# --------------------------------------------------------------------------- pass 2: shards


def _grid_side(n: int, lo, hi, tile_size: float | None) -> float:
    """Bucket side: the tile core when the tile size is known, else about BUCKET_SPOTS spots a bucket."""
    extent = np.maximum(np.asarray(hi) - np.asarray(lo), 1e-9)
    if tile_size is not None:
        side = float(tile_size)
    else:
        side = float(np.sqrt(np.prod(extent) * BUCKET_SPOTS / max(n, 1)))
    side = max(side, 1e-6)
    k = 1
    while math.ceil(extent[0] / (side * k)) * math.ceil(extent[1] / (side * k)) > MAX_BUCKETS:
        k += 1
    return side * k


def _spot_dtype(dim: int) -> np.dtype:
    return np.dtype([("row", "<i8"), ("x", "<f8"), ("y", "<f8"), *([("z", "<f8")] if dim == 3 else []),
                     ("prior", "<i8"), ("nnz", "<i4")])


@dataclass
class Shards:
    """Kept rows routed to bucket files, and what the driver keeps per spot."""

    folder: Path
    grid: TileLayout  # the routing buckets: a layout without overlap
    dim: int
    n_genes: int
    has_prior: bool
    xy: np.ndarray  # (n_kept, 2) float64
    counts: np.ndarray  # (n_kept,) float32 for float counts (their sums are float32), else float64
    sample_coords: np.ndarray  # the central window
    sample_X: sparse.csr_matrix
    sample_prior: np.ndarray | None
    count_dtype: str = "<f4"


def _central_window(lo, hi, n: int, n_max: int):
    """``(centre, half)`` of :func:`manifoldseg._tiling.central_sample`'s window, or None for all spots."""
    if n <= n_max:
        return None
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return (lo + hi) / 2, np.sqrt(np.prod(hi - lo) * n_max / n) / 2


@dataclass
class _Kept:
    """The kept rows of one chunk: coordinates, their counts as CSR pieces (global gene columns), prior."""

    coords: np.ndarray
    indptr: np.ndarray
    genes: np.ndarray
    counts: np.ndarray
    prior: np.ndarray | None


def _sum_dtype(count_dtype) -> np.dtype:
    """The dtype that holds a row's total count exactly: scipy sums float32 counts in float32 (so
    float32 loses nothing and halves the driver's per-spot counts), integers in int64 (float64)."""
    return np.dtype(np.float32) if np.dtype(count_dtype) == np.float32 else np.dtype(np.float64)


def _entry_dtype(count_dtype) -> np.dtype:
    return np.dtype([("gene", "<i4"), ("count", np.dtype(count_dtype).newbyteorder("<"))])


def route(stream, folder: Path, *, tile_size: float | None) -> Shards:
    """Pass 2: write every kept row to its bucket's shard files; keep the central window.

    A bucket's ``.spots`` file holds one record per spot (row among the kept rows, coordinates,
    prior id, number of entries) and its ``.entries`` file the (gene, count) entries, in the same
    order. ``stream`` is a scanned :class:`TableStream` or :class:`SpotsStream`.
    """
    from ._tiling import SCALE_SAMPLE_SPOTS, TileLayout

    t0 = time.perf_counter()
    n = stream.n_kept
    n_genes = stream.n_genes
    grid = TileLayout.from_bounds(stream.lo, stream.hi, _grid_side(n, stream.lo, stream.hi, tile_size), 0.0)
    dtype = _spot_dtype(stream.dim)
    edtype = _entry_dtype(stream.count_dtype)
    has_prior = stream.prior_column is not None
    xy = np.empty((n, 2), dtype=np.float64)
    counts = np.empty(n, dtype=_sum_dtype(stream.count_dtype))
    window = _central_window(stream.lo, stream.hi, n, SCALE_SAMPLE_SPOTS)
    samples: list[tuple[np.ndarray, sparse.csr_matrix, np.ndarray | None]] = []
    k0 = 0
    for ch in stream.kept_chunks():
        m = len(ch.coords)
        if m == 0:
            continue
        nnz = np.diff(ch.indptr).astype(np.int64)
        rec = np.empty(m, dtype=dtype)
        rec["row"] = np.arange(k0, k0 + m)
        rec["x"], rec["y"] = ch.coords[:, 0], ch.coords[:, 1]
        if stream.dim == 3:
            rec["z"] = ch.coords[:, 2]
        rec["prior"] = ch.prior if ch.prior is not None else -1
        rec["nnz"] = nnz
        ent = np.empty(len(ch.genes), dtype=edtype)
        ent["gene"], ent["count"] = ch.genes, ch.counts
        bucket = grid.core_index(ch.coords)
        order = np.argsort(bucket, kind="stable")
        rec, ent = rec[order], ent[_entry_take(ch.indptr, order)]
        sb = np.concatenate([[0], np.flatnonzero(np.diff(bucket[order])) + 1, [m]])
        eb = np.concatenate([[0], np.cumsum(rec["nnz"], dtype=np.int64)])[sb]
        for i in range(len(sb) - 1):
            b = int(bucket[order[sb[i]]])
            with open(folder / f"{b}.spots", "ab") as fh:
                fh.write(rec[sb[i] : sb[i + 1]].tobytes())
            with open(folder / f"{b}.entries", "ab") as fh:
                fh.write(ent[eb[i] : eb[i + 1]].tobytes())
        X = sparse.csr_matrix((ch.counts, ch.genes, ch.indptr), shape=(m, n_genes))
        xy[k0 : k0 + m] = ch.coords[:, :2]
        counts[k0 : k0 + m] = np.asarray(X.sum(axis=1)).ravel()
        if window is None:
            samples.append((ch.coords, X, ch.prior))
        else:
            inside = np.flatnonzero(np.all(np.abs(ch.coords[:, :2] - window[0]) <= window[1], axis=1))
            samples.append((ch.coords[inside], X[inside], None if ch.prior is None else ch.prior[inside]))
        k0 += m
    if k0 != n:
        raise InputError(f"{stream.label!r} changed while manifoldseg read it; run the command again.")
    sc = np.concatenate([s[0] for s in samples])
    sX = sparse.vstack([s[1] for s in samples], format="csr")
    sp = np.concatenate([s[2] for s in samples]) if has_prior else None
    logger.info("routed %d rows to %d buckets of %.0f um in %.1f s", n, grid.n_tiles, grid.tile_size,
                time.perf_counter() - t0)
    return Shards(folder, grid, stream.dim, n_genes, has_prior, xy, counts, sc, sX, sp,
                  np.dtype(stream.count_dtype).str)


def _entry_take(indptr: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Entry positions of the rows ``order`` of a CSR with ``indptr``, row after row."""
    indptr = np.asarray(indptr, dtype=np.int64)
    nnz = (indptr[1:] - indptr[:-1])[order]
    out_ptr = np.concatenate([[0], np.cumsum(nnz)])
    return np.repeat(indptr[:-1][order] - out_ptr[:-1], nnz) + np.arange(out_ptr[-1])


# --------------------------------------------------------------------------- the task


@dataclass
class ShardTile:
    """A task's payload: where its tile's spots are on disk (no arrays)."""

    tile: Any
    folder: str
    buckets: list[int]
    dim: int
    n_genes: int
    has_prior: bool
    seed: int
    with_ids: bool = False
    count_dtype: str = "<f4"

    def load(self):
        """The tile's :class:`manifoldseg._tiling.TileData` (spots in the outer box, in row order) and rows."""
        from ._tiling import TileData

        dtype = _spot_dtype(self.dim)
        x0, y0, x1, y1 = self.tile.outer
        spots, entries = [], []
        for b in self.buckets:
            path = Path(self.folder) / f"{b}.spots"
            if not path.exists():
                continue
            rec = np.fromfile(path, dtype=dtype)
            ent = np.fromfile(Path(self.folder) / f"{b}.entries", dtype=_entry_dtype(self.count_dtype))
            inside = (rec["x"] >= x0) & (rec["x"] <= x1) & (rec["y"] >= y0) & (rec["y"] <= y1)
            spots.append(rec[inside])
            entries.append(ent[np.repeat(inside, rec["nnz"])])
        edtype = _entry_dtype(self.count_dtype)
        rec = np.concatenate(spots) if spots else np.zeros(0, dtype)
        ent = np.concatenate(entries) if entries else np.zeros(0, edtype)
        order = np.argsort(rec["row"], kind="stable")
        indptr = np.concatenate([[0], np.cumsum(rec["nnz"], dtype=np.int64)])
        ent = ent[_entry_take(indptr, order)]
        indptr = np.concatenate([[0], np.cumsum(rec["nnz"][order], dtype=np.int64)])
        rec = rec[order]
        cols = ["x", "y", "z"][: self.dim]
        coords = np.ascontiguousarray(np.stack([rec[c] for c in cols], axis=1))
        X = sparse.csr_matrix((ent["count"].astype(np.dtype(self.count_dtype).newbyteorder("=")), ent["gene"].copy(),
                               indptr), shape=(len(rec), self.n_genes))
        prior = rec["prior"].copy() if self.has_prior else None
        rows = rec["row"].copy()
        extra = {"ids": rows} if self.with_ids else {}
        return TileData(self.tile, coords, X, prior, self.seed, **extra), rows


@dataclass
class _ShardPayload:
    """Driver-side record of a tile (the runner's payload protocol: ``tile``, ``data``, ``task_data()``)."""

    tile: Any
    data: ShardTile | None

    def task_data(self) -> ShardTile:
        return self.data


def _run_shard(payload, cell_diameter, segmenter, kwargs, numba_threads):
    """Load one tile from its shards and segment it (runs on a worker); returns (rows, TileResult)."""
    from ._tiling import run_tile

    spec = payload.data if isinstance(payload, _ShardPayload) else payload
    data, rows = spec.load()
    return rows, run_tile(data, cell_diameter, segmenter, kwargs, numba_threads)


# --------------------------------------------------------------------------- segmentation


def segment_stream(
    stream: TableStream,
    *,
    tile_size: float | str = "auto",
    overlap: float | None = None,
    cell_diameter: float | None = None,
    refine_diameter: bool = True,
    random_state: int = 0,
    scheduler: Any = None,
    n_jobs: int | None = None,
    progress: bool = True,
    segmenter: Callable | None = None,
    link_radius: float | None = None,
    tmp_dir: str | os.PathLike | None = None,
    **segment_kwargs,
) -> TiledResult:
    """Segment a scanned table tile by tile from shard files (passes 2 and 3 of :func:`segment_table`).

    Parameters are those of :func:`manifoldseg._tiling.segment_tiled`; ``tmp_dir`` is where the
    shard folder is made (default: the system's temporary folder; workers must see it). Returns the
    same :class:`~manifoldseg._tiling.TiledResult`, one label and confidence per kept row in file
    order.
    """
    from tqdm.auto import tqdm

    from ._tiling import (
        Stitcher,
        TiledResult,
        TileLayout,
        _Runner,
        auto_tile_size,
        prepare_section,
        resolve_overlap,
        resolve_tile_size,
        tile_seed_ids,
    )

    t0 = time.perf_counter()
    if not stream.n_kept:
        stream.scan()
    if tile_size is None:
        raise InputError("tile_size=None does not tile; pass a number of um or 'auto' to segment from disk.")
    known_size = None if isinstance(tile_size, str) else resolve_tile_size(tile_size, np.zeros((1, 2)), 0.0, 0.0)
    n = stream.n_kept
    folder = Path(tempfile.mkdtemp(prefix="manifoldseg-shards-", dir=tmp_dir))
    try:
        shards = route(stream, folder, tile_size=known_size)
        d, method, kwargs, radius, dinfo = prepare_section(
            shards.sample_coords, shards.sample_X, shards.sample_prior, origin=stream.origin,
            cell_diameter=cell_diameter, refine_diameter=refine_diameter,
            random_state=random_state, segmenter=segmenter, segment_kwargs=segment_kwargs, link_radius=link_radius,
        )
        shards.sample_coords = shards.sample_X = shards.sample_prior = None
        ov = resolve_overlap(overlap, d)
        corners = np.array([stream.lo, stream.hi])
        if isinstance(tile_size, str):
            if tile_size != "auto":
                raise InputError(f"tile_size must be a number of um, 'auto' or None; got {tile_size!r}.")
            size = auto_tile_size(n, stream.lo, stream.hi, d, ov)
        else:
            size = resolve_tile_size(tile_size, corners, d, ov)
        if size is None:
            size = float(max(*(stream.hi - stream.lo), 1.0)) + 1.0
        layout = TileLayout.from_coords(corners, size, ov)
        stitcher = Stitcher(shards.xy, shards.counts, layout, radius)
        tiles = [t for t in layout.tiles()]
        specs = [ShardTile(t, str(folder), shards.grid.covering(t.outer), shards.dim, shards.n_genes,
                           shards.has_prior, *tile_seed_ids(random_state, t.index, segmenter), shards.count_dtype)
                 for t in tiles]
        specs = [s for s in specs if any((folder / f"{b}.spots").exists() for b in s.buckets)]
        n_work = len(specs)
        logger.info("segmenting %d spots from disk in %d tiles of %.0f um (+%.0f um overlap), cell diameter %.1f um",
                    n, n_work, size, ov, d)
        tile_seconds, stage_seconds = [], {}
        n_empty = 0
        with _Runner(scheduler, n_jobs) as runner, tqdm(
            total=n_work, desc="tiles", unit="tile", disable=not progress
        ) as bar:
            kw = {"cell_diameter": d, "segmenter": segmenter, "kwargs": kwargs, "numba_threads": runner.numba_threads}
            payloads = (_ShardPayload(s.tile, s) for s in specs)
            for p, (rows, res) in runner.map(_run_shard, payloads, **kw):
                n_empty += len(rows) == 0
                stitcher.add(p.tile, rows, res.labels, res.confidence)
                tile_seconds.append(res.seconds)
                for k, v in (res.info.get("timings") or {}).items():
                    stage_seconds[k] = round(stage_seconds.get(k, 0.0) + float(v), 3)
                bar.update(1)
            kind = runner.kind
        labels, conf, sinfo = stitcher.finish()
        # the coordinates and counts per spot are no longer needed: free them before the output is written
        del stitcher
        shards.xy = shards.counts = None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    info = {
        "tiled": True,
        "streamed": True,
        "cell_diameter": d,
        "cell_diameter_method": method,
        **dinfo,
        "tile_size": size,
        "overlap": ov,
        "n_tiles": int(n_work - n_empty),
        "grid": [layout.nx, layout.ny],
        "scheduler": kind,
        "link_radius": radius,
        **sinfo,
        "tile_seconds_total": round(float(np.sum(tile_seconds)), 3),
        "timings": stage_seconds,
        "tile_seconds_max": round(float(np.max(tile_seconds)) if tile_seconds else 0.0, 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "n_rows_read": int(stream.n_rows),
        "n_kept": int(stream.n_kept),
        "n_dropped_controls": int(stream.n_controls),
        "n_dropped_low_qv": int(stream.n_low_qv),
        "chunk_rows": int(stream.chunk_rows),
    }
    return TiledResult(labels, conf, info)


# --------------------------------------------------------------------------- pass 4: output


def _chunk_labels(stream: TableStream, result: TiledResult, start: int, n: int, k0: int):
    """Labels (-1 for dropped rows) and confidence (NaN for dropped rows) of input rows start..start+n-1."""
    keep = stream.mask.get(start, start + n)
    m = int(keep.sum())
    lab = np.full(n, BACKGROUND, dtype=np.int64)
    lab[keep] = result.labels[k0 : k0 + m]
    conf = np.full(n, np.nan, dtype=np.float32)
    conf[keep] = np.round(np.asarray(result.confidence[k0 : k0 + m], dtype=np.float64), 4)
    return lab, conf, k0 + m


def _csv_dtypes(stream: TableStream) -> dict[str, Any]:
    """Column types pandas infers on the whole CSV (the join of the types of every chunk)."""
    kinds: dict[str, str] = {}
    rank = {"b": 0, "i": 1, "f": 2, "O": 3}
    for _, df in stream.frames(None):
        for c in df.columns:
            k = df[c].dtype.kind
            k = k if k in "bif" else "O"
            old = kinds.get(c)
            if old is None:
                kinds[c] = k
            elif old != k:
                # bool with numbers or text, and numbers with text, are text; ints with floats are floats
                kinds[c] = "f" if {old, k} == {"i", "f"} else "O" if "O" in (old, k) or "b" in (old, k) else \
                    max(old, k, key=rank.get)
    return {c: {"b": bool, "i": np.int64, "f": np.float64, "O": str}[k] for c, k in kinds.items()}


def write_labeled_stream(
    stream: TableStream,
    result: TiledResult,
    output: str | os.PathLike,
    *,
    label_column: str,
    confidence_column: str,
    output_format: str,
) -> None:
    """Write the input table with ``label_column`` and ``confidence_column`` added, chunk by chunk.

    Same content as :func:`manifoldseg._cli_table.write_labeled_table` (every input row in its
    order with all its columns; -1 / NaN for rows the reader dropped).
    """
    from ._cli_table import _comment_lines

    if label_column in stream.columns or confidence_column in stream.columns:
        raise InputError(
            f"the input table already has a column {label_column!r} or {confidence_column!r}; pass --key-added "
            "<another name>."
        )
    text_out = not output_format.startswith((".parquet", ".pq"))
    k0 = 0
    n_seen = 0
    if text_out:
        sep = "\t" if output_format.startswith(".tsv") else ","
        opener = gzip.open if output_format.endswith(".gz") else open
        with opener(output, "wt", encoding="utf-8", newline="") as fh:
            if stream.kind == "csv":
                fh.write(_comment_lines(stream.plan.src))
            first = True
            for start, frame in stream.frames(None, text=True):
                lab, conf, k0 = _chunk_labels(stream, result, start, len(frame), k0)
                frame[label_column] = lab
                frame[confidence_column] = conf
                frame.to_csv(fh, sep=sep, index=False, header=first, lineterminator="\n")
                first = False
                n_seen = start + len(frame)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        extra = [pa.field(label_column, pa.int64()), pa.field(confidence_column, pa.float32())]
        writer = None
        try:
            if stream.kind == "parquet":
                schema = pq.ParquetFile(stream.path).schema_arrow
                for f in extra:
                    schema = schema.append(f)
                writer = pq.ParquetWriter(output, schema)
                start = 0
                for batch in stream.batches(None, dictionary=False):
                    lab, conf, k0 = _chunk_labels(stream, result, start, batch.num_rows, k0)
                    table = pa.Table.from_batches([batch]).append_column(
                        extra[0], pa.array(lab, type=pa.int64())).append_column(
                        extra[1], pa.array(conf, type=pa.float32(), from_pandas=True))
                    writer.write_table(table.replace_schema_metadata(schema.metadata))
                    start += batch.num_rows
                n_seen = start
            else:
                dtypes = _csv_dtypes(stream)
                schema = None
                for start, frame in stream.frames(None, dtypes=dtypes):
                    lab, conf, k0 = _chunk_labels(stream, result, start, len(frame), k0)
                    frame[label_column] = lab
                    frame[confidence_column] = conf
                    if schema is None:
                        fields = [pa.field(c, pa.string() if dtypes.get(c) is str else
                                           pa.Schema.from_pandas(frame[[c]], preserve_index=False).field(c).type)
                                  for c in frame.columns]
                        schema = pa.schema(fields)
                        meta = pa.Schema.from_pandas(frame, preserve_index=False).metadata
                        schema = schema.with_metadata(meta)
                        writer = pq.ParquetWriter(output, schema)
                    writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                    n_seen = start + len(frame)
        finally:
            if writer is not None:
                writer.close()
    if n_seen != stream.n_rows or k0 != stream.n_kept:
        raise InputError(
            f"{stream.label!r} now has {n_seen} data rows but {stream.n_rows} were segmented; the file changed "
            "while manifoldseg ran. Run the command again."
        )


def write_h5ad_stream(
    stream: SpotsStream,
    result: TiledResult,
    output: str | os.PathLike,
    *,
    label_column: str,
    confidence_column: str,
    uns: dict | None = None,
) -> None:
    """The input ``.h5ad`` with ``obs[label_column]``, ``obs[confidence_column]`` and
    ``uns["manifoldseg"]`` written into a copy of the file through h5py (``X`` is never loaded)."""
    import h5py

    try:
        from anndata.io import write_elem
    except ImportError:  # pragma: no cover - anndata < 0.11
        from anndata.experimental import write_elem

    shutil.copyfile(stream.path, output)
    with h5py.File(output, "r+") as f:
        obs = f["obs"]
        for name, values in ((label_column, np.asarray(result.labels, dtype=np.int64)),
                             (confidence_column, np.asarray(result.confidence, dtype=np.float32))):
            if name in obs:
                del obs[name]
            write_elem(obs, name, values)
        order = [str(c) for c in np.atleast_1d(obs.attrs.get("column-order", [])) if str(c)]
        order += [c for c in (label_column, confidence_column) if c not in order]
        obs.attrs["column-order"] = np.array(order, dtype=object)
        if uns is not None:
            if "uns" not in f:
                write_elem(f, "uns", {})
            if "manifoldseg" in f["uns"]:
                del f["uns"]["manifoldseg"]
            write_elem(f["uns"], "manifoldseg", uns)


# --------------------------------------------------------------------------- the one call


def _is_h5ad(path: Path) -> bool:
    from .io._h5ad import _HDF5_MAGIC

    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _HDF5_MAGIC
    except OSError:
        return False


def segment_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    key_added: str = "cell_id",
    overwrite: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    prior_column: str | None = None,
    reader_kwargs: dict | None = None,
    spatial_key: str = "spatial",
    tile_size: float | str = "auto",
    overlap: float | None = None,
    cell_diameter: float | None = None,
    random_state: int = 0,
    scheduler: Any = None,
    n_jobs: int | None = None,
    progress: bool = True,
    segmenter: Callable | None = None,
    tmp_dir: str | os.PathLike | None = None,
    uns: dict | None = None,
    **segment_kwargs,
) -> dict:
    """Segment a transcript table or an ``.h5ad`` of spots from disk in bounded memory and write the
    labelled result incrementally.

    Parameters
    ----------
    path
        A transcript table (CSV, CSV.gz, TSV, GEM, Parquet) or an ``.h5ad`` of spots (CSR or
        dense ``X``, coordinates in ``obsm[spatial_key]``).
    output
        For a table: a table (``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.parquet``) with
        every input row in its order and all its columns, plus ``key_added`` (int, -1 background
        or a row the reader dropped) and ``f"{key_added}_confidence"`` (rounded to 4 decimals, NaN
        for dropped rows). For an ``.h5ad``: an ``.h5ad``, the input with ``obs[key_added]``,
        ``obs[f"{key_added}_confidence"]`` and ``uns["manifoldseg"]`` added. Written to a
        temporary file renamed into place on success: a failed run leaves nothing.
    key_added
        Name of the label column.
    overwrite
        Replace an existing output.
    chunk_rows
        Rows read at a time (the memory of the readers and writers).
    prior_column
        Column (table) or ``obs`` column (h5ad) of nucleus ids used as prior (-1 / empty outside nuclei).
    reader_kwargs
        Tables: options of :func:`manifoldseg.io.read_transcripts` (``platform``, ``x``, ``y``,
        ``z``, ``gene``, ``count``, ``pixel_size``, ``z_scale``, ``min_qv``, ``drop_controls``,
        ``control_prefixes``).
    spatial_key
        ``.h5ad``: the ``obsm`` key of the coordinates.
    tile_size, overlap, cell_diameter, random_state, scheduler, n_jobs, progress, segmenter
        As in :func:`manifoldseg._tiling.segment_tiled`; ``refine_diameter=False`` (a keyword, like
        those of the segmenter) uses a given ``cell_diameter`` as is instead of combining it with
        the data's estimate.
    tmp_dir
        Folder for the shard files (about 40 bytes per row; default the system's temporary
        folder; Dask workers must be able to read it).
    uns
        ``.h5ad`` output: entries added to ``uns["manifoldseg"]`` (which holds ``params`` and
        ``summary``), e.g. ``{"run": {...}}``.
    **segment_kwargs
        Passed to the segmenter.

    Returns
    -------
    dict
        The run summary (cells, assigned fraction, cell diameter, tiles, seconds, rows read, the
        largest chunk read) and ``"labels"``: the labels per segmented row, in file order.
    """
    from ._cli_table import table_format
    from .io import atomic_path

    path = Path(path)
    spots = _is_h5ad(path)
    fmt = table_format(output)
    if spots and not str(output).lower().endswith(".h5ad"):
        raise InputError(f"the input {str(path)!r} is an .h5ad of spots, so the output must be .h5ad (got "
                         f"{str(output)!r}).")
    if not spots and fmt is None:
        raise InputError(f"cannot tell the table format of {str(output)!r}; use .csv, .csv.gz, .tsv, .tsv.gz or "
                         ".parquet.")
    conf_key = f"{key_added}{CONFIDENCE_SUFFIX}"
    t0 = time.perf_counter()
    with atomic_path(output, overwrite=overwrite) as tmp:
        if spots:
            stream = SpotsStream(path, chunk_rows=chunk_rows, spatial_key=spatial_key, prior_column=prior_column)
        else:
            stream = TableStream(path, chunk_rows=chunk_rows, prior_column=prior_column, **(reader_kwargs or {}))
            if key_added in stream.columns or conf_key in stream.columns:
                raise InputError(f"the input table already has a column {key_added!r} or {conf_key!r}; pass "
                                 "key_added=<another name>.")
        stream.scan()
        result = segment_stream(stream, tile_size=tile_size, overlap=overlap, cell_diameter=cell_diameter,
                                random_state=random_state, scheduler=scheduler, n_jobs=n_jobs, progress=progress,
                                segmenter=segmenter, tmp_dir=tmp_dir, **segment_kwargs)
        t_write = time.perf_counter()
        if spots:
            from .tl._api import _h5_safe

            params = {"cell_diameter": cell_diameter, "prior_key": prior_column, "spatial_key": spatial_key,
                      "key_added": key_added, "random_state": random_state, "tile_size": tile_size,
                      "overlap": overlap, **{k: v for k, v in segment_kwargs.items() if np.isscalar(v)}}
            meta = {"params": _h5_safe(params), "summary": _h5_safe(result.info), **_h5_safe(uns or {})}
            write_h5ad_stream(stream, result, tmp, label_column=key_added, confidence_column=conf_key, uns=meta)
        else:
            write_labeled_stream(stream, result, tmp, label_column=key_added, confidence_column=conf_key,
                                 output_format=fmt)
        result.info["write_seconds"] = round(time.perf_counter() - t_write, 3)
    result.info["max_rows_read"] = int(stream.max_rows_read)
    result.info["seconds"] = round(time.perf_counter() - t0, 3)
    result.info["labels"] = result.labels
    return result.info


segment_table = segment_file


# --------------------------------------------------------------------------- size without reading


def estimate_rows(path: str | os.PathLike) -> int:
    """Data rows of a table or spots of an ``.h5ad`` without reading them: the ``X`` shape or the
    Parquet metadata, else from the size of the file
    and the length of its first lines (an estimate for CSV; gzip from the first compressed MiB)."""
    path = Path(path)
    if _is_h5ad(path):
        import h5py

        with h5py.File(path, "r") as f:
            X = f["X"]
            return int(X.attrs["shape"][0] if "shape" in X.attrs else X.shape[0])
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    size = path.stat().st_size
    if magic[:2] == b"\x1f\x8b":
        import zlib

        with open(path, "rb") as fh:
            raw = fh.read(1 << 20)
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
        ratio = len(text) / max(len(raw), 1)
        return int(text.count(b"\n") * (size / max(len(raw), 1))) if ratio else 0
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = head.count(b"\n")
    if len(head) < (1 << 20):
        return max(0, lines - 1)
    return int(lines * size / len(head))
