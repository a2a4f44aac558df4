"""Stochastic-gradient layout of a weighted graph on UMAP's objective.

The same cross-entropy objective and update rule as umap-learn's
``optimize_layout_euclidean`` (McInnes, Healy & Melville 2018), written here so that it is compiled
once and cached on disk (umap-learn's layout kernels are not cached and recompile in every new
process). Single-threaded on purpose: a seeded run gives identical coordinates at any thread count.
Random draws are counter-based hashes of global spot ids (not a stream), so tiles agree with the
whole section.
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


@njit(cache=True)
def _mix(x):
    """splitmix64 finaliser: a well-mixed 64-bit hash of ``x`` (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _draw(seed, key, epoch, p, m):
    """A number in [0, m) that depends only on (seed, key, epoch, p): a counter-based generator."""
    h = _mix(seed ^ _mix(key + np.uint64(0x9E3779B97F4A7C15) * np.uint64(epoch + 1)))
    h = _mix(h + np.uint64(p) * np.uint64(0xD6E8FEB86659FD93))
    return np.int64(h % np.uint64(m))


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
    ids,
    bucket,
    bucket_start,
    bucket_points,
    nbx,
    nby,
    reach,
    seed,
):
    """Optimise ``embedding`` in place.

    ``head``, ``tail``: edge end points (both directions present for a symmetric graph);
    ``epochs_per_sample``: 1 / normalised weight as in umap-learn. Negative samples are local: a
    random point of a random spatial bucket within ``reach`` buckets of the head's (square buckets
    of fixed size in absolute coordinates; ``bucket[j]`` = the head's bucket as ``bx * nby + by``,
    ``bucket_points[bucket_start[c]:bucket_start[c + 1]]`` = bucket ``c``'s points in global-id
    order). With ``reach < 0`` they are drawn from all points (umap-learn's rule).

    Every random draw is a hash of ``seed``, the global ids (``ids``) of the edge's end points, the
    epoch and the draw's number, and edges are visited in their given order: the layout of a spot
    depends only on its neighbourhood, so a tile of a section and the whole section lay out their
    shared interior alike.
    """
    useed = np.uint64(seed)
    n = embedding.shape[0]
    dim = embedding.shape[1]
    n_edges = head.shape[0]
    epochs_per_negative_sample = epochs_per_sample / negative_sample_rate
    epoch_of_next_negative_sample = epochs_per_negative_sample.copy()
    epoch_of_next_sample = epochs_per_sample.copy()
    width = 2 * reach + 1
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
            key = np.uint64(ids[j]) * np.uint64(0x100000001B3) ^ np.uint64(ids[k])
            bx = bucket[j] // nby
            by = bucket[j] - bx * nby
            for p in range(n_neg):
                if reach >= 0:
                    off = _draw(useed, key, epoch, 2 * p, width * width)
                    cx = bx + off // width - reach
                    cy = by + off % width - reach
                    if cx < 0 or cy < 0 or cx >= nbx or cy >= nby:
                        continue
                    c = cx * nby + cy
                    m = bucket_start[c + 1] - bucket_start[c]
                    if m == 0:
                        continue
                    k = bucket_points[bucket_start[c] + _draw(useed, key, epoch, 2 * p + 1, m)]
                else:
                    k = _draw(useed, key, epoch, 2 * p, n)
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
