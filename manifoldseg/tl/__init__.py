"""Tools: manifold embedding, density clustering, refinement, the whole segmentation, aggregation."""

from __future__ import annotations

from ._api import aggregate, density_cluster, embed, refine, segment

__all__ = ["segment", "embed", "density_cluster", "refine", "aggregate"]
