"""Reference-free per-cell statistics: spots, counts, genes and area per cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from ._labels import as_labels, as_weights, codes


def indicator(labels: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Cells x items 0/1 matrix (background items in no row) and the cell id of each row."""
    code, ids = codes(labels)
    fg = np.flatnonzero(code >= 0)
    ind = sparse.csr_matrix(
        (np.ones(fg.shape[0]), (code[fg], fg)), shape=(ids.shape[0], labels.shape[0])
    )
    return ind, ids


def aggregate_counts(labels, X) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sum the rows of an items x genes matrix per cell: (cells x genes CSR, cell ids)."""
    lab = as_labels(labels, "labels")
    if X.shape[0] != lab.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows for {lab.shape[0]} labels; pass one row per item.")
    ind, ids = indicator(lab)
    Xs = X if sparse.issparse(X) else sparse.csr_matrix(np.asarray(X))
    return sparse.csr_matrix(ind @ Xs), ids


def fraction_assigned(labels, counts=None) -> float:
    """Share of items (or of counts, when ``counts`` per item is given) assigned to a cell.

    ``sum(counts[labels >= 0]) / sum(counts)``; with ``counts=None`` every item counts 1. This is
    the "fraction of transcripts assigned" that every segmentation method reports (e.g. Petukhov
    et al. 2022; Jones et al. 2025; Salas et al. 2025). NaN for empty input.
    """
    lab = as_labels(labels, "labels")
    w = as_weights(counts, lab.shape[0])
    if w is None:
        return float(np.mean(lab >= 0)) if lab.shape[0] else float("nan")
    tot = w.sum()
    return float(w[lab >= 0].sum() / tot) if tot > 0 else float("nan")


def cell_stats(
    labels, X=None, coords=None, *, weights=None, bin_size: float | None = None
) -> pd.DataFrame:
    """Per-cell size, counts, genes and area.

    Parameters
    ----------
    labels
        Cell per item (-1 = background; background items are ignored).
    X
        Optional items x genes counts (dense or sparse); gives ``total_counts`` and ``n_genes``.
    coords
        Optional item coordinates in um, shape (n, 2) or (n, 3); gives ``area`` (and centroids).
    weights
        Optional counts per item, used for ``total_counts`` when ``X`` is None (e.g. the count of
        each bin or 1 per transcript).
    bin_size
        Side of a square bin in um. When given, ``area = n_spots * bin_size**2`` (the area the bins
        of the cell cover, exact for binned data). Otherwise ``area`` is the area of the convex hull
        of the cell's x, y coordinates (shapely), 0 for cells with fewer than three non-collinear
        items; the hull through bin centres or transcripts slightly underestimates the cell's
        footprint, so pass ``bin_size`` for binned data.

    Returns
    -------
    pandas.DataFrame
        Indexed by cell id (``cell_id``) with ``n_spots``, ``total_counts`` and, when the inputs
        allow, ``n_genes``, ``area`` (um2), ``x``, ``y`` (centroid).
    """
    lab = as_labels(labels, "labels")
    n = lab.shape[0]
    code, ids = codes(lab)
    fg = code >= 0
    k = ids.shape[0]
    df = pd.DataFrame(index=pd.Index(ids, name="cell_id"))
    df["n_spots"] = np.bincount(code[fg], minlength=k).astype(np.int64)
    w = as_weights(weights, n)
    if X is not None:
        agg, _ = aggregate_counts(lab, X)
        df["total_counts"] = np.asarray(agg.sum(axis=1)).ravel()
        df["n_genes"] = np.diff((agg > 0).tocsr().indptr).astype(np.int64)
    elif w is not None:
        df["total_counts"] = np.bincount(code[fg], weights=w[fg], minlength=k)
    else:
        df["total_counts"] = df["n_spots"].astype(np.float64)
    if coords is not None:
        xy = np.asarray(coords, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[0] != n or xy.shape[1] < 2:
            raise ValueError(f"coords must have shape ({n}, 2) or ({n}, 3); got {xy.shape}.")
        xy = xy[:, :2]
        cnt = np.maximum(df["n_spots"].to_numpy(), 1)
        df["x"] = np.bincount(code[fg], weights=xy[fg, 0], minlength=k) / cnt
        df["y"] = np.bincount(code[fg], weights=xy[fg, 1], minlength=k) / cnt
    if bin_size is not None:
        if not bin_size > 0:
            raise ValueError(f"bin_size must be > 0 (um); got {bin_size}.")
        df["area"] = df["n_spots"].to_numpy() * float(bin_size) ** 2
    elif coords is not None:
        df["area"] = hull_areas(xy[fg], code[fg], k)
    return df


def hull_areas(xy: np.ndarray, code: np.ndarray, k: int) -> np.ndarray:
    """Convex-hull area of the points of each of ``k`` groups (vectorised shapely)."""
    import shapely

    if k == 0:
        return np.zeros(0)
    order = np.argsort(code, kind="stable")
    mp = shapely.multipoints(xy[order], indices=code[order])
    return np.asarray(shapely.area(shapely.convex_hull(mp)), dtype=np.float64)
