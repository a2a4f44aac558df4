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
def _climb(indptr, indices, logf, mass, tau, max_mass, min_logf, min_mass, is_max, height, into):
    """ToMATo's loop: the union-find ``parent`` and the ``visited`` points (see :func:`tomato`).

    When ``is_max``, ``height`` and ``into`` have one entry per point (else length 0), it also
    records the merge tree: the points that start a cluster, and for each cluster root the height
    of its peak above the level where it last met a higher cluster, and that cluster's root.
    """
    n = logf.shape[0]
    record = is_max.shape[0] == n
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
            if record:
                is_max[i] = True
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
            if record:
                height[lo] = logf[lo] - logf[i]
                into[lo] = hi
            small = root_mass[lo] < min_mass
            if (logf[lo] - logf[i] < tau or small) and root_mass[lo] + root_mass[hi] <= max_mass:
                parent[lo] = hi
                root_mass[hi] += root_mass[lo]
    return order, parent, visited


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
    none = np.zeros(0, dtype=np.bool_)
    order, parent, visited = _climb(indptr, indices, logf, mass, tau, max_mass, min_logf, min_mass, none,
                                    np.zeros(0), np.zeros(0, dtype=np.int64))
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


@njit(cache=True)
def merge_tree(indptr, indices, logf):
    """Every local maximum of ``logf`` on the graph, merged by height alone: :func:`tomato`'s loop
    without its thresholds (every meeting merges), points at -inf left out.

    Returns, per point: whether it is a local maximum (starts a cluster), its height above the
    level where its cluster meets a higher one (inf for the highest of a component, and for points
    that are not maxima) and the maximum it meets there (-1).
    """
    n = logf.shape[0]
    is_max = np.zeros(n, dtype=np.bool_)
    height = np.full(n, np.inf)
    into = np.full(n, -1, dtype=np.int64)
    lowest = -1.7976931348623157e308  # -inf points are left out
    _climb(indptr, indices, logf, np.zeros(n), np.inf, np.inf, lowest, 0.0, is_max, height, into)
    return is_max, height, into
