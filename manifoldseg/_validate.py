"""Input checks that raise clear errors.

Every public function of manifoldseg validates its input here, so that a bad input gives one
error that names the problem and the fix, never a NumPy, numba or h5py traceback. The module
depends only on numpy, scipy and pandas; anndata is imported inside the functions that need it.

Exceptions
----------
:class:`ManifoldsegError` is the root of the hierarchy. :class:`InputError` (also a
``ValueError``) marks bad input; :class:`MissingKeyError` (also a ``KeyError``) marks a missing
``obs``/``obsm``/column key; :class:`MissingFileError` (also a ``FileNotFoundError``) marks a
missing input file. The command line prints any :class:`ManifoldsegError` as one line.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._constants import SPATIAL_KEY

logger = logging.getLogger("manifoldseg")

__all__ = [
    "ManifoldsegError",
    "InputError",
    "MissingKeyError",
    "MissingFileError",
    "check_coordinates",
    "check_counts",
    "check_adata",
    "check_choice",
    "check_positive",
    "check_obs_key",
]


class ManifoldsegError(Exception):
    """Root of manifoldseg's exceptions; the command line prints these as one line."""


class InputError(ManifoldsegError, ValueError):
    """Bad input: the message names the problem and how to fix it."""


class MissingKeyError(ManifoldsegError, KeyError):
    """A key (``obsm``, ``obs``, a table column) is missing; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist."""


def _fmt_list(values: Iterable[Any], limit: int = 20) -> str:
    values = [str(v) for v in values]
    if not values:
        return "(none)"
    shown = ", ".join(repr(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown


def check_coordinates(coords: Any, *, name: str = "obsm['spatial']") -> np.ndarray:
    """Check spatial coordinates and return them as a float64 C-contiguous array.

    Parameters
    ----------
    coords
        Array-like of shape ``(n, 2)`` or ``(n, 3)`` (x, y[, z]) in um.
    name
        How the array is named in error messages.

    Returns
    -------
    numpy.ndarray
        ``float64``, C-contiguous, shape ``(n, 2)`` or ``(n, 3)``. A new array when a conversion
        was needed, otherwise the input itself.

    Raises
    ------
    InputError
        Empty input, wrong shape, non-numeric values, NaN or infinite values.
    """
    if sparse.issparse(coords):
        raise InputError(f"{name} is a sparse matrix; coordinates must be a dense (n, 2) or (n, 3) array.")
    if isinstance(coords, pd.DataFrame):
        coords = coords.to_numpy()
    try:
        arr = np.asarray(coords)
    except Exception as err:  # ragged lists and the like
        raise InputError(f"{name} could not be read as an array ({err}); pass an (n, 2) or (n, 3) array.") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"{name} holds non-numeric values (dtype {arr.dtype}); coordinates must be numbers in um, "
                "e.g. adata.obsm['spatial'] = adata.obs[['x', 'y']].to_numpy(dtype=float)."
            ) from None
    if np.iscomplexobj(arr):
        raise InputError(f"{name} holds complex numbers; coordinates must be real numbers in um.")
    if arr.ndim != 2:
        raise InputError(
            f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}); expected a 2-D array of shape (n, 2) "
            "or (n, 3) with columns x, y[, z]."
        )
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty (0 rows): there is nothing to segment.")
    if arr.shape[1] not in (2, 3):
        raise InputError(
            f"{name} has {arr.shape[1]} column(s); expected 2 (x, y) or 3 (x, y, z). "
            "Pass only the coordinate columns, e.g. coords[:, :2]."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        n_bad = int(bad_rows.sum())
        n_nan = int(np.isnan(arr).any(axis=1).sum())
        first = np.flatnonzero(bad_rows)[:5].tolist()
        raise InputError(
            f"{name} has {n_bad} of {arr.shape[0]} rows with NaN ({n_nan}) or infinite "
            f"({n_bad - n_nan}) coordinates (first rows: {first}). Drop them first, e.g. "
            "adata = adata[np.isfinite(adata.obsm['spatial']).all(axis=1)].copy()."
        )
    return arr


def check_counts(X: Any, *, n_obs: int | None = None, name: str = "X") -> sparse.csr_matrix:
    """Check a count matrix and return it as a ``scipy.sparse.csr_matrix``.

    Parameters
    ----------
    X
        Dense array or any scipy sparse matrix/array, observations x genes.
    n_obs
        Expected number of rows (the number of coordinates); checked when given.
    name
        How the matrix is named in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        Integer dtypes are kept; floating and boolean input become ``float32``. Non-integer
        floating counts are accepted (a warning is logged on the ``manifoldseg`` logger).

    Raises
    ------
    InputError
        Non-numeric, negative, NaN or infinite values, a matrix that is not 2-D, or a row count
        that does not match ``n_obs``.
    """
    if sparse.issparse(X):
        mat = sparse.csr_matrix(X)
    else:
        try:
            arr = np.asarray(X)
        except Exception as err:
            raise InputError(f"{name} could not be read as a matrix ({err}).") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise InputError(
                    f"{name} holds non-numeric values (dtype {arr.dtype}); counts must be numbers "
                    "(raw counts per gene)."
                ) from None
        if arr.ndim != 2:
            raise InputError(f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}); expected observations x genes.")
        mat = sparse.csr_matrix(arr)
    if mat.dtype == object or not (np.issubdtype(mat.dtype, np.number) or mat.dtype == bool):
        raise InputError(f"{name} holds non-numeric values (dtype {mat.dtype}); counts must be numbers.")
    if np.iscomplexobj(mat.data):
        raise InputError(f"{name} holds complex numbers; counts must be real, non-negative numbers.")
    if n_obs is not None and mat.shape[0] != n_obs:
        raise InputError(
            f"{name} has {mat.shape[0]} rows but there are {n_obs} coordinates; counts and coordinates "
            "must describe the same observations in the same order."
        )
    if mat.dtype == bool or np.issubdtype(mat.dtype, np.floating):
        mat = mat.astype(np.float32)
        data = mat.data
        if not np.isfinite(data).all():
            n_bad = int((~np.isfinite(data)).sum())
            raise InputError(
                f"{name} has {n_bad} NaN or infinite values; counts must be finite. Replace them, e.g. "
                "X.data[~np.isfinite(X.data)] = 0, or drop the affected observations."
            )
    data = mat.data
    if data.size and (data < 0).any():
        n_neg = int((data < 0).sum())
        raise InputError(
            f"{name} has {n_neg} negative values (min {data.min()!r}); manifoldseg needs raw, non-negative "
            "counts. Pass the raw counts (e.g. layer='counts' or adata.raw) rather than normalised or "
            "scaled values."
        )
    if np.issubdtype(mat.dtype, np.floating) and data.size:
        frac = data != np.round(data)
        if frac.any():
            logger.warning(
                "%s has %d non-integer count values (e.g. %r); treating them as counts. Raw integer counts "
                "give the best results.",
                name,
                int(frac.sum()),
                float(data[np.flatnonzero(frac)[0]]),
            )
    if not mat.has_sorted_indices:
        mat.sort_indices()
    return mat


def check_adata(adata: Any, *, spatial_key: str = SPATIAL_KEY, layer: str | None = None) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Check an AnnData of spots or transcripts and return its coordinates and counts.

    Parameters
    ----------
    adata
        The AnnData; coordinates in ``adata.obsm[spatial_key]`` (um).
    spatial_key
        ``obsm`` key of the coordinates.
    layer
        Take counts from ``adata.layers[layer]`` instead of ``adata.X``.

    Returns
    -------
    coords
        ``float64`` array of shape ``(n, 2)`` or ``(n, 3)`` (see :func:`check_coordinates`).
    X
        ``csr_matrix`` of counts (see :func:`check_counts`).

    Raises
    ------
    TypeError
        ``adata`` is not an AnnData.
    MissingKeyError
        ``obsm[spatial_key]`` or ``layers[layer]`` is missing.
    InputError
        Empty AnnData, or bad coordinates or counts.
    """
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise TypeError(
            f"expected an AnnData, got {type(adata).__name__}. Read a file with ms.io.read_h5ad(path) or "
            "ms.io.read_transcripts(path)."
        )
    if adata.n_obs == 0:
        raise InputError("the AnnData has no observations (0 spots or transcripts): there is nothing to segment.")
    if adata.n_vars == 0:
        raise InputError("the AnnData has no genes (0 variables): counts are needed to segment.")
    if spatial_key not in adata.obsm:
        keys = list(adata.obsm.keys())
        cols = [c for c in ("x", "y", "z") if c in adata.obs.columns]
        hint = (
            f" The coordinates seem to be in obs columns {cols}: set "
            f"adata.obsm['{spatial_key}'] = adata.obs[{cols!r}].to_numpy(dtype=float)."
            if len(cols) >= 2
            else f" Set adata.obsm['{spatial_key}'] = adata.obs[['x', 'y']].to_numpy(dtype=float) "
            "from your coordinate columns."
        )
        raise MissingKeyError(
            f"adata.obsm[{spatial_key!r}] not found; obsm keys present: {_fmt_list(keys)}. "
            f"Pass spatial_key=<one of them> if the coordinates are stored there.{hint}"
        )
    coords = check_coordinates(adata.obsm[spatial_key], name=f"obsm[{spatial_key!r}]")
    if layer is None:
        X = adata.X
        xname = "X"
        if X is None:
            raise InputError("adata.X is empty (None); store the counts in X or pass layer=.")
    else:
        if layer not in adata.layers:
            raise MissingKeyError(
                f"adata.layers[{layer!r}] not found; layers present: {_fmt_list(adata.layers.keys())}. "
                "Pass layer=None to use adata.X."
            )
        X = adata.layers[layer]
        xname = f"layers[{layer!r}]"
    if hasattr(X, "to_memory"):  # backed sparse datasets
        X = X.to_memory()
    X = check_counts(X, n_obs=coords.shape[0], name=xname)
    return coords, X


def check_choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise an InputError naming both."""
    allowed = list(allowed)
    try:
        ok = value in allowed
    except TypeError:
        ok = False
    if not ok:
        raise InputError(f"{name}={value!r} is not valid; choose one of {_fmt_list(allowed)}.")
    return value


def check_positive(value: Any, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> Any:
    """Return ``value`` if it is a finite number > 0 (>= 0 when ``allow_zero``; None when ``allow_none``)."""
    kind = "non-negative" if allow_zero else "positive"
    if value is None:
        if allow_none:
            return None
        raise InputError(f"{name} must be a {kind} number, got None.")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a {kind} number, got {value!r} ({type(value).__name__}).")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{name} must be a {kind}, finite number, got {value!r}.")
    return value


def check_obs_key(adata: Any, key: str, *, hint: str | None = None) -> pd.Series:
    """Return ``adata.obs[key]``, or raise a MissingKeyError listing the obs columns and ``hint``."""
    if key not in adata.obs.columns:
        msg = f"adata.obs[{key!r}] not found; obs columns present: {_fmt_list(adata.obs.columns)}."
        if hint:
            msg += f" {hint}"
        raise MissingKeyError(msg)
    return adata.obs[key]
