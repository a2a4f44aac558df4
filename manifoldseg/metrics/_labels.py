"""Label checks and the sparse contingency table that every agreement metric is built on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from .._constants import BACKGROUND


def as_labels(x, name: str) -> np.ndarray:
    """Return ``x`` as a 1-D int64 array of labels (-1 = background), or raise a clear error."""
    if x is None:
        raise ValueError(f"{name} is None; pass an integer label array (-1 = background).")
    if isinstance(x, pd.Series | pd.Index):
        if isinstance(x.dtype, pd.CategoricalDtype):
            x = x.astype(x.cat.categories.dtype)
        if x.isna().any():
            x = x.fillna(BACKGROUND)
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per item); got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise ValueError(f"{name} is boolean; pass integer labels (-1 = background).")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        arr = np.where(bad, BACKGROUND, arr)
        if np.any(arr != np.round(arr)):
            raise ValueError(f"{name} has non-integer values; pass integer labels (-1 = background).")
        return arr.astype(np.int64)
    try:
        return arr.astype(np.int64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} has dtype {arr.dtype} that cannot be read as integer labels; "
            "pass integers with -1 for background (e.g. pd.factorize the ids first)."
        ) from None


def as_weights(weights, n: int) -> np.ndarray | None:
    """Check per-item weights (e.g. counts per bin)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} entries for {n} items; pass one weight per item.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0 (e.g. counts per spot).")
    return w


def check_same_length(**arrays) -> int:
    sizes = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            "label arrays differ in length: "
            + ", ".join(f"{k}={v}" for k, v in sizes.items())
            + "; pass one label per item in the same order."
        )
    return next(iter(sizes.values()))


def codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compact codes 0..k-1 for labels >= 0 (-1 for background), and the label of each code."""
    fg = labels >= 0
    out = np.full(labels.shape[0], -1, dtype=np.int64)
    if not fg.any():
        return out, np.empty(0, dtype=np.int64)
    ids, inv = np.unique(labels[fg], return_inverse=True)
    out[fg] = inv
    return out, ids


@dataclass
class Contingency:
    """Overlap of two labelings, cells as item sets.

    ``table[i, j]`` is the (weighted) number of items in row cell ``i`` and column cell ``j`` (both
    >= 0). ``row_size``/``col_size`` are the full (weighted) sizes of each cell, background items
    on the other side included.
    """

    table: sparse.csr_matrix
    row_ids: np.ndarray
    col_ids: np.ndarray
    row_size: np.ndarray
    col_size: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.row_ids.shape[0]

    @property
    def n_cols(self) -> int:
        return self.col_ids.shape[0]

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and intersections of the non-zero entries."""
        coo = self.table.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data

    def iou(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and Jaccard index (IoU) of every overlapping pair."""
        r, c, inter = self.pairs()
        union = self.row_size[r] + self.col_size[c] - inter
        return r, c, inter / union


def contingency(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray | None = None) -> Contingency:
    """Sparse contingency of two label arrays (scipy COO -> CSR; duplicates summed)."""
    rc, row_ids = codes(rows)
    cc, col_ids = codes(cols)
    nr, nc = row_ids.shape[0], col_ids.shape[0]
    if weights is None:
        w_all = np.ones(rows.shape[0], dtype=np.int64)
    else:
        w_all = weights
    row_size = np.bincount(rc[rc >= 0], weights=None if weights is None else w_all[rc >= 0], minlength=nr)
    col_size = np.bincount(cc[cc >= 0], weights=None if weights is None else w_all[cc >= 0], minlength=nc)
    both = (rc >= 0) & (cc >= 0)
    table = sparse.coo_matrix((w_all[both], (rc[both], cc[both])), shape=(nr, nc)).tocsr()
    table.sum_duplicates()
    table.eliminate_zeros()
    return Contingency(table, row_ids, col_ids, row_size, col_size)


def background_overlap(rows: np.ndarray, cols: np.ndarray) -> tuple[Contingency, np.ndarray, np.ndarray]:
    """Contingency of two label arrays, each row label's item count and how many of its items
    ``cols`` leaves as background (-1), both as float and in the order of ``row_ids``."""
    c = contingency(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))
    size = c.row_size.astype(np.float64)
    return c, size, size - axis_sum(c.table, 1)


def axis_max(table: sparse.csr_matrix, axis: int) -> np.ndarray:
    """Largest entry of each row (``axis=1``) or column (``axis=0``) as float; 0 for empty lines."""
    n = table.shape[0] if axis == 1 else table.shape[1]
    if n == 0:
        return np.zeros(0)
    if table.shape[axis] == 0:
        return np.zeros(n)
    return np.asarray(table.max(axis=axis).todense()).ravel().astype(np.float64)


def axis_sum(table: sparse.csr_matrix, axis: int) -> np.ndarray:
    """Sum of each row (``axis=1``) or column (``axis=0``) as float."""
    return np.asarray(table.sum(axis=axis)).ravel().astype(np.float64)
