"""Spots or transcripts coloured by cell, with cell boundaries."""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb

from .._constants import CELL_KEY, SPATIAL_KEY
from ._palette import label_colors
from ._utils import (
    check_region,
    finish,
    get_ax,
    in_region,
    is_grid,
    marker_size,
    obs_labels,
    spacing,
    spatial,
    subsample,
)

logger = logging.getLogger("manifoldseg")


def segmentation(
    adata,
    *,
    key: str = CELL_KEY,
    region=None,
    spatial_key: str = SPATIAL_KEY,
    cells=None,
    ax=None,
    size: float | None = None,
    boundaries: bool | str = True,
    boundary_color="black",
    boundary_width: float = 1.0,
    background_color="lightgrey",
    max_points: int | None = 300_000,
    title: str | None = None,
    show: bool = False,
    save: str | None = None,
):
    """Spots or transcripts coloured by cell, background in grey, cell boundaries drawn.

    Neighbouring cells always get different, contrasting colours (a greedy colouring of the cell
    adjacency graph over a 20-colour glasbey-like palette, see
    :func:`manifoldseg.pl.label_colors`); the colouring is deterministic, and
    :func:`embedding` of the same items uses the same colours.

    Parameters
    ----------
    adata
        Spots or transcripts with ``obs[key]`` (-1 = background) and ``obsm[spatial_key]`` (um).
    key
        obs column of cell labels (e.g. ``"cell_id"`` or ``"true_cell"``).
    region
        ``(x0, x1, y0, y1)`` in um: draw only this window (the axes limits); None = everything.
    spatial_key
        obsm key of the coordinates (x, y; z is ignored).
    cells
        Optional cells AnnData (``ms.tl.aggregate``) with WKT polygons in ``obs["boundary"]``;
        when given and ``boundaries`` is True, these polygons are drawn as boundaries.
    ax
        Axes to draw on; a new 6 x 6 inch figure when None.
    size
        Marker size (points^2); by default each item is drawn as wide as the typical spacing
        between items (squares on a bin grid, discs otherwise).
    boundaries
        ``True`` (``"polygons"`` when ``cells`` is given, else ``"voronoi"`` for bins on a grid and
        ``"hull"`` for transcripts), ``False``, ``"voronoi"`` (the Voronoi edges between
        neighbouring items of different labels: the bin edges on a grid, the mid-lines between
        transcripts otherwise), ``"hull"`` (each cell's concave hull, shapely ``concave_hull`` with
        ratio 0.4) or ``"polygons"`` (the WKT polygons of ``cells``).
    boundary_color, boundary_width
        Line colour and width (points) of boundaries.
    background_color
        Colour of background items (-1).
    max_points
        Draw at most this many items (a seeded random subset) so huge inputs stay fast; None = all.
    title
        Axes title; default ``"{key} (N cells)"``.
    show
        Call ``plt.show()``.
    save
        Write the figure to this path.

    Returns
    -------
    matplotlib.axes.Axes
    """
    region = check_region(region)
    labels = obs_labels(adata, key)
    xy = spatial(adata, spatial_key)[:, :2]
    ax = get_ax(ax)
    step = spacing(xy) if xy.shape[0] else 1.0
    sel = np.flatnonzero(in_region(xy, region, pad=3 * step))
    sel = sel[subsample(sel.shape[0], max_points)]
    pxy, plab = xy[sel], labels[sel]

    ids, cols = label_colors(plab, pxy)
    rgb = np.tile(np.asarray(to_rgb(background_color)), (pxy.shape[0], 1))
    fg = plab >= 0
    if ids.size:
        rgb[fg] = cols[np.searchsorted(ids, plab[fg])]

    if region is not None:
        ax.set_xlim(region[0], region[1])
        ax.set_ylim(region[2], region[3])
    elif pxy.shape[0]:
        lo, hi = pxy.min(axis=0) - step, pxy.max(axis=0) + step
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")
    grid = is_grid(pxy, step)
    if size is None:
        size = marker_size(ax, step * (1.08 if grid else 0.9))
    order = np.argsort(fg, kind="stable")  # background first, cells on top
    ax.scatter(pxy[order, 0], pxy[order, 1], c=rgb[order], s=size, marker="s" if grid else "o",
               linewidths=0, rasterized=pxy.shape[0] > 20_000)

    mode = boundaries
    if mode is True:
        mode = "polygons" if cells is not None else ("voronoi" if grid else "hull")
    if mode:
        if mode == "voronoi":
            segs = voronoi_boundaries(pxy, plab, max_gap=3.0 * step)
        elif mode == "hull":
            segs = hull_boundaries(pxy, plab, ratio=0.4)
        elif mode == "polygons":
            if cells is None:
                raise ValueError("boundaries='polygons' needs cells= a cells AnnData with obs['boundary'].")
            from ._cells import polygons_from_wkt

            segs = [np.asarray(p) for p in polygons_from_wkt(cells, region=region)[0]]
        else:
            raise ValueError(
                f"boundaries must be True, False, 'voronoi', 'hull' or 'polygons'; got {boundaries!r}."
            )
        if len(segs):
            ax.add_collection(LineCollection(segs, colors=boundary_color, linewidths=boundary_width,
                                             capstyle="round"))
    n_cells = int(np.unique(labels[labels >= 0]).shape[0])
    ax.set_title(title if title is not None else f"{key} ({n_cells} cells)")
    ax.set_xlabel("x (um)")
    ax.set_ylabel("y (um)")
    return finish(ax, show, save)


def voronoi_boundaries(xy: np.ndarray, labels: np.ndarray, *, max_gap: float) -> np.ndarray:
    """Voronoi edges between neighbouring items with different labels (at least one a cell).

    Items further apart than ``max_gap`` (across empty space) get no edge; duplicated coordinates
    keep the first item's label. Returns an (m, 2, 2) array of segments.
    """
    from scipy.spatial import QhullError, Voronoi

    if xy.shape[0] < 4 or not np.any(labels >= 0):
        return np.empty((0, 2, 2))
    uxy, first = np.unique(xy, axis=0, return_index=True)
    lab = labels[first]
    if uxy.shape[0] < 4:
        return np.empty((0, 2, 2))
    # a ring of ghost points one step outside the items closes the Voronoi cells of the outermost
    # items, so boundaries reach the edge of the data; ridges touching a ghost are not drawn
    step = max_gap / 3.0
    lo, hi = uxy.min(axis=0) - step, uxy.max(axis=0) + step
    nx = int(np.ceil((hi[0] - lo[0]) / step)) + 1
    ny = int(np.ceil((hi[1] - lo[1]) / step)) + 1
    gx, gy = np.linspace(lo[0], hi[0], nx), np.linspace(lo[1], hi[1], ny)
    ring = np.concatenate([
        np.column_stack([gx, np.full(nx, lo[1])]), np.column_stack([gx, np.full(nx, hi[1])]),
        np.column_stack([np.full(ny - 2, lo[0]), gy[1:-1]]), np.column_stack([np.full(ny - 2, hi[0]), gy[1:-1]]),
    ])
    n_real = uxy.shape[0]
    uxy = np.concatenate([uxy, ring])
    lab = np.concatenate([lab, np.full(ring.shape[0], -2, dtype=lab.dtype)])
    try:
        vor = Voronoi(uxy)
    except QhullError as err:  # all points collinear, etc.
        logger.warning("segmentation: no Voronoi boundaries (%s); pass boundaries='hull'.", str(err).splitlines()[0])
        return np.empty((0, 2, 2))
    rp = vor.ridge_points
    rv = np.asarray([v if len(v) == 2 else (-1, -1) for v in vor.ridge_vertices], dtype=np.int64)
    la, lb = lab[rp[:, 0]], lab[rp[:, 1]]
    gap = np.linalg.norm(uxy[rp[:, 0]] - uxy[rp[:, 1]], axis=1)
    real = (rp[:, 0] < n_real) & (rp[:, 1] < n_real)
    keep = real & (la != lb) & ((la >= 0) | (lb >= 0)) & np.all(rv >= 0, axis=1) & (gap <= max_gap)
    segs = vor.vertices[rv[keep]]
    # drop edges that run far outside the items (thin triangles on the convex hull)
    lo, hi = lo - max_gap, hi + max_gap
    inside = np.all((segs >= lo) & (segs <= hi), axis=(1, 2))
    segs = segs[inside]
    length = np.linalg.norm(segs[:, 0] - segs[:, 1], axis=1)
    return segs[(length > 0) & (length <= 2 * max_gap)]


def hull_boundaries(xy: np.ndarray, labels: np.ndarray, *, ratio: float = 1.0) -> list[np.ndarray]:
    """Closed hull outline of each cell's items (cells of >= 3 non-collinear items).

    ``ratio`` = 1 gives the convex hull, smaller values a tighter concave hull (shapely).
    """
    import shapely

    fg = labels >= 0
    if fg.sum() > 7:
        # leave out stray items (most of whose 6 nearest neighbours are in another cell) so that a
        # few diffused transcripts do not stretch the outline over the neighbours
        from scipy.spatial import cKDTree

        _, nn = cKDTree(xy).query(xy, k=7)
        same = (labels[nn[:, 1:]] == labels[:, None]).mean(axis=1)
        fg &= same >= 0.5
    if not fg.any():
        return []
    ids, code = np.unique(labels[fg], return_inverse=True)
    order = np.argsort(code, kind="stable")
    mp = shapely.multipoints(xy[fg][order], indices=code[order])
    hulls = shapely.convex_hull(mp) if ratio >= 1.0 else shapely.concave_hull(mp, ratio=ratio)
    out = []
    for h in hulls:
        for part in shapely.get_parts(h):
            if isinstance(part, shapely.Polygon) and not part.is_empty:
                out.append(np.asarray(part.exterior.coords)[:, :2])
    return out
