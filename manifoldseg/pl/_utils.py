"""Shared plumbing of the plots: axes, spatial crops, point sizes, value columns."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from .._constants import CELL_KEY, NUCLEUS_KEY, TRUTH_KEY

logger = logging.getLogger("manifoldseg")

LABEL_KEYS = (CELL_KEY, TRUTH_KEY, NUCLEUS_KEY)
_BACKGROUND_NAMES = ("background", "-1", "unassigned", "none", "nan")


def get_ax(ax, figsize=(6.0, 6.0), *, legend_room: bool = False):
    """The Axes to draw on: ``ax`` or a new figure's single Axes (with room on the right for a
    legend outside the axes when ``legend_room``)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    if legend_room:
        fig, ax = plt.subplots(figsize=(figsize[0] + 1.8, figsize[1]))
        fig.subplots_adjust(left=0.08, right=0.74)
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def finish(ax, show: bool, save: str | None = None):
    from matplotlib.figure import Figure

    fig = ax if isinstance(ax, Figure) else ax.figure
    if save is not None:
        fig.savefig(save, dpi=fig.dpi)
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return ax


def check_region(region):
    if region is None:
        return None
    try:
        x0, x1, y0, y1 = (float(v) for v in region)
    except (TypeError, ValueError):
        raise ValueError(f"region must be (x0, x1, y0, y1) in um; got {region!r}.") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"region must satisfy x0 < x1 and y0 < y1; got {region!r}.")
    return x0, x1, y0, y1


def in_region(xy: np.ndarray, region, pad: float = 0.0) -> np.ndarray:
    if region is None:
        return np.ones(xy.shape[0], dtype=bool)
    x0, x1, y0, y1 = region
    return (xy[:, 0] >= x0 - pad) & (xy[:, 0] <= x1 + pad) & (xy[:, 1] >= y0 - pad) & (xy[:, 1] <= y1 + pad)


def spacing(xy: np.ndarray) -> float:
    """Median distance from an item to its nearest distinct neighbour (1.0 when undefined)."""
    if xy.shape[0] < 2:
        return 1.0
    sub = xy if xy.shape[0] <= 50_000 else xy[np.random.default_rng(0).choice(xy.shape[0], 50_000, replace=False)]
    d, _ = cKDTree(xy).query(sub, k=2)
    d = d[:, 1]
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def is_grid(xy: np.ndarray, step: float) -> bool:
    """Whether items sit on a square lattice of ``step`` (binned data)."""
    if xy.shape[0] < 4 or step <= 0:
        return False
    rel = (xy[:, :2] - xy[:, :2].min(axis=0)) / step
    return bool(np.mean(np.abs(rel - np.round(rel)) < 0.05) > 0.95)


def marker_size(ax, data_length: float) -> float:
    """Scatter size (points^2) of a marker ``data_length`` um wide on ``ax`` (after its limits)."""
    ax.apply_aspect()
    fig = ax.figure
    bbox = ax.get_window_extent()
    x0, x1 = ax.get_xlim()
    points_per_um = bbox.width * 72.0 / fig.dpi / max(abs(x1 - x0), 1e-12)
    return float(max(data_length * points_per_um, 0.3) ** 2)


def subsample(n: int, max_points: int | None, *, random_state=0) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    logger.info("plotting %d of %d items (max_points=%d)", max_points, n, max_points)
    return np.sort(np.random.default_rng(random_state).choice(n, int(max_points), replace=False))


def obs_labels(adata, key: str) -> np.ndarray:
    if key not in adata.obs:
        raise KeyError(
            f"obs[{key!r}] not found (obs columns: {list(adata.obs.columns)[:10]}); run ms.tl.segment "
            "first or pass key= the column holding cell labels."
        )
    col = adata.obs[key]
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(col.cat.categories.dtype)
    return np.asarray(pd.to_numeric(col, errors="raise").fillna(-1), dtype=np.int64)


def spatial(adata, spatial_key: str) -> np.ndarray:
    if spatial_key not in adata.obsm:
        raise KeyError(
            f"obsm[{spatial_key!r}] not found (obsm keys: {list(adata.obsm.keys())}); pass spatial_key= "
            "the key holding coordinates in um."
        )
    return np.asarray(adata.obsm[spatial_key], dtype=np.float64)


def values(adata, color: str, layer: str | None = None):
    """The obs column or the gene's expression named ``color``; (values, kind) with kind in
    {"labels", "categorical", "numeric"}."""
    if color in adata.obs:
        col = adata.obs[color]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype.kind in "OSUb":
            return col.astype("category"), "categorical"
        if col.dtype.kind in "iu" and (color in LABEL_KEYS or (col.min() < 0 if len(col) else False)):
            return col.to_numpy(dtype=np.int64), "labels"
        return col.to_numpy(dtype=np.float64), "numeric"
    if color in adata.var_names:
        j = adata.var_names.get_loc(color)
        X = adata.layers[layer] if layer is not None else adata.X
        v = X[:, j]
        v = v.toarray().ravel() if sparse.issparse(v) else np.asarray(v).ravel()
        return v.astype(np.float64), "numeric"
    raise KeyError(
        f"color={color!r} is neither an obs column nor a gene (var name); pass one of "
        f"{list(adata.obs.columns)[:8]} or a gene such as {list(adata.var_names[:3])}."
    )


def category_colors(cat: pd.Series) -> tuple[np.ndarray, dict]:
    """RGB per item for a categorical and the legend mapping category -> colour.

    Missing values and a category named "background" (or "-1", "unassigned") are grey.
    """
    from matplotlib.colors import to_rgb

    from ._palette import BACKGROUND_COLOR, palette

    grey = np.array(to_rgb(BACKGROUND_COLOR))
    cats = list(cat.cat.categories)
    is_bg = np.array([str(c).lower() in _BACKGROUND_NAMES for c in cats], dtype=bool)
    pal = np.empty((len(cats), 3))
    pal[~is_bg] = palette(int((~is_bg).sum()))
    pal[is_bg] = grey
    codes = cat.cat.codes.to_numpy()
    rgb = np.where(codes[:, None] >= 0, pal[np.maximum(codes, 0)], grey)
    return rgb, dict(zip(cats, pal, strict=True))
