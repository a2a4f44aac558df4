"""Agreement with a nuclear reference: nuclei kept whole, nuclei kept apart."""

from __future__ import annotations

import numpy as np

from ._labels import as_labels, as_weights, axis_max, check_same_length, contingency


def _prepare(nucleus, pred, weights):
    nuc = as_labels(nucleus, "nucleus")
    p = as_labels(pred, "pred")
    check_same_length(nucleus=nuc, pred=p)
    return nuc, p, as_weights(weights, nuc.shape[0])


def nuclear_consistency(nucleus, pred, *, threshold: float = 0.9, weights=None) -> float:
    """Share of reference nuclei kept whole: >= ``threshold`` of their items in one predicted cell.

    For each reference nucleus (``nucleus >= 0``) the largest share of its items that falls in a
    single predicted cell is compared with ``threshold`` (90 %). Items of the nucleus left in
    background (``pred == -1``) count against it (they are in the denominator, never in a part).
    A nucleus is a structure that a cell segmentation must not cut, so this is the nuclear check of
    transcript-based segmentation papers (Baysor, Petukhov et al. 2022, Nat. Biotechnol.;
    ProSeg, Jones et al. 2025, Nat. Methods; the Xenium benchmark of Salas et al. 2025, Nat.
    Methods), where the nuclei come from a DAPI segmentation the method never sees.

    Parameters
    ----------
    nucleus
        Reference nucleus label per item (-1 = outside every nucleus).
    pred
        Predicted cell per item (-1 = background).
    threshold
        Share of a nucleus that must land in one cell.
    weights
        Optional non-negative weight per item.

    Returns
    -------
    float
        Nuclei kept whole / reference nuclei (NaN when there is no nucleus).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
    nuc, p, w = _prepare(nucleus, pred, weights)
    c = contingency(nuc, p, w)
    if c.n_rows == 0:
        return float("nan")
    largest = axis_max(c.table, 1)
    size = c.row_size.astype(np.float64)
    kept = largest >= threshold * size - 1e-9 * size
    return float(kept.mean())


def merge_rate(nucleus, pred, *, weights=None, among: str = "all") -> float:
    """Share of predicted cells holding the majority of two or more reference nuclei.

    A predicted cell *holds* a nucleus when it contains more than 50 % of the nucleus's items
    (items of the nucleus in background count in the denominator), so each nucleus is held by at
    most one cell. A cell holding two or more nuclei has merged cells (Baysor, Petukhov et al. 2022;
    ProSeg, Jones et al. 2025).

    Parameters
    ----------
    nucleus
        Reference nucleus label per item (-1 = outside every nucleus).
    pred
        Predicted cell per item (-1 = background).
    weights
        Optional non-negative weight per item.
    among
        ``"all"``: the denominator is every predicted cell (the issue-3 target "cells with 2+
        nuclei"). ``"nucleated"``: only predicted cells holding at least one nucleus, which does
        not reward adding many small nucleus-free cells.

    Returns
    -------
    float
        The rate in [0, 1] (NaN when the denominator is empty).
    """
    if among not in ("all", "nucleated"):
        raise ValueError(f"among must be 'all' or 'nucleated'; got {among!r}.")
    nuc, p, w = _prepare(nucleus, pred, weights)
    c = contingency(nuc, p, w)
    if c.n_cols == 0:
        return float("nan")
    tab = c.table
    if c.n_rows == 0:
        return 0.0 if among == "all" else float("nan")
    largest = axis_max(tab, 1)
    holder = np.asarray(tab.argmax(axis=1)).ravel()
    size = c.row_size.astype(np.float64)
    held = largest > 0.5 * size
    n_held = np.bincount(holder[held], minlength=c.n_cols)
    den = c.n_cols if among == "all" else int((n_held >= 1).sum())
    if den == 0:
        return float("nan")
    return float((n_held >= 2).sum() / den)
