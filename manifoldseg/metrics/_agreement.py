"""Agreement of a segmentation with reference labels (cells as sets of spots or transcripts)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from .._kernels._metrics import expected_mutual_information
from ._labels import Contingency, as_labels, as_weights, axis_max, axis_sum, check_same_length, contingency

logger = logging.getLogger("manifoldseg")

DEFAULT_AP_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 10)


def _prepare(true, pred, weights=None):
    t = as_labels(true, "true")
    p = as_labels(pred, "pred")
    check_same_length(true=t, pred=p)
    return t, p, as_weights(weights, t.shape[0])


def _both_assigned(true, pred):
    t, p, _ = _prepare(true, pred)
    keep = (t >= 0) & (p >= 0)
    return t[keep], p[keep]


def _ratio(num, den) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# Partition agreement (ARI, AMI)
# --------------------------------------------------------------------------------------------


def adjusted_rand(true, pred) -> float:
    """Adjusted Rand index over the items assigned to a cell on both sides.

    Items with ``true == -1`` or ``pred == -1`` are dropped first; the index then compares the two
    partitions of the remaining items by pair counting (Hubert & Arabie 1985, "Comparing
    partitions", J. Classif. 2:193-218), exactly as :func:`sklearn.metrics.adjusted_rand_score`
    (including its convention of 1.0 for two identical trivial partitions). This is the "ARI over
    transcripts assigned on both sides" reported by Baysor (Petukhov et al. 2022, Nat. Biotechnol.
    40:345-354) and ProSeg (Jones et al. 2025, Nat. Methods).

    Parameters
    ----------
    true, pred
        Integer labels per item (-1 = background / unassigned).

    Returns
    -------
    float
        ARI in [-0.5, 1] (1 = identical partitions); NaN when no item is assigned on both sides.
    """
    t, p = _both_assigned(true, pred)
    n = t.shape[0]
    if n == 0:
        logger.warning("adjusted_rand: no item is assigned to a cell on both sides; returning NaN.")
        return float("nan")
    c = contingency(t, p)
    sum_sq = int(np.sum(c.table.data.astype(np.int64) ** 2))
    sum_rows = int(np.sum(c.row_size.astype(np.int64) ** 2))
    sum_cols = int(np.sum(c.col_size.astype(np.int64) ** 2))
    # pair confusion counts (ordered pairs), as sklearn.metrics.cluster.pair_confusion_matrix
    tp = sum_sq - n
    fp = sum_cols - sum_sq  # same pred cell, different true cell
    fn = sum_rows - sum_sq  # same true cell, different pred cell
    tn = n * n - fp - fn - sum_sq
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def _entropy(sizes: np.ndarray, n: int) -> float:
    p = sizes[sizes > 0] / n
    return float(-np.sum(p * np.log(p)))


def adjusted_mutual_info(true, pred) -> float:
    """Adjusted mutual information over the items assigned to a cell on both sides.

    ``AMI = (MI - E[MI]) / (mean(H(true), H(pred)) - E[MI])`` with natural logs, the arithmetic
    mean normaliser and the hypergeometric expectation of Vinh, Epps & Bailey (2010, JMLR
    11:2837-2854); identical to :func:`sklearn.metrics.adjusted_mutual_info_score` (default
    ``average_method="arithmetic"``) on the items with ``true >= 0`` and ``pred >= 0``. The
    expectation is summed over distinct cell sizes (a numba kernel), so 1e4 cells take well under a
    second where the plain double loop takes minutes.

    Parameters
    ----------
    true, pred
        Integer labels per item (-1 = background / unassigned).

    Returns
    -------
    float
        AMI (1 = identical partitions, ~0 = chance); NaN when no item is assigned on both sides.
    """
    t, p = _both_assigned(true, pred)
    n = t.shape[0]
    if n == 0:
        logger.warning("adjusted_mutual_info: no item is assigned on both sides; returning NaN.")
        return float("nan")
    c = contingency(t, p)
    if (c.n_rows == c.n_cols == 1) or (c.n_rows == c.n_cols == 0):
        return 1.0
    r, col, nij = c.pairs()
    nij = nij.astype(np.float64)
    a = c.row_size.astype(np.float64)
    b = c.col_size.astype(np.float64)
    mi = float(np.sum(nij / n * (np.log(nij) + np.log(n) - np.log(a[r]) - np.log(b[col]))))
    mi = max(mi, 0.0)
    a_sizes, a_mult = np.unique(c.row_size.astype(np.int64), return_counts=True)
    b_sizes, b_mult = np.unique(c.col_size.astype(np.int64), return_counts=True)
    emi = expected_mutual_information(a_sizes, a_mult, b_sizes, b_mult, int(n))
    h_true, h_pred = _entropy(a, n), _entropy(b, n)
    normalizer = 0.5 * (h_true + h_pred)
    denominator = normalizer - emi
    eps = np.finfo("float64").eps
    denominator = min(denominator, -eps) if denominator < 0 else max(denominator, eps)
    return float((mi - emi) / denominator)


# --------------------------------------------------------------------------------------------
# One-to-one cell matching
# --------------------------------------------------------------------------------------------


def _match(c: Contingency, threshold: float, ious=None):
    """One-to-one matching of rows to columns among pairs with IoU >= threshold.

    Maximises the number of matches, then the summed IoU (the Cellpose cost
    ``-(iou >= th) - iou / (2 n)``). Pairs with IoU > 0.5 can never conflict, so only connected
    groups of conflicting candidates are solved with :func:`scipy.optimize.linear_sum_assignment`.
    """
    r, col, iou = c.iou() if ious is None else ious
    keep = iou >= threshold - 1e-12
    r, col, iou = r[keep], col[keep], iou[keep]
    if r.shape[0] == 0:
        return r, col, iou
    row_deg = np.bincount(r, minlength=c.n_rows)
    col_deg = np.bincount(col, minlength=c.n_cols)
    simple = (row_deg[r] == 1) & (col_deg[col] == 1)
    out_r, out_c, out_iou = [r[simple]], [col[simple]], [iou[simple]]
    if not simple.all():
        hr, hc, hiou = r[~simple], col[~simple], iou[~simple]
        nr, nc = c.n_rows, c.n_cols
        graph = sparse.coo_matrix((np.ones(hr.shape[0]), (hr, hc + nr)), shape=(nr + nc, nr + nc))
        _, comp = connected_components(graph, directed=False)
        edge_comp = comp[hr]
        order = np.argsort(edge_comp, kind="stable")
        bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
        for group in np.split(order, bounds):
            gr, gc, gi = hr[group], hc[group], hiou[group]
            ur, ir = np.unique(gr, return_inverse=True)
            uc, ic = np.unique(gc, return_inverse=True)
            k = min(ur.shape[0], uc.shape[0])
            block = np.zeros((ur.shape[0], uc.shape[0]))
            block[ir, ic] = gi
            cand = np.zeros(block.shape, dtype=bool)
            cand[ir, ic] = True
            rows, cols = linear_sum_assignment(-(cand.astype(np.float64)) - block / (2.0 * k))
            ok = cand[rows, cols]
            rows, cols = rows[ok], cols[ok]
            out_r.append(ur[rows])
            out_c.append(uc[cols])
            out_iou.append(block[rows, cols])
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_iou)


def match_cells(true, pred, *, iou_threshold: float = 0.5, weights=None) -> dict:
    """Match reference and predicted cells one to one and score the matching.

    Cells are sets of items (spots, bins or transcripts). The IoU (Jaccard index) of reference cell
    ``t`` and predicted cell ``p`` is ``|t & p| / |t | p|``, where a cell's set holds *all* its items:
    items with ``pred == -1`` still belong to their reference cell and items with ``true == -1``
    (background swallowed by a predicted cell) still belong to that predicted cell, so both lower
    the IoU; background items belong to no cell. With ``weights`` (e.g. counts per bin) set sizes
    are weighted sums. Pairs with IoU >= ``iou_threshold`` are matched one to one: above 0.5 a
    match is unique by construction; at or below it the matching maximising the number of matches,
    then the summed IoU, is found with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`), as in Cellpose (Stringer et al. 2021, Nat.
    Methods 18:100-106). Precision, recall and F1 of this matching at IoU 0.5 are the cell-level
    scores of StarDist (Schmidt et al. 2018, MICCAI) and of the transcript-based benchmarks of
    Baysor (Petukhov et al. 2022) and ProSeg (Jones et al. 2025).

    Parameters
    ----------
    true, pred
        Integer labels per item (-1 = background / unassigned).
    iou_threshold
        Minimum IoU of a match.
    weights
        Optional non-negative weight per item.

    Returns
    -------
    dict
        ``precision`` (matched / predicted cells), ``recall`` (matched / reference cells), ``f1``
        (``2 m / (n_true + n_pred)``), ``n_true``, ``n_pred``, ``n_matched``, ``mean_matched_iou``
        (NaN when nothing matched). Ratios with a zero denominator are NaN.
    """
    t, p, w = _prepare(true, pred, weights)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold}.")
    c = contingency(t, p, w)
    _, _, miou = _match(c, iou_threshold)
    return _match_summary(c.n_rows, c.n_cols, miou)


def _match_summary(n_true: int, n_pred: int, matched_iou: np.ndarray) -> dict:
    m = int(matched_iou.shape[0])
    return {
        "precision": _ratio(m, n_pred),
        "recall": _ratio(m, n_true),
        "f1": _ratio(2 * m, n_true + n_pred),
        "n_true": int(n_true),
        "n_pred": int(n_pred),
        "n_matched": m,
        "mean_matched_iou": float(np.mean(matched_iou)) if m else float("nan"),
    }


def average_precision(true, pred, *, thresholds=DEFAULT_AP_THRESHOLDS, weights=None) -> dict:
    """Average precision over IoU thresholds (Cellpose / COCO style).

    At each threshold ``th`` the cells are matched one to one as in :func:`match_cells` and
    ``AP(th) = TP / (TP + FP + FN)`` with TP matched pairs, FP unmatched predicted cells and FN
    unmatched reference cells (Stringer et al. 2021, Nat. Methods 18:100-106, following the 2018
    Data Science Bowl, Caicedo et al. 2019, Nat. Methods 16:1247-1253). ``ap`` is the mean over the
    thresholds (default 0.50, 0.55, ..., 0.95).

    Parameters
    ----------
    true, pred
        Integer labels per item (-1 = background / unassigned).
    thresholds
        IoU thresholds in (0, 1].
    weights
        Optional non-negative weight per item.

    Returns
    -------
    dict
        ``ap`` (float), ``thresholds`` (list), ``ap_per_threshold`` (list) and ``n_matched`` (list).
    """
    t, p, w = _prepare(true, pred, weights)
    ths = np.round(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)), 10)
    if ths.size == 0 or np.any(ths <= 0) or np.any(ths > 1):
        raise ValueError(f"thresholds must be a non-empty list of values in (0, 1]; got {thresholds}.")
    c = contingency(t, p, w)
    ious = c.iou()
    aps, ms = [], []
    for th in ths:
        m = _match(c, float(th), ious)[0].shape[0]
        ms.append(int(m))
        aps.append(_ratio(m, c.n_rows + c.n_cols - m))
    return {
        "ap": float(np.mean(aps)) if not np.all(np.isnan(aps)) else float("nan"),
        "thresholds": [float(x) for x in ths],
        "ap_per_threshold": [float(x) for x in aps],
        "n_matched": ms,
    }


def recovery(true, pred, *, jaccard: float = 0.5, weights=None) -> float:
    """Share of reference cells recovered: some predicted cell overlaps it with Jaccard >= ``jaccard``.

    Cell sets as in :func:`match_cells`. No one-to-one constraint: for ``jaccard > 0.5`` at most one
    predicted cell can qualify, so this equals the recall of :func:`match_cells`; at exactly 0.5 it
    can exceed it only through exact ties. Used as "cell recovery" in transcript-based segmentation
    benchmarks (e.g. Petukhov et al. 2022, Nat. Biotechnol., and Jones et al. 2025, Nat. Methods).

    Returns
    -------
    float
        Recovered reference cells / reference cells (NaN without reference cells).
    """
    t, p, w = _prepare(true, pred, weights)
    c = contingency(t, p, w)
    r, _, iou = c.iou()
    hit = np.zeros(c.n_rows, dtype=bool)
    hit[r[iou >= jaccard - 1e-12]] = True
    return _ratio(int(hit.sum()), c.n_rows)


def over_under_segmentation(true, pred, *, purity: float = 0.8, weights=None) -> dict:
    """Over- and under-segmentation rates: a cell whose largest part holds < ``purity`` of it.

    Over-segmentation rate: share of reference cells whose largest part inside a single predicted
    cell holds less than ``purity`` (80 %) of the cell's items *that are assigned to some predicted
    cell*. Under-segmentation rate: share of predicted cells whose largest part from a single
    reference cell holds less than ``purity`` of the predicted cell's items *that lie in some
    reference cell*.

    Choice made for background: items on the background (-1) of the other labeling are left out of
    both the part and the whole, so these two rates measure splitting and merging only; losing items
    to the background and swallowing background are measured by :func:`background_scores`
    (``in_cell_assigned``, ``background_assigned``). A cell with no such items (a reference cell left
    entirely unassigned, a predicted cell made of background only) is not counted in either rate;
    it shows up as a missed cell / false positive in :func:`match_cells`. This is the split/merge
    purity criterion of the ProSeg (Jones et al. 2025) and Baysor (Petukhov et al. 2022) benchmarks.

    Returns
    -------
    dict
        ``over_segmentation``, ``under_segmentation`` (rates in [0, 1], NaN when no cell is
        considered), ``n_over``, ``n_under``, ``n_true_considered``, ``n_pred_considered``.
    """
    if not 0.0 < purity <= 1.0:
        raise ValueError(f"purity must be in (0, 1]; got {purity}.")
    t, p, w = _prepare(true, pred, weights)
    c = contingency(t, p, w)
    tab = c.table
    out = {}
    for name, axis in (("true", 1), ("pred", 0)):
        total = axis_sum(tab, axis)
        largest = axis_max(tab, axis)
        considered = total > 0
        bad = considered & (largest < purity * total - 1e-9 * total)
        out[name] = (int(bad.sum()), int(considered.sum()))
    (n_over, n_t), (n_under, n_p) = out["true"], out["pred"]
    return {
        "over_segmentation": _ratio(n_over, n_t),
        "under_segmentation": _ratio(n_under, n_p),
        "n_over": n_over,
        "n_under": n_under,
        "n_true_considered": n_t,
        "n_pred_considered": n_p,
    }


def background_scores(true, pred, *, weights=None) -> dict:
    """How well background (-1) is separated from cells.

    With ``T`` the items truly in background (``true == -1``) and ``P`` those called background
    (``pred == -1``), weighted by ``weights`` when given:

    - ``background_precision = |T & P| / |P|`` (items called background that truly are),
    - ``background_recall = |T & P| / |T|`` (true background items left unassigned),
    - ``in_cell_assigned`` = share of true in-cell items (``true >= 0``) assigned to any cell
      (whether the right one or not),
    - ``background_assigned`` = share of true background items assigned to a cell
      (``= 1 - background_recall``).

    The accuracy bar of issue 3 asks in-cell assigned >= 0.90 and background assigned <= 0.25.
    Ratios with an empty denominator are NaN.
    """
    t, p, w = _prepare(true, pred, weights)
    w = np.ones(t.shape[0]) if w is None else w
    tb, pb = t < 0, p < 0
    both_bg = w[tb & pb].sum()
    return {
        "background_precision": _ratio(both_bg, w[pb].sum()),
        "background_recall": _ratio(both_bg, w[tb].sum()),
        "in_cell_assigned": _ratio(w[~tb & ~pb].sum(), w[~tb].sum()),
        "background_assigned": _ratio(w[tb & ~pb].sum(), w[tb].sum()),
    }
