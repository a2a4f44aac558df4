"""Where the background ends: a threshold on a log-density score."""

from __future__ import annotations

import numpy as np


def background_threshold(log_density: np.ndarray, weights: np.ndarray, *, min_ratio: float = 1.5) -> float:
    """Log-density threshold between background and cells (weighted Otsu).

    When the two classes are not separated by at least ``min_ratio`` (ratio of their mean
    densities), the data are taken to hold no clear background and the threshold falls to a
    fifth of the median density. ``weights`` weigh the histogram (a spot's area, so that the
    threshold does not depend on how the tissue was sampled); the threshold is at most 0.85 of the
    median density over the spots (unweighted).
    """
    lo, hi = np.quantile(log_density, [0.001, 0.999])
    if not np.isfinite(lo) or hi <= lo:
        return float(lo) - 1.0
    hist, edges = np.histogram(log_density, bins=256, range=(lo, hi), weights=weights)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    t = int(np.argmax(between[:-1]))
    median = float(np.median(log_density))
    fallback = median + np.log(0.2)
    if mu1[t] - mu0[t] < np.log(min_ratio):
        return fallback
    return float(min(centers[t], median + np.log(0.85)))
