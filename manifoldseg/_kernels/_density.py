"""Graph mode-seeking density clustering with persistence merging (ToMATo).

Chazal, Guibas, Oudot & Skraba (2013), "Persistence-based clustering in Riemannian manifolds",
J. ACM 60(6). Points are visited in decreasing density; each joins the cluster of its densest
already-visited graph neighbour; two clusters that meet are merged when the less prominent one's
peak rises less than ``tau`` above the meeting point (its persistence), or when it is lighter than
``min_mass``, and the union is not heavier than ``max_mass``. A union-find with path halving keeps it near-linear.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def tomato(indptr, indices, logf, mass, tau, max_mass, min_logf, min_mass):
    """Cluster the points of a graph by persistence of a (log) density.

    Parameters
    ----------
    indptr, indices
        CSR adjacency (symmetric).
    logf
        Log density per point.
    mass
        Weight per point (counts); cluster size limits use it.
    tau
        Persistence threshold in log-density units.
    max_mass
        Two clusters are never merged into one heavier than this.
    min_logf
        Points below this log density are left as noise (-1).
    min_mass
        A cluster lighter than this when it meets a neighbour (its mass above the meeting level)
        is merged whatever its persistence, as HDBSCAN's ``min_cluster_size``.

    Returns
    -------
    labels
        Cluster per point (0..k-1, in order of decreasing peak density), -1 for noise.
    peak
        The peak point of each cluster.
    """
    n = logf.shape[0]
    order = np.argsort(-logf, kind="mergesort")
    parent = np.arange(n)
    visited = np.zeros(n, dtype=np.bool_)
    root_mass = np.zeros(n)
    for t in range(n):
        i = order[t]
        if logf[i] < min_logf:
            break
        visited[i] = True
        root_mass[i] = mass[i]
        best = -1
        best_f = -np.inf
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if visited[j] and logf[j] > best_f:
                best_f = logf[j]
                best = j
        if best < 0:
            continue  # a new peak
        rb = _find(parent, best)
        parent[i] = rb
        root_mass[rb] += mass[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if not visited[j]:
                continue
            ri = _find(parent, i)
            rj = _find(parent, j)
            if ri == rj:
                continue
            # the lower peak is the less prominent cluster
            if logf[ri] < logf[rj] or (logf[ri] == logf[rj] and ri > rj):
                lo, hi = ri, rj
            else:
                lo, hi = rj, ri
            small = root_mass[lo] < min_mass
            if (logf[lo] - logf[i] < tau or small) and root_mass[lo] + root_mass[hi] <= max_mass:
                parent[lo] = hi
                root_mass[hi] += root_mass[lo]
    labels = np.full(n, -1, dtype=np.int64)
    root_label = np.full(n, -1, dtype=np.int64)
    k = 0
    peaks = np.empty(n, dtype=np.int64)
    for t in range(n):
        i = order[t]
        if not visited[i]:
            break
        r = _find(parent, i)
        if root_label[r] < 0:
            root_label[r] = k
            peaks[k] = r
            k += 1
        labels[i] = root_label[r]
    return labels, peaks[:k].copy()
