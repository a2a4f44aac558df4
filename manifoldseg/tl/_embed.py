"""Manifold embedding of the fused graph, initialised from the spatial coordinates."""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from scipy import sparse

logger = logging.getLogger("manifoldseg")


@lru_cache(maxsize=16)
def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """The a, b of UMAP's low-dimensional similarity 1 / (1 + a d^(2b)).

    The same least-squares fit as ``umap.umap_.find_ab_params`` (tested equal), without
    importing umap-learn (whose import compiles numba kernels for tens of seconds).
    """
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.zeros(xv.shape)
    yv[xv < min_dist] = 1.0
    yv[xv >= min_dist] = np.exp(-(xv[xv >= min_dist] - min_dist) / spread)
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def _epochs_per_sample(weights: np.ndarray, n_epochs: int) -> np.ndarray:
    result = -1.0 * np.ones(weights.shape[0], dtype=np.float64)
    n_samples = n_epochs * (weights / weights.max())
    result[n_samples > 0] = float(n_epochs) / n_samples[n_samples > 0]
    return result


def morton_order(coords: np.ndarray) -> np.ndarray:
    """Order of points along a Z-order (Morton) curve: neighbours in space stay near in index."""
    c = coords[:, :2]
    span = np.ptp(c, axis=0)
    span[span == 0] = 1.0
    q = ((c - c.min(axis=0)) / span * 65535).astype(np.uint64)
    code = np.zeros(len(c), dtype=np.uint64)
    for bit in range(16):
        for dim in range(2):
            code |= ((q[:, dim] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + dim)
    return np.argsort(code, kind="stable")


def spatial_init(coords: np.ndarray, graph: sparse.csr_matrix, target_edge: float = 0.25) -> np.ndarray:
    """Coordinates rescaled so that the median graph edge is ``target_edge`` long."""
    coo = graph.tocoo()
    if coo.nnz:
        lengths = np.linalg.norm(coords[coo.row] - coords[coo.col], axis=1)
        med = float(np.median(lengths[lengths > 0])) if np.any(lengths > 0) else 1.0
    else:
        med = 1.0
    init = (coords - coords.mean(axis=0)) * (target_edge / med)
    return np.ascontiguousarray(init, dtype=np.float32)


def embed_array(
    graph: sparse.csr_matrix,
    init: np.ndarray,
    *,
    n_epochs: int | None = None,
    min_dist: float = 0.1,
    spread: float = 1.0,
    negative_sample_rate: int = 5,
    repulsion_strength: float = 1.0,
    learning_rate: float = 1.0,
    negative_sampling: str = "local",
    method: str = "numba",
    random_state: int = 0,
) -> np.ndarray:
    """Lay out a fuzzy graph on UMAP's objective from an initial position.

    ``method="numba"`` runs the project's cached kernel (identical objective and updates to
    umap-learn's ``optimize_layout_euclidean``); ``method="umap-learn"`` calls
    ``umap.umap_.simplicial_set_embedding``. ``negative_sampling="local"`` draws negative samples
    among spatially nearby points (points sorted along a Morton curve), which pushes apart
    neighbouring cells that the graph does not tie together; ``"global"`` is umap-learn's rule.
    """
    n = graph.shape[0]
    if n_epochs is None:
        n_epochs = 20
    a, b = find_ab_params(spread, min_dist)
    init = np.asarray(init, dtype=np.float32)
    if n < 3 or graph.nnz == 0 or n_epochs <= 0:
        return init.copy()
    if method == "umap-learn":
        from umap.umap_ import simplicial_set_embedding

        Y, _ = simplicial_set_embedding(
            None, graph.tocoo(), init.shape[1], learning_rate, a, b, repulsion_strength,
            negative_sample_rate, n_epochs, init.astype(np.float64), np.random.RandomState(random_state),
            "euclidean", {}, False, {}, False, verbose=False, tqdm_kwds={"disable": True},
        )
        return np.asarray(Y, dtype=np.float32)
    if method != "numba":
        raise ValueError(f"method={method!r} is not one of 'numba', 'umap-learn'.")
    from .._kernels._layout import optimize_layout

    order = morton_order(init) if negative_sampling == "local" else np.arange(n)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    coo = graph.tocoo()
    keep = coo.data >= coo.data.max() / float(n_epochs)
    head = rank[coo.row[keep]].astype(np.int64)
    tail = rank[coo.col[keep]].astype(np.int64)
    eps = _epochs_per_sample(coo.data[keep].astype(np.float64), n_epochs)
    Y = np.ascontiguousarray(init[order], dtype=np.float32)
    radius = 256 if negative_sampling == "local" else 0
    optimize_layout(
        Y, head, tail, eps, int(n_epochs), a, b, float(repulsion_strength), float(learning_rate),
        float(negative_sample_rate), int(radius), int(random_state),
    )
    out = np.empty_like(Y)
    out[order] = Y
    return out
