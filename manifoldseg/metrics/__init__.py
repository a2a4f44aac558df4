"""Judge a segmentation: agreement with reference cells or nuclei, and reference-free quality.

All array-level functions take integer labels per item (spot, bin or transcript) with -1 for
background / unassigned, and treat a cell as the set of its items.

Against reference cells
    :func:`adjusted_rand`, :func:`adjusted_mutual_info` (over items assigned on both sides),
    :func:`match_cells` (one-to-one matching: precision, recall, F1 at IoU >= 0.5),
    :func:`average_precision` (IoU 0.5:0.95), :func:`recovery`, :func:`over_under_segmentation`,
    :func:`background_scores`.
Against reference nuclei
    :func:`nuclear_consistency`, :func:`merge_rate`.
Reference-free
    :func:`mecr`, :func:`marker_genes`, :func:`cell_stats`, :func:`fraction_assigned`.
All at once
    :func:`score_all` (arrays), :func:`evaluate` (AnnData obs columns).
"""

from __future__ import annotations

from ._agreement import (
    adjusted_mutual_info,
    adjusted_rand,
    average_precision,
    background_scores,
    match_cells,
    over_under_segmentation,
    recovery,
)
from ._mecr import cluster_cells, marker_genes, mecr
from ._nuclear import merge_rate, nuclear_consistency
from ._stats import aggregate_counts, cell_stats, fraction_assigned
from ._summary import evaluate, score_all

__all__ = [
    "adjusted_rand",
    "adjusted_mutual_info",
    "match_cells",
    "average_precision",
    "recovery",
    "over_under_segmentation",
    "background_scores",
    "nuclear_consistency",
    "merge_rate",
    "mecr",
    "marker_genes",
    "cluster_cells",
    "cell_stats",
    "aggregate_counts",
    "fraction_assigned",
    "score_all",
    "evaluate",
]
