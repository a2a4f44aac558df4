"""AnnData wrappers of the preprocessing stages (scanpy conventions)."""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData

from .. import _constants as C
from .._validate import check_adata, check_positive
from ._features import DEFAULT_SCALES, neighborhood_features_array
from ._graph import fused_graph_array
from ._scale import estimate_diameter_array

logger = logging.getLogger("manifoldseg")


def _actual(adata: AnnData) -> AnnData:
    """Turn a view into an actual AnnData in place before writing to it (as scanpy's view_to_actual)."""
    if getattr(adata, "is_view", False):
        adata._init_as_actual(adata.copy())
    return adata


def _prior(adata: AnnData, prior_key: str | None) -> np.ndarray | None:
    if prior_key is None:
        return None
    if prior_key not in adata.obs:
        raise KeyError(
            f"prior_key={prior_key!r} is not a column of adata.obs (columns: {list(adata.obs.columns)}); "
            "pass the obs column holding nucleus ids (-1 or NaN outside nuclei), or prior_key=None."
        )
    col = adata.obs[prior_key]
    if col.dtype.kind not in "iuf" and not hasattr(col, "cat"):
        raise ValueError(f"adata.obs[{prior_key!r}] must hold integer nucleus ids (-1 outside nuclei).")
    vals = np.asarray(col.cat.codes if hasattr(col, "cat") else col.to_numpy(), dtype=np.float64)
    vals = np.where(np.isfinite(vals), vals, -1)
    if np.any(vals != np.round(vals)):
        raise ValueError(f"adata.obs[{prior_key!r}] holds fractional values: pass integer nucleus ids "
                         "(-1 or NaN outside nuclei).")
    return np.where(vals < 0, -1, vals).astype(np.int64)


def estimate_diameter(adata: AnnData, *, spatial_key: str = C.SPATIAL_KEY, prior_key: str | None = None) -> float:
    """Estimate the typical cell diameter (um).

    Parameters
    ----------
    adata
        Spots or transcripts with coordinates (um) in ``obsm[spatial_key]`` and counts in ``X``.
    spatial_key
        Key of the coordinates in ``obsm``.
    prior_key
        Optional ``obs`` column of nucleus ids (-1 outside nuclei): the estimate then comes from
        the spacing of nuclei.

    Returns
    -------
    The diameter in um. The method used is logged.
    """
    coords, X = check_adata(adata, spatial_key=spatial_key)
    counts = np.asarray(X.sum(axis=1)).ravel()
    d, method = estimate_diameter_array(coords, counts, _prior(adata, prior_key))
    logger.info("estimated cell diameter: %.1f um (from %s)", d, method)
    return d


def neighborhood_features(
    adata: AnnData,
    *,
    cell_diameter: float | None = None,
    scales: tuple[float, ...] | list[float] = DEFAULT_SCALES,
    n_components: int = 10,
    spatial_key: str = C.SPATIAL_KEY,
    prior_key: str | None = None,
    key_added: str = "X_neighborhood",
    random_state: int | np.random.Generator = 0,
    copy: bool = False,
) -> AnnData | None:
    """Multi-scale neighbourhood gene composition of every spot.

    For each scale ``s`` (a fraction of the cell diameter), the count-weighted gene composition in a
    Gaussian neighbourhood of sigma ``s * cell_diameter / 4`` around the spot, projected on
    ``n_components`` principal axes of neighbourhood composition, plus the log local density.
    Computed on a grid of projected counts: memory grows with pixels x components, never with
    spots x genes.

    Parameters
    ----------
    adata
        Spots (counts in ``X``) or transcripts (one-hot ``X``), coordinates in ``obsm[spatial_key]``.
    cell_diameter
        Typical cell diameter in um; estimated when None (see :func:`estimate_diameter`).
    scales
        Neighbourhood sizes as fractions of the cell diameter.
    n_components
        Principal axes of composition kept per scale.
    spatial_key, prior_key
        Coordinates key in ``obsm``; optional nucleus ids in ``obs`` (for the diameter estimate).
    key_added
        ``obsm`` key of the features.
    random_state
        Seed of the spot sample used to learn the axes.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with

    ``adata.obsm[key_added]``
        Features, ``len(scales) * (n_components + 1)`` columns.
    ``adata.obs["local_density"]``
        Counts per um^2 at the smallest scale.
    ``adata.uns[key_added]["params"]``
        The parameters, with the cell diameter used.
    """
    adata = adata.copy() if copy else _actual(adata)
    coords, X = check_adata(adata, spatial_key=spatial_key)
    check_positive(n_components, "n_components")
    if cell_diameter is None:
        counts = np.asarray(X.sum(axis=1)).ravel()
        cell_diameter, method = estimate_diameter_array(coords, counts, _prior(adata, prior_key))
        logger.info("estimated cell diameter: %.1f um (from %s)", cell_diameter, method)
    check_positive(cell_diameter, "cell_diameter")
    feats, density, info = neighborhood_features_array(
        coords, X, cell_diameter=float(cell_diameter), scales=tuple(scales), n_components=n_components,
        random_state=random_state,
    )
    adata.obsm[key_added] = feats
    adata.obs["local_density"] = density
    adata.uns[key_added] = {"params": {**info, "cell_diameter": float(cell_diameter), "spatial_key": spatial_key}}
    return adata if copy else None


def fused_graph(
    adata: AnnData,
    *,
    n_neighbors: int = 15,
    n_candidates: int | None = None,
    use_rep: str = "X_neighborhood",
    spatial_key: str = C.SPATIAL_KEY,
    key_added: str = C.GRAPH_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Fuse the spatial neighbour graph with gene similarity into one locally connected graph.

    Every spot keeps, among its ``n_candidates`` nearest spatial neighbours, the ``n_neighbors``
    most alike in ``obsm[use_rep]``; edge strengths follow UMAP's fuzzy simplicial set (near *and*
    alike = strong edge), symmetrised by fuzzy union.

    Parameters
    ----------
    adata
        With ``obsm[use_rep]`` from :func:`neighborhood_features`.
    n_neighbors, n_candidates
        Neighbours kept per spot, out of this many spatial candidates (default ``2 * n_neighbors``).
    use_rep, spatial_key
        Feature and coordinate keys in ``obsm``.
    key_added
        Prefix of the ``obsp`` keys and the ``uns`` key (scanpy's ``neighbors_key``).
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with

    ``adata.obsp[f"{key_added}_connectivities"]``, ``adata.obsp[f"{key_added}_distances"]``
        The fused graph and the feature distance of its edges.
    ``adata.uns[key_added]``
        ``connectivities_key``, ``distances_key`` and ``params``: usable as
        ``sc.tl.umap(adata, neighbors_key=key_added)`` or ``sc.tl.leiden(adata, neighbors_key=key_added)``.
    """
    adata = adata.copy() if copy else _actual(adata)
    coords, _ = check_adata(adata, spatial_key=spatial_key)
    if use_rep not in adata.obsm:
        raise KeyError(
            f"adata.obsm[{use_rep!r}] not found: run ms.pp.neighborhood_features(adata) first, "
            f"or pass use_rep= one of {list(adata.obsm.keys())}."
        )
    check_positive(n_neighbors, "n_neighbors")
    conn, dist, info = fused_graph_array(
        coords, np.asarray(adata.obsm[use_rep]), n_neighbors=n_neighbors, n_candidates=n_candidates
    )
    adata.obsp[f"{key_added}_connectivities"] = conn
    adata.obsp[f"{key_added}_distances"] = dist
    adata.uns[key_added] = {
        "connectivities_key": f"{key_added}_connectivities",
        "distances_key": f"{key_added}_distances",
        "params": {**info, "method": "manifoldseg", "metric": "euclidean", "use_rep": use_rep,
                   "n_neighbors": int(info["n_neighbors"]), "random_state": 0},
    }
    return adata if copy else None
