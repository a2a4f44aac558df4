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


#: with ``refine=False``, a given diameter this far from the data's estimate is worth a warning
#: (benchmarks/diameter.py: median F1 falls by 0.21-0.37 at 0.7x the true diameter and by
#: 0.04-0.17 at 1.3x when the value is used as is, 2026-12-04)
DIAMETER_WARN_RANGE = (0.8, 1.25)
#: spread (sd of log diameter) of a user's cell diameter around the truth: "off by 30 %" (issue 3)
HINT_LOG_SD = float(np.log(1.3))
#: spread of the data's estimate around the truth: 0.93-1.13x the true diameter on the simulator
#: and on both CosMx FOVs (benchmarks/diameter.py, 2026-12-04); 0.1 leaves a margin
ESTIMATE_LOG_SD = 0.1
#: weight of the estimate when both are combined in log space (precision weighting, about 0.87)
ESTIMATE_WEIGHT = HINT_LOG_SD**2 / (HINT_LOG_SD**2 + ESTIMATE_LOG_SD**2)
#: given / estimate outside this range (two combined sd) means they disagree: the given value is
#: used as is. MERFISH (cultured cells of 45 um whose RNA peaks are sub-cellular; estimate 15.9)
#: is such a case, and the user is right there.
HINT_RANGE = (float(np.exp(-2 * np.hypot(HINT_LOG_SD, ESTIMATE_LOG_SD))),
              float(np.exp(2 * np.hypot(HINT_LOG_SD, ESTIMATE_LOG_SD))))


def resolve_diameter(coords: np.ndarray, counts: np.ndarray, nucleus: np.ndarray | None,
                     cell_diameter: float | None, *, refine: bool = True) -> tuple[float, str, dict]:
    """The cell diameter a run uses, how it was found, and what the data said.

    - ``cell_diameter=None``: the data's estimate (:func:`estimate_diameter_array`).
    - A given value with ``refine=True`` (the default) is a prior, as Baysor's ``scale`` is: when the
      data's estimate agrees with it within :data:`HINT_RANGE` (about 0.57-1.76x), the two are
      combined in log space by their precisions (the given value is taken to be off by up to 30 %,
      the estimate by about 10 %: the estimate weighs :data:`ESTIMATE_WEIGHT`), so a value 30 % off
      is pulled most of the way to the data's scale. When they disagree more, the given value is
      used as is and a warning names both: the estimator fails on some tissues (large cultured cells
      with sub-cellular RNA peaks) and the user may know better.
    - ``refine=False`` uses a given value as is; a warning says so when the data disagrees by more
      than 0.8-1.25x.

    Returns ``(diameter, method, info)``; ``method`` is ``"nucleus"``, ``"density_peaks"`` or
    ``"default"`` (estimated), ``"given"`` or ``"given+data"`` (a given value combined with the
    estimate); ``info`` holds ``cell_diameter_given``, ``cell_diameter_estimate`` and
    ``cell_diameter_estimate_method`` (None where they do not apply).
    """
    est, est_method = estimate_diameter_array(coords, counts, nucleus)
    if cell_diameter is None:
        logger.info("estimated cell diameter: %.1f um (from %s)", est, est_method.replace("_", " "))
        return est, est_method, {"cell_diameter_given": None, "cell_diameter_estimate": round(float(est), 3),
                                 "cell_diameter_estimate_method": est_method}
    given = float(cell_diameter)
    info = {"cell_diameter_given": given,
            "cell_diameter_estimate": None if est_method == "default" else round(float(est), 3),
            "cell_diameter_estimate_method": est_method}
    if est_method == "default":  # too little data for an estimate
        return given, "given", info
    ratio = given / est
    close = DIAMETER_WARN_RANGE[0] <= ratio <= DIAMETER_WARN_RANGE[1]
    where = f"the diameter estimated from the data ({est:.1f} um, from {est_method.replace('_', ' ')})"
    if refine and HINT_RANGE[0] <= ratio <= HINT_RANGE[1]:
        d = float(np.exp(ESTIMATE_WEIGHT * np.log(est) + (1.0 - ESTIMATE_WEIGHT) * np.log(given)))
        (logger.info if close else logger.warning)(
            "cell_diameter=%g um is %.2fx %s: using %.1f um, the two combined (pass refine_diameter=False to use "
            "%g um as is)", given, ratio, where, d, given)
        return d, "given+data", info
    if not close:  # HINT_RANGE holds DIAMETER_WARN_RANGE: every refused prior lands here
        logger.warning(
            "cell_diameter=%g um is %.2fx %s; results depend strongly on it (a %s value %s cells): using %g um "
            "as given. Check it, or pass cell_diameter=None to use the estimate", given, ratio, where,
            "too small" if ratio < 1 else "too large", "splits" if ratio < 1 else "merges", given)
    return given, "given", info


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
