"""Estimate the typical cell diameter from the data."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._smooth import Grid

logger = logging.getLogger("manifoldseg")

#: nucleus diameter / cell diameter in most tissues (Jorgensen et al. 2007, about 0.4-0.6)
NUCLEUS_TO_CELL = 0.5


def _peak_spacing(grid: Grid, counts: np.ndarray, sigma: float) -> tuple[float, int]:
    """Median nearest-neighbour distance between local maxima of the smoothed density."""
    dens = grid.smooth_grid(counts, sigma)
    size = max(3, int(round(2 * sigma / grid.pixel)) | 1)
    occupied = dens > 0
    floor = np.quantile(dens[occupied], 0.5) if occupied.any() else 0.0
    peaks = (dens == ndimage.maximum_filter(dens, size=size, mode="constant")) & (dens > floor)
    pts = np.argwhere(peaks) * grid.pixel
    if len(pts) < 3:
        return np.inf, len(pts)
    d, _ = cKDTree(pts).query(pts, k=2)
    return float(np.median(d[:, 1])), len(pts)


def estimate_diameter_array(
    coords: np.ndarray,
    counts: np.ndarray | None = None,
    nucleus: np.ndarray | None = None,
) -> tuple[float, str]:
    """Typical cell diameter (um) and the method that gave it.

    With a nuclear prior: the median nearest-neighbour distance between nucleus centroids (in
    packed tissue, neighbouring nuclei sit about one cell diameter apart), bounded below by twice
    the median nuclear diameter. Without: the spacing of transcript-density peaks, taken at the
    smoothing scale where the peak spacing is four times the smoothing sigma (a peak per cell: a
    Gaussian of sigma d/4 resolves cells of diameter d but not the noise inside them).
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
                d, _ = cKDTree(cen).query(cen, k=2)
                spacing = float(np.median(d[:, 1]))
                return float(np.clip(spacing, nuc_diam / NUCLEUS_TO_CELL * 0.6, nuc_diam / NUCLEUS_TO_CELL * 1.6)), "nucleus"
    grid = Grid(coords, pixel=0.5)
    best, best_gap = None, np.inf
    for sigma in np.geomspace(1.0, 8.0, 13):
        spacing, n_peaks = _peak_spacing(grid, counts, sigma)
        if not np.isfinite(spacing):
            continue
        gap = abs(np.log(spacing / (4.0 * sigma)))
        logger.debug("scale: sigma %.2f um -> %d peaks, spacing %.2f um", sigma, n_peaks, spacing)
        if gap < best_gap:
            best, best_gap = spacing, gap
    if best is None:
        return 10.0, "default"
    return float(np.clip(best, 4.0, 40.0)), "density_peaks"
