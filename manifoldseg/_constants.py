"""Default keys, in one place."""

from __future__ import annotations

SPATIAL_KEY = "spatial"  # obsm key of coordinates (um)
CELL_KEY = "cell_id"  # obs key of the segmentation label (-1 = background)
CONFIDENCE_SUFFIX = "_confidence"  # obs[f"{key_added}_confidence"]
EMBEDDING_KEY = "X_manifold"  # obsm key of the manifold embedding
UNS_KEY = "manifoldseg"  # uns key of parameters and run summary
GRAPH_KEY = "manifold"  # obsp["manifold_connectivities"], uns["manifold"]["params"]
TRUTH_KEY = "true_cell"  # obs key of simulated truth
TYPE_KEY = "true_type"
NUCLEUS_KEY = "nucleus"  # obs key of a nuclear prior (-1 = outside nuclei)
ORDER_KEY = "input_row"  # obs key of the input row index for transcript tables
BACKGROUND = -1
