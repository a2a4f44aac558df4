"""Plots of a segmentation (matplotlib; ``ax=`` in, Axes out; nothing shown unless ``show=True``).

- :func:`segmentation`: spots or transcripts coloured by cell, background grey, boundaries drawn.
- :func:`cells`: cell polygons filled by any obs column or gene.
- :func:`embedding`: the manifold embedding coloured by cell, obs column or gene.
- :func:`qc`: distributions of counts, genes, area and confidence per cell.
- :func:`palette`, :func:`label_colors`: the colours used for cells.
"""

from __future__ import annotations

from ._cells import cells
from ._embedding import embedding
from ._palette import label_colors, palette
from ._qc import qc
from ._segmentation import segmentation

__all__ = ["segmentation", "cells", "embedding", "qc", "palette", "label_colors"]
