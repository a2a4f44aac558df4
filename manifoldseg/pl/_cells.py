"""Cell boundary polygons filled by any obs column."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize, to_rgb
from matplotlib.patches import Patch

from ._palette import label_colors
from ._utils import category_colors, check_region, finish, get_ax, values

BOUNDARY_KEY = "boundary"


def polygons_from_wkt(cells, *, region=None, boundary_key: str = BOUNDARY_KEY):
    """Exterior rings of the WKT polygons in ``cells.obs[boundary_key]``.

    Returns
    -------
    rings, owner
        A list of (k, 2) arrays (one per polygon part; multipolygons give several) and, for each,
        the row of ``cells.obs`` it belongs to. Cells without a valid polygon are skipped; with
        ``region`` only polygons whose bounds meet the window are kept.
    """
    import shapely

    from ..io._geojson import boundary_geometries

    geoms = boundary_geometries(cells, boundary_key)
    rings, owner = [], []
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        if region is not None:
            x0, y0, x1, y1 = g.bounds
            if x1 < region[0] or x0 > region[1] or y1 < region[2] or y0 > region[3]:
                continue
        for part in shapely.get_parts(g):
            if isinstance(part, shapely.Polygon) and not part.is_empty:
                rings.append(np.asarray(part.exterior.coords)[:, :2])
                owner.append(i)
    return rings, np.asarray(owner, dtype=np.int64)


def cells(
    cells_adata,
    *,
    color: str | None = "total_counts",
    ax=None,
    cmap="viridis",
    region=None,
    boundary_key: str = BOUNDARY_KEY,
    edgecolor="black",
    linewidth: float = 0.4,
    vmin: float | None = None,
    vmax: float | None = None,
    legend: bool = True,
    layer: str | None = None,
    title: str | None = None,
    show: bool = False,
    save: str | None = None,
):
    """Cell polygons (WKT in ``obs["boundary"]``) filled by an obs column or a gene.

    Parameters
    ----------
    cells_adata
        Cells AnnData (``ms.tl.aggregate``): one row per cell, polygons in ``obs[boundary_key]``.
    color
        obs column or gene (var name). Numbers are mapped through ``cmap`` with a colour bar;
        categories (category, string or bool columns) get the palette and a legend; integer cell
        labels (``"cell_id"``-like columns) get colours that differ between neighbouring cells.
        None fills every cell light blue.
    ax
        Axes to draw on; a new 6 x 6 inch figure when None.
    cmap, vmin, vmax
        Colour map and its range for numeric values (default: the data range).
    region
        ``(x0, x1, y0, y1)`` in um; None = all cells.
    boundary_key
        obs column holding WKT polygons.
    edgecolor, linewidth
        Polygon outline.
    legend
        Draw the legend (categorical) or colour bar (numeric).
    layer
        Layer to read a gene's expression from (default ``X``).
    title
        Axes title; default the name of ``color``.
    show, save
        Call ``plt.show()``; write the figure to this path.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    region = check_region(region)
    rings, owner = polygons_from_wkt(cells_adata, region=region, boundary_key=boundary_key)
    handles = None
    mappable = None
    vals, kind = values(cells_adata, color, layer=layer) if color is not None else (None, None)
    ax = get_ax(ax, legend_room=legend and kind == "categorical")
    if color is None:
        face = np.tile(np.asarray(to_rgb("lightsteelblue")), (len(rings), 1))
    else:
        if kind == "numeric":
            v = np.asarray(vals, dtype=np.float64)
            finite = v[np.isfinite(v)]
            lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
            hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
            norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
            cm = plt.get_cmap(cmap)
            face = cm(norm(v[owner]))[:, :3] if len(rings) else np.empty((0, 3))
            face[~np.isfinite(v[owner])] = to_rgb("lightgrey")
            mappable = plt.cm.ScalarMappable(norm=norm, cmap=cm)
        elif kind == "labels":
            lab = np.asarray(vals)
            cen = np.array([r.mean(axis=0) for r in rings]) if rings else np.empty((0, 2))
            item_lab = lab[owner]
            ids, cols = label_colors(item_lab, cen if len(cen) else None)
            face = np.tile(np.asarray(to_rgb("lightgrey")), (len(rings), 1))
            fg = item_lab >= 0
            if ids.size:
                face[fg] = cols[np.searchsorted(ids, item_lab[fg])]
        else:
            rgb, mapping = category_colors(pd.Series(vals))
            face = rgb[owner] if len(rings) else np.empty((0, 3))
            handles = [Patch(facecolor=c, edgecolor="none", label=str(k)) for k, c in mapping.items()]
    coll = PolyCollection(rings, facecolors=face, edgecolors=edgecolor, linewidths=linewidth)
    ax.add_collection(coll)
    if region is not None:
        ax.set_xlim(region[0], region[1])
        ax.set_ylim(region[2], region[3])
    elif rings:
        allp = np.concatenate(rings)
        pad = 0.02 * max(np.ptp(allp[:, 0]), np.ptp(allp[:, 1]), 1e-9)
        ax.set_xlim(allp[:, 0].min() - pad, allp[:, 0].max() + pad)
        ax.set_ylim(allp[:, 1].min() - pad, allp[:, 1].max() + pad)
    ax.set_aspect("equal", adjustable="box")
    if legend and mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, shrink=0.7, label=color)
    if legend and handles:
        if len(handles) <= 30:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                      fontsize="small", title=color)
    ax.set_title(title if title is not None else (color or "cells"))
    ax.set_xlabel("x (um)")
    ax.set_ylabel("y (um)")
    return finish(ax, show, save)

