"""Plain-text and HTML-free formatting shared by the command line and the HTML report.

Light on purpose (standard library only): ``manifoldseg --help`` imports nothing heavy.
"""

from __future__ import annotations

import math
from typing import Any

#: Metric name -> (group, short description). The order here is the order of tables.
METRICS: dict[str, tuple[str, str]] = {
    "n_true": ("reference", "reference cells"),
    "n_pred": ("reference", "predicted cells"),
    "n_matched": ("reference", "cells matched one-to-one at IoU >= 0.5"),
    "f1": ("reference", "one-to-one cell F1 at IoU >= 0.5"),
    "precision": ("reference", "matched / predicted cells"),
    "recall": ("reference", "matched / reference cells"),
    "mean_matched_iou": ("reference", "mean IoU of matched cells"),
    "ap": ("reference", "average precision over IoU 0.5:0.95"),
    "ap50": ("reference", "average precision at IoU 0.5"),
    "ap75": ("reference", "average precision at IoU 0.75"),
    "ari": ("reference", "adjusted Rand index (items assigned on both sides)"),
    "ami": ("reference", "adjusted mutual information (items assigned on both sides)"),
    "recovery": ("reference", "reference cells recovered at Jaccard >= 0.5"),
    "over_segmentation": ("reference", "reference cells split (largest part < 80%)"),
    "under_segmentation": ("reference", "predicted cells merging others (largest part < 80%)"),
    "in_cell_assigned": ("reference", "in-cell items assigned to a cell"),
    "background_assigned": ("reference", "background items assigned to a cell"),
    "background_precision": ("reference", "precision of the background call"),
    "background_recall": ("reference", "recall of the background call"),
    "nuclear_consistency": ("nuclei", "nuclei with >= 90% of their items in one cell"),
    "merge_rate": ("nuclei", "cells holding two or more nuclei"),
    "n_cells": ("reference-free", "cells found"),
    "fraction_assigned": ("reference-free", "items assigned to a cell"),
    "fraction_counts_assigned": ("reference-free", "counts assigned to a cell"),
    "median_spots_per_cell": ("reference-free", "median items per cell"),
    "median_counts_per_cell": ("reference-free", "median counts per cell"),
    "median_genes_per_cell": ("reference-free", "median genes per cell"),
    "median_area": ("reference-free", "median cell area (um^2)"),
    "mean_confidence": ("reference-free", "mean assignment confidence"),
    "mecr": ("reference-free", "mutually exclusive co-expression rate (lower is better)"),
    "mecr_ref_markers": ("reference-free", "MECR with markers of the reference cells"),
    "mecr_reference": ("reference", "MECR of the reference cells themselves"),
}

_COUNT_METRICS = {"n_true", "n_pred", "n_matched", "n_cells"}


def ordered_metrics(scores: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(name, value, description) in the order of :data:`METRICS`, unknown names last."""
    known = [(k, scores[k], METRICS[k][1]) for k in METRICS if k in scores]
    rest = [(k, v, "") for k, v in scores.items() if k not in METRICS]
    return known + rest


def fmt_value(name: str, value: Any) -> str:
    """A metric value as text: counts as integers, fractions with 3 decimals, NaN as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        v = float(value)
        if not math.isfinite(v):
            return "n/a"
        if name in _COUNT_METRICS or (float(v).is_integer() and abs(v) >= 1000):
            return f"{int(round(v)):,}"
        if name.startswith("median_"):  # counts, genes, spots, areas: not fractions
            return f"{int(v):,}" if v.is_integer() else f"{v:,.1f}"
        if abs(v) >= 100:
            return f"{v:,.1f}"
        return f"{v:.3f}"
    return str(value)


def metrics_text(scores: dict[str, Any]) -> str:
    """A plain-text table of metrics: name, value, description."""
    rows = [(k, fmt_value(k, v), d) for k, v, d in ordered_metrics(scores)]
    if not rows:
        return "(no metrics)"
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'metric':<{w0}}  {'value':>{w1}}  description", f"{'-' * w0}  {'-' * w1}  {'-' * 11}"]
    lines += [f"{k:<{w0}}  {v:>{w1}}  {d}".rstrip() for k, v, d in rows]
    return "\n".join(lines)


def json_ready(obj: Any) -> Any:
    """Numbers and containers made JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    elif hasattr(obj, "tolist") and callable(obj.tolist):
        return json_ready(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)
