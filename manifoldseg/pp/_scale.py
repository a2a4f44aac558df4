"""Estimate the typical cell diameter from the data."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage, sparse

from ._smooth import Grid

logger = logging.getLogger("manifoldseg")

#: nucleus diameter / cell diameter in most tissues (Jorgensen et al. 2007, about 0.4-0.6)
NUCLEUS_TO_CELL = 0.5
#: faint cells make no persistent density peak: on simulated tissue (known cells) the peak count
#: is about half the cell count, so the disc diameter of area / peaks runs about 1.45x high.
PEAK_CORRECTION = 0.7


def _grid_graph(mask: np.ndarray) -> sparse.csr_matrix:
    """8-connected graph of the True pixels of a 2D mask."""
    H, W = mask.shape
    idx = -np.ones(mask.shape, np.int64)
    idx[mask] = np.arange(int(mask.sum()))
    rows, cols = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = idx[0 : H - dy, max(0, -dx) : W - max(0, dx)]
        b = idx[dy:H, max(0, dx) : W - max(0, -dx)]
        ok = (a >= 0) & (b >= 0)
        rows.append(a[ok])
        cols.append(b[ok])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    n = int(mask.sum())
    return sparse.csr_matrix((np.ones(2 * len(r)), (np.r_[r, c], np.r_[c, r])), shape=(n, n))


def persistent_peaks(coords: np.ndarray, counts: np.ndarray, *, sigma: float = 1.5, z: float = 2.0,
                     pixel: float = 0.5) -> tuple[int, float]:
    """Number of density peaks that stand out of Poisson noise, and the tissue area (um^2).

    The transcript density, smoothed with a Gaussian of ``sigma``, is clustered by persistence
    (ToMATo on the pixel grid) with a threshold of ``z`` standard deviations of its Poisson noise
    (relative sd 1 / sqrt(density x 4 pi sigma^2)); the tissue is where the density at 3 um is
    above the background threshold.
    """
    from .._kernels._density import tomato
    from ._background import background_threshold

    grid = Grid(coords[:, :2], pixel)
    raw = grid.rasterize(counts)
    dens = ndimage.gaussian_filter(raw, sigma / pixel) / pixel**2
    mid = ndimage.gaussian_filter(raw, 3.0 / pixel) / pixel**2
    occupied = mid > 1e-9
    if occupied.sum() < 16:
        return 0, 0.0
    log_mid = np.log(np.maximum(mid, 1e-12))
    mask = log_mid >= background_threshold(log_mid[occupied], np.ones(int(occupied.sum())))
    G = _grid_graph(mask)
    f = np.log(np.maximum(dens[mask], 1e-12))
    tau = z / np.sqrt(max(float(np.median(dens[mask])), 1e-9) * 4 * np.pi * sigma**2)
    _, peaks = tomato(G.indptr.astype(np.int64), G.indices.astype(np.int64), f, np.ones(len(f)), tau,
                      np.inf, -np.inf, 0.0)
    return len(peaks), float(mask.sum() * pixel**2)


def estimate_diameter_array(
    coords: np.ndarray,
    counts: np.ndarray | None = None,
    nucleus: np.ndarray | None = None,
) -> tuple[float, str]:
    """Typical cell diameter (um) and the method that gave it.

    With a nuclear prior: twice the median nuclear diameter (nuclei are about half a cell across;
    diameters from the spread of each nucleus's spots, a uniform disc having variance r^2/4 per
    axis). Without: the tissue area divided by the number of transcript-density peaks that stand
    out of Poisson noise (:func:`persistent_peaks`), as the diameter of a disc of that area. Faint
    cells make no persistent peak, so the raw estimate runs high (about 1.45x on the simulator,
    1.3x against CosMx reference cells); it is scaled by ``PEAK_CORRECTION``. A known diameter
    is better.
    """
    coords = np.asarray(coords, dtype=np.float64)[:, :2]
    if counts is None:
        counts = np.ones(len(coords))
    if nucleus is not None:
        nucleus = np.asarray(nucleus)
        inside = nucleus >= 0
        if inside.sum() >= 10:
            ids, inv = np.unique(nucleus[inside], return_inverse=True)
            if len(ids) >= 3:
                w = counts[inside]
                wsum = np.bincount(inv, weights=w)
                cen = np.stack([np.bincount(inv, weights=w * c) for c in coords[inside].T], 1) / wsum[:, None]
                var = np.zeros(len(ids))
                for j in range(2):
                    var += np.bincount(inv, weights=w * (coords[inside, j] - cen[inv, j]) ** 2) / wsum
                # a uniform disc of radius r has variance r^2/4 per axis
                nuc_diam = float(np.median(4.0 * np.sqrt(var / 2.0)))
                return float(np.clip(nuc_diam / NUCLEUS_TO_CELL, 4.0, 60.0)), "nucleus"
    # a window of at most 300 x 300 um around the densest part keeps this fast on whole sections
    coords, counts = _window(coords, counts, 300.0)
    n_peaks, area = persistent_peaks(coords, counts)
    if n_peaks < 3:
        return 10.0, "default"
    best = PEAK_CORRECTION * 2.0 * np.sqrt(area / (np.pi * n_peaks))
    return float(np.clip(best, 4.0, 40.0)), "density_peaks"


#: a given diameter this far from the data's estimate is worth a warning (benchmarks/diameter.py:
#: median F1 falls by 0.21-0.37 at 0.7x the true diameter and by 0.04-0.17 at 1.3x, 2026-12-04)
DIAMETER_WARN_RANGE = (0.8, 1.25)


def check_given_diameter(coords: np.ndarray, counts: np.ndarray, nucleus: np.ndarray | None,
                         cell_diameter: float) -> dict:
    """Compare a user's ``cell_diameter`` with the data's own estimate; warn when they disagree.

    Returns ``{"estimate", "method", "ratio"}`` (ratio = given / estimate; NaN when the data gave
    no estimate). The warning names both values and the fix: results are far more sensitive to the
    diameter than to anything else the user sets, and a too small one splits cells.
    """
    est, method = estimate_diameter_array(coords, counts, nucleus)
    if method == "default":
        return {"estimate": None, "method": method, "ratio": float("nan")}
    ratio = float(cell_diameter) / est
    lo, hi = DIAMETER_WARN_RANGE
    if ratio < lo or ratio > hi:
        logger.warning(
            "cell_diameter=%g um is %.2fx the diameter estimated from the data (%.1f um, from %s); results "
            "depend strongly on it (a %s value %s cells): check it, or pass cell_diameter=None to use the estimate",
            cell_diameter, ratio, est, method.replace("_", " "), "too small" if ratio < 1 else "too large",
            "splits" if ratio < 1 else "merges",
        )
    return {"estimate": round(float(est), 3), "method": method, "ratio": round(ratio, 3)}


def _window(coords: np.ndarray, counts: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` x ``size`` um window around the densest coarse block (all data if smaller)."""
    span = np.ptp(coords, axis=0)
    if np.all(span <= size):
        return coords, counts
    block = size / 3.0
    idx = np.floor((coords - coords.min(axis=0)) / block).astype(np.int64)
    keys, inv = np.unique(idx, axis=0, return_inverse=True)
    weight = np.bincount(inv.ravel(), weights=counts)
    centre = (keys[np.argmax(weight)] + 0.5) * block + coords.min(axis=0)
    sel = np.all(np.abs(coords - centre) <= size / 2.0, axis=1)
    return coords[sel], counts[sel]
