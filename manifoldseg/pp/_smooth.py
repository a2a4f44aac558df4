"""Gaussian smoothing of per-spot values on a regular grid, sampled back at the spots.

Smoothing is linear, so the neighbourhood composition of every spot at a radius is the smoothed
counts divided by the smoothed total; projecting genes onto a few components first keeps the
grid small (pixels x components, never spots x genes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


class Grid:
    """Pixel index of every spot on a regular grid (any dimension).

    Pixel edges lie on ``anchor + k * pixel`` (``anchor`` default: the coordinates' minimum), so a
    tile given its section's anchor shares the section's lattice (and smooths their common
    interior alike).
    """

    def __init__(self, coords: np.ndarray, pixel: float, pad: int = 0, anchor: np.ndarray | None = None):
        self.pixel = float(pixel)
        lo = coords.min(axis=0)
        anchor = lo if anchor is None else np.asarray(anchor, dtype=np.float64)[: coords.shape[1]]
        self.origin = anchor + (np.floor((lo - anchor) / self.pixel) - pad) * self.pixel
        idx = np.floor((coords - self.origin) / self.pixel).astype(np.int64)
        self.shape = tuple(int(s) for s in idx.max(axis=0) + 1 + pad)
        self.flat = np.ravel_multi_index(tuple(idx.T), self.shape)
        self.size = int(np.prod(self.shape))

    def rasterize(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` per pixel."""
        return np.bincount(self.flat, weights=values, minlength=self.size).reshape(self.shape)

    def smooth(self, values: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian-weighted sum of ``values`` around each spot (per um^d), sampled at the spots."""
        grid = self.rasterize(values)
        out = ndimage.gaussian_filter(grid, sigma / self.pixel, mode="constant", truncate=3.0)
        return out.ravel()[self.flat] / self.pixel ** len(self.shape)


def grid_pixel(coords: np.ndarray, sigma_min: float, max_pixels: float = 4e7) -> float:
    """A pixel size fine enough for ``sigma_min`` and small enough for memory."""
    extent = np.ptp(coords, axis=0) + 1.0
    pixel = max(sigma_min / 2.0, 0.25)
    n_pix = np.prod(extent / pixel + 1)
    if n_pix > max_pixels:
        pixel *= (n_pix / max_pixels) ** (1.0 / coords.shape[1])
    return float(pixel)
