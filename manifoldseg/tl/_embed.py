"""Manifold embedding of the fused graph, initialised from the spatial coordinates."""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from scipy import sparse

from .._validate import check_choice

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
    """umap-learn's schedule: an edge of (normalised) weight w is sampled every 1 / w epochs."""
    result = -1.0 * np.ones(weights.shape[0], dtype=np.float64)
    n_samples = n_epochs * weights
    result[n_samples > 0] = float(n_epochs) / n_samples[n_samples > 0]
    return result


def spatial_buckets(
    coords: np.ndarray, size: float, origin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Square buckets of side ``size`` in x, y from ``origin`` (default the minimum; a tile given its
    section's origin buckets its spots as the section does).

    Returns each point's bucket (``bx * nby + by``, relative to the lowest occupied bucket), the
    bucket start pointers, the points of each bucket in order (ascending row, i.e. global-id order
    when rows are) and the grid shape ``nbx, nby``.
    """
    xy = coords[:, :2] - (coords[:, :2].min(axis=0) if origin is None else np.asarray(origin)[:2])
    q = np.floor(xy / size).astype(np.int64)
    q -= q.min(axis=0)
    nbx, nby = int(q[:, 0].max()) + 1, int(q[:, 1].max()) + 1
    bucket = q[:, 0] * nby + q[:, 1]
    points = np.argsort(bucket, kind="stable").astype(np.int64)
    start = np.zeros(nbx * nby + 1, dtype=np.int64)
    np.cumsum(np.bincount(bucket, minlength=nbx * nby), out=start[1:])
    return bucket, start, points, nbx, nby


def median_edge(coords: np.ndarray, graph: sparse.csr_matrix) -> float:
    """Median spatial length of the graph's edges (1 when there are none)."""
    coo = graph.tocoo()
    if not coo.nnz:
        return 1.0
    lengths = np.linalg.norm(coords[coo.row] - coords[coo.col], axis=1)
    return float(np.median(lengths[lengths > 0])) if np.any(lengths > 0) else 1.0


def spatial_init(
    coords: np.ndarray,
    graph: sparse.csr_matrix,
    target_edge: float = 1.0,
    *,
    edge_length: float | None = None,
    origin: np.ndarray | None = None,
) -> np.ndarray:
    """Coordinates rescaled so that the median graph edge is ``target_edge`` long.

    ``edge_length`` (the median edge, default measured on ``graph``) and ``origin`` (default the
    coordinates' minimum) can be fixed for a whole section so that its tiles start alike.
    """
    med = median_edge(coords, graph) if edge_length is None else float(edge_length)
    origin = coords.min(axis=0) if origin is None else np.asarray(origin, dtype=np.float64)
    init = (coords - origin) * (target_edge / med)
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
    learning_rate: float = 0.25,
    negative_sampling: str = "local",
    method: str = "numba",
    random_state: int = 0,
    coords: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    negative_window: float | None = None,
    origin: np.ndarray | None = None,
) -> np.ndarray:
    """Lay out a fuzzy graph on UMAP's objective from an initial position.

    ``method="numba"`` runs the project's cached kernel (identical objective and updates to
    umap-learn's ``optimize_layout_euclidean``); ``method="umap-learn"`` calls
    ``umap.umap_.simplicial_set_embedding``. ``negative_sampling="local"`` draws negative samples
    among spatially nearby points (within about ``negative_window`` of the point in ``coords``,
    default ``init``; window default 16 median edge lengths), which pushes apart neighbouring cells
    that the graph does not tie together; ``"global"`` is umap-learn's rule.

    ``learning_rate`` defaults to 0.25 (umap-learn: 1.0): from the spatial start the layout needs
    no large moves, and at 1.0 the stochastic descent is chaotic (a 1e-3 nudge of one point moves
    points a whole cell away); at 0.25 perturbations die out within a few spots, so results are
    stable across seeds and a tile lays out its interior as the whole section does.

    ``origin`` anchors the buckets of the local negatives (a tile passes its section's).
    ``ids`` (default ``0..n-1``) are the points' global ids: the random draws of the numba layout
    are hashes of them, so a tile of a section gets the same draws for its spots as the section.
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

    check_choice(negative_sampling, "negative_sampling", ("local", "global"))
    ids = np.arange(n, dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    pos = init if coords is None else np.asarray(coords, dtype=np.float64)
    if negative_window is None:
        negative_window = 16.0 * median_edge(pos, graph)
    reach = 2
    if negative_sampling == "local":
        bucket, start, points, nbx, nby = spatial_buckets(pos, max(float(negative_window) / reach, 1e-9),
                                                          origin if coords is not None else None)
    else:
        bucket, start, points, nbx, nby = np.zeros(n, np.int64), np.zeros(2, np.int64), np.zeros(0, np.int64), 1, 1
        reach = -1
    coo = graph.tocoo()
    # memberships are at most 1; a fixed normalisation keeps tiles and section on one schedule
    top = max(float(coo.data.max()), 1.0) if coo.nnz else 1.0
    keep = coo.data >= top / float(n_epochs)
    head = coo.row[keep].astype(np.int64)
    tail = coo.col[keep].astype(np.int64)
    eps = _epochs_per_sample(coo.data[keep].astype(np.float64) / top, n_epochs)
    Y = np.ascontiguousarray(init, dtype=np.float32).copy()
    optimize_layout(
        Y, head, tail, eps, int(n_epochs), a, b, float(repulsion_strength), float(learning_rate),
        float(negative_sample_rate), ids, bucket, start, points, int(nbx), int(nby), int(reach),
        int(random_state) & 0x7FFFFFFFFFFFFFFF,
    )
    return Y
