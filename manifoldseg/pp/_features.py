"""Multi-scale neighbourhood gene composition of every spot."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ._smooth import Grid, grid_pixel

logger = logging.getLogger("manifoldseg")

DEFAULT_SCALES = (0.25, 0.5, 1.0)


def sigma_for_scale(scale: float, cell_diameter: float) -> float:
    """Gaussian sigma of a neighbourhood ``scale`` x the cell diameter wide (about 4 sigma)."""
    return scale * cell_diameter / 4.0


def gene_loadings(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    radius: float,
    n_components: int,
    n_sample: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of neighbourhood composition, learnt on a sample of spots.

    Returns ``W`` (genes x components; the gene scaling folded in) and the mean projection.
    Compositions are scaled per gene by 1/sqrt(mean) (a Poisson variance stabiliser) so that
    marker genes of rare types weigh as much as abundant housekeeping genes.
    """
    n, n_genes = X.shape
    sample = rng.choice(n, size=min(n, n_sample), replace=False) if n > n_sample else np.arange(n)
    sample.sort()
    tree = cKDTree(coords)
    nbrs = tree.query_ball_point(coords[sample], r=radius, workers=1)
    lengths = np.fromiter((len(x) for x in nbrs), dtype=np.int64, count=len(nbrs))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([np.asarray(x, dtype=np.int64) for x in nbrs]) if len(nbrs) else np.zeros(0, np.int64)
    R = sparse.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(sample), n))
    comp = (R @ X).astype(np.float64)
    totals = np.asarray(comp.sum(axis=1)).ravel()
    keep = totals > 0
    comp = sparse.diags(1.0 / np.where(totals > 0, totals, 1.0)) @ comp
    comp = np.asarray(comp[keep].todense())
    mean = comp.mean(axis=0)
    gscale = 1.0 / np.sqrt(mean + 1e-3 / n_genes)
    Z = comp * gscale
    zmean = Z.mean(axis=0)
    Z -= zmean
    k = int(min(n_components, max(1, min(Z.shape) - 1)))
    if min(Z.shape) <= 1 or not np.any(Z):
        W = np.zeros((n_genes, k))
        return W, np.zeros(k)
    from sklearn.utils.extmath import randomized_svd

    _, _, Vt = randomized_svd(Z, k, random_state=int(rng.integers(2**31 - 1)))
    W = (Vt * gscale).T  # genes x k, applied to raw compositions
    return W, zmean @ Vt.T


def global_loadings(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    cell_diameter: float,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    n_components: int = 10,
    n_sample: int = 20000,
    random_state: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of neighbourhood composition at the middle scale (see :func:`gene_loadings`)."""
    sigmas = [sigma_for_scale(s, cell_diameter) for s in scales]
    mid = sigmas[len(sigmas) // 2]
    rng = np.random.default_rng(random_state)
    return gene_loadings(np.asarray(coords, dtype=np.float64), X, radius=2.0 * mid, n_components=n_components,
                         n_sample=n_sample, rng=rng)


def neighborhood_features_array(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    cell_diameter: float,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    n_components: int = 10,
    n_sample: int = 20000,
    random_state: int | np.random.Generator = 0,
    loadings: tuple[np.ndarray, np.ndarray] | None = None,
    block_stats: tuple[list, list] | None = None,
    origin: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Multi-scale neighbourhood features.

    For each scale s, the count-weighted gene composition within a Gaussian neighbourhood of
    sigma = s * cell_diameter / 4, projected on ``n_components`` principal axes, plus the log
    local transcript density; each scale's block is standardised so scales weigh alike.

    ``loadings`` (genes x components, mean projection), when given, replaces the axes learnt on
    this input: tiles of one section share the section's axes (:func:`global_loadings`).
    ``block_stats`` (per scale the block's mean and its root-mean-square norm, as returned in
    ``info["block_means"]``, ``info["block_scales"]``), when given, replace the standardisation
    measured on this input. ``origin`` anchors the smoothing grid (a tile passes its section's).

    Returns
    -------
    features
        ``(n_spots, len(scales) * (n_components + 1))`` float32.
    density
        Counts per um^2 around each spot at the smallest scale.
    info
        Parameters and the loadings, for ``uns``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    n = coords.shape[0]
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    sigmas = [sigma_for_scale(s, cell_diameter) for s in scales]
    if loadings is None:
        loadings = global_loadings(coords, X, cell_diameter=cell_diameter, scales=scales,
                                   n_components=n_components, n_sample=n_sample, random_state=random_state)
    W, wmean = loadings
    P = np.asarray(X @ W)  # n x k
    grid = Grid(coords, grid_pixel(coords, min(sigmas)), pad=0, anchor=origin)
    blocks = []
    stats = []
    density = None
    for b, sigma in enumerate(sigmas):
        tot = grid.smooth(counts, sigma)
        if density is None:
            density = tot
        safe = np.where(tot > 0, tot, 1.0)
        comp = np.stack([grid.smooth(P[:, c], sigma) for c in range(P.shape[1])], axis=1) / safe[:, None]
        comp -= wmean
        comp[tot <= 0] = 0.0
        logd = np.log1p(tot * (np.pi * cell_diameter**2 / 4.0))  # about log(counts per cell area)
        block = np.concatenate([comp, logd[:, None]], axis=1)
        if block_stats is None:
            centre = block.mean(axis=0)
            scale = float(np.sqrt(((block - centre) ** 2).sum(axis=1).mean()))
        else:
            centre, scale = np.asarray(block_stats[0][b], dtype=np.float64), float(block_stats[1][b])
        stats.append((centre, scale))
        blocks.append((block - centre) / (scale if scale > 0 else 1.0))
    features = np.concatenate(blocks, axis=1).astype(np.float32)
    info = {
        "scales": [float(s) for s in scales],
        "sigmas_um": [float(s) for s in sigmas],
        "n_components": int(W.shape[1]),
        "grid_pixel_um": grid.pixel,
        "n_spots": int(n),
        "block_means": [c.tolist() for c, _ in stats],
        "block_scales": [float(sc) for _, sc in stats],
    }
    return features, density, info
