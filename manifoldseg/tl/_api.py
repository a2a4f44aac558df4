"""AnnData wrappers of the tools (scanpy conventions)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .. import _constants as C
from .._validate import check_adata, check_choice, check_positive
from ..pp._api import _actual

logger = logging.getLogger("manifoldseg")


def _random_seed(random_state) -> int:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if random_state is None:
        return 0
    return int(random_state)


def _graph_of(adata: AnnData, neighbors_key: str):
    key = f"{neighbors_key}_connectivities"
    if key not in adata.obsp:
        raise KeyError(
            f"adata.obsp[{key!r}] not found: run ms.pp.fused_graph(adata) first "
            f"(or pass neighbors_key=; obsp has {list(adata.obsp.keys())})."
        )
    return adata.obsp[key].tocsr()


def segment(
    adata: AnnData,
    *,
    cell_diameter: float | None = None,
    refine_diameter: bool = True,
    prior_key: str | None = None,
    spatial_key: str = C.SPATIAL_KEY,
    key_added: str = C.CELL_KEY,
    n_neighbors: int | None = None,
    n_epochs: int | None = None,
    embed_method: str = "numba",
    persistence: float = 0.3,
    background: bool = True,
    prior_extent: float = 0.8,
    nuclear_genes: str | Sequence[str] | None = "auto",
    n_jobs: int | None = None,
    random_state: int | np.random.Generator = 0,
    progress: bool = False,
    tile_size: float | str | None = "auto",
    overlap: float | None = None,
    scheduler: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Segment spots or transcripts into cells from RNA (and a nuclear prior when given).

    Runs the whole pipeline: cell scale, multi-scale neighbourhood features, the fused graph,
    the manifold embedding, count-weighted density clustering and connectivity-aware refinement.

    Parameters
    ----------
    adata
        Spots (counts in ``X``) or transcripts (one-hot ``X``) with coordinates in um in
        ``obsm[spatial_key]`` (2 or 3 columns).
    cell_diameter
        Typical cell diameter in um; estimated from the data when None (from the nuclei with
        ``prior_key``, else from the spacing of transcript-density peaks; logged and stored in
        ``uns``). A given value is a prior (see ``refine_diameter``).
    refine_diameter
        Treat a given ``cell_diameter`` as a prior, as Baysor treats its ``scale``: when the data's
        estimate is within 0.57-1.75x of it, the diameter used is their combination in log space
        (the estimate weighs 0.87, the given value being taken to be off by up to 30 %); when they
        disagree more, the given value is used as is with a warning (the estimate fails on some
        tissues, e.g. large cultured cells whose RNA peaks are sub-cellular). Results depend
        strongly on the diameter used: on ``benchmarks/diameter.py`` (2026-12-04) a value 30 %
        too small used as is (``refine_diameter=False``) lost 0.21-0.37 of median F1, 30 % too
        large 0.04-0.17; combined with the estimate (the default), 0.7x and 1.3x stayed within
        0.004 of 1.0x on simulated bins, transcripts and CosMx FOV2, and within 0.056 on FOV3.
        Given value, estimate and the diameter used are stored in ``uns["manifoldseg"]["summary"]``.
    prior_key
        ``obs`` column of nucleus ids (-1 outside nuclei): nuclei seed cells; one nucleus is never
        split across cells and two nuclei never share one.
    spatial_key
        Coordinates key in ``obsm``.
    key_added
        ``obs`` column of the labels.
    n_neighbors
        Neighbours per spot in the fused graph; by default chosen so that a neighbourhood spans
        about a quarter of a cell diameter (6-40).
    n_epochs
        Layout epochs (default 20: the layout starts from the spatial coordinates).
    embed_method
        ``"numba"`` (the project's cached layout kernel) or ``"umap-learn"``.
    persistence
        Density persistence (log units) below which neighbouring density peaks are one cell.
    background
        Leave low-density spots unassigned (-1). ``False`` assigns everything reachable.
    prior_extent
        With ``prior_key``: how far below the RNA background threshold (in log density units) a
        cell may reach around its nucleus (a nucleus vouches for faint cytoplasm); 0.35 is the
        reach without a prior, 0 keeps only what RNA alone calls tissue. No effect without a prior.
    nuclear_genes
        Nuclear-retained RNA (e.g. MALAT1, NEAT1; MZT2A on CosMx Lung): genes whose transcripts
        stay in the nucleus and so mark it. The nuclear contrast that seeds cells is weighted
        towards them, and without a prior a cell holding less than 0.3 of the tissue's share of
        them (no nucleus in the section) is left as background. ``"auto"`` finds them from the
        data (broadly expressed genes whose transcripts sit where RNA is locally dense; none on
        the simulator's defaults or on MERSCOPE mouse brain), a list of names in ``var_names``
        uses those, ``None`` does neither. The genes used are listed in
        ``uns["manifoldseg"]["summary"]["nuclear_genes"]``.
    n_jobs
        Threads for numba (the result does not depend on it).
    random_state
        Seed (int or Generator) for sampling and the layout.
    progress
        Show a progress bar over the stages (over the tiles in a tiled run).
    tile_size
        Side in um of the tiles of a whole section (see :mod:`manifoldseg._tiling`): ``"auto"``
        tiles inputs above 400,000 spots (about 250,000 spots per tile), a number always tiles,
        ``None`` never. Tiles overlap, use one cell diameter (estimated once) and are stitched
        without seams; a tiled run writes labels, confidence and ``uns`` but no embedding or graph.
    overlap
        Margin around each tile in um (default 2 cell diameters, at least 1.5).
    scheduler
        Where tiles run: ``None`` a local Dask cluster of ``n_jobs`` processes (started and closed
        by the call), ``"tcp://host:8786"`` an existing cluster, ``"synchronous"`` or ``"threads"``.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with

    ``adata.obs[key_added]``
        Cell id per spot (int, -1 = background).
    ``adata.obs[f"{key_added}_confidence"]``
        Assignment confidence in [0, 1].
    ``adata.obsm["X_manifold"]``
        The manifold embedding.
    ``adata.obsp["manifold_connectivities"]``, ``adata.obsp["manifold_distances"]``, ``adata.uns["manifold"]``
        The fused graph (usable by ``sc.tl.leiden(adata, neighbors_key="manifold")``).
    ``adata.uns["manifoldseg"]``
        Parameters, the cell diameter used, and a run summary.
    """
    from ._segment import segment_array

    adata = adata.copy() if copy else _actual(adata)
    coords, X = check_adata(adata, spatial_key=spatial_key)
    if cell_diameter is not None:
        check_positive(cell_diameter, "cell_diameter")
    if n_neighbors is not None and n_neighbors > 200:
        raise ValueError(f"n_neighbors={n_neighbors} is too large: pass at most 200 (or None to choose it).")
    check_positive(n_neighbors, "n_neighbors", allow_none=True)
    check_choice(embed_method, "embed_method", ("numba", "umap-learn"))
    check_positive(prior_extent, "prior_extent", allow_zero=True)
    nuclear = _nuclear_genes(adata, nuclear_genes)
    prior = None
    if prior_key is not None:
        from ..pp._api import _prior

        prior = _prior(adata, prior_key)
    threads = _set_threads(n_jobs)
    start = time.perf_counter()
    from .._tiling import segment_tiled, use_tiles

    try:
        if use_tiles(tile_size, len(coords)):
            res = segment_tiled(
                coords, X, tile_size=tile_size, overlap=overlap, cell_diameter=cell_diameter,
                refine_diameter=refine_diameter, prior=prior,
                random_state=_random_seed(random_state), scheduler=scheduler, n_jobs=n_jobs, progress=progress,
                n_neighbors=n_neighbors, n_epochs=n_epochs, embed_method=embed_method, persistence=persistence,
                background=background, prior_extent=prior_extent, nuclear_genes=nuclear,
            )
        else:
            res = segment_array(
                coords, X, cell_diameter=cell_diameter, refine_diameter=refine_diameter, prior=prior,
                n_neighbors=n_neighbors, n_epochs=n_epochs,
                embed_method=embed_method, persistence=persistence, background=background,
                prior_extent=prior_extent, nuclear_genes=nuclear, random_state=_random_seed(random_state),
                progress=progress,
            )
    finally:
        _set_threads(threads)
    adata.obs[key_added] = res.labels.astype(np.int64)
    adata.obs[f"{key_added}{C.CONFIDENCE_SUFFIX}"] = res.confidence.astype(np.float32)
    if not res.info.get("tiled"):  # a tiled run has no global embedding or graph
        adata.obsm[C.EMBEDDING_KEY] = res.embedding
        adata.obsp[f"{C.GRAPH_KEY}_connectivities"] = res.graph
        adata.obsp[f"{C.GRAPH_KEY}_distances"] = res.distances
        adata.uns[C.GRAPH_KEY] = {
            "connectivities_key": f"{C.GRAPH_KEY}_connectivities",
            "distances_key": f"{C.GRAPH_KEY}_distances",
            "params": {"n_neighbors": int(res.info["graph"].get("n_neighbors", 0)),
                       "method": "manifoldseg", "metric": "euclidean", "random_state": _random_seed(random_state)},
        }
    params = {
        "cell_diameter": cell_diameter, "refine_diameter": refine_diameter, "prior_key": prior_key,
        "spatial_key": spatial_key, "key_added": key_added,
        "n_neighbors": n_neighbors, "n_epochs": n_epochs, "embed_method": embed_method,
        "persistence": persistence, "background": background, "prior_extent": prior_extent,
        "nuclear_genes": nuclear_genes if isinstance(nuclear_genes, str) or nuclear_genes is None
        else [str(g) for g in nuclear_genes],
        "random_state": _random_seed(random_state),
        "tile_size": tile_size, "overlap": overlap,
    }
    summary = dict(res.info)
    if summary.get("nuclear_genes") is not None:  # gene indices -> names
        summary["nuclear_genes"] = [str(adata.var_names[j]) for j in summary["nuclear_genes"]]
        if summary["nuclear_genes"]:
            logger.info("nuclear contrast weighted towards nuclear-retained RNA: %s", ", ".join(summary["nuclear_genes"]))
    adata.uns[C.UNS_KEY] = {"params": _h5_safe(params), "summary": _h5_safe(summary)}
    logger.info(
        "segmented %d spots into %d cells (%.1f%% assigned) in %.1f s",
        len(res.labels), res.info["n_cells"], 100 * res.info["assigned_fraction"], time.perf_counter() - start,
    )
    return adata if copy else None


def _nuclear_genes(adata: AnnData, nuclear_genes):
    """``nuclear_genes`` of :func:`segment` as the pipeline takes it: ``"auto"``, ``None``, or column
    indices of the named genes (every name must be in ``var_names``)."""
    if nuclear_genes is None or (isinstance(nuclear_genes, str) and nuclear_genes == "auto"):
        return nuclear_genes
    if isinstance(nuclear_genes, str):
        raise ValueError(f"nuclear_genes={nuclear_genes!r} is not understood: pass 'auto', None, or a list of gene "
                         f"names such as [{nuclear_genes!r}].")
    names = [str(g) for g in nuclear_genes]
    index = adata.var_names.get_indexer(names)
    missing = [g for g, i in zip(names, index, strict=True) if i < 0]
    if missing:
        raise ValueError(f"nuclear_genes: {', '.join(map(repr, missing[:5]))} not in var_names; pass genes of the "
                         "panel, 'auto' to find them from the data, or None.")
    return [int(i) for i in index]


def _set_threads(n_jobs):
    """Set numba's thread count; returns the previous one."""
    import numba

    prev = numba.get_num_threads()
    if n_jobs is not None:
        if n_jobs == -1:
            n_jobs = numba.config.NUMBA_NUM_THREADS
        check_positive(n_jobs, "n_jobs")
        numba.set_num_threads(int(min(n_jobs, numba.config.NUMBA_NUM_THREADS)))
    return prev


def _h5_safe(obj):
    """Values that survive write_h5ad: dicts of scalars, strings and lists; None dropped."""
    if isinstance(obj, dict):
        return {str(k): _h5_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_h5_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def embed(
    adata: AnnData,
    *,
    neighbors_key: str = C.GRAPH_KEY,
    spatial_key: str = C.SPATIAL_KEY,
    n_epochs: int | None = None,
    method: str = "numba",
    key_added: str = C.EMBEDDING_KEY,
    random_state: int | np.random.Generator = 0,
    copy: bool = False,
) -> AnnData | None:
    """Embed the fused graph on UMAP's objective, initialised from the spatial coordinates.

    Parameters
    ----------
    adata
        With the fused graph from :func:`manifoldseg.pp.fused_graph`.
    neighbors_key
        Prefix of the graph in ``obsp``.
    spatial_key
        Coordinates used as the initial layout.
    n_epochs
        Layout epochs (default 20: the layout starts from the spatial coordinates).
    method
        ``"numba"`` (cached kernel, same objective as umap-learn) or ``"umap-learn"``
        (``umap.umap_.simplicial_set_embedding``).
    key_added
        ``obsm`` key of the embedding.
    random_state
        Seed of the layout.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with ``adata.obsm[key_added]`` (the embedding).
    """
    from ._embed import embed_array, spatial_init

    adata = adata.copy() if copy else _actual(adata)
    coords, _ = check_adata(adata, spatial_key=spatial_key)
    check_choice(method, "method", ("numba", "umap-learn"))
    graph = _graph_of(adata, neighbors_key)
    init = spatial_init(coords, graph)
    adata.obsm[key_added] = embed_array(graph, init, n_epochs=n_epochs, method=method,
                                        random_state=_random_seed(random_state))
    return adata if copy else None


def _stage_terms(adata: AnnData, use_rep: str, cell_diameter: float | None):
    """Counts, features and density terms shared by the stage-wise wrappers."""
    from ._segment import density_terms

    coords, X = check_adata(adata)
    if use_rep not in adata.obsm:
        raise KeyError(f"adata.obsm[{use_rep!r}] not found: run ms.pp.neighborhood_features(adata) first.")
    params = adata.uns.get(use_rep, {}).get("params", {})
    d = cell_diameter if cell_diameter is not None else params.get("cell_diameter")
    if d is None:
        raise ValueError("cell_diameter is unknown: pass cell_diameter= (um).")
    n_comp = int(params.get("n_components", 10))
    n_scales = len(params.get("scales", [0.25, 0.5, 1.0]))
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    feats = np.asarray(adata.obsm[use_rep])
    terms = density_terms(coords, counts, feats, cell_diameter=float(d), n_components=n_comp, n_scales=n_scales, X=X)
    return coords, counts, float(d), terms


def density_cluster(
    adata: AnnData,
    *,
    use_rep: str = C.EMBEDDING_KEY,
    neighbors_key: str = C.GRAPH_KEY,
    features_key: str = "X_neighborhood",
    cell_diameter: float | None = None,
    persistence: float = 0.3,
    key_added: str = "cell_candidate",
    copy: bool = False,
) -> AnnData | None:
    """Count-weighted density clustering of the embedding (cell candidates).

    Density: each spot's counts plus its graph neighbours' counts, weighted by a Gaussian of their
    distance in ``obsm[use_rep]``, times the nuclear contrast of the transcript density, times the
    exponential of the background score (dense, cell-specific RNA). Clusters:
    ToMATo mode seeking on the fused graph with persistence and size-aware merging
    (:func:`manifoldseg._kernels._density.tomato`); low-density, average-composition spots are
    noise (-1).

    Parameters
    ----------
    adata
        With ``obsm[use_rep]`` (:func:`embed`), ``obsm[features_key]``
        (:func:`manifoldseg.pp.neighborhood_features`) and the fused graph.
    use_rep, neighbors_key, features_key
        Embedding, graph and feature keys.
    cell_diameter
        Typical diameter (um); by default the one the features were computed with.
    persistence
        Log-density persistence below which peaks are merged.
    key_added
        ``obs`` column of the candidates (-1 = noise).
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with ``adata.obs[key_added]`` and ``adata.uns[key_added]`` (``peaks``: the
    densest spot of each candidate; ``params``).
    """
    from ._segment import AREA_WEIGHTING, area_mass, candidates_array

    adata = adata.copy() if copy else _actual(adata)
    if use_rep not in adata.obsm:
        raise KeyError(f"adata.obsm[{use_rep!r}] not found: run ms.tl.embed(adata) first.")
    graph = _graph_of(adata, neighbors_key)
    _, counts, d, terms = _stage_terms(adata, features_key, cell_diameter)
    labels, peaks = candidates_array(graph, np.asarray(adata.obsm[use_rep]), counts, terms, persistence=persistence,
                                     mass=area_mass(counts, terms, power=AREA_WEIGHTING[0]))
    adata.obs[key_added] = labels
    adata.uns[key_added] = {"peaks": np.asarray(peaks, dtype=np.int64),
                            "params": {"persistence": persistence, "cell_diameter": d, "use_rep": use_rep}}
    return adata if copy else None


def _log_density(adata, graph, counts, terms):
    """The density the candidates were found on (embedding density x nuclear contrast)."""
    from ._segment import cluster_log_density

    if C.EMBEDDING_KEY not in adata.obsm:
        return None
    return cluster_log_density(np.asarray(adata.obsm[C.EMBEDDING_KEY]), graph, counts, terms)


def refine(
    adata: AnnData,
    *,
    candidates_key: str = "cell_candidate",
    neighbors_key: str = C.GRAPH_KEY,
    features_key: str = "X_neighborhood",
    cell_diameter: float | None = None,
    prior_key: str | None = None,
    key_added: str = C.CELL_KEY,
    random_state: int | np.random.Generator = 0,
    copy: bool = False,
) -> AnnData | None:
    """Connectivity-aware refinement of cell candidates into cells.

    Seeds (each candidate's density peak, or the nuclei) flood the fused graph at the least
    expression-weighted geodesic cost; without a prior, the boundary between two peaks' cells
    then moves into the density valley between them (where the data hold nuclear-retained RNA,
    the valleys are measured with its nuclear contrast weighted more, so boundaries keep off
    nuclei); every cell is made one connected piece;
    fragments are merged into the neighbour they share most edge weight with; oversized cells are
    split; strays are regrown; low-density spots stay background (-1), and so, where the data hold
    nuclear-retained RNA (``ms.tl.segment``'s ``nuclear_genes``), do cells without it (no nucleus
    in the section).

    Parameters
    ----------
    adata
        With ``obs[candidates_key]`` from :func:`density_cluster` and the fused graph.
    candidates_key, neighbors_key, features_key
        Keys of the candidates, graph and features.
    cell_diameter
        Typical diameter (um); by default the one the features were computed with.
    prior_key
        Optional ``obs`` column of nucleus ids.
    key_added
        ``obs`` column of the refined labels; ``f"{key_added}_confidence"`` is written too.
    random_state
        Seed of the splitting of oversized cells.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or a copy, with ``adata.obs[key_added]`` and ``adata.obs[f"{key_added}_confidence"]``.
    """
    from ..pp._api import _prior
    from ._refine import confidence_array, refine_array
    from ._segment import AREA_WEIGHTING, area_mass, refine_log_density

    adata = adata.copy() if copy else _actual(adata)
    if candidates_key not in adata.obs or candidates_key not in adata.uns:
        raise KeyError(f"adata.obs[{candidates_key!r}] not found: run ms.tl.density_cluster(adata) first.")
    graph = _graph_of(adata, neighbors_key)
    dist_key = f"{neighbors_key}_distances"
    dist = adata.obsp[dist_key] if dist_key in adata.obsp else graph
    coords, counts, d, terms = _stage_terms(adata, features_key, cell_diameter)
    prior = _prior(adata, prior_key)
    log_density = refine_log_density(_log_density(adata, graph, counts, terms), terms, prior)
    labels = refine_array(
        graph, dist, coords, adata.obs[candidates_key].to_numpy().astype(np.int64),
        np.asarray(adata.uns[candidates_key]["peaks"], dtype=np.int64),
        area_mass(counts, terms, power=AREA_WEIGHTING[1]), terms["eligible"],
        cell_diameter=d, typical_mass=terms["typical_mass"], nucleus=prior, core=terms["core"],
        random_state=_random_seed(random_state), log_density=log_density, counts=counts,
        nuclear_counts=terms["nuclear_counts"], nuclear_share=terms["nuclear_share"],
    )
    adata.obs[key_added] = labels
    adata.obs[f"{key_added}{C.CONFIDENCE_SUFFIX}"] = confidence_array(graph, labels).astype(np.float32)
    return adata if copy else None


def aggregate(
    adata: AnnData,
    *,
    key: str = C.CELL_KEY,
    spatial_key: str = C.SPATIAL_KEY,
    boundaries: bool = True,
) -> AnnData:
    """Aggregate spots into a cells x genes AnnData.

    Parameters
    ----------
    adata
        Segmented spots with ``obs[key]`` (-1 = background).
    key
        ``obs`` column of the labels.
    spatial_key
        Coordinates key.
    boundaries
        Compute a boundary polygon per cell (concave hull of its spots, WKT).

    Returns
    -------
    A new AnnData, cells x genes, with

    ``X``
        Summed raw counts (CSR).
    ``obs``
        ``cell_id``, ``n_spots``, ``total_counts``, ``n_genes_by_counts``, ``mean_confidence`` (when
        the confidence column exists), ``area`` (um^2, of the boundary polygon) and ``boundary`` (WKT).
    ``obsm["spatial"]``
        Count-weighted centroids.
    ``uns["manifoldseg"]``
        ``spot_to_cell`` (the row of each input spot's cell, -1 = background),
        ``background_counts`` (per gene: counts left outside cells; cells plus background = input).
    """
    from ._aggregate import aggregate_arrays

    coords, X = check_adata(adata, spatial_key=spatial_key)
    if key not in adata.obs:
        raise KeyError(f"adata.obs[{key!r}] not found: run ms.tl.segment(adata) first, or pass key=.")
    raw = adata.obs[key].to_numpy()
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"adata.obs[{key!r}] must hold integer cell ids (-1 = background).")
    raw = np.where(np.isfinite(raw.astype(np.float64)), raw, -1).astype(np.int64)
    # cells are numbered 0..k-1 in order of their ids
    ids = np.unique(raw[raw >= 0])
    labels = np.full(raw.shape, -1, dtype=np.int64)
    labels[raw >= 0] = np.searchsorted(ids, raw[raw >= 0])
    conf_key = f"{key}{C.CONFIDENCE_SUFFIX}"
    conf = adata.obs[conf_key].to_numpy().astype(np.float64) if conf_key in adata.obs else None
    cells_X, table, cen, _, bg = aggregate_arrays(coords, X, labels, conf, with_boundaries=boundaries)
    table["cell_id"] = ids
    table.index = [f"cell_{i}" for i in ids]
    cells = AnnData(X=cells_X.astype(np.float32), obs=table, var=adata.var.copy())
    cells.obsm[C.SPATIAL_KEY] = cen
    cells.uns[C.UNS_KEY] = {
        "spot_to_cell": labels,
        "background_counts": bg.astype(np.float64),
        "key": key,
        "n_spots": int(len(labels)),
    }
    return cells
