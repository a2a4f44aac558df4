"""Colours for cells: a deterministic glasbey-like palette and a colouring where neighbours differ."""

from __future__ import annotations

import colorsys

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

BACKGROUND_COLOR = "lightgrey"
_GOLDEN = 0.618033988749895
_LIGHTNESS = (0.52, 0.38, 0.66, 0.45, 0.60)
_SATURATION = (0.90, 0.65, 0.78)


def palette(n: int) -> np.ndarray:
    """``n`` distinct, saturated RGB colours (n x 3 floats in [0, 1]), the same for the same ``n``.

    Hues step by the golden angle so consecutive colours are far apart on the colour wheel;
    lightness and saturation cycle through a few levels so that colours that share a hue still
    differ. Lightness stays within [0.38, 0.66] and saturation >= 0.65, away from the black of
    boundaries, the white of the page and the grey of background.
    """
    out = np.empty((max(int(n), 0), 3))
    for i in range(out.shape[0]):
        h = (0.07 + i * _GOLDEN) % 1.0
        lum = _LIGHTNESS[i % len(_LIGHTNESS)]
        sat = _SATURATION[(i // len(_LIGHTNESS)) % len(_SATURATION)]
        out[i] = colorsys.hls_to_rgb(h, lum, sat)
    return out


def _cell_graph(codes: np.ndarray, xy: np.ndarray | None, n_cells: int, k: int = 8) -> sparse.csr_matrix:
    """Which cells touch: item k-nearest neighbours with different cells, plus centroid neighbours."""
    rows, cols = [], []
    if xy is not None and xy.shape[0] > 1 and n_cells > 1:
        fg = codes >= 0
        pts, cc = xy[fg], codes[fg]
        kk = min(k, pts.shape[0] - 1) + 1
        _, nn = cKDTree(pts).query(pts, k=kk)
        a = np.repeat(cc, kk - 1)
        b = cc[nn[:, 1:].ravel()]
        diff = a != b
        rows.append(a[diff])
        cols.append(b[diff])
        cnt = np.maximum(np.bincount(cc, minlength=n_cells), 1)
        cen = np.stack([np.bincount(cc, weights=pts[:, d], minlength=n_cells) / cnt for d in range(2)], 1)
        kc = min(6, n_cells - 1) + 1
        _, cn = cKDTree(cen).query(cen, k=kc)
        rows.append(np.repeat(np.arange(n_cells), kc - 1))
        cols.append(cn[:, 1:].ravel())
    if not rows:
        return sparse.csr_matrix((n_cells, n_cells))
    r, c = np.concatenate(rows), np.concatenate(cols)
    g = sparse.coo_matrix((np.ones(r.shape[0]), (r, c)), shape=(n_cells, n_cells)).tocsr()
    g = ((g + g.T) > 0).astype(np.int8).tocsr()
    g.setdiag(0)
    g.eliminate_zeros()
    return g


def label_colors(labels: np.ndarray, xy: np.ndarray | None = None, *, n_colors: int = 20):
    """A colour per cell such that cells that touch (or are near neighbours) differ.

    Greedy graph colouring of the cell adjacency graph (items' nearest neighbours in different
    cells, plus each centroid's six nearest centroids), cells taken in id order: each takes, among
    the colours its neighbours do not use, the one that contrasts most with them (a rotating start
    spreads the palette evenly). The palette grows beyond ``n_colors`` only when a cell has that
    many neighbours. Deterministic: the same labels and coordinates give the same colours.

    Parameters
    ----------
    labels
        Cell per item (-1 = background).
    xy
        Item coordinates (n x 2) used to find touching cells; None colours by id only.

    Returns
    -------
    ids, colors
        The sorted cell ids (>= 0) and an (n_cells x 3) RGB array, row i for ``ids[i]``.
    """
    labels = np.asarray(labels)
    fg = labels >= 0
    ids, inv = np.unique(labels[fg], return_inverse=True)
    codes = np.full(labels.shape[0], -1, dtype=np.int64)
    codes[fg] = inv
    n = ids.shape[0]
    g = _cell_graph(codes, None if xy is None else np.asarray(xy, dtype=np.float64)[:, :2], n)
    n_pal = max(int(n_colors), 2)
    max_deg = int(np.diff(g.indptr).max()) if n else 0
    pal = palette(max(n_pal, max_deg + 1))
    dist = _color_distance(pal)
    choice = np.full(n, -1, dtype=np.int64)
    indptr, indices = g.indptr, g.indices
    for i in range(n):
        nb = choice[indices[indptr[i] : indptr[i + 1]]]
        nb = nb[nb >= 0]
        k = n_pal if nb.size < n_pal else pal.shape[0]
        # rotate the start so that the palette is used evenly, then take the free colour that
        # contrasts most with the neighbours already coloured
        cand = (int(ids[i] * 7) + np.arange(k)) % k
        cand = cand[~np.isin(cand, nb)]
        if nb.size:
            score = dist[np.ix_(cand, nb)].min(axis=1)
            choice[i] = cand[int(np.argmax(score))]
        else:
            choice[i] = cand[0]
    return ids, pal[choice] if n else np.empty((0, 3))


def _color_distance(rgb: np.ndarray) -> np.ndarray:
    """Pairwise "redmean" colour distance, a cheap approximation of perceived difference."""
    r = 0.5 * (rgb[:, None, 0] + rgb[None, :, 0])
    d = rgb[:, None, :] - rgb[None, :, :]
    return np.sqrt((2 + r) * d[..., 0] ** 2 + 4 * d[..., 1] ** 2 + (3 - r) * d[..., 2] ** 2)
