"""Count-weighted density clustering of the manifold embedding (cell candidates)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def embedding_bandwidth(embedding: np.ndarray, graph: sparse.csr_matrix) -> float:
    """Median length of the graph's edges in the embedding (the density kernel's width)."""
    coo = graph.tocoo()
    if not coo.nnz:
        return 1.0
    d2 = ((embedding[coo.row] - embedding[coo.col]).astype(np.float64) ** 2).sum(axis=1)
    return float(np.sqrt(np.median(d2)))


def embedding_density(
    embedding: np.ndarray, graph: sparse.csr_matrix, counts: np.ndarray, bandwidth: float | None = None
) -> np.ndarray:
    """Count-weighted kernel density of each point over its graph neighbours in the embedding.

    rho_i = c_i + sum_j c_j exp(-|y_i - y_j|^2 / h^2), with ``h`` the median edge length
    (:func:`embedding_bandwidth`) unless given. Weighting
    by counts makes the density meaningful for sequencing bins on a regular grid, where the point
    density is flat and the counts carry the signal.
    """
    coo = graph.tocoo()
    diff = embedding[coo.row] - embedding[coo.col]
    d2 = (diff.astype(np.float64) ** 2).sum(axis=1)
    if bandwidth is None:
        bandwidth = embedding_bandwidth(embedding, graph)
    h2 = max(bandwidth, 1e-9) ** 2
    k = np.exp(-d2 / h2) * counts[coo.col]
    return counts + np.bincount(coo.row, weights=k, minlength=len(counts))


def density_cluster_array(
    graph: sparse.csr_matrix,
    log_density: np.ndarray,
    mass: np.ndarray,
    *,
    persistence: float = 0.5,
    max_mass: float = np.inf,
    min_mass: float = 0.0,
    min_log_density: float = -np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """ToMATo mode-seeking clustering on the fused graph (numba kernel).

    Returns labels (-1 for points below ``min_log_density``) and each cluster's peak point.
    """
    from .._kernels._density import tomato

    g = graph.tocsr()
    return tomato(
        g.indptr.astype(np.int64), g.indices.astype(np.int64), np.asarray(log_density, np.float64),
        np.asarray(mass, np.float64), float(persistence), float(max_mass), float(min_log_density),
        float(min_mass),
    )
