"""The fused manifold graph: spatially near *and* alike in neighbourhood expression."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

#: feature distance stored for identical features, so that the sparse matrix keeps the edge
ZERO_DISTANCE = 1e-12


def spatial_knn(coords: np.ndarray, k: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k nearest spatial neighbours of every spot (self excluded): distances and indices.

    Ties in distance (bins on a regular grid have many) are broken by ``ids`` (default the row), not
    by the k-d tree's layout, so a tile of a section picks the same neighbours as the section.
    """
    n = coords.shape[0]
    k = int(min(k, n - 1))
    if k < 1:
        return np.zeros((n, 0)), np.zeros((n, 0), dtype=np.int64)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    tree = cKDTree(coords)
    out_d = np.empty((n, k))
    out_i = np.empty((n, k), dtype=np.int64)
    todo = np.arange(n)
    extra = 8
    while len(todo):
        m = min(n, k + 1 + extra)
        dd, ii = tree.query(coords[todo], k=m, workers=1)
        dd, ii = dd.reshape(len(todo), m), ii.reshape(len(todo), m)
        # the k-th neighbour's distance shell must be complete among the m returned
        complete = (m >= n) | (dd[:, -1] > dd[:, k] * (1 + 1e-9) + 1e-12)
        rows = todo[complete]
        dd, ii = dd[complete], ii[complete]
        r = np.arange(len(rows))[:, None]
        order = np.lexsort((ids[ii], np.round(dd, 9)), axis=1)
        dd, ii = dd[r, order], ii[r, order]
        first = np.argsort(ii == rows[:, None], axis=1, kind="stable")[:, :k]  # self dropped
        out_d[rows] = dd[r, first]
        out_i[rows] = ii[r, first]
        todo = todo[~complete]
        extra *= 2
    return out_d, out_i


def fuzzy_union(A: sparse.csr_matrix) -> sparse.csr_matrix:
    """UMAP's symmetrisation: w = a + a' - a * a' (probabilistic t-conorm)."""
    At = A.T.tocsr()
    prod = A.multiply(At)
    out = (A + At - prod).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def fused_graph_array(
    coords: np.ndarray,
    features: np.ndarray,
    *,
    n_neighbors: int = 15,
    n_candidates: int | None = None,
    spatial_radius: float | None = None,
    ids: np.ndarray | None = None,
    chunk: int = 100_000,
) -> tuple[sparse.csr_matrix, sparse.csr_matrix, dict]:
    """Fuse a spatial kNN graph with gene similarity.

    Each spot takes its ``n_candidates`` nearest spatial neighbours and keeps the ``n_neighbors``
    most alike in neighbourhood features (a gene-similarity graph restricted to a spatial window:
    edges join spots that are near *and* alike). Edge membership strength follows UMAP's fuzzy
    simplicial set, with the feature distance measured from each spot's closest neighbour
    (``rho``) in units of its mean neighbour distance (``sigma``), times a Gaussian of the spatial
    distance in units of the median candidate radius (``spatial_radius``, measured when None); the
    result is symmetrised by fuzzy union. ``ids`` (global spot ids) break ties between equidistant
    neighbours.

    Returns
    -------
    connectivities, distances
        ``n x n`` CSR matrices (distances: feature distance of each kept edge).
    info
        Parameters for ``uns``.
    """
    n = coords.shape[0]
    if n_candidates is None:
        n_candidates = 2 * n_neighbors
    n_candidates = int(min(max(n_candidates, n_neighbors), n - 1))
    k = int(min(n_neighbors, n_candidates))
    if k < 1:
        empty = sparse.csr_matrix((n, n), dtype=np.float32)
        return empty, empty.copy(), {"n_neighbors": 0, "n_candidates": 0}
    sd, sidx = spatial_knn(coords, n_candidates, ids)
    radius = (float(np.median(sd[:, -1])) or 1.0) if spatial_radius is None else float(spatial_radius)
    rows = np.empty((n, k), dtype=np.int64)
    cols = np.empty((n, k), dtype=np.int64)
    fdist = np.empty((n, k))
    sdist = np.empty((n, k))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        f = features[start:stop].astype(np.float64)
        fd = np.sqrt(((features[sidx[start:stop]] - f[:, None, :]) ** 2).sum(axis=2))
        # rank by feature distance, ties by spatial order (stable)
        order = np.argsort(fd, axis=1, kind="stable")[:, :k]
        r = np.arange(stop - start)[:, None]
        rows[start:stop] = np.arange(start, stop)[:, None]
        cols[start:stop] = sidx[start:stop][r, order]
        fdist[start:stop] = fd[r, order]
        sdist[start:stop] = sd[start:stop][r, order]
    rho = fdist[:, :1]
    sigma = np.maximum((fdist - rho).mean(axis=1, keepdims=True), 1e-6)
    w = np.exp(-(fdist - rho) / sigma) * np.exp(-((sdist / radius) ** 2))
    A = sparse.csr_matrix((w.ravel(), (rows.ravel(), cols.ravel())), shape=(n, n))
    conn = fuzzy_union(A).astype(np.float32)
    D = sparse.csr_matrix((np.maximum(fdist.ravel(), ZERO_DISTANCE), (rows.ravel(), cols.ravel())), shape=(n, n))
    D = D.maximum(D.T).tocsr().astype(np.float32)
    info = {"n_neighbors": k, "n_candidates": n_candidates, "spatial_radius_um": radius}
    return conn, D, info
