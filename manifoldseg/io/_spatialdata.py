"""A segmentation as a SpatialData object / zarr store (points, cell shapes, cells table).

``spatialdata`` is an optional dependency: ``pip install manifoldseg[spatialdata]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._constants import CELL_KEY, CONFIDENCE_SUFFIX, SPATIAL_KEY
from .._validate import InputError, ManifoldsegError, MissingKeyError
from ._write import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["to_spatialdata", "write_spatialdata", "spatialdata_available"]

INSTALL_HINT = "pip install 'manifoldseg[spatialdata]'"
POINTS_KEY = "transcripts"
SHAPES_KEY = "cell_boundaries"
TABLE_KEY = "table"


class MissingDependencyError(ManifoldsegError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def spatialdata_available() -> bool:
    """Whether the optional ``spatialdata`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("spatialdata") is not None


def _require_spatialdata():
    try:
        import spatialdata  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"writing SpatialData needs the optional 'spatialdata' package, which is not installed "
            f"({err}); install it with: {INSTALL_HINT}"
        ) from err
    return spatialdata


def to_spatialdata(
    adata: AnnData,
    cells: AnnData | None = None,
    *,
    key: str = CELL_KEY,
    spatial_key: str = SPATIAL_KEY,
    gene_key: str = "gene",
):
    """A segmentation as a :class:`spatialdata.SpatialData` object.

    Parameters
    ----------
    adata
        Segmented spots or transcripts (``obs[key]``, ``obsm[spatial_key]`` in um).
    cells
        Cells x genes AnnData from :func:`manifoldseg.tl.aggregate` (with ``obs["boundary"]``);
        computed when None.
    key
        ``obs`` column of the labels.
    spatial_key
        ``obsm`` key of the coordinates (um).
    gene_key
        ``obs`` column of the gene per transcript; for spots without one, the points carry no
        gene column.

    Returns
    -------
    spatialdata.SpatialData
        ``points["transcripts"]`` (x, y[, z], gene, ``cell_id``, ``cell_id_confidence``; one
        point per input spot, in input order), ``shapes["cell_boundaries"]`` (one polygon per cell,
        indexed by cell id) and ``tables["table"]`` (the cells x genes AnnData annotating
        ``cell_boundaries`` through ``obs["region"]`` and ``obs["cell_id"]``), all in the
        ``"global"`` coordinate system in um.
    """
    _require_spatialdata()
    import geopandas as gpd
    import shapely
    from spatialdata import SpatialData
    from spatialdata.models import PointsModel, ShapesModel, TableModel

    if key not in adata.obs:
        raise MissingKeyError(f"adata.obs[{key!r}] not found: run ms.tl.segment(adata) first, or pass key=.")
    if spatial_key not in adata.obsm:
        raise MissingKeyError(f"adata.obsm[{spatial_key!r}] not found; pass spatial_key= the coordinates key.")
    if cells is None:
        from ..tl import aggregate

        cells = aggregate(adata, key=key, spatial_key=spatial_key)
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)
    axes = ["x", "y", "z"][: coords.shape[1]]
    df = pd.DataFrame({a: coords[:, i] for i, a in enumerate(axes)})
    if gene_key in adata.obs:
        df[gene_key] = pd.Categorical(adata.obs[gene_key].astype(str).to_numpy())
    df[key] = adata.obs[key].to_numpy().astype(np.int64)
    conf = f"{key}{CONFIDENCE_SUFFIX}"
    if conf in adata.obs:
        df[conf] = adata.obs[conf].to_numpy().astype(np.float32)
    points = PointsModel.parse(
        df,
        coordinates={a: a for a in axes},
        feature_key=gene_key if gene_key in df else None,
        instance_key=key,
    )

    if "boundary" not in cells.obs:
        raise MissingKeyError("cells.obs['boundary'] not found; aggregate with ms.tl.aggregate(adata, boundaries=True).")
    ids = cells.obs["cell_id"].to_numpy().astype(np.int64) if "cell_id" in cells.obs else np.arange(cells.n_obs)
    geoms = shapely.from_wkt(cells.obs["boundary"].astype(object).to_numpy(), on_invalid="ignore")
    gdf = gpd.GeoDataFrame({"geometry": geoms}, index=pd.Index(ids, name=key))
    gdf = gdf[~gdf.geometry.isna() & ~gdf.geometry.is_empty]
    shapes = ShapesModel.parse(gdf)

    table = cells.copy()
    table.obs["region"] = pd.Categorical([SHAPES_KEY] * table.n_obs)
    table.obs[key] = ids
    table.obs.index = table.obs.index.astype(str)
    # uns holds per-spot arrays of the aggregation; the points carry that link already
    table.uns.pop("manifoldseg", None)
    table = TableModel.parse(table, region=SHAPES_KEY, region_key="region", instance_key=key)
    return SpatialData(points={POINTS_KEY: points}, shapes={SHAPES_KEY: shapes}, tables={TABLE_KEY: table})


def write_spatialdata(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    cells: AnnData | None = None,
    key: str = CELL_KEY,
    spatial_key: str = SPATIAL_KEY,
    overwrite: bool = False,
) -> Path:
    """Write a segmentation as a SpatialData zarr store, atomically.

    Parameters
    ----------
    adata, cells, key, spatial_key
        See :func:`to_spatialdata`.
    path
        Output folder, ending in ``.zarr``.
    overwrite
        Replace an existing store; otherwise ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        The store written (points ``transcripts``, shapes ``cell_boundaries``, table ``table``).

    Raises
    ------
    MissingDependencyError
        ``spatialdata`` is not installed (``pip install 'manifoldseg[spatialdata]'``).
    """
    path = Path(path)
    if not path.name.lower().endswith(".zarr"):
        raise InputError(f"{str(path)!r}: a SpatialData output must be a folder ending in .zarr.")
    _require_spatialdata()
    sdata = to_spatialdata(adata, cells, key=key, spatial_key=spatial_key)
    with atomic_path(path, overwrite=overwrite, directory=True) as tmp:
        tmp_zarr = tmp.with_name(tmp.name + ".zarr")
        try:
            sdata.write(tmp_zarr)
            os.replace(tmp_zarr, tmp)
        finally:
            if tmp_zarr.exists():
                import shutil

                shutil.rmtree(tmp_zarr, ignore_errors=True)
    return path
