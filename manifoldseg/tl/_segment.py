"""The whole pipeline on arrays: scale -> features -> fused graph -> embedding -> density -> refine."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ..pp._background import background_threshold
from ..pp._features import DEFAULT_SCALES, neighborhood_features_array
from ..pp._graph import fused_graph_array
from ..pp._nuclear import nuclear_gene_weights
from ..pp._scale import resolve_diameter
from ..pp._smooth import Grid, grid_pixel
from ._cluster import density_cluster_array, embedding_bandwidth, embedding_density
from ._embed import embed_array, median_edge, spatial_init
from ._refine import confidence_array, refine_array, typical_feature_distance

logger = logging.getLogger("manifoldseg")

#: powers of :func:`area_mass` for the candidates' and the refinement's mass (see segment_array)
AREA_WEIGHTING = (0.5, 1.0)


@dataclass
class SegmentResult:
    """Everything one segmentation run produces, as arrays."""

    labels: np.ndarray
    confidence: np.ndarray
    embedding: np.ndarray
    graph: sparse.csr_matrix
    distances: sparse.csr_matrix
    candidates: np.ndarray
    info: dict = field(default_factory=dict)
    #: the density peak (spot index) of each candidate: the refinement's seeds without a prior
    peaks: np.ndarray | None = None
    #: the field the candidates climbed (:func:`candidates_array`; -inf where not eligible), for
    #: diagnostics of the seeds (``benchmarks/seeds.py``)
    field: np.ndarray | None = None


def auto_neighbors(coords: np.ndarray, cell_diameter: float, *, low: int = 6, high: int = 40) -> int:
    """Graph neighbours for about two-thirds of the spots within a quarter cell diameter.

    Spot density is measured where there are spots (the 10th-neighbour radius), so 2 um bins get
    a sparse graph and dense transcripts a wide one: every spot's neighbourhood spans about the
    same physical size, well inside one cell.
    """
    from scipy.spatial import cKDTree

    n = coords.shape[0]
    if n < 3:
        return max(1, n - 1)
    sample = coords[:: max(1, n // 20000)]
    k = int(min(10, n - 1))
    r, _ = cKDTree(coords).query(sample, k=k + 1)
    rk = float(np.median(r[:, -1]))
    if rk <= 0:
        return low
    dims = coords.shape[1]
    density = k / (np.pi * rk**2) if dims == 2 else k / (4.0 / 3.0 * np.pi * rk**3)
    area = np.pi * (cell_diameter / 4.0) ** 2 if dims == 2 else 4.0 / 3.0 * np.pi * (cell_diameter / 4.0) ** 3
    return int(np.clip(round(0.65 * density * area), low, high))


def density_terms(
    coords: np.ndarray,
    counts: np.ndarray,
    features: np.ndarray,
    *,
    cell_diameter: float,
    n_components: int,
    n_scales: int,
    background: bool = True,
    hysteresis: float = 0.35,
    contrast_scales: tuple[float, float] = (1 / 8, 1 / 2),
    threshold: float | None = None,
    typical_mass: float | None = None,
    origin: np.ndarray | None = None,
    spec_block: int = 2,
    spec_weight: float = 0.5,
    density_scale: str = "mid",
    X: sparse.csr_matrix | None = None,
    nuclear_weights: np.ndarray | str | None = "auto",
    nuclear_genes=None,
    nuclear_share: float | None = None,
) -> dict:
    """Physical density terms: background mask, typical cell mass and the nuclear contrast.

    ``threshold`` and ``typical_mass``, when given (section-wide values for a tile), replace the
    values measured on this input; ``origin`` anchors the smoothing grid. ``nuclear_weights``:
    per-gene weights of the nuclear contrast (``"auto"``: :func:`nuclear_gene_weights` on ``X``;
    ``None``: every gene weighs 1; a tile is given the section's), kept in ``terms``; with
    ``"auto"``, ``nuclear_genes`` (column indices) names the genes instead of the data's tests.

    - Background score: log local density (sigma d/4; ``density_scale``) plus ``spec_weight`` x the
      log distance of the local composition from the tissue's average (ambient RNA is a mixture of
      all cells; a cell's composition is its type's: true of the simulator, contradicted on the
      real sets in ``../shared/data``, where off-cell RNA is spill-over, processes and decoding
      noise; a known limit, see issue 3's notes), the composition taken from feature block
      ``spec_block`` (2: sigma d/4, about a cell's own transcripts; block 1, sigma d/8, is too
      noisy for faint cells and 2 um bins). Threshold: Otsu (:func:`background_threshold`) with
      each spot weighted by its share of the area (1 / local spot density): transcripts sample
      dense places more often than sparse ones and bins do not, and per spot the threshold on one
      tissue was 0.17 higher as transcripts than as 1 um bins; per area the two agree (simulated
      transcripts: in-cell assigned 0.89 -> 0.92; CosMx: F1 0.565 / 0.582 -> 0.602 / 0.585,
      nuclei kept whole 0.45 -> 0.55 / 0.53).
      Hysteresis: cells are seeded above the threshold (``core``) and may extend ``hysteresis``
      below it (``eligible``); ``score`` is kept.
    - Typical cell mass: median density at sigma d/8 in cells times the area of a disc of diameter d
      (in 3D times the slab thickness, at most d).
    - Nuclear contrast: log density at sigma d/8 minus twice the log density at sigma d/2 (a
      difference of Gaussians in log space that is independent of a cell's library size), of the
      counts weighted by ``nuclear_weights`` when some gene is found nuclear-retained (broadly
      expressed and concentrated where RNA is dense: :func:`nuclear_gene_weights`), else of the
      counts.
    - The smoothed densities (``density``: sigma d/8, d/4, d/2) and their median in cells
      (``median_density``), for :func:`area_mass`.
    - With nuclear-retained genes: their columns (``nuclear_genes``), their counts per spot
      (``nuclear_counts``) and their share of the counts of the ``core`` spots (``nuclear_share``;
      the section's when given), for the refinement's test of cells without a nucleus
      (:func:`manifoldseg.tl._refine.drop_nucleus_less`). Otherwise [], None and None.
    """
    d = float(cell_diameter)
    grid = Grid(coords, grid_pixel(coords, d / 8.0), anchor=origin)
    small = grid.smooth(counts, d / 8.0)
    mid = grid.smooth(counts, d / 4.0)
    large = grid.smooth(counts, d / 2.0)
    if isinstance(nuclear_weights, str):
        nuclear_weights = (nuclear_gene_weights(coords, X, counts, small, large, d, genes=nuclear_genes)
                           if X is not None else None)
    if nuclear_weights is None:
        c_small = small if contrast_scales[0] == 1 / 8 else grid.smooth(counts, d * contrast_scales[0])
        c_large = large if contrast_scales[1] == 1 / 2 else grid.smooth(counts, d * contrast_scales[1])
    else:
        weighted = np.asarray(X @ nuclear_weights).ravel()
        c_small = grid.smooth(weighted, d * contrast_scales[0])
        c_large = grid.smooth(weighted, d * contrast_scales[1])
    k = n_components + 1
    b = min(spec_block, n_scales - 1)
    specificity = np.linalg.norm(features[:, b * k : b * k + k - 1], axis=1)
    dens = {"small": small, "mid": mid, "large": large}[density_scale]
    bg_score = np.log(np.maximum(dens, 1e-12)) + spec_weight * np.log(specificity + 1e-3)
    if not background:
        thr = -np.inf
    elif threshold is None:
        spot_density = grid.smooth(np.ones_like(counts), d / 4.0)  # spots per um2
        thr = background_threshold(bg_score, 1.0 / np.maximum(spot_density, 1e-9))
    else:
        thr = float(threshold)
    core = bg_score >= thr
    eligible = bg_score >= thr - hysteresis
    in_cells = small[eligible] if eligible.any() else small
    # a disc of diameter d; in 3D a section of the slab (cells are cut by thin sections)
    volume = np.pi * d**2 / 4.0
    if coords.shape[1] == 3:
        volume *= min(float(np.ptp(coords[:, 2])) + grid.pixel, d)
    if typical_mass is None:
        typical_mass = float(np.median(in_cells)) * volume if len(in_cells) else 1.0
    contrast = np.log(np.maximum(c_small, 1e-12)) - 2.0 * np.log(np.maximum(c_large, 1e-12))
    med = typical_mass / volume  # median density in cells (section-wide when typical_mass is given)
    nuclear_counts, nuclear_genes = None, []
    if nuclear_weights is not None:
        nuclear_genes = np.flatnonzero(nuclear_weights != 1.0).tolist()
        nuclear_counts = np.asarray(X[:, nuclear_genes].sum(axis=1)).ravel().astype(np.float64)
        if nuclear_share is None:
            in_core = float(counts[core].sum())
            nuclear_share = float(nuclear_counts[core].sum()) / in_core if in_core > 0 else None
    else:
        nuclear_share = None
    return {"core": core, "eligible": eligible, "score": bg_score, "typical_mass": max(typical_mass, 1e-9), "threshold": thr,
            "contrast": contrast, "log_large": np.log(np.maximum(large, 1e-12)),
            "density": {"small": small, "mid": mid, "large": large}, "median_density": med,
            "nuclear_weights": nuclear_weights, "nuclear_genes": nuclear_genes, "nuclear_counts": nuclear_counts,
            "nuclear_share": nuclear_share}


def area_mass(counts: np.ndarray, terms: dict, scale: str = "mid", floor: float = 0.05,
              power: float = 1.0) -> np.ndarray:
    """Counts rescaled by the local density: a spot's share of area, in units of typical-cell counts.

    ``counts * median density / local density`` sums to about the same over a typical cell as the
    counts do, but a faint cell weighs as much as a bright one of the same size, so that size
    limits (fragments, oversized cells) do not depend on library size (lognormal library sizes make
    faint cells look like fragments and bright cells like two cells). ``scale``: the smoothing of
    the local density (``"mid"``, sigma d/4); ``floor``: the local density is taken as at least
    this share of the median (background spots do not weigh 1/density); ``power``: 1 weighs by
    area, 0 by counts.
    """
    local = terms["density"][scale]
    return counts * (terms["median_density"] / np.maximum(local, floor * terms["median_density"])) ** power


def cluster_log_density(
    embedding: np.ndarray, graph: sparse.csr_matrix, counts: np.ndarray, terms: dict, *, density_mode: str = "both"
) -> np.ndarray:
    """The log density candidates are found on: count-weighted embedding density x nuclear contrast.

    ``density_mode="embedding"`` or ``"physical"`` keeps one of the two factors; ``terms["bandwidth"]``
    (optional) fixes the embedding density's kernel width.
    """
    if density_mode == "physical":
        return terms["contrast"] + terms["log_large"]
    rho = embedding_density(embedding, graph, counts, terms.get("bandwidth"))
    log_rho = np.log(np.maximum(rho, 1e-12))
    return log_rho if density_mode == "embedding" else log_rho + terms["contrast"]


def candidates_array(
    graph: sparse.csr_matrix,
    embedding: np.ndarray,
    counts: np.ndarray,
    terms: dict,
    *,
    persistence: float = 0.3,
    max_merge: float = 1.3,
    min_fraction: float = 0.25,
    density_mode: str = "both",
    mass: np.ndarray | None = None,
    score_weight: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cell candidates: ToMATo on count-weighted embedding density x nuclear contrast.

    The log density (without the score term) is stored in ``terms["log_density"]`` for the
    refinement, the field climbed in ``terms["field"]``. ``score_weight``: the field ToMATo climbs
    is the log density plus this multiple of the background score (``terms["score"]``: log
    physical density at sigma d/4 plus half the log specificity of the local composition). Faint
    cells sit near the background's density in the embedding and are merged into a neighbour as
    too small or too shallow a peak; the score lifts places that look like a cell's own RNA. Measured 2026-12-04 on 5 seeds (median F1, with
    ``area_weighting=(0.5, 1.0)``): simulated bins 1 um 0.695 -> 0.759, bins 2 um 0.686 -> 0.706,
    transcripts 0.718 -> 0.744; CosMx FOV2 0.602 -> 0.614, FOV3 0.603 -> 0.649; ARI up on all five.
    Refining on the combined field as well gave nothing more.
    """
    log_rho = cluster_log_density(embedding, graph, counts, terms, density_mode=density_mode)
    terms["log_density"] = log_rho
    if score_weight:
        log_rho = log_rho + score_weight * terms["score"]
    log_rho = np.where(terms["eligible"], log_rho, -np.inf)
    terms["field"] = log_rho
    typical = terms["typical_mass"]
    return density_cluster_array(
        graph, log_rho, counts if mass is None else mass, persistence=persistence, max_mass=max_merge * typical,
        min_mass=min_fraction * 0.8 * typical, min_log_density=-1e300,
    )


def refine_log_density(log_density: np.ndarray | None, terms: dict, nucleus: np.ndarray | None = None,
                       nuclear_weight: float = 1.0) -> np.ndarray | None:
    """The density the refinement's valleys are measured on: the candidates' ``log_density``, plus,
    where nuclear-retained genes are used, ``nuclear_weight`` x the nuclear contrast as a z-score
    over eligible spots (clipped to +-3).

    The candidates' field already holds the contrast once (:func:`cluster_log_density`); weighting
    it more in the refinement puts the boundaries between cells (the valley flood, the merges of
    cells no valley separates) further from nuclei, where the nuclear RNA says one lies. The
    z-score makes the weight independent of the contrast's spread. Measured 2026-12-07 on CosMx
    seeds 0-44 (medians, weight 1 against 0): FOV2 ARI 0.691 -> 0.694, nuclei kept whole 0.625 ->
    0.641; FOV3 ARI 0.832 -> 0.843, nuclei kept whole 0.623 -> 0.642, background assigned 0.233
    -> 0.217; F1 unchanged on both (0.629, 0.752); weights 2 and 3 gave no more (seeds 0-8). On simulated
    transcripts with 10 % nuclear-retained RNA (seeds 0-2) F1 0.859 -> 0.864. Without nuclear
    genes, with a nuclear prior (``nucleus``: the nuclei are the seeds) or with ``nuclear_weight``
    0, the field is the candidates' as is.
    """
    genes = terms.get("nuclear_genes")
    if log_density is None or nucleus is not None or not nuclear_weight or genes is None or len(genes) == 0:
        return log_density
    c = terms["contrast"]
    ok = terms["eligible"] & np.isfinite(c)
    if ok.sum() < 2:
        return log_density
    sd = float(np.std(c[ok]))
    if sd <= 0:
        return log_density
    z = np.clip((c - float(np.median(c[ok]))) / sd, -3.0, 3.0)
    return log_density + nuclear_weight * np.where(np.isfinite(z), z, 0.0)


def manifold_stages(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    counts: np.ndarray,
    *,
    cell_diameter: float,
    section: dict | None = None,
    spot_ids: np.ndarray | None = None,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    n_components: int = 10,
    n_neighbors: int | None = None,
    loadings: tuple[np.ndarray, np.ndarray] | None = None,
    background: bool = True,
    hysteresis: float = 0.35,
    contrast_scales: tuple[float, float] = (1 / 8, 1 / 2),
    n_epochs: int | None = None,
    target_edge: float = 1.0,
    negative_window: float = 0.75,
    embed_kwargs: dict | None = None,
    embed_method: str = "numba",
    background_kwargs: dict | None = None,
    nuclear_genes="auto",
    random_state: int = 0,
    tick=None,
) -> dict:
    """Steps 2-4 and the density terms: features, fused graph, layout and :func:`density_terms`.

    The one chain of stages that both :func:`segment_array` and :func:`section_parameters` run, so
    that the section-wide values a tile is given are measured exactly as the tile would measure
    them. ``section`` (from :func:`section_parameters`) fixes the section-wide values; ``tick(name)``
    is called after each stage (progress and timings). ``nuclear_genes``: see :func:`segment_array`
    (a section's weights, when given, take its place).
    """
    sec = section or {}
    tick = tick or (lambda name: None)
    d = float(cell_diameter)
    feats, _, finfo = neighborhood_features_array(
        coords, X, cell_diameter=d, scales=scales, n_components=n_components, random_state=random_state,
        loadings=sec.get("loadings") if loadings is None else loadings, block_stats=sec.get("block_stats"),
        origin=sec.get("origin"),
    )
    tick("features")
    if n_neighbors is None:
        n_neighbors = sec.get("n_neighbors") or auto_neighbors(coords, d)
    graph, dist, ginfo = fused_graph_array(coords, feats, n_neighbors=n_neighbors,
                                           spatial_radius=sec.get("spatial_radius"), ids=spot_ids)
    tick("graph")
    edge = sec.get("edge_length")
    edge = median_edge(coords, graph) if edge is None else float(edge)
    init = spatial_init(coords, graph, target_edge=target_edge, edge_length=edge, origin=sec.get("origin"))
    emb = embed_array(graph, init, n_epochs=n_epochs, method=embed_method, random_state=random_state,
                      coords=coords, ids=spot_ids, negative_window=negative_window * d,
                      origin=sec.get("origin"), **(embed_kwargs or {}))
    tick("embed")
    terms = density_terms(coords, counts, feats, cell_diameter=d, n_components=finfo["n_components"],
                          n_scales=len(scales), background=background, hysteresis=hysteresis,
                          contrast_scales=contrast_scales, threshold=sec.get("threshold"),
                          typical_mass=sec.get("typical_mass"), origin=sec.get("origin"), X=X,
                          **_nuclear_kwargs(sec, nuclear_genes), **(background_kwargs or {}))
    if sec.get("bandwidth") is not None:
        terms["bandwidth"] = float(sec["bandwidth"])
    return {"features": feats, "features_info": finfo, "graph": graph, "distances": dist, "graph_info": ginfo,
            "n_neighbors": n_neighbors, "edge_length": edge, "embedding": emb, "terms": terms}


def _nuclear_kwargs(section: dict, nuclear_genes) -> dict:
    """:func:`density_terms`' nuclear keywords: the section's weights when it has them, else
    ``nuclear_genes`` (``"auto"``, ``None`` or empty: off, or column indices)."""
    if "nuclear_weights" in section:
        return {"nuclear_weights": section["nuclear_weights"], "nuclear_share": section.get("nuclear_share")}
    if isinstance(nuclear_genes, str):
        if nuclear_genes != "auto":
            raise ValueError(f"nuclear_genes={nuclear_genes!r}: pass 'auto', None or a list of genes")
        return {"nuclear_weights": "auto"}
    if nuclear_genes is None or len(nuclear_genes) == 0:
        return {"nuclear_weights": None}
    return {"nuclear_weights": "auto", "nuclear_genes": np.asarray(nuclear_genes, dtype=np.int64)}


def section_parameters(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    cell_diameter: float,
    origin: np.ndarray | None = None,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    n_components: int = 10,
    loadings: tuple[np.ndarray, np.ndarray] | None = None,
    random_state: int = 0,
    **stage_kwargs,
) -> dict:
    """Section-wide parameters, measured once (on a sample of the section) and given to every tile.

    Every quantity :func:`segment_array` would otherwise measure on its own input: the gene axes,
    the standardisation of the feature blocks, the graph's neighbour count and spatial radius, the
    median edge and origin of the layout's start, the embedding density's kernel width (from a
    layout of the sample), the background threshold, the typical cell mass, the nuclear gene
    weights and the median feature distance of the flood costs. They are measured by the same
    :func:`manifold_stages` a tile runs (``stage_kwargs`` go to it). With them (and global spot ids) a tile segments its interior as
    the whole section would.
    """
    from ..pp._features import global_loadings

    coords = np.ascontiguousarray(coords, dtype=np.float64)
    d = float(cell_diameter)
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    if loadings is None:
        loadings = global_loadings(coords, X, cell_diameter=d, scales=scales, n_components=n_components,
                                   random_state=random_state)
    origin = coords.min(axis=0) if origin is None else np.asarray(origin, dtype=np.float64)
    st = manifold_stages(coords, X, counts, cell_diameter=d, section={"loadings": loadings, "origin": origin},
                         scales=scales, n_components=n_components, random_state=random_state, **stage_kwargs)
    finfo, graph, dist, terms = st["features_info"], st["graph"], st["distances"], st["terms"]
    return {
        "loadings": loadings,
        "bandwidth": embedding_bandwidth(st["embedding"], graph),
        "block_stats": (finfo["block_means"], finfo["block_scales"]),
        "n_neighbors": st["n_neighbors"],
        "spatial_radius": st["graph_info"].get("spatial_radius_um"),
        "edge_length": st["edge_length"],
        "origin": origin,
        "threshold": terms["threshold"] if np.isfinite(terms["threshold"]) else None,
        "typical_mass": terms["typical_mass"],
        "feature_distance": typical_feature_distance(dist),
        "nuclear_weights": terms["nuclear_weights"],
        "nuclear_share": terms["nuclear_share"],
    }


def segment_array(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    cell_diameter: float | None = None,
    refine_diameter: bool | None = True,
    prior: np.ndarray | None = None,
    scales: tuple[float, ...] = DEFAULT_SCALES,
    n_components: int = 10,
    n_neighbors: int | None = None,
    n_epochs: int | None = None,
    embed_method: str = "numba",
    persistence: float = 0.3,
    min_fraction: float = 0.25,
    max_fraction: float = 4.0,
    background: bool = True,
    random_state: int = 0,
    progress: bool = False,
    density_mode: str = "both",
    hysteresis: float = 0.35,
    prior_extent: float = 0.8,
    max_merge: float = 1.3,
    contrast_scales: tuple[float, float] = (1 / 8, 1 / 2),
    valley_depth: float = 0.15,
    refine_kwargs: dict | None = None,
    area_weighting: tuple[float, float] = AREA_WEIGHTING,
    score_weight: float = 1.0,
    mass_scale: str = "mid",
    mass_floor: float = 0.05,
    background_kwargs: dict | None = None,
    loadings: tuple[np.ndarray, np.ndarray] | None = None,
    target_edge: float = 1.0,
    negative_window: float = 0.75,
    embed_kwargs: dict | None = None,
    nuclear_genes="auto",
    spot_ids: np.ndarray | None = None,
    section: dict | None = None,
    timings: dict | None = None,
    seed_points: np.ndarray | None = None,
) -> SegmentResult:
    """Segment spots or transcripts into cells. Coordinates in um, counts CSR. See ``ms.tl.segment``.

    ``spot_ids`` (global row of each spot) and ``section`` (section-wide parameters from
    :func:`section_parameters`) are given by the tiled run, so that a tile computes what the whole
    section would compute for its interior.

    ``area_weighting``: the power of :func:`area_mass` used as the mass of the candidates' size
    limits and of the refinement's (0 = counts, 1 = area). Refinement by area (fragments, merges
    and oversized cells judged by size, not by library size) helps on simulated and CosMx data;
    candidates by area (``(1.0, 1.0)``) helps more on simulated data (F1 +0.03-0.05) but
    over-segments CosMx (F1 -0.04 to -0.08); halfway (``0.5``) with ``score_weight=1`` gains on
    both (see :func:`candidates_array`). ``background_kwargs`` go to :func:`density_terms`.

    ``refine_diameter``: a given ``cell_diameter`` is a prior combined with the data's estimate
    (:func:`manifoldseg.pp._scale.resolve_diameter`); ``False`` uses it as is (warning when the data
    disagrees); ``None`` uses it as is without looking at the data (the tiles of a section, which
    share the diameter resolved once for the section).

    ``nuclear_genes``: the nuclear-retained genes the nuclear contrast is weighted towards
    (:func:`manifoldseg.pp._nuclear.nuclear_gene_weights`) and, without a prior, cells lacking
    them are left as background (:func:`manifoldseg.tl._refine.drop_nucleus_less`): ``"auto"``
    (found from the data), column indices (the user's), or ``None`` / empty (neither).

    ``prior_extent``: with a nuclear prior, the flood may reach spots whose background score is up
    to this far below the threshold (``hysteresis`` without a prior): a nucleus vouches for its
    cell, so the faint cytoplasm around it is kept (simulated F1 with the prior +0.02 to +0.06).

    ``seed_points``: spot indices that replace the candidates' density peaks as the refinement's
    seeds (RNA only). A diagnostic, not an option for users: ``benchmarks/seeds.py`` places one at
    each reference cell's centroid to measure what the refinement reaches with ideal seeds.
    """
    if seed_points is not None:
        if prior is not None:
            raise ValueError("seed_points replaces the density peaks of an RNA-only run; with a nuclear prior the "
                             "nuclei are the seeds: pass one or the other")
        seed_points = np.asarray(seed_points, dtype=np.int64).ravel()
        if len(np.unique(seed_points)) != len(seed_points) or (
                len(seed_points) and (seed_points.min() < 0 or seed_points.max() >= len(coords))):
            raise ValueError(f"seed_points must be distinct spot indices in 0..{len(coords) - 1}")
    t0 = time.perf_counter()
    times = {} if timings is None else timings
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    n = coords.shape[0]
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    if n < 3 or not np.any(counts > 0):
        logger.warning("%d spots with %g counts in all: too little to segment; everything is background",
                       n, counts.sum())
        return _empty_result(coords, cell_diameter, t0)

    from tqdm.auto import tqdm

    bar = tqdm(total=6, desc="manifoldseg", unit="stage", disable=not progress, leave=False)

    clock = [time.perf_counter()]

    def tick(name):
        now = time.perf_counter()
        times[name] = round(now - clock[0], 3)
        clock[0] = now
        bar.set_postfix_str(name)
        bar.update(1)

    if cell_diameter is not None and refine_diameter is None:
        d, method, dinfo = float(cell_diameter), "given", {}
    else:
        d, method, dinfo = resolve_diameter(coords, counts, prior, cell_diameter, refine=bool(refine_diameter))
    tick("scale")
    sec = section or {}
    st = manifold_stages(
        coords, X, counts, cell_diameter=d, section=sec, spot_ids=spot_ids, scales=scales,
        n_components=n_components, n_neighbors=n_neighbors, loadings=loadings, background=background,
        hysteresis=hysteresis, contrast_scales=contrast_scales, n_epochs=n_epochs, target_edge=target_edge,
        negative_window=negative_window, embed_kwargs=embed_kwargs, embed_method=embed_method,
        background_kwargs=background_kwargs, nuclear_genes=nuclear_genes, random_state=random_state, tick=tick,
    )
    graph, dist, emb, terms = st["graph"], st["distances"], st["embedding"], st["terms"]
    finfo, ginfo = st["features_info"], st["graph_info"]
    cand_mass, refine_mass = (counts if w == 0 else area_mass(counts, terms, mass_scale, mass_floor, w)
                              for w in area_weighting)
    cand, peaks = candidates_array(graph, emb, counts, terms, mass=cand_mass, persistence=persistence,
                                   max_merge=max_merge, min_fraction=min_fraction, density_mode=density_mode,
                                   score_weight=score_weight)
    if seed_points is not None:
        peaks = seed_points
    eligible, typical_mass, thr = terms["eligible"], terms["typical_mass"], terms["threshold"]
    # a nucleus vouches for its cell: with a prior, cells may reach further into faint cytoplasm
    reach = eligible if prior is None else terms["score"] >= thr - max(prior_extent, hysteresis)
    tick("cluster")
    labels = refine_array(
        graph, dist, coords, cand, peaks, refine_mass, reach, cell_diameter=d, typical_mass=typical_mass,
        nucleus=prior, random_state=random_state, core=terms["core"],
        log_density=refine_log_density(terms["log_density"], terms, prior),
        feature_distance=sec.get("feature_distance"), counts=counts,
        nuclear_counts=terms["nuclear_counts"], nuclear_share=terms["nuclear_share"],
        **{"min_fraction": min_fraction, "max_fraction": max_fraction, "valley_depth": valley_depth,
           **(refine_kwargs or {})},
    )
    conf = confidence_array(graph, labels)
    tick("refine")
    bar.close()
    info = {
        "cell_diameter": d,
        "cell_diameter_method": method,
        **dinfo,
        "typical_cell_counts": typical_mass,
        "background_log_density": float(thr) if np.isfinite(thr) else None,
        "nuclear_genes": terms["nuclear_genes"],
        "n_candidates": int(cand.max() + 1) if (cand >= 0).any() else 0,
        "n_cells": int(labels.max() + 1) if (labels >= 0).any() else 0,
        "assigned_fraction": float((labels >= 0).mean()) if n else 0.0,
        "features": {k: v for k, v in finfo.items() if k not in ("block_means", "block_scales")},
        "graph": ginfo,
        "seconds": round(time.perf_counter() - t0, 3),
        "timings": times,
    }
    return SegmentResult(labels, conf, emb, graph, dist, cand, info, peaks=np.asarray(peaks, dtype=np.int64),
                         field=terms["field"])


def _empty_result(coords: np.ndarray, cell_diameter: float | None, t0: float) -> SegmentResult:
    """All background: the result for inputs with fewer than three spots or no counts."""
    n = coords.shape[0]
    empty = sparse.csr_matrix((n, n), dtype=np.float32)
    info = {"cell_diameter": float(cell_diameter) if cell_diameter else float("nan"),
            "cell_diameter_method": "given" if cell_diameter else "none", "n_candidates": 0, "n_cells": 0,
            "assigned_fraction": 0.0, "features": {}, "graph": {"n_neighbors": 0},
            "seconds": round(time.perf_counter() - t0, 3), "timings": {}}
    return SegmentResult(np.full(n, -1, dtype=np.int64), np.zeros(n), np.asarray(coords, dtype=np.float32),
                         empty, empty.copy(), np.full(n, -1, dtype=np.int64), info,
                         peaks=np.zeros(0, dtype=np.int64))
