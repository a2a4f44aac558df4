"""Read transcript tables (Xenium, MERSCOPE, CosMx, Stereo-seq GEM, generic) into an AnnData.

One observation per row of the table (per transcript, or per GEM row with its count in ``X``),
in the order of the file, with the original row recorded in ``obs["input_row"]`` so that results
can be written back row for row.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._constants import ORDER_KEY, SPATIAL_KEY
from .._validate import (
    InputError,
    MissingKeyError,
    _fmt_list,
    check_choice,
    check_coordinates,
    check_counts,
    check_positive,
)
from ._h5ad import _HDF5_MAGIC, _check_input_file

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

logger = logging.getLogger("manifoldseg")

__all__ = ["read_transcripts", "PLATFORMS", "CONTROL_PREFIXES"]

PLATFORMS = ("xenium", "merscope", "cosmx", "stereoseq", "generic")

#: Gene-name prefixes (case-insensitive) of control probes and codewords dropped by default.
CONTROL_PREFIXES = (
    "negprb",
    "negcontrol",  # NegControlProbe_, NegControlCodeword_ (Xenium)
    "blank",  # BLANK_ (Xenium), Blank-* (MERSCOPE)
    "systemcontrol",  # CosMx
    "unassigned",  # UnassignedCodeword_ (Xenium)
    "antisense_",
    "deprecatedcodeword",
    "notarget",  # MERFISH no-target codewords
)

UNS_KEY_IO = "manifoldseg_io"


@dataclass(frozen=True)
class _Preset:
    x: tuple[str, ...]
    y: tuple[str, ...]
    gene: tuple[str, ...]
    z: tuple[str, ...] = ()
    z_is_plane: bool = False  # z holds a plane index, not um
    z_scale: float | None = None  # um per plane (plane z) when known
    count: tuple[str, ...] = ()
    cell: tuple[str, ...] = ()
    cell_background: tuple[Any, ...] = (-1,)
    nucleus: tuple[str, ...] = ()
    compartment: tuple[str, ...] = ()
    nuclear_flag: tuple[str, ...] = ()
    qv: tuple[str, ...] = ()
    fov: tuple[str, ...] = ()
    is_gene: tuple[str, ...] = ()
    pixel_size: float = 1.0
    units: str = "um"


_PRESETS: dict[str, _Preset] = {
    # 10x Xenium transcripts.csv.gz / transcripts.parquet: um.
    "xenium": _Preset(
        x=("x_location",),
        y=("y_location",),
        z=("z_location",),
        gene=("feature_name",),
        cell=("cell_id",),
        cell_background=(-1, "-1", "UNASSIGNED"),
        nuclear_flag=("overlaps_nucleus",),
        qv=("qv",),
        fov=("fov_name",),
        is_gene=("is_gene",),
    ),
    # Vizgen MERSCOPE detected_transcripts.csv: um; global_z is the z-plane index (1.5 um apart).
    "merscope": _Preset(
        x=("global_x",),
        y=("global_y",),
        z=("global_z",),
        z_is_plane=True,
        z_scale=1.5,
        gene=("gene",),
        cell=("cell_id",),
        cell_background=(-1, "-1", ""),
        fov=("fov",),
    ),
    # NanoString CosMx *_tx_file.csv: pixels (0.18 um/px for the NSCLC release); z = slice index;
    # cell_ID is unique only within its FOV (0 = not in a cell).
    "cosmx": _Preset(
        x=("x_global_px",),
        y=("y_global_px",),
        z=("z",),
        z_is_plane=True,
        gene=("target",),
        cell=("cell_ID", "cell_id"),
        cell_background=(0, "0"),
        compartment=("CellComp",),
        fov=("fov",),
        pixel_size=0.18,
        units="px",
    ),
    # Stereo-seq GEM: tab separated, DNB units (500 nm pitch), counts in MIDCount.
    "stereoseq": _Preset(
        x=("x",),
        y=("y",),
        gene=("geneID", "geneName", "gene"),
        count=("MIDCount", "MIDCounts", "MIDcount", "UMICount", "UMICounts"),
        cell=("cellID", "CellID"),
        cell_background=(0, "0"),
        pixel_size=0.5,
        units="DNB",
    ),
    "generic": _Preset(
        x=("x", "X", "x_um", "x_location", "global_x"),
        y=("y", "Y", "y_um", "y_location", "global_y"),
        z=("z", "Z", "z_um"),
        gene=("gene", "Gene", "genes", "gene_name", "geneID", "target", "feature_name", "Name", "name"),
        count=("count", "counts", "Count", "MIDCount", "MIDCounts", "UMICount"),
        cell=("cell", "cell_id", "cell_ID"),
        cell_background=(-1, "-1", ""),
        nucleus=("nucleus",),
        units="as given",
    ),
}

_RESERVED = {"gene", ORDER_KEY, "vendor_cell", "vendor_cell_name", "vendor_nucleus", "vendor_compartment",
             "overlaps_nucleus", "qv", "fov", "z_plane", "n_counts"}


# --------------------------------------------------------------------------------------------- #
# file access
# --------------------------------------------------------------------------------------------- #
@dataclass
class _Source:
    kind: str  # "csv", "parquet", "h5ad", "frame"
    label: str  # for messages and uns
    path: Path | None = None
    compression: str | None = None
    sep: str = ","
    skiprows: int = 0
    header_meta: dict[str, str] | None = None
    columns: list[str] | None = None
    frame: pd.DataFrame | None = None


def _open_text(path: Path, compression: str | None):
    if compression == "gzip":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _inspect(source: str | os.PathLike | pd.DataFrame, points_key: str) -> _Source:
    if isinstance(source, pd.DataFrame):
        return _Source(kind="frame", label="<DataFrame>", columns=[str(c) for c in source.columns], frame=source)
    path = Path(source)
    _check_input_file(path)
    label = str(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PAR1"):
        import pyarrow.parquet as pq

        try:
            columns = list(pq.read_schema(path).names)
        except Exception as err:
            raise InputError(f"{label!r} is not a valid Parquet file or is truncated ({err}).") from err
        return _Source(kind="parquet", label=label, path=path, columns=columns)
    if path.name.lower().endswith((".parquet", ".pq")):
        raise InputError(f"{label!r} has a Parquet suffix but is not a Parquet file (it does not start with 'PAR1').")
    if magic == _HDF5_MAGIC:
        import anndata

        try:
            adata = anndata.read_h5ad(path)
        except Exception as err:
            raise InputError(f"{label!r} is not a valid h5ad file or is truncated or corrupt ({err}).") from err
        if points_key not in adata.uns or not isinstance(adata.uns[points_key], pd.DataFrame):
            raise MissingKeyError(
                f"{label!r} is an h5ad file without a points table in uns[{points_key!r}] (uns keys: "
                f"{_fmt_list(adata.uns.keys())}). Pass points_key=<key of a DataFrame in uns>, or read an "
                "h5ad of spots with ms.io.read_h5ad."
            )
        frame = adata.uns[points_key]
        return _Source(kind="h5ad", label=label, path=path, columns=[str(c) for c in frame.columns], frame=frame)
    compression = "gzip" if magic[:2] == b"\x1f\x8b" else None
    if compression is None and path.name.lower().endswith(".gz"):
        raise InputError(f"{label!r} ends in .gz but is not gzip-compressed; check or rename the file.")
    skip = 0
    meta: dict[str, str] = {}
    header = None
    try:
        with _open_text(path, compression) as fh:
            for line in fh:
                if line.lstrip("\ufeff").startswith("#"):
                    skip += 1
                    body = line.lstrip("#").strip()
                    if "=" in body:
                        k, v = body.split("=", 1)
                        meta[k.strip()] = v.strip()
                    continue
                header = line.rstrip("\r\n").lstrip("\ufeff")
                break
    except (OSError, EOFError) as err:
        raise InputError(f"could not read {label!r}: the file is corrupt or truncated ({err}).") from err
    if header is None or not header.strip():
        raise InputError(f"{label!r} is empty: it has no header line and no rows.")
    sep = "\t" if "\t" in header else ","
    columns = [c.strip().strip('"') for c in header.split(sep)]
    return _Source(
        kind="csv",
        label=label,
        path=path,
        compression=compression,
        sep=sep,
        skiprows=skip,
        header_meta=meta or None,
        columns=columns,
    )


def _load(src: _Source, usecols: list[str], categorical: list[str]) -> pd.DataFrame:
    if src.kind in ("frame", "h5ad"):
        return src.frame.loc[:, usecols].reset_index(drop=True)
    if src.kind == "parquet":
        import pyarrow.parquet as pq

        try:  # string columns as dictionaries: categoricals without a Python string per row
            table = pq.read_table(src.path, columns=usecols, read_dictionary=categorical)
            return table.to_pandas()
        except Exception as err:
            raise InputError(f"could not read {src.label!r} as Parquet: {err}") from err
    try:
        return pd.read_csv(
            src.path,
            sep=src.sep,
            skiprows=src.skiprows,
            usecols=usecols,
            compression=src.compression,
            dtype={c: "category" for c in categorical},
            low_memory=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, EOFError, OSError, UnicodeDecodeError, ValueError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"could not read {src.label!r} as a {'tab' if src.sep == chr(9) else 'comma'}-separated table: {msg}. "
            "The file may be truncated or not a table."
        ) from err


# --------------------------------------------------------------------------------------------- #
# column handling
# --------------------------------------------------------------------------------------------- #
def _decode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _categorical(series: pd.Series) -> pd.Categorical:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.array
    return pd.Categorical(series)


def _gene_codes(series: pd.Series, column: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    cat = _categorical(series)
    names = np.asarray([str(_decode(c)).strip() for c in cat.categories], dtype=object)
    codes = np.asarray(cat.codes, dtype=np.int64)
    missing = codes < 0
    if missing.any():
        first = np.flatnonzero(missing)[:5].tolist()
        raise InputError(
            f"{label!r}: gene column {column!r} is empty in {int(missing.sum())} rows (first data rows: {first}). "
            "Drop those rows, or pass gene=<the column of gene names>."
        )
    if names.size == 0:
        return codes, names.astype(str)
    uniq, inv = np.unique(names.astype(str), return_inverse=True)
    return inv[codes], uniq


def _factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 = missing) and unique values decoded to str: string work on uniques only."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniq = np.asarray(values.cat.codes, dtype=np.int64), values.cat.categories.to_numpy()
    else:
        codes, uniq = pd.factorize(np.asarray(values, dtype=object) if not isinstance(values, pd.Series)
                                   else values.to_numpy(), use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
    names = np.array([str(_decode(u)).strip() for u in uniq], dtype=object).astype(str)
    # values that differ only as bytes vs str (or by whitespace) become one
    merged, inv = np.unique(names, return_inverse=True)
    if merged.size != names.size:
        codes = np.where(codes < 0, -1, inv[np.maximum(codes, 0)])
        names = merged
    return codes, names


def _numeric(series: pd.Series) -> np.ndarray | None:
    """Return float values if the column is numeric (or numeric strings), else None."""
    if not isinstance(series.dtype, pd.CategoricalDtype) and series.dtype.kind in "biuf":
        return series.to_numpy(dtype=np.float64)
    codes, names = _factorize(series)
    try:
        u = pd.to_numeric(pd.Series(names, dtype=object), errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        return None
    u = np.append(u, np.nan)  # code -1 -> NaN
    return u[codes]


def _labels(series: pd.Series, background: tuple[Any, ...], fov: np.ndarray | None = None) -> tuple[np.ndarray, pd.Categorical | None]:
    """Vendor labels -> int64 (-1 = background) and, when the ids are not plain ints, their names."""
    num = _numeric(series)
    bg_num = {float(b) for b in background if isinstance(b, int | float)}
    if num is not None and np.all(np.isnan(num) | (num == np.round(num))):
        bg = np.isnan(num) | (num < 0) | np.isin(num, list(bg_num))
        ids = np.where(bg, -1, np.nan_to_num(num, nan=-1)).astype(np.int64)
        if fov is None:
            return ids, None
        fov_codes, fov_names = _factorize(fov)
        span = int(ids.max()) + 2
        key = fov_codes.astype(np.int64) * span + ids
        labels = np.full(len(ids), -1, dtype=np.int64)
        valid = ~bg
        if not valid.any():
            return labels, None
        sub_codes, sub_uniq = pd.factorize(key[valid], sort=True)
        labels[valid] = sub_codes
        names = [f"{fov_names[k // span]}_{k % span}" for k in sub_uniq]
        return labels, pd.Categorical.from_codes(labels, categories=names)
    codes, names = _factorize(series)
    bg_str = {str(b) for b in background} | {"", "nan", "None", "NaN"}
    u_bg = np.isin(names, list(bg_str))
    kept = np.unique(names[~u_bg])  # sorted
    u_label = np.where(u_bg, -1, np.searchsorted(kept, names))
    u_label = np.append(u_label, -1)  # code -1 (missing) -> background
    labels = u_label[codes].astype(np.int64)
    return labels, pd.Categorical.from_codes(labels, categories=list(kept))


def _resolve(option: Any, candidates: tuple[str, ...], columns: list[str]) -> str | None:
    if option is False:
        return None
    if option is not None:
        return option if option in columns else f"\0missing:{option}"
    for c in candidates:
        if c in columns:
            return c
    return None


def _detect_platform(src: _Source) -> str:
    cols = set(src.columns)
    name = src.label.lower()
    if {"x_location", "y_location", "feature_name"} <= cols:
        return "xenium"
    if {"x_global_px", "y_global_px", "target"} <= cols:
        return "cosmx"
    if {"global_x", "global_y", "gene"} <= cols:
        return "merscope"
    has_count = bool(cols & set(_PRESETS["stereoseq"].count))
    if name.endswith((".gem", ".gem.gz")) or ({"geneID", "x", "y"} <= cols and has_count):
        return "stereoseq"
    return "generic"


# --------------------------------------------------------------------------------------------- #
# the reader
# --------------------------------------------------------------------------------------------- #
@dataclass
class _ReadPlan:
    """How to read a table: the source, its platform and the column of each role."""

    src: _Source
    platform: str
    preset: _Preset
    roles: dict[str, str | None]
    z_col: str | None
    z_plane_col: str | None
    pixel_size: float
    z_scale: float | None
    usecols: list[str]
    categorical: list[str]
    prefixes: tuple[str, ...]


def _plan_read(
    path: str | os.PathLike | pd.DataFrame,
    *,
    platform: str | None = None,
    x: str | None = None,
    y: str | None = None,
    z: str | bool | None = None,
    gene: str | None = None,
    count: str | bool | None = None,
    cell: str | bool | None = None,
    nucleus: str | bool | None = None,
    pixel_size: float | None = None,
    z_scale: float | None = None,
    control_prefixes: tuple[str, ...] | list[str] | None = None,
    min_qv: float | None = None,
    keep_columns: list[str] | tuple[str, ...] = (),
    points_key: str = "points",
) -> _ReadPlan:
    """Check the options, look at the file's header and resolve the column of each role
    (shared by :func:`read_transcripts` and the chunked reader of :mod:`manifoldseg._stream`)."""
    if platform is not None:
        platform = check_choice(str(platform).lower().replace("-", ""), "platform", PLATFORMS)
    if pixel_size is not None:
        check_positive(pixel_size, "pixel_size")
    if z_scale is not None:
        check_positive(z_scale, "z_scale")
    if min_qv is not None and (isinstance(min_qv, bool) or not isinstance(min_qv, int | float) or not np.isfinite(min_qv)):
        raise InputError(f"min_qv must be a number (e.g. 20), got {min_qv!r}.")

    src = _inspect(path, points_key)
    detected = platform is None
    if platform is None:
        platform = _detect_platform(src)
        logger.info("read_transcripts: %s looks like %s output", src.label, platform)
    preset = _PRESETS[platform]
    columns = src.columns

    z_explicit = z not in (None, False)
    roles = {
        "x": _resolve(x, preset.x, columns),
        "y": _resolve(y, preset.y, columns),
        "z": _resolve(z, preset.z, columns),
        "gene": _resolve(gene, preset.gene, columns),
        "count": _resolve(count, preset.count, columns),
        "cell": _resolve(cell, preset.cell, columns),
        "nucleus": _resolve(nucleus, preset.nucleus, columns),
        "compartment": _resolve(None, preset.compartment, columns),
        "nuclear_flag": _resolve(None, preset.nuclear_flag, columns),
        "qv": _resolve(None, preset.qv, columns),
        "fov": _resolve(None, preset.fov, columns),
        "is_gene": _resolve(None, preset.is_gene, columns),
    }
    missing_opts = {k: v.split(":", 1)[1] for k, v in roles.items() if v and v.startswith("\0missing:")}
    missing_req = [k for k in ("x", "y", "gene") if roles[k] is None]
    missing_keep = [c for c in keep_columns if c not in columns]
    if missing_opts or missing_req or missing_keep:
        parts = []
        if missing_opts:
            parts.append("column(s) " + ", ".join(f"{k}={v!r}" for k, v in missing_opts.items()) + " not found")
        if missing_req:
            looked = "; ".join(f"{k} in {list(getattr(preset, k))}" for k in missing_req)
            parts.append(f"no column for {', '.join(missing_req)} (platform {platform!r} looks for {looked})")
        if missing_keep:
            parts.append(f"keep_columns {missing_keep} not found")
        how = "pass the column names, e.g. read_transcripts(path, " + ", ".join(
            f"{k}='...'" for k in ("x", "y", "gene")) + ")"
        if detected:
            how += f", or platform=<one of {list(PLATFORMS)}>"
        raise InputError(
            f"{src.label!r}: {'; '.join(parts)}. Columns found: {_fmt_list(columns, 40)}. To fix, {how}."
        )
    clash = sorted(set(keep_columns) & _RESERVED)
    if clash:
        raise InputError(f"keep_columns {clash} clash with columns the reader writes; rename them first.")

    # z: a coordinate in um (Xenium z_location, generic z) or a plane index (MERSCOPE, CosMx).
    z_col = roles["z"]
    z_plane_col = None
    if z_col is not None and preset.z_is_plane and not z_explicit:
        z_plane_col, z_col = z_col, None
    if pixel_size is None:
        pixel_size = preset.pixel_size
        if platform == "cosmx":
            logger.info("read_transcripts: CosMx pixels scaled by pixel_size=%g um/px (pass pixel_size= for "
                        "instruments with another pixel size, e.g. 0.12028)", pixel_size)
    if z_col is not None and z_scale is None:
        if preset.z_is_plane:
            if preset.z_scale is None:
                raise InputError(
                    f"z={z_col!r} holds {platform} z-slice indices whose spacing is not known; pass z_scale=<um "
                    "between slices>, or leave z out for 2D."
                )
            z_scale = preset.z_scale
        else:
            z_scale = pixel_size

    usecols = [c for c in dict.fromkeys([*(v for v in roles.values() if v), *keep_columns])]
    categorical = [c for c in (roles["gene"], roles["cell"] if platform == "xenium" else None) if c]
    prefixes = tuple(p.lower() for p in (CONTROL_PREFIXES if control_prefixes is None else control_prefixes))
    return _ReadPlan(src, platform, preset, roles, z_col, z_plane_col, pixel_size, z_scale, usecols, categorical,
                     prefixes)


def _control_rows(df: pd.DataFrame, plan: _ReadPlan, gene_codes: np.ndarray, gene_names: np.ndarray) -> np.ndarray:
    """Rows of control probes and codewords (by gene-name prefix, and Xenium ``is_gene`` false)."""
    prefixes = plan.prefixes
    is_control_gene = np.array([g.lower().startswith(prefixes) for g in gene_names], dtype=bool) if prefixes else \
        np.zeros(gene_names.size, dtype=bool)
    control_row = is_control_gene[gene_codes] if gene_names.size else np.zeros(len(df), bool)
    if plan.roles["is_gene"] is not None:
        is_gene = df[plan.roles["is_gene"]].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        control_row |= ~is_gene
    return control_row


def _qv_values(df: pd.DataFrame, plan: _ReadPlan, min_qv: float) -> np.ndarray:
    """The qv column as floats (raises when there is none or it is not numeric)."""
    src, roles = plan.src, plan.roles
    if roles["qv"] is None:
        raise InputError(
            f"min_qv={min_qv} needs a 'qv' column (Xenium), but {src.label!r} has none; columns found: "
            f"{_fmt_list(src.columns, 40)}. Leave min_qv out."
        )
    qv = _numeric(df[roles["qv"]])
    if qv is None:
        raise InputError(f"column {roles['qv']!r} of {src.label!r} is not numeric; cannot filter by min_qv.")
    return qv


def _coords_of(sub: pd.DataFrame, plan: _ReadPlan) -> np.ndarray:
    """Checked coordinates in um, (n, 2) or (n, 3) float64."""
    label = plan.src.label
    coord_cols = [plan.roles["x"], plan.roles["y"]] + ([plan.z_col] if plan.z_col else [])
    coords = check_coordinates(
        np.column_stack([_coord(sub[c], c, label) for c in coord_cols]),
        name=f"coordinate columns {coord_cols} of {label!r}",
    )
    if plan.pixel_size != 1:
        coords[:, :2] *= plan.pixel_size
    if plan.z_col is not None and plan.z_scale != 1:
        coords[:, 2] *= plan.z_scale
    return coords


def _counts_of(sub: pd.DataFrame, plan: _ReadPlan) -> np.ndarray:
    """Counts per row (float32): the count column, or 1."""
    col = plan.roles["count"]
    if col is None:
        return np.ones(len(sub), dtype=np.float32)
    cnt = _numeric(sub[col])
    if cnt is None:
        raise InputError(
            f"count column {col!r} of {plan.src.label!r} is not numeric; pass count=<column of counts> "
            "or count=False."
        )
    return cnt.astype(np.float32)


def read_transcripts(
    path: str | os.PathLike | pd.DataFrame,
    *,
    platform: str | None = None,
    x: str | None = None,
    y: str | None = None,
    z: str | bool | None = None,
    gene: str | None = None,
    count: str | bool | None = None,
    cell: str | bool | None = None,
    nucleus: str | bool | None = None,
    pixel_size: float | None = None,
    z_scale: float | None = None,
    drop_controls: bool = True,
    control_prefixes: tuple[str, ...] | list[str] | None = None,
    min_qv: float | None = None,
    keep_columns: list[str] | tuple[str, ...] = (),
    points_key: str = "points",
) -> AnnData:
    """Read a table of transcripts (or Stereo-seq GEM rows) into an AnnData.

    Parameters
    ----------
    path
        A CSV, CSV.gz, TSV, Parquet, GEM (``.gem``, ``.gem.gz``) file, an ``.h5ad`` holding a
        points table in ``uns[points_key]`` (e.g. bento's ``merfish_sample.h5ad``), or a pandas
        DataFrame. Compression and format are recognised from the file's content.
    platform
        ``"xenium"``, ``"merscope"``, ``"cosmx"``, ``"stereoseq"`` or ``"generic"``; ``None``
        detects it from the column names (and a ``.gem`` suffix):

        - ``xenium``: ``x_location, y_location, z_location, feature_name, qv, cell_id,
          overlaps_nucleus`` (um; ``z_location`` used as z).
        - ``merscope``: ``global_x, global_y, global_z, gene`` (um; ``global_z`` is a plane
          index, kept in ``obs["z_plane"]``; pass ``z="global_z"`` for 3D, planes 1.5 um apart).
        - ``cosmx``: ``x_global_px, y_global_px, z, target, fov, cell_ID, CellComp`` (pixels,
          ``pixel_size`` 0.18 um by default; ``z`` is a slice index kept in ``obs["z_plane"]``).
        - ``stereoseq``: ``geneID, x, y, MIDCount`` (DNB units, ``pixel_size`` 0.5 um; counts
          in ``X``); leading ``#`` header lines are read into ``uns``.
        - ``generic``: ``x, y[, z], gene[, count]`` or the columns named by the options below.
    x, y, z, gene, count
        Column names overriding the preset. ``z=False`` or ``count=False`` ignores a column the
        preset would use.
    cell, nucleus
        Columns of vendor (reference) cell and nucleus ids, stored as ``obs["vendor_cell"]`` and
        ``obs["vendor_nucleus"]``; ``False`` ignores them. They are never used by the
        segmentation unless you copy them yourself (e.g. to ``obs["nucleus"]`` as a prior).
    pixel_size
        um per coordinate unit of x and y (default: the preset's, 1 for um tables).
    z_scale
        um per unit of z: the plane spacing for plane indices (MERSCOPE 1.5; required for CosMx
        when ``z=`` is passed), otherwise ``pixel_size``.
    drop_controls
        Drop control probes and codewords: gene names starting (case-insensitive) with any of
        :data:`CONTROL_PREFIXES` (NegPrb, NegControl*, BLANK/Blank-, SystemControl,
        Unassigned*, antisense_, DeprecatedCodeword, notarget), and Xenium rows with ``is_gene`` false.
        The number dropped is logged and stored in ``uns``.
    control_prefixes
        Replace :data:`CONTROL_PREFIXES`.
    min_qv
        Keep only rows with ``qv >= min_qv`` (Xenium; 20 is 10x's usual threshold).
    keep_columns
        Further columns to copy into ``obs`` unchanged.
    points_key
        ``uns`` key of the points table when ``path`` is an ``.h5ad`` file.

    Returns
    -------
    anndata.AnnData
        One observation per kept row, in file order, with

        - ``X``: CSR ``float32``, one count per row (1, or the GEM ``MIDCount``) in its gene's column;
        - ``var_names``: sorted unique gene names (controls dropped);
        - ``obsm["spatial"]``: ``float64`` (n, 2) or (n, 3) coordinates in um;
        - ``obs["gene"]`` (categorical), ``obs["input_row"]`` (int64: the 0-based data row in the
          file, after the header, before any filtering); ``obs_names`` are that row as a string;
        - where the file has them: ``obs["vendor_cell"]`` (int64, -1 = none) and
          ``obs["vendor_cell_name"]`` (categorical, when ids are not integers or are per-FOV),
          ``obs["vendor_nucleus"]`` (int64, -1 = outside nuclei), ``obs["vendor_compartment"]``
          (CosMx CellComp), ``obs["overlaps_nucleus"]`` (Xenium), ``obs["qv"]``, ``obs["fov"]``,
          ``obs["z_plane"]``;
        - ``uns["manifoldseg_io"]``: platform, path, pixel_size, columns used, rows read, controls
          and low-qv rows dropped.

    Raises
    ------
    MissingFileError
        The file does not exist.
    InputError
        Unknown platform, missing columns (the message lists the columns found and the option to
        pass), unreadable file, NaN/infinite coordinates, negative counts, no rows left.
    """
    import anndata

    plan = _plan_read(
        path, platform=platform, x=x, y=y, z=z, gene=gene, count=count, cell=cell, nucleus=nucleus,
        pixel_size=pixel_size, z_scale=z_scale, control_prefixes=control_prefixes, min_qv=min_qv,
        keep_columns=keep_columns, points_key=points_key,
    )
    src, platform, preset, roles = plan.src, plan.platform, plan.preset, plan.roles
    z_col, z_plane_col, pixel_size, z_scale = plan.z_col, plan.z_plane_col, plan.pixel_size, plan.z_scale
    usecols, categorical, prefixes = plan.usecols, plan.categorical, plan.prefixes

    df = _load(src, usecols, categorical)
    n_rows = len(df)
    if n_rows == 0:
        raise InputError(f"{src.label!r} has a header but no data rows: there are no transcripts to read.")

    gene_codes, gene_names = _gene_codes(df[roles["gene"]], roles["gene"], src.label)
    keep = np.ones(n_rows, dtype=bool)

    n_controls = 0
    if drop_controls:
        control_row = _control_rows(df, plan, gene_codes, gene_names)
        n_controls = int(control_row.sum())
        keep &= ~control_row
        if n_controls:
            logger.info("read_transcripts: dropped %d control-probe rows (%d control names) from %s",
                        n_controls, int(np.unique(gene_codes[control_row]).size), src.label)

    n_low_qv = 0
    if min_qv is not None:
        qv = _qv_values(df, plan, min_qv)
        low = ~(qv >= min_qv) & keep
        n_low_qv = int(low.sum())
        keep &= ~low
        logger.info("read_transcripts: dropped %d rows with qv < %g", n_low_qv, min_qv)

    n_kept = int(keep.sum())
    if n_kept == 0:
        raise InputError(
            f"{src.label!r}: no rows left after dropping {n_controls} control-probe rows and {n_low_qv} rows "
            "below min_qv; pass drop_controls=False or a lower min_qv."
        )
    rows = np.flatnonzero(keep).astype(np.int64)
    sub = df.iloc[rows] if n_kept < n_rows else df

    coords = _coords_of(sub, plan)

    codes_kept = gene_codes[rows]
    used, codes_kept = np.unique(codes_kept, return_inverse=True)
    var_names = [str(g) for g in gene_names[used]]
    data = _counts_of(sub, plan)
    X = sparse.csr_matrix(
        (data, codes_kept.astype(np.int32), np.arange(n_kept + 1, dtype=np.int64)),
        shape=(n_kept, len(var_names)),
    )
    X = check_counts(X, n_obs=n_kept, name=f"count column {roles['count']!r} of {src.label!r}")

    obs = pd.DataFrame(index=pd.Index(rows.astype(str), name=None))
    obs["gene"] = pd.Categorical.from_codes(codes_kept, categories=var_names)
    obs[ORDER_KEY] = rows
    fov_values = sub[roles["fov"]].to_numpy() if roles["fov"] is not None else None
    if roles["cell"] is not None:
        per_fov = fov_values if platform == "cosmx" else None
        labels, names = _labels(sub[roles["cell"]], preset.cell_background, per_fov)
        obs["vendor_cell"] = labels
        if names is not None:
            obs["vendor_cell_name"] = names
    if roles["nucleus"] is not None:
        nuc, nuc_names = _labels(sub[roles["nucleus"]], (-1,))
        obs["vendor_nucleus"] = nuc
        if nuc_names is not None:
            obs["vendor_nucleus_name"] = nuc_names
    if roles["compartment"] is not None:
        comp = sub[roles["compartment"]].astype(str).to_numpy()
        obs["vendor_compartment"] = pd.Categorical(comp)
        if "vendor_cell" in obs and "vendor_nucleus" not in obs:
            obs["vendor_nucleus"] = np.where(np.char.lower(comp.astype(str)) == "nuclear", obs["vendor_cell"], -1)
    if roles["nuclear_flag"] is not None:
        flag = _numeric(sub[roles["nuclear_flag"]])
        if flag is None:
            flag = sub[roles["nuclear_flag"]].astype(str).str.lower().isin(["true", "1"]).to_numpy().astype(float)
        obs["overlaps_nucleus"] = np.nan_to_num(flag) > 0
        if "vendor_cell" in obs and "vendor_nucleus" not in obs:
            obs["vendor_nucleus"] = np.where(obs["overlaps_nucleus"].to_numpy(), obs["vendor_cell"].to_numpy(), -1)
    if roles["qv"] is not None:
        qv_kept = _numeric(sub[roles["qv"]])
        if qv_kept is not None:
            obs["qv"] = qv_kept.astype(np.float32)
    if fov_values is not None:
        obs["fov"] = _plain_column(fov_values)
    if z_plane_col is not None:
        obs["z_plane"] = _plain_column(sub[z_plane_col].to_numpy())
    for c in keep_columns:
        obs[c] = _plain_column(sub[c].to_numpy())

    info: dict[str, Any] = {
        "platform": platform,
        "path": src.label,
        "pixel_size": float(pixel_size),
        "units_in_file": preset.units,
        "columns": {k: v for k, v in roles.items() if v},
        "n_rows_read": int(n_rows),
        "n_kept": n_kept,
        "n_dropped_controls": n_controls,
        "n_dropped_low_qv": n_low_qv,
        "drop_controls": bool(drop_controls),
        "control_prefixes": list(prefixes),
    }
    if z_col is not None:
        info["z_scale"] = float(z_scale)
    if min_qv is not None:
        info["min_qv"] = float(min_qv)
    if src.header_meta:
        info["file_header"] = dict(src.header_meta)

    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(var_names, dtype=object)))
    adata.obsm[SPATIAL_KEY] = coords
    adata.uns[UNS_KEY_IO] = info
    logger.info("read_transcripts: %d of %d rows, %d genes, platform %s", n_kept, n_rows, len(var_names), platform)
    return adata


def _coord(series: pd.Series, column: str, label: str) -> np.ndarray:
    values = _numeric(series)
    if values is None:
        bad = pd.to_numeric(series, errors="coerce").isna() & series.notna()
        example = series[bad].astype(str).iloc[0] if bad.any() else series.astype(str).iloc[0]
        raise InputError(
            f"coordinate column {column!r} of {label!r} holds non-numeric values (e.g. "
            f"{example!r}); pass x=/y=/z= naming the numeric coordinate columns."
        )
    return values


def _plain_column(values: np.ndarray) -> Any:
    """A column h5ad can store: numbers as they are, anything else as a categorical of strings."""
    if values.dtype.kind in "biuf":
        return values
    codes, names = _factorize(values)
    return pd.Categorical.from_codes(codes, categories=list(names))
