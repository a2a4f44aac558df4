"""QC panel: distributions of counts, genes, area and confidence per cell."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .._constants import CELL_KEY, CONFIDENCE_SUFFIX, SPATIAL_KEY
from ._utils import finish

_ALIASES = {
    "counts": ("total_counts", "n_counts", "transcript_counts"),
    "genes": ("n_genes_by_counts", "n_genes"),
    "area": ("area", "area_um2", "cell_area"),
    "confidence": ("mean_confidence", "confidence"),
}


def _first(obs, names):
    for n in names:
        if n in obs:
            return np.asarray(obs[n], dtype=np.float64)
    return None


def qc_table(adata, *, key: str = CELL_KEY, spatial_key: str = SPATIAL_KEY, bin_size: float | None = None):
    """Per-cell counts, genes, area and confidence from spots (``obs[key]``) or a cells AnnData.

    Returns
    -------
    dict
        ``counts``, ``genes``, ``area``, ``confidence``: arrays, or None when not available; for
        spots, ``confidence`` holds the per-spot ``obs[f"{key}_confidence"]`` of assigned spots.
    """
    from ..metrics import cell_stats
    from ..metrics._summary import _guess_bin_size

    is_cells = "n_spots" in adata.obs or "boundary" in adata.obs  # from ms.tl.aggregate
    if key in adata.obs and not is_cells:  # spots / transcripts with labels
        labels = adata.obs[key].to_numpy()
        X = adata.X if adata.n_vars > 0 else None
        coords = adata.obsm[spatial_key] if spatial_key in adata.obsm else None
        if bin_size is None:
            bin_size = _guess_bin_size(adata)
        st = cell_stats(labels, X=X, coords=coords, bin_size=bin_size)
        conf_key = f"{key}{CONFIDENCE_SUFFIX}"
        conf = None
        if conf_key in adata.obs:
            c = adata.obs[conf_key].to_numpy(dtype=np.float64)
            conf = c[np.asarray(labels, dtype=np.float64) >= 0]
        return {
            "counts": st["total_counts"].to_numpy(dtype=np.float64),
            "genes": st["n_genes"].to_numpy(dtype=np.float64) if "n_genes" in st else None,
            "area": st["area"].to_numpy(dtype=np.float64) if "area" in st else None,
            "confidence": conf,
            "kind": "spots",
        }
    obs = adata.obs
    counts = _first(obs, _ALIASES["counts"])
    genes = _first(obs, _ALIASES["genes"])
    if (counts is None or genes is None) and adata.n_vars > 0 and adata.X is not None:
        X = adata.X
        if counts is None:
            counts = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        if genes is None:
            genes = np.asarray((X > 0).sum(axis=1), dtype=np.float64).ravel() if sparse.issparse(X) else (
                np.asarray(X) > 0).sum(axis=1).astype(np.float64)
    return {
        "counts": counts,
        "genes": genes,
        "area": _first(obs, _ALIASES["area"]),
        "confidence": _first(obs, (*_ALIASES["confidence"], f"{key}{CONFIDENCE_SUFFIX}")),
        "kind": "cells",
    }


def qc(
    adata,
    *,
    key: str = CELL_KEY,
    fig=None,
    bins: int = 40,
    spatial_key: str = SPATIAL_KEY,
    bin_size: float | None = None,
    color="steelblue",
    show: bool = False,
    save: str | None = None,
):
    """Histograms of counts, genes and area per cell and of the assignment confidence.

    Parameters
    ----------
    adata
        Spots or transcripts with ``obs[key]`` (per-cell values are computed with
        :func:`manifoldseg.metrics.cell_stats`), or a cells AnnData from ``ms.tl.aggregate``
        (columns ``total_counts``, ``n_genes_by_counts``, ``area``, ``mean_confidence``; counts and
        genes are computed from ``X`` when missing).
    key
        obs column of cell labels (spots) and prefix of ``obs[f"{key}_confidence"]``.
    fig
        Figure to draw into (it gets a 2 x 2 grid); a new 9 x 7 inch figure when None.
    bins
        Histogram bins.
    spatial_key, bin_size
        Coordinates and bin side for cell areas from spots (see ``cell_stats``).
    color
        Bar colour.
    show, save
        Call ``plt.show()``; write the figure to this path.

    Returns
    -------
    numpy.ndarray
        The four Axes: counts per cell, genes per cell, area per cell, confidence. A panel whose
        data is missing says so.
    """
    import matplotlib.pyplot as plt

    t = qc_table(adata, key=key, spatial_key=spatial_key, bin_size=bin_size)
    if fig is None:
        fig = plt.figure(figsize=(9.0, 7.0))
    axes = np.asarray(fig.subplots(2, 2)).ravel()
    panels = [
        ("counts", "counts per cell", "total counts"),
        ("genes", "genes per cell", "genes detected"),
        ("area", "area per cell", "area (um$^2$)"),
        ("confidence", "assignment confidence" + (" (assigned spots)" if t["kind"] == "spots" else ""),
         "confidence"),
    ]
    n_cells = None
    for ax, (name, title, xlabel) in zip(axes, panels, strict=True):
        v = t[name]
        v = None if v is None else v[np.isfinite(v)]
        if v is None or v.size == 0:
            ax.text(0.5, 0.5, f"{title}:\nnot available", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if name != "confidence":
            n_cells = v.size
        ax.hist(v, bins=bins, color=color, edgecolor="white", linewidth=0.3)
        med = float(np.median(v))
        ax.axvline(med, color="black", linestyle="--", linewidth=1.0)
        ax.set_title(f"{title} (median {med:.3g})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("cells" if name != "confidence" or t["kind"] == "cells" else "spots")
    if n_cells is not None:
        fig.suptitle(f"QC: {n_cells} cells")
    fig.tight_layout()
    finish(fig, show, save)
    return axes
