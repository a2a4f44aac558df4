"""The manifold embedding coloured by cell, by any obs column or by a gene."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, to_rgb
from matplotlib.patches import Patch

from .._constants import CELL_KEY, EMBEDDING_KEY, SPATIAL_KEY
from ._palette import label_colors
from ._utils import category_colors, finish, get_ax, marker_size, spacing, subsample, values


def embedding(
    adata,
    *,
    basis: str = EMBEDDING_KEY,
    color: str | None = CELL_KEY,
    ax=None,
    size: float | None = None,
    cmap="viridis",
    components: tuple[int, int] = (0, 1),
    spatial_key: str = SPATIAL_KEY,
    layer: str | None = None,
    background_color="lightgrey",
    max_points: int | None = 300_000,
    legend: bool = True,
    title: str | None = None,
    show: bool = False,
    save: str | None = None,
):
    """Items in an embedding (``obsm[basis]``), coloured by cell, an obs column or a gene.

    Parameters
    ----------
    adata
        Spots or transcripts with ``obsm[basis]``.
    basis
        obsm key of the embedding (``"X_manifold"`` from ``ms.tl.embed``; any 2+-column obsm works).
    color
        obs column or gene (var name). Cell labels (``cell_id``, ``true_cell``, ``nucleus`` or an
        integer column with -1) get the same colours as in :func:`segmentation` (neighbouring cells
        in space differ) and background in grey; categories get a palette and a legend; numbers
        and genes a colour map and a colour bar. None draws every item in one colour.
    ax
        Axes to draw on; a new 6 x 6 inch figure when None.
    size
        Marker size (points^2); by default from the typical spacing of the embedded items.
    cmap
        Colour map for numbers and genes.
    components
        The two embedding columns to draw.
    spatial_key
        obsm key of coordinates used to colour neighbouring cells differently (falls back to the
        embedding when absent).
    layer
        Layer to read a gene's expression from (default ``X``).
    background_color
        Colour of background items for cell labels.
    max_points
        Draw at most this many items (a seeded random subset); None = all.
    legend
        Draw the legend / colour bar.
    title
        Axes title; default the name of ``color``.
    show, save
        Call ``plt.show()``; write the figure to this path.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if basis not in adata.obsm:
        raise KeyError(
            f"obsm[{basis!r}] not found (obsm keys: {list(adata.obsm.keys())}); run ms.tl.embed (or "
            "ms.tl.segment) first or pass basis= an existing embedding."
        )
    emb = np.asarray(adata.obsm[basis], dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] <= max(components):
        raise ValueError(f"obsm[{basis!r}] has shape {emb.shape}; components={components} needs more columns.")
    vals, kind = values(adata, color, layer=layer) if color is not None else (None, None)
    ax = get_ax(ax, legend_room=legend and kind == "categorical")
    sel = subsample(emb.shape[0], max_points)
    xy = emb[sel][:, list(components)]
    handles, mappable = None, None
    front = np.ones(xy.shape[0], dtype=bool)
    if color is None:
        rgb = np.tile(np.asarray(to_rgb("steelblue")), (xy.shape[0], 1))
    else:
        if kind == "labels":
            lab = np.asarray(vals)[sel]
            where = np.asarray(adata.obsm[spatial_key])[sel, :2] if spatial_key in adata.obsm else xy
            ids, cols = label_colors(lab, where)
            rgb = np.tile(np.asarray(to_rgb(background_color)), (xy.shape[0], 1))
            front = lab >= 0
            if ids.size:
                rgb[front] = cols[np.searchsorted(ids, lab[front])]
        elif kind == "categorical":
            rgb, mapping = category_colors(pd.Series(vals).iloc[sel].reset_index(drop=True))
            handles = [Patch(facecolor=c, edgecolor="none", label=str(k)) for k, c in mapping.items()]
        else:
            v = np.asarray(vals, dtype=np.float64)[sel]
            finite = v[np.isfinite(v)]
            lo = finite.min() if finite.size else 0.0
            hi = finite.max() if finite.size else 1.0
            norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
            cm = plt.get_cmap(cmap)
            rgb = cm(norm(np.nan_to_num(v, nan=lo)))[:, :3]
            front = v >= np.median(finite) if finite.size else front  # high values on top
            mappable = plt.cm.ScalarMappable(norm=norm, cmap=cm)
    if xy.shape[0]:
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        pad = 0.03 * np.maximum(hi - lo, 1e-9)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    if size is None:
        size = min(marker_size(ax, 0.9 * spacing(xy)), 30.0) if xy.shape[0] else 1.0
        size = max(size, 0.5)
    order = np.argsort(front, kind="stable")
    ax.scatter(xy[order, 0], xy[order, 1], c=rgb[order], s=size, linewidths=0,
               rasterized=xy.shape[0] > 20_000)
    if legend and mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, shrink=0.7, label=color)
    if legend and handles and len(handles) <= 30:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  fontsize="small", title=color)
    name = basis.removeprefix("X_")
    ax.set_xlabel(f"{name} {components[0] + 1}")
    ax.set_ylabel(f"{name} {components[1] + 1}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else (color or basis))
    return finish(ax, show, save)
