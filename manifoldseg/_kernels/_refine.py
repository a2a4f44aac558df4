"""Kernels of the connectivity-aware refinement: connected pieces of labels and label growth."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def label_components(indptr, indices, labels):
    """Connected pieces of each label on a graph.

    Two points are in the same piece when a path of edges joins them whose points all carry the
    same label (>= 0). Returns ``piece`` (-1 where label is -1) and the number of pieces.
    """
    n = labels.shape[0]
    piece = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    n_pieces = 0
    for s in range(n):
        if labels[s] < 0 or piece[s] >= 0:
            continue
        lab = labels[s]
        piece[s] = n_pieces
        top = 0
        stack[top] = s
        top += 1
        while top > 0:
            top -= 1
            i = stack[top]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if piece[j] < 0 and labels[j] == lab:
                    piece[j] = n_pieces
                    stack[top] = j
                    top += 1
        n_pieces += 1
    return piece, n_pieces


@njit(cache=True)
def grow_labels(indptr, indices, weights, labels, eligible, n_rounds, min_share):
    """Grow labels into unlabelled eligible points along weighted edges.

    In synchronous rounds (deterministic), each unlabelled eligible point takes the label with the
    largest summed edge weight among its labelled neighbours, if that label holds at least
    ``min_share`` of the point's total edge weight. Returns new labels and the winning share.
    """
    n = labels.shape[0]
    out = labels.copy()
    share = np.zeros(n)
    nbr_lab = np.empty(256, dtype=np.int64)
    nbr_w = np.empty(256)
    for _r in range(n_rounds):
        prev = out.copy()
        changed = 0
        for i in range(n):
            if prev[i] >= 0 or not eligible[i]:
                continue
            m = 0
            total = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                w = weights[p]
                total += w
                lab = prev[indices[p]]
                if lab < 0:
                    continue
                found = False
                for q in range(m):
                    if nbr_lab[q] == lab:
                        nbr_w[q] += w
                        found = True
                        break
                if not found and m < 256:
                    nbr_lab[m] = lab
                    nbr_w[m] = w
                    m += 1
            if m == 0 or total <= 0.0:
                continue
            best = 0
            for q in range(1, m):
                if nbr_w[q] > nbr_w[best] or (nbr_w[q] == nbr_w[best] and nbr_lab[q] < nbr_lab[best]):
                    best = q
            s = nbr_w[best] / total
            if s >= min_share:
                out[i] = nbr_lab[best]
                share[i] = s
                changed += 1
        if changed == 0:
            break
    return out, share


@njit(cache=True)
def label_agreement(indptr, indices, weights, labels):
    """Per point: the share of its edge weight that goes to points of its own label."""
    n = labels.shape[0]
    out = np.zeros(n)
    for i in range(n):
        total = 0.0
        own = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            w = weights[p]
            total += w
            if labels[indices[p]] == labels[i]:
                own += w
        if total > 0.0:
            out[i] = own / total
        else:
            out[i] = 0.0
    return out


@njit(cache=True)
def _heap_push(hc, hp, hl, size, cost, point, label):
    """Push (cost, point, label) on a binary min-heap ordered by cost, then point index."""
    hc[size] = cost
    hp[size] = point
    hl[size] = label
    c = size
    while c > 0:
        par = (c - 1) // 2
        if hc[par] > hc[c] or (hc[par] == hc[c] and hp[par] > hp[c]):
            hc[par], hc[c] = hc[c], hc[par]
            hp[par], hp[c] = hp[c], hp[par]
            hl[par], hl[c] = hl[c], hl[par]
            c = par
        else:
            break
    return size + 1


@njit(cache=True)
def flood(indptr, indices, cost, seeds, eligible, max_cost, label_scale):
    """Multi-source shortest-path flooding (a watershed on a graph).

    ``seeds``: label per point (-1 = not a seed). Each eligible point takes the label of the seed
    that reaches it at the least total edge ``cost`` (CSR-aligned) times ``label_scale[label]``
    (a multiplicatively weighted Voronoi: larger seeds reach further), if that cost is at most
    ``max_cost``. Ties go to the lower point index (deterministic). Returns labels and costs.
    """
    n = seeds.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    best = np.full(n, np.inf)
    # binary heap of (cost, point)
    cap = indices.shape[0] + n + 1
    hc = np.empty(cap)
    hp = np.empty(cap, dtype=np.int64)
    hl = np.empty(cap, dtype=np.int64)
    size = 0
    for i in range(n):
        if seeds[i] >= 0:
            best[i] = 0.0
            labels[i] = seeds[i]
            size = _heap_push(hc, hp, hl, size, 0.0, i, seeds[i])
    done = np.zeros(n, dtype=np.bool_)
    while size > 0:
        cc = hc[0]
        i = hp[0]
        lab = hl[0]
        size -= 1
        hc[0] = hc[size]
        hp[0] = hp[size]
        hl[0] = hl[size]
        c = 0
        while True:
            left = 2 * c + 1
            right = left + 1
            m = c
            if left < size and (hc[left] < hc[m] or (hc[left] == hc[m] and hp[left] < hp[m])):
                m = left
            if right < size and (hc[right] < hc[m] or (hc[right] == hc[m] and hp[right] < hp[m])):
                m = right
            if m == c:
                break
            hc[m], hc[c] = hc[c], hc[m]
            hp[m], hp[c] = hp[c], hp[m]
            hl[m], hl[c] = hl[c], hl[m]
            c = m
        if done[i]:
            continue
        done[i] = True
        labels[i] = lab
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if done[j] or not eligible[j]:
                continue
            nc = cc + cost[p] * label_scale[lab]
            if nc > max_cost or nc >= best[j]:
                continue
            best[j] = nc
            if size >= cap:
                continue
            size = _heap_push(hc, hp, hl, size, nc, j, lab)
    for i in range(n):
        if not done[i]:
            labels[i] = -1 if seeds[i] < 0 else seeds[i]
    return labels, best
