"""Aggregate spots into a cells x genes matrix with centroids, QC and boundary polygons."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse


def cell_matrix(labels: np.ndarray, X: sparse.csr_matrix, n_cells: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Summed counts per cell (cells x genes) and the background's summed counts per gene."""
    n = len(labels)
    assigned = labels >= 0
    L = sparse.csr_matrix(
        (np.ones(assigned.sum(), dtype=np.float32), (labels[assigned], np.nonzero(assigned)[0])),
        shape=(n_cells, n),
    )
    cells = (L @ X).tocsr()
    bg = np.asarray(X[~assigned].sum(axis=0)).ravel()
    return cells, bg


def boundaries(coords: np.ndarray, labels: np.ndarray, n_cells: int, *, ratio: float = 0.4, pad: float = 0.5):
    """One polygon per cell: the concave hull of its spots, padded by ``pad`` um (shapely)."""
    import shapely

    assigned = labels >= 0
    if not assigned.any():
        return np.array([], dtype=object)
    order = np.argsort(labels[assigned], kind="stable")
    pts = coords[assigned][order][:, :2]
    idx = labels[assigned][order]
    multi = shapely.multipoints(pts, indices=idx)
    hulls = shapely.concave_hull(multi, ratio=ratio)
    polys = shapely.buffer(hulls, pad, quad_segs=2)
    out = np.empty(n_cells, dtype=object)
    present = np.unique(idx)
    out[present] = polys
    return out


def aggregate_arrays(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    labels: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    with_boundaries: bool = True,
) -> tuple[sparse.csr_matrix, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Cells x genes counts, per-cell QC table, centroids, boundary polygons and background counts."""
    labels = np.asarray(labels, dtype=np.int64)
    n_cells = int(labels.max()) + 1 if (labels >= 0).any() else 0
    cells, bg = cell_matrix(labels, X, n_cells)
    assigned = labels >= 0
    lab = labels[assigned]
    counts = np.asarray(X.sum(axis=1)).ravel()
    w = counts[assigned].astype(np.float64)
    n_spots = np.bincount(lab, minlength=n_cells)
    wsum = np.bincount(lab, weights=w, minlength=n_cells)
    safe = np.where(wsum > 0, wsum, 1.0)
    cen = np.stack(
        [np.bincount(lab, weights=w * coords[assigned, j], minlength=n_cells) / safe for j in range(coords.shape[1])],
        axis=1,
    )
    # cells whose spots carry no counts: plain mean position
    if np.any(wsum == 0):
        plain = np.stack(
            [np.bincount(lab, weights=coords[assigned, j], minlength=n_cells) / np.maximum(n_spots, 1)
             for j in range(coords.shape[1])], axis=1)
        cen[wsum == 0] = plain[wsum == 0]
    table = pd.DataFrame(
        {
            "cell_id": np.arange(n_cells, dtype=np.int64),
            "n_spots": n_spots.astype(np.int64),
            "total_counts": np.asarray(cells.sum(axis=1)).ravel(),
            "n_genes_by_counts": np.diff(cells.indptr).astype(np.int64),
        }
    )
    if confidence is not None:
        table["mean_confidence"] = np.bincount(lab, weights=confidence[assigned], minlength=n_cells) / np.maximum(n_spots, 1)
    polys = boundaries(coords, labels, n_cells) if with_boundaries and n_cells else np.empty(n_cells, dtype=object)
    if with_boundaries and n_cells:
        import shapely

        table["area"] = shapely.area(polys)
        table["boundary"] = shapely.to_wkt(polys, rounding_precision=3)
    return cells, table, cen, polys, bg
