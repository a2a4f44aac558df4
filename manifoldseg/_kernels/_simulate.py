"""Kernels of the tissue simulator: seeds of varied size by dart throwing.

Arrays in, arrays out. Used by :mod:`manifoldseg.datasets._simulate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def dart_throw(x, y, r, packing, width, height):
    """Accept candidate disks in the given order unless they overlap an accepted one.

    Two disks ``i`` and ``j`` clash when their centres are closer than
    ``packing * (r[i] + r[j])``; ``packing < 1`` lets disks overlap a little so that the
    power diagram built on them leaves few holes.

    Parameters
    ----------
    x, y, r
        Candidate centres and radii (float64), in the order they are tried.
    packing
        Factor on the sum of radii below which two disks clash.
    width, height
        Extent of the area; candidates lie in ``[0, width) x [0, height)``.

    Returns
    -------
    Boolean mask of accepted candidates.
    """
    n = x.shape[0]
    accepted = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return accepted
    r_max = 0.0
    for i in range(n):
        if r[i] > r_max:
            r_max = r[i]
    cell = max(r_max * packing, 1e-9)
    nx = int(width / cell) + 1
    ny = int(height / cell) + 1
    head = np.full(nx * ny, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        gx = min(max(int(x[i] / cell), 0), nx - 1)
        gy = min(max(int(y[i] / cell), 0), ny - 1)
        reach = int(np.ceil((r[i] + r_max) * packing / cell))
        ok = True
        for ix in range(max(gx - reach, 0), min(gx + reach + 1, nx)):
            if not ok:
                break
            for iy in range(max(gy - reach, 0), min(gy + reach + 1, ny)):
                j = head[ix * ny + iy]
                while j >= 0:
                    dx = x[i] - x[j]
                    dy = y[i] - y[j]
                    lim = packing * (r[i] + r[j])
                    if dx * dx + dy * dy < lim * lim:
                        ok = False
                        break
                    j = nxt[j]
                if not ok:
                    break
        if ok:
            accepted[i] = True
            k = gx * ny + gy
            nxt[i] = head[k]
            head[k] = i
    return accepted


@njit(cache=True)
def power_assign(wx, wy, idx, sx, sy, sr, cos_t, sin_t, stretch, alive, cap):
    """Assign each point to the candidate seed of least anisotropic power distance.

    The distance to seed ``s`` is measured after rotating by ``-theta_s`` and stretching by
    ``1 / stretch_s`` along and ``stretch_s`` across the seed's axis (area preserving); the power
    distance is that squared distance minus ``sr[s] ** 2``.

    Parameters
    ----------
    wx, wy
        Point coordinates (float64, n).
    idx
        Candidate seeds per point (int64, n x k), e.g. the k nearest in Euclidean distance.
    sx, sy, sr, cos_t, sin_t, stretch
        Seed centres, radii, orientation and stretch (float64).
    alive
        Seeds that make a cell (bool); points won by any other seed are left out.
    cap
        A point farther than ``cap * sr[s]`` (stretched distance) from its seed is left out.

    Returns
    -------
    Seed index per point (int64), -1 where left out.
    """
    n, k = idx.shape
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        best = -1
        best_p = np.inf
        best_d2 = 0.0
        for j in range(k):
            s = idx[i, j]
            dx = wx[i] - sx[s]
            dy = wy[i] - sy[s]
            u = (dx * cos_t[s] + dy * sin_t[s]) / stretch[s]
            v = (dy * cos_t[s] - dx * sin_t[s]) * stretch[s]
            d2 = u * u + v * v
            pw = d2 - sr[s] * sr[s]
            if pw < best_p:
                best_p = pw
                best = s
                best_d2 = d2
        if best >= 0 and alive[best] and best_d2 <= (cap * sr[best]) ** 2:
            out[i] = best
    return out
