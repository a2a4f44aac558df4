"""Stochastic-gradient layout of a weighted graph on UMAP's objective.

The same cross-entropy objective and update rule as umap-learn's
``optimize_layout_euclidean`` (McInnes, Healy & Melville 2018), written here so that it is compiled
once and cached on disk (umap-learn's layout kernels are not cached and recompile in every new
process). Single-threaded on purpose: a seeded run gives identical coordinates at any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def _clip(val):
    if val > 4.0:
        return 4.0
    if val < -4.0:
        return -4.0
    return val


@njit(cache=True, fastmath=True)
def optimize_layout(
    embedding,
    head,
    tail,
    epochs_per_sample,
    n_epochs,
    a,
    b,
    gamma,
    initial_alpha,
    negative_sample_rate,
    negative_radius,
    seed,
):
    """Optimise ``embedding`` in place.

    ``head``, ``tail``: edge end points (both directions present for a symmetric graph);
    ``epochs_per_sample``: 1 / normalised weight as in umap-learn. Negative samples are drawn
    uniformly from all points when ``negative_radius <= 0``; otherwise from the points whose index
    is within ``negative_radius`` rows of the head after a spatial sort (local negatives keep the
    repulsion where it matters for neighbouring cells, at O(1) cost).
    """
    np.random.seed(seed)  # noqa: NPY002 (numba: seeds its own per-thread generator)
    n = embedding.shape[0]
    dim = embedding.shape[1]
    n_edges = head.shape[0]
    epochs_per_negative_sample = epochs_per_sample / negative_sample_rate
    epoch_of_next_negative_sample = epochs_per_negative_sample.copy()
    epoch_of_next_sample = epochs_per_sample.copy()
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - float(epoch) / float(n_epochs))
        for i in range(n_edges):
            if epoch_of_next_sample[i] > epoch:
                continue
            j = head[i]
            k = tail[i]
            dist2 = 0.0
            for d in range(dim):
                diff = embedding[j, d] - embedding[k, d]
                dist2 += diff * diff
            if dist2 > 0.0:
                grad_coeff = -2.0 * a * b * dist2 ** (b - 1.0) / (a * dist2**b + 1.0)
            else:
                grad_coeff = 0.0
            for d in range(dim):
                g = _clip(grad_coeff * (embedding[j, d] - embedding[k, d])) * alpha
                embedding[j, d] += g
                embedding[k, d] -= g
            epoch_of_next_sample[i] += epochs_per_sample[i]
            n_neg = int((epoch - epoch_of_next_negative_sample[i]) / epochs_per_negative_sample[i])
            for _p in range(n_neg):
                if negative_radius > 0:
                    lo = max(0, j - negative_radius)
                    hi = min(n, j + negative_radius + 1)
                    k = lo + np.random.randint(hi - lo)  # noqa: NPY002
                else:
                    k = np.random.randint(n)  # noqa: NPY002
                if k == j:
                    continue
                dist2 = 0.0
                for d in range(dim):
                    diff = embedding[j, d] - embedding[k, d]
                    dist2 += diff * diff
                if dist2 > 0.0:
                    grad_coeff = 2.0 * gamma * b / ((0.001 + dist2) * (a * dist2**b + 1.0))
                    for d in range(dim):
                        g = _clip(grad_coeff * (embedding[j, d] - embedding[k, d])) * alpha
                        embedding[j, d] += g
            epoch_of_next_negative_sample[i] += n_neg * epochs_per_negative_sample[i]
    return embedding
