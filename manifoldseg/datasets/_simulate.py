"""A simulated tissue whose true cells are known.

The tissue is built on a fine raster (``resolution`` um):

1. **Seeds** of varied size by dart throwing (a Poisson-disc sample with per-seed radii; numba
   kernel in :mod:`manifoldseg._kernels._simulate`), including a margin around the area so that
   cells at the border are cut like in a real field of view.
2. **Cells**: a power diagram (weighted Voronoi, distance ``|p - s|^2 - r^2``) of the seeds,
   with per-seed elongation along a smooth orientation field, computed on coordinates warped by a
   smooth random displacement field so that boundaries are irregular; each cell is capped at ``1.3`` times its radius from its seed.
3. **Gaps**: a smooth random field removes whole groups of seeds, leaving empty gaps between
   groups of cells; fragments and cells outside the size range are dropped.
4. **Nuclei**: an ellipse whose diameter is a fraction (``nucleus_size``) of the cell's equivalent
   diameter, centred at the cell's innermost point and clipped to the cell.
5. **Types**: spatially clustered cell types; a type's profile is a shared baseline plus its own
   marker genes; each cell's profile varies around its type's profile.
6. **Transcripts**: per cell a lognormal library size (proportional to area), placed uniformly in
   the cell with ``nucleus_density`` times the density in the nucleus, then diffused by a Gaussian
   of ``diffusion`` um; ambient background transcripts fill the space outside cells.

Default difficulty is set from the real sets in ``../shared/data`` (measured for this module,
control probes removed):

- CosMx Lung12 (NanoString's own segmentation, 960 targets): FOV2 67 cells, median 131 (mean
  146) transcripts per cell, 21% of transcripts outside cells; FOV3 53 cells, median 167 (mean
  170), 31% outside; cell masks: median equivalent diameter 11.4 / 12.6 um (10-90%: 7.0-15.3 um),
  45-53% of the area covered by cells; 0.88-0.93 transcripts per um2; log-sd of transcripts per
  cell 0.85-1.1.
- MERSCOPE mouse brain (450 genes, Vizgen polygons, per z-plane): median 28-30 transcripts per
  cell per plane, 58-61% outside cells, median equivalent diameter 8.6-8.8 um, 0.16-0.20
  transcripts per um2 per plane.

Hence the defaults: 500 genes, 150 transcripts per cell on average, 20% background, 35% of the
area in gaps, equivalent diameters about 7-18 um (median about 11 um), library-size log-sd 0.5
on top of the area effect.

Where RNA lies (``benchmarks/realism.py``, 2026-12-07): on the CosMx FOVs RNA clumps, in cells
(same-cell pairs within 1 um, per unit area, 1.29-1.32x those within 3 um; 1.44-1.48x at 0.5 um)
and more so between cells (1.36-1.44x, 1.78-1.90x), and off-cell RNA lies in narrow gaps (median
2.7-3.4 um from the nearest in-cell transcript); cells are elongated (median ratio of principal
sds 1.52-1.59) and varied in size (diameter CV 0.28-0.36). The defaults place RNA as a Poisson
process (1.15x, 1.06x) diffused by 0.6 um in wide gaps (median about 5 um), in rounder, more even
cells (1.36-1.40, 0.25). ``clumping=2, background_clumping=4, diffusion=0.3, gap_scale=12,
gap_fraction=0.45, elongation=0.6, cell_diameter=(7, 22), transcripts_per_cell=190`` match all of
these. On CosMx, cells are also alike in expression: any two cells' gene counts are nearly as
alike as one cell's two halves (cosine ratio 0.78-0.79; 0.38 at the defaults) and touching cells
more alike still (distinctness 0.25-0.62; 0.87 at the defaults), which ``marker_fraction=0.05,
type_clustering=8`` match (0.78, about 0.5). All of these together are ``benchmarks/accuracy.py``'s
``COSMX_CALIBRATED`` (a no-target case there). The defaults stay as they are: the targets are set
on them, and the calibrated tissue does not yet make simulated gains carry over to CosMx (see
issue 3's notes).
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import ndimage, sparse
from scipy.spatial import cKDTree

from .._constants import BACKGROUND, NUCLEUS_KEY, SPATIAL_KEY, TRUTH_KEY, TYPE_KEY

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

logger = logging.getLogger("manifoldseg")

_MODES = ("bins", "transcripts")
_BACKGROUND_TYPE = "background"
_CAP = 1.3  # a cell reaches at most this many radii from its seed
_PACKING = 0.74  # dart-throwing overlap factor (calibrated so cells tile at their drawn sizes)
_THIN_SPACE = 0.08  # share of the area between cells when gap_fraction=0 (measured)
_CHUNK = 1 << 19  # pixels per power-diagram query


def simulate(
    *,
    mode: Literal["bins", "transcripts"] = "bins",
    width: float = 250.0,
    height: float = 250.0,
    depth: float | None = None,
    bin_size: float = 1.0,
    n_types: int = 6,
    n_genes: int = 500,
    markers_per_type: int = 10,
    marker_fraction: float = 0.25,
    transcripts_per_cell: float = 150.0,
    library_size_sd: float = 0.5,
    cell_variability: float = 0.3,
    background_fraction: float = 0.2,
    false_positive_fraction: float = 0.0,
    clumping: float = 0.0,
    background_clumping: float = 0.0,
    diffusion: float = 0.6,
    cell_diameter: tuple[float, float] = (7.0, 18.0),
    elongation: float = 0.3,
    gap_fraction: float = 0.35,
    gap_scale: float = 30.0,
    type_clustering: float = 1.5,
    nucleus_size: tuple[float, float] = (0.4, 0.6),
    nucleus_density: float = 2.0,
    nuclear_retained: float = 0.0,
    resolution: float = 0.5,
    random_state: int | np.random.Generator | None = 0,
) -> AnnData:
    """Simulate a tissue of known cells as spots (bins) or single transcripts.

    Parameters
    ----------
    mode
        ``"bins"``: square spots of ``bin_size`` um with summed counts (like Stereo-seq or
        Visium HD); only spots with counts are kept. ``"transcripts"``: one observation per
        transcript (like Xenium, MERSCOPE or CosMx) with a one-hot ``X``.
    width, height
        Size of the field of view in um.
    depth
        ``None`` for a 2D tissue; a thickness in um for 3D coordinates (cells are prisms through
        the slab; in bins mode the spots are cubes of ``bin_size``).
    bin_size
        Side of a spot in um (bins mode only).
    n_types
        Number of cell types.
    n_genes
        Panel size. Real panels: MERSCOPE 450 genes, CosMx 960.
    markers_per_type
        Marker genes of each type (disjoint between types); ``n_types * markers_per_type`` must
        not exceed ``n_genes``.
    marker_fraction
        Share of a cell's transcripts drawn from its type's markers; the rest follows a shared
        baseline (perturbed per type).
    transcripts_per_cell
        Mean transcripts per cell (before border cropping). Real: CosMx median 131-167.
    library_size_sd
        Log-sd of the per-cell lognormal library-size factor (on top of the cell's area).
    cell_variability
        Coefficient of variation of per-cell, per-gene expression around the type profile.
    background_fraction
        Share of all transcripts that are ambient background outside cells (real: CosMx 21-31%,
        MERSCOPE about 60%).
    false_positive_fraction
        Share of transcripts, in cells and outside, whose gene is a decoding false positive drawn
        evenly over the panel (where the transcript lies is kept). From the negative probes, CosMx
        Lung12 has about 45% of the counts in cells and 65% outside (6.4 reads per negative probe
        against 12.9 per gene); MERSCOPE's blanks imply about 2%. 0 (the default) draws nothing,
        so the tissue for a seed is unchanged.
    clumping
        Sub-cellular clumping of RNA: the transcript intensity of every pixel of a cell is
        multiplied by a gamma variable of mean 1 and this variance (a Cox process), so transcripts
        cluster at about the pixel scale before they diffuse. 0 (the default) places them as a
        Poisson process within each compartment and keeps the tissue for a seed unchanged.
    background_clumping
        The same for the ambient background: each pixel between cells draws background transcripts
        in proportion to a gamma variable of mean 1 and this variance. 0 (the default) spreads them
        evenly and keeps the tissue for a seed unchanged.
    diffusion
        Standard deviation (um) of the Gaussian displacement of each transcript from where it
        was made.
    cell_diameter
        ``(low, high)`` range of drawn cell diameters in um; diameters are lognormal around
        their geometric mean and clipped to the range. Cells whose final equivalent diameter is
        outside ``[0.85 * low, 1.1 * high]`` are dropped.
    elongation
        Log-sd of the cells' aspect ratio (0 = round); neighbouring cells are stretched along a
        smooth orientation field, as in real tissue.
    gap_fraction
        Approximate share of the area outside cells: gaps between groups of cells plus the thin
        spaces between cells (about 8% of the area even with ``gap_fraction=0``). Real CosMx
        masks leave 47-55% of the area outside cells.
    gap_scale
        Length scale (um) of the smooth field that makes the gaps.
    type_clustering
        Strength of spatial clustering of cell types (0 = types placed at random).
    nucleus_size
        ``(low, high)`` range of the nucleus diameter as a fraction of the cell's equivalent
        diameter.
    nucleus_density
        Transcript density in the nucleus relative to the cytoplasm.
    nuclear_retained
        Share of a cell's transcripts from one broadly expressed, nuclear-retained RNA (the
        first non-marker gene, flagged in ``var["nuclear_retained"]``), made in the nucleus only
        (then diffused like the rest). Real: on CosMx Lung12, MZT2A is about 10% of all
        transcripts and 77-82% of it lies in reference nuclei; MALAT1 and NEAT1 behave alike on
        panels that hold them; MERSCOPE's mouse-brain panel has none. 0 (the default) adds
        nothing, so the tissue for a seed is unchanged.
    resolution
        Pixel size (um) of the raster on which cells are drawn.
    random_state
        Seed or :class:`numpy.random.Generator`; the same seed gives the same tissue.

    Returns
    -------
    AnnData with

    - ``X``: counts (CSR, float32): spots x genes in bins mode, one-hot transcripts x genes in
      transcripts mode;
    - ``obsm["spatial"]``: coordinates in um (float64; spot centres in bins mode), shape
      ``(n, 2)`` or ``(n, 3)`` with ``depth``;
    - ``obs["true_cell"]``: true cell id (int, -1 = background); for a spot, the cell of the
      majority of its transcripts (ties go to the cell whose transcripts lie closest to the
      spot centre);
    - ``obs["true_type"]``: categorical type name (``"background"`` for background);
    - ``obs["nucleus"]``: the cell id whose nucleus the transcript lies in (-1 outside nuclei);
      for a spot, the majority over its transcripts;
    - ``obs["gene"]`` (transcripts mode): categorical gene name;
    - ``obs["bin_x"]``, ``obs["bin_y"]`` (and ``obs["bin_z"]``) (bins mode): integer spot indices;
    - ``var["marker_of"]``: the type a gene marks (``""`` for none);
    - ``uns["simulation"]``: ``params``, ``n_cells``, ``n_transcripts``, ``gap_fraction`` (achieved),
      ``background_share`` (achieved), ``types``, ``markers`` and ``cells`` (per-cell lists: ``cell_id``, ``type``, ``area_um2``,
      ``x``, ``y``, ``nucleus_x``, ``nucleus_y``, ``nucleus_area_um2``, ``n_transcripts``).

    Examples
    --------
    >>> import manifoldseg as ms
    >>> adata = ms.datasets.simulate(mode="bins", bin_size=2.0, random_state=1)
    >>> adata.obs["true_cell"].max() + 1  # number of cells  # doctest: +SKIP
    """
    params = _check_params(
        mode=mode,
        width=width,
        height=height,
        depth=depth,
        bin_size=bin_size,
        n_types=n_types,
        n_genes=n_genes,
        markers_per_type=markers_per_type,
        marker_fraction=marker_fraction,
        transcripts_per_cell=transcripts_per_cell,
        library_size_sd=library_size_sd,
        cell_variability=cell_variability,
        background_fraction=background_fraction,
        false_positive_fraction=false_positive_fraction,
        clumping=clumping,
        background_clumping=background_clumping,
        diffusion=diffusion,
        cell_diameter=cell_diameter,
        elongation=elongation,
        gap_fraction=gap_fraction,
        gap_scale=gap_scale,
        type_clustering=type_clustering,
        nucleus_size=nucleus_size,
        nucleus_density=nucleus_density,
        nuclear_retained=nuclear_retained,
        resolution=resolution,
    )
    rng, seed_repr = _rng(random_state)
    params["random_state"] = seed_repr
    t0 = time.perf_counter()

    geo = _geometry(rng, params)
    t1 = time.perf_counter()
    n_cells = geo["n_cells"]
    if n_cells == 0:
        raise ValueError(
            f"the simulated tissue has no cells (width={width}, height={height}, "
            f"gap_fraction={gap_fraction}); use a larger area or a smaller gap_fraction"
        )
    nuc = _nuclei(rng, geo, params)
    t2 = time.perf_counter()
    types = _cell_types(rng, geo, params)
    profiles, marker_of = _profiles(rng, params)
    # the nuclear-retained RNA: the first gene that marks no type (-1 when there is none)
    nuclear_gene = int(np.flatnonzero(marker_of < 0)[0]) if params["nuclear_retained"] > 0 else -1
    tx = _transcripts(rng, geo, nuc, types, profiles, params, nuclear_gene)
    t3 = time.perf_counter()

    gene_names = np.array([f"Gene{i + 1:04d}" for i in range(n_genes)])
    type_names = [f"type{t}" for t in range(n_types)]
    if mode == "bins":
        adata = _as_bins(tx, types, gene_names, type_names, params)
    else:
        adata = _as_transcripts(rng, tx, types, gene_names, type_names, params)
    adata.var["marker_of"] = pd.Categorical(
        ["" if m < 0 else type_names[m] for m in marker_of], categories=["", *type_names]
    )
    adata.var["nuclear_retained"] = np.arange(n_genes) == nuclear_gene
    adata.uns["simulation"] = _summary(geo, nuc, types, tx, marker_of, gene_names, type_names, params)
    t4 = time.perf_counter()
    logger.info(
        "simulate: %d cells, %d transcripts (%.1f%% background), %d obs in %s mode; "
        "geometry %.2fs, nuclei %.2fs, transcripts %.2fs, assembly %.2fs",
        n_cells,
        tx["cell"].size,
        100.0 * float(np.mean(tx["cell"] < 0)) if tx["cell"].size else 0.0,
        adata.n_obs,
        mode,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t4 - t3,
    )
    return adata


# --------------------------------------------------------------------------- validation


def _check_params(**p) -> dict:
    if p["mode"] not in _MODES:
        raise ValueError(f"mode={p['mode']!r} is not known; pass mode='bins' or mode='transcripts'")

    def positive(name, allow_none=False):
        v = p[name]
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name}={v!r} must be a positive finite number")
        p[name] = float(v)

    def fraction(name, lo_open=False, hi_open=False):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r} must be a number in [0, 1]")
        if v < 0 or v > 1 or (lo_open and v == 0) or (hi_open and v == 1):
            lo = "(0" if lo_open else "[0"
            hi = "1)" if hi_open else "1]"
            raise ValueError(f"{name}={v!r} must lie in {lo}, {hi}")
        p[name] = float(v)

    def non_negative(name):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}={v!r} must be a finite number >= 0")
        p[name] = float(v)

    def integer(name, minimum):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{name}={v!r} must be an integer >= {minimum}")
        p[name] = int(v)

    def pair(name, hi_max=None):
        v = p[name]
        try:
            lo, hi = (float(x) for x in v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={v!r} must be a pair (low, high) of numbers") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
            raise ValueError(f"{name}={v!r} must satisfy 0 < low <= high")
        if hi_max is not None and hi > hi_max:
            raise ValueError(f"{name}={v!r}: high must be <= {hi_max}")
        p[name] = [lo, hi]

    for name in ("width", "height", "bin_size", "transcripts_per_cell", "gap_scale", "nucleus_density"):
        positive(name)
    positive("resolution")
    positive("depth", allow_none=True)
    for name in ("library_size_sd", "cell_variability", "diffusion", "type_clustering", "elongation", "clumping",
                 "background_clumping"):
        non_negative(name)
    fraction("marker_fraction")
    fraction("background_fraction", hi_open=True)
    fraction("false_positive_fraction")
    fraction("nuclear_retained", hi_open=True)
    fraction("gap_fraction", hi_open=True)
    integer("n_types", 1)
    integer("n_genes", 1)
    integer("markers_per_type", 0)
    pair("cell_diameter")
    pair("nucleus_size", hi_max=1.0)
    if p["n_types"] * p["markers_per_type"] > p["n_genes"]:
        raise ValueError(
            f"n_types * markers_per_type = {p['n_types'] * p['markers_per_type']} exceeds "
            f"n_genes={p['n_genes']}; raise n_genes or lower markers_per_type"
        )
    if p["nuclear_retained"] > 0 and p["n_types"] * p["markers_per_type"] >= p["n_genes"]:
        raise ValueError(
            f"nuclear_retained={p['nuclear_retained']} needs a gene that marks no type, but all "
            f"n_genes={p['n_genes']} are markers; raise n_genes or pass nuclear_retained=0.0"
        )
    if p["markers_per_type"] == 0 and p["marker_fraction"] > 0:
        raise ValueError("marker_fraction > 0 needs markers_per_type >= 1; pass marker_fraction=0.0")
    if p["resolution"] > p["cell_diameter"][0] / 4:
        raise ValueError(
            f"resolution={p['resolution']} is too coarse for cells of {p['cell_diameter'][0]} um; "
            f"use resolution <= {p['cell_diameter'][0] / 4:g} (0.25-0.5 um works well)"
        )
    if p["mode"] == "bins":
        if p["bin_size"] > min(p["width"], p["height"]):
            raise ValueError(
                f"bin_size={p['bin_size']} is larger than the tissue ({p['width']} x {p['height']} um); "
                "use a smaller bin_size"
            )
    return p


def _rng(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state, "Generator"
    if random_state is None:
        return np.random.default_rng(), "None"
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral) or random_state < 0:
        raise ValueError(
            f"random_state={random_state!r} must be a non-negative int, None or a numpy Generator"
        )
    return np.random.default_rng(int(random_state)), int(random_state)


# --------------------------------------------------------------------------- geometry


class _SmoothField:
    """A smooth random field with unit standard deviation and correlation length ``length``."""

    def __init__(self, rng, x0, y0, x1, y1, length):
        self.spacing = length / 3.0
        self.x0, self.y0 = x0, y0
        nx = int(math.ceil((x1 - x0) / self.spacing)) + 13
        ny = int(math.ceil((y1 - y0) / self.spacing)) + 13
        # white noise smoothed by a Gaussian of sigma length / 2: correlation length about ``length``
        noise = ndimage.gaussian_filter(rng.standard_normal((ny, nx)), sigma=1.5, mode="wrap")
        self.grid = (noise - noise.mean()) / max(float(noise.std()), 1e-12)

    def __call__(self, x, y):
        coords = np.stack([(y - self.y0) / self.spacing + 6.0, (x - self.x0) / self.spacing + 6.0])
        return ndimage.map_coordinates(self.grid, coords, order=1, mode="nearest")


def _geometry(rng, p) -> dict:
    """Label raster of cells (-1 = gap) and per-cell seeds."""
    width, height, res = p["width"], p["height"], p["resolution"]
    d_lo, d_hi = p["cell_diameter"]
    nx, ny = int(math.ceil(width / res)), int(math.ceil(height / res))

    # 1. seeds: dart throwing with lognormal radii, in a margin around the area
    margin = _CAP * d_hi / 2
    x0, y0, x1, y1 = -margin, -margin, width + margin, height + margin
    area = (x1 - x0) * (y1 - y0)
    log_mid = 0.5 * (math.log(d_lo) + math.log(d_hi))
    log_sd = (math.log(d_hi) - math.log(d_lo)) / 4.0
    n_cand = int(4 * area / (math.pi * (d_lo / 2) ** 2)) + 16
    diam = np.clip(np.exp(rng.normal(log_mid, log_sd, n_cand)), d_lo, d_hi)
    cx = rng.uniform(x0, x1, n_cand)
    cy = rng.uniform(y0, y1, n_cand)
    from .._kernels._simulate import dart_throw, power_assign

    keep = dart_throw(cx - x0, cy - y0, diam / 2, _PACKING, x1 - x0, y1 - y0)
    sx, sy, sr = cx[keep], cy[keep], diam[keep] / 2
    # elongation: an area-preserving stretch per seed, aligned with a smooth orientation field
    aspect = np.exp(np.abs(rng.normal(0.0, p["elongation"], sx.size)))
    ox = _SmoothField(rng, x0, y0, x1, y1, 50.0)
    oy = _SmoothField(rng, x0, y0, x1, y1, 50.0)
    theta = 0.5 * np.arctan2(oy(sx, sy), ox(sx, sy)) + rng.normal(0.0, 0.3, sx.size)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    stretch = np.sqrt(aspect)

    # 2. gaps: whole groups of seeds removed by a smooth field
    # (the thin spaces between capped cells already leave about _THIN_SPACE of the area empty)
    q = 1.0 - (1.0 - p["gap_fraction"]) / (1.0 - _THIN_SPACE)
    if q > 0:
        field = _SmoothField(rng, x0, y0, x1, y1, p["gap_scale"])
        probe = field(rng.uniform(0, width, 4096), rng.uniform(0, height, 4096))
        alive = field(sx, sy) >= np.quantile(probe, q)
    else:
        alive = np.ones(sx.size, dtype=bool)

    # 3. power diagram on warped coordinates, chunked over pixel rows
    warps = [
        (_SmoothField(rng, x0, y0, x1, y1, 4.0), _SmoothField(rng, x0, y0, x1, y1, 4.0), 0.6),
        (_SmoothField(rng, x0, y0, x1, y1, 12.0), _SmoothField(rng, x0, y0, x1, y1, 12.0), 1.2),
    ]
    tree = cKDTree(np.column_stack([sx, sy]))
    k = min(8, sx.size)
    label = np.full((ny, nx), BACKGROUND, dtype=np.int64)
    xs = (np.arange(nx) + 0.5) * res
    rows_per_chunk = max(1, _CHUNK // nx)
    for r0 in range(0, ny if k else 0, rows_per_chunk):
        r1 = min(ny, r0 + rows_per_chunk)
        px = np.tile(xs, r1 - r0)
        py = np.repeat((np.arange(r0, r1) + 0.5) * res, nx)
        wx, wy = px.copy(), py.copy()
        for fx, fy, amp in warps:
            wx += amp * fx(px, py)
            wy += amp * fy(px, py)
        _, idx = tree.query(np.column_stack([wx, wy]), k=k)
        if k == 1:
            idx = idx[:, None]
        seed = power_assign(wx, wy, idx, sx, sy, sr, cos_t, sin_t, stretch, alive, _CAP)
        label[r0:r1] = seed.reshape(r1 - r0, nx)

    # 4. smooth away slivers thinner than about 2 um (morphological opening), keep each cell's
    # largest connected piece, drop cells outside the size range
    objects = ndimage.find_objects(label + 1)
    px_area = res * res
    a_min = math.pi * (0.85 * d_lo / 2) ** 2
    a_max = math.pi * (1.1 * d_hi / 2) ** 2
    rad = max(1, int(round(1.0 / res)))
    yy, xx = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    disk = xx * xx + yy * yy <= rad * rad + 0.5
    kept = []
    for s, sl in enumerate(objects):
        if sl is None:
            continue
        sub = label[sl] == s
        opened = ndimage.binary_opening(sub, structure=disk)
        label[sl][sub & ~opened] = BACKGROUND
        sub = opened
        comp, n_comp = ndimage.label(sub)
        if n_comp > 1:
            sizes = np.bincount(comp.ravel())[1:]
            main = int(np.argmax(sizes)) + 1
            view = label[sl]
            view[sub & (comp != main)] = BACKGROUND
            sub = comp == main
        a = float(sub.sum()) * px_area
        if a < a_min or a > a_max:
            label[sl][sub] = BACKGROUND
            continue
        kept.append(s)
    kept = np.asarray(kept, dtype=np.int64)
    # renumber cells 0..n-1 by the order of their seeds' positions (row-major)
    order = kept[np.lexsort((sx[kept], sy[kept]))]
    remap = np.full(sx.size + 1, BACKGROUND, dtype=np.int64)
    remap[order] = np.arange(order.size)
    label = remap[label]  # index -1 maps to the last entry, BACKGROUND
    return {
        "label": label,
        "n_cells": int(order.size),
        "nx": nx,
        "ny": ny,
        "seed_x": sx[order],
        "seed_y": sy[order],
        "seed_r": sr[order],
        "theta": theta[order],
        "aspect": aspect[order],
    }


def _nuclei(rng, geo, p) -> dict:
    """Nucleus raster (cell id inside the cell's nucleus, -1 elsewhere) and nucleus geometry."""
    label, n_cells, res = geo["label"], geo["n_cells"], p["resolution"]
    ny, nx = label.shape
    # distance of each pixel to the nearest pixel of another label (or the border)
    padded = np.pad(label, 1, constant_values=-2)
    same = (
        (padded[1:-1, 1:-1] == padded[:-2, 1:-1])
        & (padded[1:-1, 1:-1] == padded[2:, 1:-1])
        & (padded[1:-1, 1:-1] == padded[1:-1, :-2])
        & (padded[1:-1, 1:-1] == padded[1:-1, 2:])
    )
    depth_map = ndimage.distance_transform_edt(same)
    nucleus = np.full(label.shape, BACKGROUND, dtype=np.int64)
    area = np.bincount(label[label >= 0], minlength=n_cells).astype(float) * res * res
    r_eq = np.sqrt(area / math.pi)
    f_lo, f_hi = p["nucleus_size"]
    frac = rng.uniform(f_lo, f_hi, n_cells)
    # nuclei follow their cell's elongation and orientation, a little rounder
    elong = np.sqrt(geo["aspect"]) * rng.uniform(1.0, 1.2, n_cells)
    angle = geo["theta"] + rng.normal(0.0, 0.2, n_cells)
    jitter = rng.standard_normal((n_cells, 2))
    ncx = np.zeros(n_cells)
    ncy = np.zeros(n_cells)
    n_area = np.zeros(n_cells)
    for c, sl in enumerate(ndimage.find_objects(label + 1)):
        if sl is None:  # pragma: no cover - every kept cell has pixels
            continue
        sub = label[sl] == c
        dm = np.where(sub, depth_map[sl], -1.0)
        iy, ix = np.unravel_index(int(np.argmax(dm)), dm.shape)
        inner = float(dm[iy, ix]) * res
        radius = frac[c] * r_eq[c]
        # the centre wanders a little from the innermost point, never by more than the slack
        slack = max(inner - radius, 0.0) * 0.5
        cxu = (sl[1].start + ix + 0.5) * res + jitter[c, 0] * slack * 0.5
        cyu = (sl[0].start + iy + 0.5) * res + jitter[c, 1] * slack * 0.5
        a_ax, b_ax = radius * math.sqrt(elong[c]), radius / math.sqrt(elong[c])
        yy, xx = np.mgrid[sl[0], sl[1]]
        dx = (xx + 0.5) * res - cxu
        dy = (yy + 0.5) * res - cyu
        ca, sa = math.cos(angle[c]), math.sin(angle[c])
        u = (dx * ca + dy * sa) / a_ax
        v = (-dx * sa + dy * ca) / b_ax
        inside = sub & (u * u + v * v <= 1.0)
        if not inside.any():  # a tiny or thin cell: its innermost pixel is the nucleus
            inside = np.zeros_like(sub)
            inside[iy, ix] = True
        nucleus[sl][inside] = c
        ncx[c], ncy[c] = cxu, cyu
        n_area[c] = float(inside.sum()) * res * res
    return {"nucleus": nucleus, "x": ncx, "y": ncy, "area": n_area, "cell_area": area}


def _cell_types(rng, geo, p) -> np.ndarray:
    """Spatially clustered cell types (Gumbel-max over smooth per-type fields)."""
    n_types, n_cells = p["n_types"], geo["n_cells"]
    abundance = rng.dirichlet(np.full(n_types, 4.0))
    logits = np.tile(np.log(abundance), (n_cells, 1))
    if p["type_clustering"] > 0:
        m = _CAP * p["cell_diameter"][1]
        for t in range(n_types):
            field = _SmoothField(rng, -m, -m, p["width"] + m, p["height"] + m, 30.0)
            logits[:, t] += p["type_clustering"] * field(geo["seed_x"], geo["seed_y"])
    logits += rng.gumbel(size=logits.shape)
    return np.argmax(logits, axis=1).astype(np.int64)


def _profiles(rng, p):
    """Type profiles (n_types x n_genes, rows sum to 1) and the type each gene marks (-1 = none)."""
    n_types, n_genes, m = p["n_types"], p["n_genes"], p["markers_per_type"]
    baseline = np.exp(rng.normal(0.0, 1.2, n_genes))
    perm = rng.permutation(n_genes)
    marker_of = np.full(n_genes, -1, dtype=np.int64)
    for t in range(n_types):
        marker_of[perm[t * m : (t + 1) * m]] = t
    baseline[marker_of >= 0] *= 0.05  # markers are nearly silent outside their type
    profiles = np.empty((n_types, n_genes))
    for t in range(n_types):
        base = baseline * np.exp(rng.normal(0.0, 0.3, n_genes))
        base /= base.sum()
        mark = np.zeros(n_genes)
        if m:
            genes = marker_of == t
            mark[genes] = np.exp(rng.normal(0.0, 0.5, m))
            mark /= mark.sum()
        profiles[t] = (1.0 - p["marker_fraction"]) * base + p["marker_fraction"] * mark
    return profiles, marker_of


def _reflect(v, hi):
    v = np.abs(v)
    v = np.where(v >= hi, 2 * hi - v, v)
    return np.clip(v, 0.0, np.nextafter(hi, 0.0))


def _transcripts(rng, geo, nuc, types, profiles, p, nuclear_gene: int = -1) -> dict:
    """Positions, genes, cell and nucleus labels of every transcript (cells first, then background).

    With ``p["nuclear_retained"]`` > 0, that share of each cell's transcripts is gene
    ``nuclear_gene``, made at the cell's nuclear pixels (cells without nuclear pixels make none).
    """
    label, nucleus, res = geo["label"], nuc["nucleus"], p["resolution"]
    n_cells = geo["n_cells"]
    ny, nx = label.shape
    width, height, depth = p["width"], p["height"], p["depth"]
    flat = label.ravel()
    in_cell = np.flatnonzero(flat >= 0)
    cell_of_px = flat[in_cell]
    weight = np.where(nucleus.ravel()[in_cell] >= 0, p["nucleus_density"], 1.0)
    w_sum = np.bincount(cell_of_px, weights=weight, minlength=n_cells)
    area = nuc["cell_area"]
    s = p["library_size_sd"]
    library = np.exp(rng.normal(-0.5 * s * s, s, n_cells))  # mean 1
    # the mean over cells of a full-size cell is transcripts_per_cell; cropped cells get less
    mean_full_area = math.pi * np.mean(geo["seed_r"] ** 2)
    mu = p["transcripts_per_cell"] * np.minimum(area / mean_full_area, 2.5) * library
    f_nuc = p["nuclear_retained"]
    if f_nuc > 0:  # the nuclear-retained share comes out of the same total
        mu = mu * (1.0 - f_nuc)
    lam = mu[cell_of_px] * weight / w_sum[cell_of_px]
    if p["clumping"] > 0:  # from a child generator: the parent draws as many numbers as without clumping
        shape = 1.0 / p["clumping"]
        lam = lam * rng.spawn(1)[0].gamma(shape, 1.0 / shape, lam.size)
    per_px = rng.poisson(lam)
    px = np.repeat(in_cell, per_px)
    cell = np.repeat(cell_of_px, per_px)
    n_in = px.size

    # per-cell expression around the type profile (gamma noise), genes by inverse CDF
    genes = np.empty(n_in, dtype=np.int64)
    cv = p["cell_variability"]
    if n_in:
        prof = profiles[types]
        if cv > 0:
            shape = 1.0 / (cv * cv)
            prof = prof * rng.gamma(shape, 1.0 / shape, prof.shape)
        cdf = np.cumsum(prof, axis=1)
        cdf /= cdf[:, -1:]
        cdf[:, -1] = 1.0
        offset = np.arange(n_cells, dtype=float)[:, None]
        flat_cdf = (cdf + offset).ravel()
        u = rng.random(n_in)
        pos = np.searchsorted(flat_cdf, u + cell, side="right")
        genes = np.minimum(pos - cell * profiles.shape[1], profiles.shape[1] - 1)
    if f_nuc > 0 and n_in:
        # nuclear-retained RNA at the nuclear pixels (a child generator: the parent draws as before)
        child = rng.spawn(1)[0]
        nuc_flat = nucleus.ravel()
        nuc_px = np.flatnonzero(nuc_flat >= 0)
        owner = nuc_flat[nuc_px]
        order = np.argsort(owner, kind="stable")
        nuc_px, owner = nuc_px[order], owner[order]
        size = np.bincount(owner, minlength=n_cells)
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        made = np.bincount(cell, minlength=n_cells)
        n_extra = child.poisson(f_nuc / (1.0 - f_nuc) * made) * (size > 0)
        extra_cell = np.repeat(np.arange(n_cells, dtype=np.int64), n_extra)
        pick = start[extra_cell] + np.minimum((child.random(extra_cell.size) * size[extra_cell]).astype(np.int64),
                                              size[extra_cell] - 1)
        px = np.concatenate([px, nuc_px[pick]])
        cell = np.concatenate([cell, extra_cell])
        genes = np.concatenate([genes, np.full(extra_cell.size, nuclear_gene, dtype=np.int64)])
        n_in = px.size

    # ambient background outside cells, with the average expression of the tissue
    bg_frac = p["background_fraction"]
    n_bg = int(rng.poisson(bg_frac / (1.0 - bg_frac) * n_in)) if bg_frac > 0 else 0
    out_px = np.flatnonzero(flat < 0)
    if out_px.size == 0:
        out_px = np.arange(flat.size)
    if p["background_clumping"] > 0:  # pixels drawn in proportion to gamma weights (a child generator)
        child = rng.spawn(1)[0]
        shape = 1.0 / p["background_clumping"]
        w = child.gamma(shape, 1.0 / shape, out_px.size)
        bg_px = out_px[child.choice(out_px.size, size=n_bg, p=w / w.sum())]
    else:
        bg_px = out_px[rng.integers(0, out_px.size, n_bg)]
    ambient = np.bincount(types, minlength=profiles.shape[0]) @ profiles
    ambient /= ambient.sum()
    bg_genes = rng.choice(profiles.shape[1], size=n_bg, p=ambient)

    px = np.concatenate([px, bg_px])
    cell = np.concatenate([cell, np.full(n_bg, BACKGROUND, dtype=np.int64)])
    genes = np.concatenate([genes, bg_genes]).astype(np.int64)
    n = px.size
    if p["false_positive_fraction"] > 0:  # decoding errors: any gene, wherever a transcript lies
        # from a child generator: the parent's stream (positions, order) stays that of the seed
        fp_rng = rng.spawn(1)[0]
        wrong = fp_rng.random(n) < p["false_positive_fraction"]
        genes[wrong] = fp_rng.integers(0, profiles.shape[1], int(wrong.sum()))
    iy, ix = np.divmod(px, nx)
    sigma = p["diffusion"]
    x = (ix + rng.random(n)) * res + rng.normal(0.0, sigma, n)
    y = (iy + rng.random(n)) * res + rng.normal(0.0, sigma, n)
    x, y = _reflect(x, width), _reflect(y, height)
    coords = [x, y]
    if depth is not None:
        z = rng.uniform(0.0, depth, n) + rng.normal(0.0, sigma, n)
        coords.append(_reflect(z, depth))
    # the nuclear prior is where the transcript lies (like a DAPI mask), after diffusion
    jx = np.minimum((x / res).astype(np.int64), nx - 1)
    jy = np.minimum((y / res).astype(np.int64), ny - 1)
    in_nucleus = nucleus[jy, jx]
    counts = np.bincount(cell[cell >= 0], minlength=n_cells)
    return {
        "coords": np.column_stack(coords),
        "gene": genes,
        "cell": cell,
        "nucleus": in_nucleus,
        "per_cell": counts,
    }


# --------------------------------------------------------------------------- assembly


def _type_column(cell, types, type_names):
    codes = np.where(cell >= 0, types[np.maximum(cell, 0)], len(type_names))
    return pd.Categorical.from_codes(codes, categories=[*type_names, _BACKGROUND_TYPE])


def _majority(group, label, n_groups, dist):
    """Per group, the label held by most members.

    Ties go to the label whose members lie closest to the group's centre (smallest sum of
    ``dist``), then to the lowest label.
    """
    shift = label.astype(np.int64) + 1  # -1 -> 0
    n_lab = int(shift.max()) + 1 if shift.size else 1
    key = group.astype(np.int64) * n_lab + shift
    uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    dsum = np.bincount(inv, weights=dist, minlength=uniq.size)
    g, lab = np.divmod(uniq, n_lab)
    order = np.lexsort((lab, dsum, -cnt, g))
    g, lab = g[order], lab[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    out = np.full(n_groups, BACKGROUND, dtype=np.int64)
    out[g[first]] = lab[first] - 1
    return out


def _as_bins(tx, types, gene_names, type_names, p):
    import anndata as ad

    b = p["bin_size"]
    coords = tx["coords"]
    dims = [p["width"], p["height"]] + ([p["depth"]] if p["depth"] is not None else [])
    n_b = [int(math.ceil(d / b)) for d in dims]
    idx = [np.minimum((coords[:, i] / b).astype(np.int64), n_b[i] - 1) for i in range(len(dims))]
    flat = np.zeros(coords.shape[0], dtype=np.int64)
    for i in reversed(range(len(dims))):  # x fastest
        flat = flat * n_b[i] + idx[i]
    bins, inv = np.unique(flat, return_inverse=True)
    n_genes = gene_names.size
    X = sparse.csr_matrix(
        (np.ones(inv.size, dtype=np.float32), (inv, tx["gene"])), shape=(bins.size, n_genes)
    )
    X.sum_duplicates()
    X.sort_indices()
    ids = []
    rest = bins.copy()
    for i in range(len(dims)):
        rest, r = np.divmod(rest, n_b[i])
        ids.append(r)
    spatial = np.column_stack([(v + 0.5) * b for v in ids]).astype(np.float64)
    dist = np.linalg.norm(coords - spatial[inv], axis=1)
    cell = _majority(inv, tx["cell"], bins.size, dist)
    nucleus = _majority(inv, tx["nucleus"], bins.size, dist)
    obs = pd.DataFrame(
        {
            TRUTH_KEY: cell,
            TYPE_KEY: _type_column(cell, types, type_names),
            NUCLEUS_KEY: nucleus,
            **{f"bin_{a}": v for a, v in zip("xyz", ids, strict=False)},
        },
        index=pd.Index([f"bin{i}" for i in range(bins.size)]),
    )
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(gene_names)))
    adata.obsm[SPATIAL_KEY] = spatial
    return adata


def _as_transcripts(rng, tx, types, gene_names, type_names, p):
    import anndata as ad

    n = tx["cell"].size
    order = rng.permutation(n)  # no truth in the row order
    gene = tx["gene"][order]
    cell = tx["cell"][order]
    X = sparse.csr_matrix(
        (np.ones(n, dtype=np.float32), gene.astype(np.int32), np.arange(n + 1, dtype=np.int64)),
        shape=(n, gene_names.size),
    )
    obs = pd.DataFrame(
        {
            TRUTH_KEY: cell,
            TYPE_KEY: _type_column(cell, types, type_names),
            NUCLEUS_KEY: tx["nucleus"][order],
            "gene": pd.Categorical.from_codes(gene, categories=list(gene_names)),
        },
        index=pd.Index([f"tx{i}" for i in range(n)]),
    )
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(gene_names)))
    adata.obsm[SPATIAL_KEY] = np.ascontiguousarray(tx["coords"][order], dtype=np.float64)
    return adata


def _summary(geo, nuc, types, tx, marker_of, gene_names, type_names, p) -> dict:
    label = geo["label"]
    n_cells = geo["n_cells"]
    res = p["resolution"]
    ys, xs = np.nonzero(label >= 0)
    lab = label[ys, xs]
    cnt = np.maximum(np.bincount(lab, minlength=n_cells), 1)
    cx = np.bincount(lab, weights=(xs + 0.5) * res, minlength=n_cells) / cnt
    cy = np.bincount(lab, weights=(ys + 0.5) * res, minlength=n_cells) / cnt
    params = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in p.items()}
    params = {k: ("None" if v is None else v) for k, v in params.items()}
    return {
        "params": params,
        "n_cells": n_cells,
        "n_transcripts": int(tx["cell"].size),
        "background_share": float(np.mean(tx["cell"] < 0)) if tx["cell"].size else 0.0,
        "gap_fraction": float(np.mean(label < 0)),
        "types": list(type_names),
        "markers": {t: gene_names[marker_of == i].tolist() for i, t in enumerate(type_names)},
        "cells": {
            "cell_id": np.arange(n_cells).tolist(),
            "type": [type_names[t] for t in types],
            "area_um2": nuc["cell_area"].tolist(),
            "x": cx.tolist(),
            "y": cy.tolist(),
            "nucleus_x": nuc["x"].tolist(),
            "nucleus_y": nuc["y"].tolist(),
            "nucleus_area_um2": nuc["area"].tolist(),
            "n_transcripts": tx["per_cell"].tolist(),
        },
    }
