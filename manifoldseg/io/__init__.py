"""Readers and writers: spots (``.h5ad``), transcript tables, square binning, atomic outputs.

- :func:`read_h5ad`: spots or transcripts stored as AnnData with ``obsm["spatial"]``.
- :func:`read_transcripts`: 10x Xenium, Vizgen MERSCOPE, NanoString CosMx, Stereo-seq GEM and
  generic tables (CSV, CSV.gz, TSV, Parquet) to one obs per row, in file order.
- :func:`bin_transcripts` / :func:`labels_to_transcripts`: square bins and the way back.
- :func:`write_h5ad`, :func:`write_table`, :func:`atomic_path`: writes that never leave a partial
  file and never overwrite without ``overwrite=True``.
"""

from __future__ import annotations

from ._bins import DEFAULT_BIN_LABELS, bin_transcripts, labels_to_transcripts
from ._h5ad import read_h5ad
from ._transcripts import CONTROL_PREFIXES, PLATFORMS, read_transcripts
from ._write import atomic_path, write_h5ad, write_table

__all__ = [
    "read_h5ad",
    "read_transcripts",
    "bin_transcripts",
    "labels_to_transcripts",
    "write_h5ad",
    "write_table",
    "atomic_path",
    "PLATFORMS",
    "CONTROL_PREFIXES",
    "DEFAULT_BIN_LABELS",
]

from ._geojson import cells_to_geojson, write_geojson  # noqa: E402
from ._spatialdata import to_spatialdata, write_spatialdata  # noqa: E402

__all__ += ["cells_to_geojson", "write_geojson", "to_spatialdata", "write_spatialdata"]
