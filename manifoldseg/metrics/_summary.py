"""Every metric the inputs allow, as one flat dict (arrays) or read from an AnnData."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

from .._constants import CELL_KEY, CONFIDENCE_SUFFIX, NUCLEUS_KEY, SPATIAL_KEY, TRUTH_KEY
from ._agreement import (
    adjusted_mutual_info,
    adjusted_rand,
    average_precision,
    background_scores,
    match_cells,
    over_under_segmentation,
    recovery,
)
from ._labels import as_labels, as_weights, check_same_length
from ._mecr import cluster_cells, marker_genes, mecr
from ._nuclear import merge_rate, nuclear_consistency
from ._stats import aggregate_counts, cell_stats, fraction_assigned

logger = logging.getLogger("manifoldseg")


def score_all(
    true=None,
    pred=None,
    *,
    nucleus=None,
    X=None,
    coords=None,
    weights=None,
    bin_size: float | None = None,
    iou_threshold: float = 0.5,
    nuclear_threshold: float = 0.9,
    purity: float = 0.8,
    mecr_cells=None,
    random_state=0,
) -> dict:
    """Every metric the inputs allow, as a flat dict of numbers.

    Parameters
    ----------
    true
        Reference cell per item (-1 = background), or None.
    pred
        Predicted cell per item (-1 = background). Required.
    nucleus
        Reference nucleus per item (-1 = outside nuclei), or None.
    X
        Items x genes counts, or None. Gives counts/genes per cell and MECR (on the predicted cells'
        summed counts; also ``mecr_reference`` on the reference cells when ``true`` is given).
    coords
        Item coordinates (um), or None; gives cell areas (see :func:`cell_stats`).
    weights
        Optional counts per item, used for ``fraction_counts_assigned`` and ``total_counts`` when
        ``X`` is None. The agreement metrics count items (spots or transcripts) unweighted.
    bin_size
        Bin side (um) for binned data: area = spots x bin area.
    iou_threshold, nuclear_threshold, purity
        Passed to :func:`match_cells` / :func:`recovery`, :func:`nuclear_consistency`,
        :func:`over_under_segmentation`.
    mecr_cells
        Optional cells x genes matrix of the predicted cells (e.g. from ``ms.tl.aggregate``) used
        for MECR instead of summing ``X``.
    random_state
        Seed of the clustering behind MECR.

    Returns
    -------
    dict
        Always: ``n_cells``, ``fraction_assigned``, ``median_spots_per_cell``,
        ``median_counts_per_cell``. With ``true``: ``ari``, ``ami``, ``precision``, ``recall``,
        ``f1``, ``n_true``, ``n_pred``, ``n_matched``, ``mean_matched_iou``, ``ap``, ``ap50``,
        ``ap75``, ``recovery``, ``over_segmentation``, ``under_segmentation``,
        ``background_precision``, ``background_recall``, ``in_cell_assigned``,
        ``background_assigned``. With ``nucleus``: ``nuclear_consistency``, ``merge_rate``. With
        ``X``: ``median_genes_per_cell``, ``mecr`` (markers from the predicted cells' own clusters).
        With ``X`` and ``true``: ``mecr_ref_markers`` (the predicted cells scored with markers taken
        from the reference cells, comparable across segmentations of the same data) and
        ``mecr_reference`` (the reference cells with the same markers). With
        ``weights``: ``fraction_counts_assigned``. With ``coords`` or ``bin_size``:
        ``median_area``.
    """
    if pred is None:
        raise ValueError("pred is required: pass the predicted cell per item (-1 = background).")
    p = as_labels(pred, "pred")
    n = p.shape[0]
    w = as_weights(weights, n)
    out: dict = {}
    stats = cell_stats(p, X=X, coords=coords, weights=w, bin_size=bin_size)
    out["n_cells"] = int(stats.shape[0])
    out["fraction_assigned"] = fraction_assigned(p)
    if w is not None:
        out["fraction_counts_assigned"] = fraction_assigned(p, counts=w)
    elif X is not None:
        out["fraction_counts_assigned"] = fraction_assigned(p, counts=np.asarray(X.sum(axis=1)).ravel())
    out["median_spots_per_cell"] = _median(stats["n_spots"])
    out["median_counts_per_cell"] = _median(stats["total_counts"])
    if "n_genes" in stats:
        out["median_genes_per_cell"] = _median(stats["n_genes"])
    if "area" in stats:
        out["median_area"] = _median(stats["area"])

    if true is not None:
        t = as_labels(true, "true")
        check_same_length(true=t, pred=p)
        out["ari"] = adjusted_rand(t, p)
        out["ami"] = adjusted_mutual_info(t, p)
        out.update(match_cells(t, p, iou_threshold=iou_threshold))
        ap = average_precision(t, p)
        out["ap"] = ap["ap"]
        for th, v in zip(ap["thresholds"], ap["ap_per_threshold"], strict=True):
            if np.isclose(th, 0.5):
                out["ap50"] = v
            elif np.isclose(th, 0.75):
                out["ap75"] = v
        out["recovery"] = recovery(t, p, jaccard=iou_threshold)
        ou = over_under_segmentation(t, p, purity=purity)
        out["over_segmentation"] = ou["over_segmentation"]
        out["under_segmentation"] = ou["under_segmentation"]
        out.update(background_scores(t, p))
    if nucleus is not None:
        nuc = as_labels(nucleus, "nucleus")
        check_same_length(nucleus=nuc, pred=p)
        out["nuclear_consistency"] = nuclear_consistency(nuc, p, threshold=nuclear_threshold)
        out["merge_rate"] = merge_rate(nuc, p)
    pred_cells = mecr_cells
    if pred_cells is None and X is not None:
        pred_cells, _ = aggregate_counts(p, X)
    if pred_cells is not None:
        out["mecr"] = mecr(pred_cells, random_state=random_state) if pred_cells.shape[0] >= 2 else _nan_mecr()
    if X is not None and true is not None:
        ref_cells, _ = aggregate_counts(t, X)
        ref_markers = None
        if ref_cells.shape[0] >= 2:
            clusters = cluster_cells(ref_cells, random_state=random_state)
            ref_markers = marker_genes(ref_cells, clusters)
        if ref_markers is None or ref_markers["cluster"].nunique() < 2:
            out["mecr_reference"] = out["mecr_ref_markers"] = _nan_mecr()
        else:
            out["mecr_reference"] = mecr(ref_cells, markers=ref_markers)
            out["mecr_ref_markers"] = mecr(pred_cells, markers=ref_markers) if pred_cells.shape[0] else float("nan")
    return out


def _nan_mecr() -> float:
    logger.warning("mecr: fewer than two cells with counts; MECR is undefined, returning NaN.")
    return float("nan")


def _median(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.median(x)) if x.size else float("nan")


def _guess_bin_size(adata) -> float | None:
    """Bin side (um) recorded by the simulator or a reader, when the data are bins."""
    sim = adata.uns.get("simulation", {})
    params = sim.get("params", {}) if isinstance(sim, dict) else {}
    if isinstance(params, dict) and params.get("mode") == "bins" and params.get("bin_size"):
        return float(params["bin_size"])
    for key in ("manifoldseg_io", "manifoldseg"):
        info = adata.uns.get(key, {})
        if isinstance(info, dict) and info.get("bin_size"):
            return float(info["bin_size"])
    return None


def evaluate(
    adata,
    *,
    key: str = CELL_KEY,
    truth_key: str | None = None,
    nucleus_key: str | None = None,
    cells=None,
    spatial_key: str = SPATIAL_KEY,
    weight_key: str | None = None,
    bin_size: float | None = None,
    random_state=0,
) -> dict:
    """Score a segmentation stored in an AnnData with every metric its columns allow.

    Parameters
    ----------
    adata
        Spots or transcripts with the segmentation in ``obs[key]``.
    key
        obs column of the predicted cell (-1 = background).
    truth_key
        obs column of reference cells; default ``"true_cell"`` when present.
    nucleus_key
        obs column of reference nuclei; default ``"nucleus"`` when present.
    cells
        Optional cells x genes AnnData (``ms.tl.aggregate``) used for MECR.
    spatial_key
        obsm key of coordinates (um), for cell areas.
    weight_key
        Optional obs column of counts per item (for ``fraction_counts_assigned``).
    bin_size
        Bin side (um) for areas of binned data; read from ``uns["simulation"]["params"]`` or
        ``uns["manifoldseg_io"]`` when not given; otherwise areas are convex hulls.
    random_state
        Seed of the clustering behind MECR.

    Returns
    -------
    dict
        As :func:`score_all`, plus ``mean_confidence`` when ``obs[f"{key}_confidence"]`` exists.
    """
    if key not in adata.obs:
        raise KeyError(
            f"obs[{key!r}] not found (obs columns: {list(adata.obs.columns)[:10]}); run "
            "ms.tl.segment first or pass key= the column holding the segmentation."
        )
    truth_key = _column(adata, truth_key, TRUTH_KEY, "truth_key")
    nucleus_key = _column(adata, nucleus_key, NUCLEUS_KEY, "nucleus_key")
    weights = None
    if weight_key is not None:
        if weight_key not in adata.obs:
            raise KeyError(f"obs[{weight_key!r}] not found; pass weight_key= an obs column of counts.")
        weights = adata.obs[weight_key].to_numpy()
    X = adata.X if adata.n_vars > 0 and adata.X is not None else None
    if X is not None and not sparse.issparse(X):
        X = np.asarray(X)
    coords = adata.obsm[spatial_key] if spatial_key in adata.obsm else None
    if bin_size is None:
        bin_size = _guess_bin_size(adata)
    out = score_all(
        None if truth_key is None else adata.obs[truth_key],
        adata.obs[key],
        nucleus=None if nucleus_key is None else adata.obs[nucleus_key],
        X=X,
        coords=coords,
        weights=weights,
        bin_size=bin_size,
        mecr_cells=None if cells is None else cells.X,
        random_state=random_state,
    )
    conf = f"{key}{CONFIDENCE_SUFFIX}"
    if conf in adata.obs:
        c = adata.obs[conf].to_numpy(dtype=np.float64)
        out["mean_confidence"] = float(np.nanmean(c)) if c.size else float("nan")
    return out


def _column(adata, given, default, name):
    if given is not None:
        if given not in adata.obs:
            raise KeyError(f"obs[{given!r}] not found; pass {name}= an existing obs column or None.")
        return given
    return default if default in adata.obs else None
