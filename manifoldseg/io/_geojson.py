"""Cell boundaries as GeoJSON (one Feature per cell, coordinates in um)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._constants import CELL_KEY
from .._validate import InputError, MissingKeyError, _fmt_list
from ._write import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

logger = logging.getLogger("manifoldseg")

__all__ = ["cells_to_geojson", "write_geojson"]

BOUNDARY_KEY = "boundary"
#: obs columns copied into each Feature's ``properties`` (when present).
GEOJSON_PROPERTIES = ("cell_id", "n_spots", "total_counts", "n_genes_by_counts", "area", "mean_confidence")


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers to Python, NaN/inf to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def boundary_geometries(cells, boundary_key: str = "boundary") -> np.ndarray:
    """shapely geometries of the WKT polygons in ``cells.obs[boundary_key]`` (None where missing)."""
    import shapely

    if boundary_key not in cells.obs:
        raise MissingKeyError(
            f"cells.obs[{boundary_key!r}] not found (obs columns: {_fmt_list(cells.obs.columns)}); run "
            "ms.tl.aggregate(adata, boundaries=True) to get cell polygons, or pass boundary_key=."
        )
    wkt = cells.obs[boundary_key].astype(object).to_numpy()
    ok = np.array([isinstance(w, str) and len(w) > 0 for w in wkt], dtype=bool)
    geoms = np.full(wkt.shape[0], None, dtype=object)
    if ok.any():
        geoms[ok] = shapely.from_wkt(wkt[ok], on_invalid="ignore")
    return geoms


def cells_to_geojson(
    cells: AnnData,
    *,
    boundary_key: str = BOUNDARY_KEY,
    properties: tuple[str, ...] | list[str] = GEOJSON_PROPERTIES,
    precision: int = 3,
) -> dict:
    """Cell polygons of a cells AnnData as a GeoJSON ``FeatureCollection`` (a dict).

    Parameters
    ----------
    cells
        Cells x genes AnnData from :func:`manifoldseg.tl.aggregate`, with WKT polygons in
        ``obs[boundary_key]``.
    boundary_key
        ``obs`` column of the WKT polygons.
    properties
        ``obs`` columns copied into each Feature's ``properties`` when present
        (default ``cell_id, n_spots, total_counts, n_genes_by_counts, area, mean_confidence``).
    precision
        Decimals kept in the coordinates (um).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``: one ``Feature`` per cell with a
        valid polygon (``Polygon`` or ``MultiPolygon``, coordinates in um, x then y), in the order
        of ``cells.obs``; the Feature ``id`` is the cell id. Cells without a polygon are left out
        (their number is logged).
    """
    import shapely

    geoms = boundary_geometries(cells, boundary_key)
    cols = [c for c in properties if c in cells.obs.columns]
    values = {c: cells.obs[c].to_numpy() for c in cols}
    ids = values.get(CELL_KEY, np.arange(cells.n_obs))
    features = []
    skipped = 0
    for i, g in enumerate(geoms):
        if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
            skipped += 1
            continue
        geometry = json.loads(shapely.to_geojson(shapely.set_precision(g, 10.0**-precision)))
        props = {c: _plain(values[c][i]) for c in cols}
        props.setdefault("name", str(cells.obs_names[i]))
        features.append({"type": "Feature", "id": _plain(ids[i]), "geometry": geometry, "properties": props})
    if skipped:
        logger.info("cells_to_geojson: %d of %d cells have no polygon and are left out", skipped, cells.n_obs)
    return {"type": "FeatureCollection", "features": features}


def write_geojson(
    cells: AnnData,
    path: str | os.PathLike,
    *,
    boundary_key: str = BOUNDARY_KEY,
    overwrite: bool = False,
) -> Path:
    """Write cell polygons as a GeoJSON ``FeatureCollection``, atomically.

    Parameters
    ----------
    cells
        Cells x genes AnnData from :func:`manifoldseg.tl.aggregate` (WKT in ``obs["boundary"]``).
    path
        Output path (``.geojson`` or ``.json``).
    boundary_key
        ``obs`` column of the WKT polygons.
    overwrite
        Replace an existing file; otherwise ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        The path written. Each Feature carries ``cell_id``, ``n_spots``, ``total_counts``,
        ``area`` (um^2) and the other QC columns present as ``properties``; see
        :func:`cells_to_geojson`.
    """
    path = Path(path)
    if not path.name.lower().endswith((".geojson", ".json")):
        raise InputError(f"{str(path)!r}: a GeoJSON output must end in .geojson or .json.")
    collection = cells_to_geojson(cells, boundary_key=boundary_key)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(collection, fh, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
    return path
