"""Preprocessing: cell scale, multi-scale neighbourhood features, the fused manifold graph."""

from __future__ import annotations

from ._api import estimate_diameter, fused_graph, neighborhood_features

__all__ = ["estimate_diameter", "neighborhood_features", "fused_graph"]
