"""Whole sections in tiles: layout, the Dask runner and seamless stitching.

A section is cut into a grid of square **cores** of ``tile_size`` um; each tile is its core
grown by ``overlap`` um on every side. Every tile is segmented independently by the same
array-level pipeline (:func:`manifoldseg.tl._segment.segment_array`) with one cell diameter for
all tiles (estimated once) and a seed derived from ``random_state`` and the tile index, so the
result does not depend on the scheduler, the number of workers or the order tiles finish in.

Stitching (:class:`Stitcher`) keeps every cell once:

1. **Ownership.** A tile keeps exactly the cells whose (count-weighted) centroid lies in its
   core; cells centred in the overlap belong to the neighbouring tile, which sees them whole
   (the overlap is at least 1.5 cell diameters, more than a cell's reach from its centroid).
   Cores partition the plane, so no cell is kept twice.
2. **Conflicts.** When kept cells of two tiles claim the same spot, the spot goes to the cell
   whose centroid is nearer to it; ties go to the larger cell, then to the lower tile index. The
   rule is a total order, so the result does not depend on the order tiles arrive in.
3. **Connectivity.** A cell that lost spots to a conflict keeps its largest spatially connected
   piece (spots within ``link_radius``); the detached pieces become background (-1). No output
   cell is two pieces.
4. **Numbering.** Cells are numbered 0..k-1 in the order (tile index, label within the tile).

Confidence comes from the tile whose cell won the spot; for background spots, from the tile
whose core holds the spot.

Memory: the driver slices each tile's coordinates and CSR rows just before submitting it, keeps
at most ``2 x workers`` tiles in flight and merges results into the global label array as they
arrive, so workers hold only their tile and the driver the (n,) result arrays.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from ._validate import InputError, ManifoldsegError

logger = logging.getLogger("manifoldseg")

#: below this many spots ``tile_size="auto"`` does not tile
AUTO_MIN_SPOTS = 400_000
#: ``tile_size="auto"`` aims at about this many spots per tile (overlap included)
AUTO_SPOTS_PER_TILE = 250_000
#: default overlap, in cell diameters; the minimum allowed is 1.5
DEFAULT_OVERLAP = 2.0
MIN_OVERLAP = 1.5
#: the smallest tile core, in cell diameters
MIN_TILE = 3.0
#: spots used to estimate the cell diameter once for all tiles
SCALE_SAMPLE_SPOTS = 300_000
#: spots (a central window within that one) on which the section-wide parameters are learnt
SECTION_SAMPLE_SPOTS = 150_000
#: :meth:`Stitcher.finish` works on the spots in blocks of this many (its temporaries stay this size)
STITCH_BLOCK = 1 << 20

_LOCAL_SCHEDULERS = ("synchronous", "sync", "single-threaded", "threads")
#: how long to wait for an existing Dask scheduler before giving up
CONNECT_TIMEOUT = "10s"


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Tile:
    """One tile: grid position, its core and the core grown by the overlap (``x0, y0, x1, y1``)."""

    index: int
    ix: int
    iy: int
    core: tuple[float, float, float, float]
    outer: tuple[float, float, float, float]


@dataclass(frozen=True)
class TileLayout:
    """A grid of square cores of ``tile_size`` um from ``origin``, each grown by ``overlap`` um."""

    origin: tuple[float, float]
    tile_size: float
    overlap: float
    nx: int
    ny: int

    @classmethod
    def from_coords(cls, coords: np.ndarray, tile_size: float, overlap: float) -> TileLayout:
        xy = np.asarray(coords)[:, :2]
        lo = xy.min(axis=0) if len(xy) else np.zeros(2)
        hi = xy.max(axis=0) if len(xy) else np.zeros(2)
        return cls.from_bounds(lo, hi, tile_size, overlap)

    @classmethod
    def from_bounds(cls, lo, hi, tile_size: float, overlap: float) -> TileLayout:
        """The fewest cores of ``tile_size`` from ``lo`` that cover up to ``hi`` (x, y)."""
        nx, ny = (max(1, math.ceil((b - a) / tile_size - 1e-9)) for a, b in zip(lo[:2], hi[:2], strict=True))
        # a point exactly on the upper edge falls into the last core (see core_index)
        return cls((float(lo[0]), float(lo[1])), float(tile_size), float(overlap), int(nx), int(ny))

    @property
    def n_tiles(self) -> int:
        return self.nx * self.ny

    def core_index(self, xy: np.ndarray) -> np.ndarray:
        """Flat index of the tile whose core holds each point (points outside go to the edge tiles)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, xy.shape[-1] if np.ndim(xy) > 1 else 2)
        ix = np.clip(np.floor((xy[:, 0] - self.origin[0]) / self.tile_size), 0, self.nx - 1).astype(np.int64)
        iy = np.clip(np.floor((xy[:, 1] - self.origin[1]) / self.tile_size), 0, self.ny - 1).astype(np.int64)
        return iy * self.nx + ix

    def covering(self, box: tuple[float, float, float, float]) -> list[int]:
        """Cores that can hold a point of the closed box ``x0, y0, x1, y1`` (as :meth:`core_index`
        assigns points, edge cores included)."""
        x0, y0, x1, y1 = box

        def span(a, b, o, n):
            i0 = int(np.clip(math.floor((a - o) / self.tile_size), 0, n - 1))
            i1 = int(np.clip(math.floor((b - o) / self.tile_size), 0, n - 1))
            return range(i0, i1 + 1)

        return [jy * self.nx + jx for jy in span(y0, y1, self.origin[1], self.ny)
                for jx in span(x0, x1, self.origin[0], self.nx)]

    def tile(self, index: int) -> Tile:
        iy, ix = divmod(int(index), self.nx)
        s, o = self.tile_size, self.overlap
        x0, y0 = self.origin[0] + ix * s, self.origin[1] + iy * s
        return Tile(int(index), ix, iy, (x0, y0, x0 + s, y0 + s), (x0 - o, y0 - o, x0 + s + o, y0 + s + o))

    def tiles(self) -> list[Tile]:
        return [self.tile(i) for i in range(self.n_tiles)]


class TileIndex:
    """Spots bucketed by core, to cut a tile's rows without scanning the whole section."""

    def __init__(self, coords: np.ndarray, layout: TileLayout):
        self.coords = coords
        self.layout = layout
        cell = layout.core_index(coords[:, :2])
        self.order = np.argsort(cell, kind="stable")
        self.bounds = np.searchsorted(cell[self.order], np.arange(layout.n_tiles + 1))

    def rows(self, tile: Tile) -> np.ndarray:
        """Sorted global row indices of the spots inside the tile (core plus overlap)."""
        parts = [self.order[self.bounds[j] : self.bounds[j + 1]] for j in self.layout.covering(tile.outer)]
        idx = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        xy = self.coords[idx, :2]
        x0, y0, x1, y1 = tile.outer
        inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        return idx[inside]

    def core_rows(self, index: int) -> np.ndarray:
        return self.order[self.bounds[index] : self.bounds[index + 1]]


def auto_tile_size(n: int, lo, hi, cell_diameter: float, overlap: float) -> float | None:
    """``tile_size="auto"`` for ``n`` spots between the corners ``lo`` and ``hi`` (x, y): None up to
    :data:`AUTO_MIN_SPOTS` spots; above, even cores sized so that a tile (overlap included) holds
    about :data:`AUTO_SPOTS_PER_TILE` spots at the section's mean density."""
    if n <= AUTO_MIN_SPOTS:
        return None
    extent = np.asarray(hi, dtype=np.float64)[:2] - np.asarray(lo, dtype=np.float64)[:2]
    area = float(np.prod(np.maximum(extent, cell_diameter)))
    side = max(math.sqrt(AUTO_SPOTS_PER_TILE * area / n) - 2 * overlap, 4 * overlap, MIN_TILE * cell_diameter)
    # even cores: the fewest tiles of at most that side covering the section
    return float(max(max(e / math.ceil(e / side) for e in extent if e > 0), MIN_TILE * cell_diameter))


def resolve_tile_size(
    tile_size: float | str | None,
    coords: np.ndarray,
    cell_diameter: float,
    overlap: float,
) -> float | None:
    """The core side in um, or None for an untiled run.

    ``"auto"``: no tiling up to :data:`AUTO_MIN_SPOTS` spots; above, cores sized so that a tile
    (overlap included) holds about :data:`AUTO_SPOTS_PER_TILE` spots at the section's mean density.
    """
    n = len(coords)
    if tile_size is None:
        return None
    if isinstance(tile_size, str):
        if tile_size != "auto":
            raise InputError(f"tile_size must be a number of um, 'auto' or None; got {tile_size!r}.")
        xy = coords[:, :2]
        return auto_tile_size(n, xy.min(axis=0), xy.max(axis=0), cell_diameter, overlap) if n else None
    try:
        size = float(tile_size)
    except (TypeError, ValueError):
        raise InputError(f"tile_size must be a number of um, 'auto' or None; got {tile_size!r}.") from None
    if not np.isfinite(size) or size <= 0:
        raise InputError(f"tile_size must be a positive number of um; got {tile_size!r}.")
    if size < MIN_TILE * cell_diameter:
        raise InputError(
            f"tile_size={size:g} um is smaller than {MIN_TILE:g} cell diameters "
            f"({MIN_TILE:g} x {cell_diameter:.3g} um = {MIN_TILE * cell_diameter:.3g} um): tiles that small cut "
            f"most cells. Pass a larger tile_size, tile_size='auto', or tile_size=None to not tile."
        )
    return size


def resolve_overlap(overlap: float | None, cell_diameter: float) -> float:
    """Overlap in um: ``DEFAULT_OVERLAP`` diameters when None; at least ``MIN_OVERLAP`` diameters."""
    if overlap is None:
        return DEFAULT_OVERLAP * cell_diameter
    ov = float(overlap)
    if not np.isfinite(ov) or ov < MIN_OVERLAP * cell_diameter - 1e-9:
        raise InputError(
            f"overlap={overlap!r} um is less than {MIN_OVERLAP:g} cell diameters "
            f"({MIN_OVERLAP * cell_diameter:.3g} um): cells on tile borders would be cut. "
            f"Pass overlap=None (default {DEFAULT_OVERLAP:g} diameters) or a larger value."
        )
    return ov


def tile_seed(random_state: int, index: int) -> int:
    """Seed of one tile, derived from the run's seed and the tile index (order-independent)."""
    return int(np.random.SeedSequence([int(random_state) & 0xFFFFFFFF, int(index)]).generate_state(1)[0] >> 1)


def tile_seed_ids(random_state: int, index: int, segmenter: Callable | None) -> tuple[int, bool]:
    """Seed of tile ``index`` and whether it is given global spot ids.

    The default segmenter draws its random numbers from the run's seed and global spot ids, so a
    tile's interior is laid out as in an untiled run; a custom segmenter gets :func:`tile_seed`.
    """
    if segmenter is None:
        return int(random_state), True
    return tile_seed(random_state, index), False


def prepare_section(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    prior: np.ndarray | None,
    *,
    origin: np.ndarray,
    cell_diameter: float | None,
    random_state: int,
    segmenter: Callable | None,
    segment_kwargs: dict,
    link_radius: float | None,
    refine_diameter: bool = True,
) -> tuple[float, str, dict, float, dict]:
    """What every tile shares, learnt once on the section's central window (:func:`central_sample`
    of ``coords``; the whole section up to :data:`SCALE_SAMPLE_SPOTS` spots): the cell diameter
    (:func:`manifoldseg.pp._scale.resolve_diameter`: estimated when None, a given one combined with
    the estimate unless ``refine_diameter=False``), the default segmenter's section-wide
    parameters (:func:`with_section`, on a window of at most :data:`SECTION_SAMPLE_SPOTS` spots
    within) and the stitcher's link radius. ``origin`` is the section's lowest corner.

    Returns ``(cell_diameter, how it was found, segment_kwargs, link_radius, diameter info)``.
    """
    from .pp._scale import resolve_diameter

    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    pick = central_sample(coords)
    sample_prior = None if prior is None else np.asarray(prior)[pick]
    d, method, dinfo = resolve_diameter(coords[pick], counts[pick], sample_prior, cell_diameter, refine=refine_diameter)
    logger.info("cell diameter for all tiles: %.1f um (%s, from %d spots)", d, method, len(pick))
    if segmenter is None and "section" not in segment_kwargs and len(coords):
        pick = pick[central_sample(coords[pick], SECTION_SAMPLE_SPOTS)]
        segment_kwargs = with_section(coords[pick], X[pick], segment_kwargs, cell_diameter=d,
                                      origin=np.asarray(origin, dtype=np.float64), random_state=random_state)
    radius = link_radius_of(coords[pick], d) if link_radius is None else float(link_radius)
    return d, method, segment_kwargs, radius, dinfo


def with_section(
    coords: np.ndarray, X: sparse.csr_matrix, segment_kwargs: dict, *, cell_diameter: float,
    origin: np.ndarray, random_state: int = 0,
) -> dict:
    """``segment_kwargs`` plus ``section``: the section-wide parameters every tile uses (gene axes,
    feature standardisation, graph radius, background threshold, ...; see
    :func:`manifoldseg.tl._segment.section_parameters`), measured on ``coords``/``X`` (a sample of
    the section, e.g. :func:`central_sample`). ``origin``: the section's minimum coordinates."""
    from .tl._segment import section_parameters

    names = ("scales", "n_components", "n_neighbors", "loadings", "background", "hysteresis", "contrast_scales",
             "n_epochs", "target_edge", "negative_window", "embed_kwargs", "embed_method", "background_kwargs")
    kw = {k: segment_kwargs[k] for k in names if segment_kwargs.get(k) is not None}
    if "nuclear_genes" in segment_kwargs:  # None is a choice here (no nuclear weights), not "unset"
        kw["nuclear_genes"] = segment_kwargs["nuclear_genes"]
    section = section_parameters(coords, X, cell_diameter=cell_diameter, origin=origin, random_state=random_state,
                                 **kw)
    return {**segment_kwargs, "section": section}


def central_sample(coords: np.ndarray, n_max: int = SCALE_SAMPLE_SPOTS) -> np.ndarray:
    """Rows of a square window in the middle of the section holding about ``n_max`` spots."""
    n = len(coords)
    if n <= n_max:
        return np.arange(n)
    xy = coords[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre = (lo + hi) / 2
    half = np.sqrt(np.prod(hi - lo) * n_max / n) / 2
    inside = np.all(np.abs(xy - centre) <= half, axis=1)
    return np.flatnonzero(inside)


# --------------------------------------------------------------------------- the task


@dataclass
class TileData:
    """What one task receives: its tile's spots only."""

    tile: Tile
    coords: np.ndarray
    X: sparse.csr_matrix
    prior: np.ndarray | None
    seed: int
    ids: np.ndarray | None = None


@dataclass
class TileResult:
    index: int
    labels: np.ndarray
    confidence: np.ndarray
    seconds: float
    info: dict = field(default_factory=dict)


def _default_segmenter(coords, X, *, cell_diameter, prior, random_state, **kwargs):
    from .tl._segment import segment_array

    # the section's diameter was resolved once (prepare_section): a tile uses it as is
    res = segment_array(coords, X, cell_diameter=cell_diameter, refine_diameter=None, prior=prior,
                        random_state=random_state, **kwargs)
    return res.labels, res.confidence, {"timings": res.info.get("timings", {}), "n_cells": res.info.get("n_cells")}


def run_tile(
    data: TileData,
    cell_diameter: float,
    segmenter: Callable | None = None,
    kwargs: dict | None = None,
    numba_threads: int | None = None,
) -> TileResult:
    """Segment one tile (runs on a worker). Returns labels and confidence only."""
    t0 = time.perf_counter()
    if numba_threads is not None:
        import numba

        numba.set_num_threads(int(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS))))
    seg = _default_segmenter if segmenter is None else segmenter
    n = len(data.coords)
    if n == 0:
        return TileResult(data.tile.index, np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0)
    kwargs = dict(kwargs or {})
    if segmenter is None and data.ids is not None:
        kwargs["spot_ids"] = data.ids
    out = seg(data.coords, data.X, cell_diameter=cell_diameter, prior=data.prior, random_state=data.seed,
              **kwargs)
    labels, conf = out[0], out[1]
    info = out[2] if len(out) > 2 else {}
    labels = np.asarray(labels, dtype=np.int64)
    conf = np.asarray(conf, dtype=np.float32)
    if labels.shape != (n,) or conf.shape != (n,):
        raise ManifoldsegError(
            f"the tile segmenter returned labels {labels.shape} and confidence {conf.shape} for {n} spots."
        )
    return TileResult(data.tile.index, labels, conf, time.perf_counter() - t0, info)


# --------------------------------------------------------------------------- stitching


class Stitcher:
    """Merges tile results into global labels as they arrive (order-independent; see module doc).

    Parameters
    ----------
    coords
        All spot coordinates (n, 2 or 3); only x, y are used (a view, not copied).
    counts
        Counts per spot (centroid weights). Kept as given when float32 or float64 (not copied):
        the streamed path passes float32 sums of float32 counts, which are exact.
    layout
        The tile layout (defines the cores).
    link_radius
        Two spots of one cell closer than this are connected (for the connectivity check).

    Notes
    -----
    Memory: besides ``coords`` and ``counts``, 20 bytes per spot (the claiming cell's index within
    its tile, its tile, its size, the distance to its centroid, the confidence), and 8 more (the
    int64 labels) while :meth:`finish` runs. :meth:`finish` ends the stitcher: it frees the arrays
    it no longer needs.
    """

    def __init__(self, coords: np.ndarray, counts: np.ndarray, layout: TileLayout, link_radius: float):
        n = len(coords)
        self.xy = np.asarray(coords)[:, :2]
        counts = np.asarray(counts)
        self.counts = counts if counts.dtype in (np.float32, np.float64) else counts.astype(np.float64)
        self.layout = layout
        self.link_radius = float(link_radius)
        # the provisional id of a spot's cell is (claim_tile, cell): its tile and its rank among the tile's
        # labels; ranks are ordered as the labels, so (tile, rank) numbers cells as (tile, label) does, in
        # half the bytes of one int64 (tile << 32 | label)
        self.cell = np.full(n, -1, dtype=np.int32)
        self.confidence = np.zeros(n, dtype=np.float32)
        self.dist = np.full(n, np.inf, dtype=np.float32)  # distance to the claiming cell's centroid
        self.size = np.zeros(n, dtype=np.int32)  # the claiming cell's size
        self.claim_tile = np.full(n, np.iinfo(np.int32).max, dtype=np.int32)
        # per tile: the size of each of its labels (rank order) if the tile keeps that cell, else 0
        self.kept_sizes: dict[int, np.ndarray] = {}
        self.n_conflicts = 0
        self.n_dropped_cells = 0
        self.n_tiles_done = 0

    def add(self, tile: Tile, rows: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> None:
        """Merge one tile: keep its cells centred in its core and resolve spots claimed twice."""
        self.n_tiles_done += 1
        rows = np.asarray(rows, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        confidence = np.asarray(confidence, dtype=np.float32)
        # background confidence: from the tile whose core holds the spot, unless a cell claims it (the core is
        # found here, per tile, rather than kept for every spot of the section)
        mine = (self.layout.core_index(self.xy[rows]) == tile.index) & (self.cell[rows] < 0)
        self.confidence[rows[mine]] = confidence[mine]
        cellular = labels >= 0
        if not cellular.any():
            return
        r, lab = rows[cellular], labels[cellular]
        ids, inv = np.unique(lab, return_inverse=True)
        w = np.maximum(self.counts[r].astype(np.float64), 1e-12)
        wsum = np.bincount(inv, weights=w)
        cen = np.stack([np.bincount(inv, weights=w * self.xy[r, j]) for j in range(2)], axis=1) / wsum[:, None]
        sizes = np.bincount(inv).astype(np.int64)
        keep_cell = self.layout.core_index(cen) == tile.index
        self.n_dropped_cells += int((~keep_cell).sum())
        keep = keep_cell[inv]
        r, inv_k, conf_k = r[keep], inv[keep], confidence[cellular][keep]
        d = np.hypot(*(self.xy[r] - cen[inv_k]).T).astype(np.float32)
        size = sizes[inv_k].astype(np.int32)
        # total order: nearer centroid, then larger cell, then lower tile index
        old_d, old_s, old_t = self.dist[r], self.size[r], self.claim_tile[r]
        wins = (d < old_d) | ((d == old_d) & ((size > old_s) | ((size == old_s) & (tile.index < old_t))))
        self.n_conflicts += int((self.cell[r] >= 0).sum())
        r, inv_k, d, size, conf_k = r[wins], inv_k[wins], d[wins], size[wins], conf_k[wins]
        self.cell[r] = inv_k
        self.dist[r] = d
        self.size[r] = size
        self.claim_tile[r] = tile.index
        self.confidence[r] = conf_k
        self.kept_sizes[tile.index] = np.where(keep_cell, sizes, 0)

    def finish(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """Global labels (0..k-1 by tile, then local label; -1 background), confidence, summary.

        Runs over the spots in blocks of :data:`STITCH_BLOCK`, so that its temporaries do not grow
        with the section; the result is one int64 label array.
        """
        from scipy.spatial import cKDTree

        n = len(self.cell)
        # the claims are settled: free what only resolved them
        self.dist = self.size = None
        # provisional cells: every label of every tile, numbered by (tile, rank of the label in its tile)
        tiles = sorted(self.kept_sizes)
        n_ids = np.zeros(self.layout.n_tiles, dtype=np.int64)
        n_ids[tiles] = [len(self.kept_sizes[t]) for t in tiles]
        first = np.concatenate([[0], np.cumsum(n_ids)[:-1]]) if len(n_ids) else n_ids
        kept = np.concatenate([self.kept_sizes[t] for t in tiles]) if tiles else np.zeros(0, np.int64)
        n_prov = len(kept)
        labels = np.full(n, -1, dtype=np.int64)
        final_size = np.zeros(n_prov, dtype=np.int64)
        for a in range(0, n, STITCH_BLOCK):
            b = min(a + STITCH_BLOCK, n)
            cell = self.cell[a:b]
            on = np.flatnonzero(cell >= 0)
            lab = first[self.claim_tile[a:b][on]] + cell[on]
            labels[a + on] = lab
            final_size += np.bincount(lab, minlength=n_prov)
        self.cell = self.claim_tile = None
        # cells that lost spots to a conflict: keep their largest connected piece
        n_pieces = 0
        cut = np.zeros(n_prov + 1, dtype=bool)  # the last entry stands for label -1
        cut[np.flatnonzero(final_size < kept)] = True
        rows_cut = np.concatenate([a + np.flatnonzero(cut[labels[a : a + STITCH_BLOCK]])
                                   for a in range(0, n, STITCH_BLOCK)]) if n else np.zeros(0, np.int64)
        # rows of one cell together, in row order within a cell (as they come in the section)
        order = np.argsort(labels[rows_cut], kind="stable")
        rows_cut = rows_cut[order]
        lab_cut = labels[rows_cut]
        bounds = np.flatnonzero(np.diff(lab_cut)) + 1
        for rows in np.split(rows_cut, bounds) if len(rows_cut) else []:
            if len(rows) < 2:
                continue
            pairs = cKDTree(self.xy[rows]).query_pairs(self.link_radius, output_type="ndarray")
            g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(rows),) * 2)
            k, comp = sparse.csgraph.connected_components(g, directed=False)
            if k > 1:
                big = np.argmax(np.bincount(comp))
                labels[rows[comp != big]] = -1
                n_pieces += k - 1
        # renumber (cells may have vanished entirely) keeping the (tile, local label) order
        present = np.zeros(n_prov, dtype=np.int64)
        for a in range(0, n, STITCH_BLOCK):
            lab = labels[a : a + STITCH_BLOCK]
            present += np.bincount(lab[lab >= 0], minlength=n_prov)
        ids = np.flatnonzero(present)
        remap = np.full(n_prov + 1, -1, dtype=np.int64)  # remap[-1] = -1: background stays background
        remap[ids] = np.arange(len(ids))
        for a in range(0, n, STITCH_BLOCK):
            labels[a : a + STITCH_BLOCK] = remap[labels[a : a + STITCH_BLOCK]]
        n_assigned = int(present.sum())
        info = {
            "n_cells": int(len(ids)),
            "assigned_fraction": float(n_assigned / n) if n else 0.0,
            "n_conflict_spots": int(self.n_conflicts),
            "n_cells_left_to_neighbours": int(self.n_dropped_cells),
            "n_detached_pieces": int(n_pieces),
        }
        return labels, self.confidence, info


def link_radius_of(coords: np.ndarray, cell_diameter: float, sample: int = 20_000, seed: int = 0) -> float:
    """Spots of one cell closer than this count as touching: 2.5 x the median spot spacing, at most d/3."""
    from scipy.spatial import cKDTree

    xy = np.asarray(coords)[:, :2]
    if len(xy) < 3:
        return cell_diameter / 3
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(xy), size=min(sample, len(xy)), replace=False) if len(xy) > sample else np.arange(len(xy))
    d, _ = cKDTree(xy).query(xy[pick], k=2)
    spacing = float(np.median(d[:, 1]))
    return float(min(max(2.5 * spacing, 1e-9), cell_diameter / 3))


# --------------------------------------------------------------------------- schedulers


class _Runner:
    """Submits tiles and yields results as they finish (distributed or a local dask scheduler)."""

    def __init__(self, scheduler, n_jobs: int | None):
        self.scheduler = scheduler
        self.n_jobs = n_jobs
        self.client = None
        self.cluster = None
        self.kind = None

    def __enter__(self):
        s = self.scheduler
        if s is not None and not isinstance(s, str) and type(s).__name__ == "Client":
            self.client, self.kind = s, "client"
        elif isinstance(s, str) and s in _LOCAL_SCHEDULERS:
            self.kind = "threads" if s == "threads" else "synchronous"
        elif s is None:
            import distributed

            workers = int(self.n_jobs or 1)
            if workers == -1:
                workers = os.cpu_count() or 1
            self.cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.WARNING,
            )
            self.client = distributed.Client(self.cluster)
            self.kind = "local-cluster"
        elif isinstance(s, str) and ("://" in s or ":" in s):
            import distributed

            try:
                self.client = distributed.Client(s, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise ManifoldsegError(
                    f"could not connect to the Dask scheduler at {s!r} ({type(e).__name__}: {e}). Start one "
                    f"(`dask scheduler` and `dask worker {s}`), check the address, or pass scheduler=None for a "
                    f"local cluster or scheduler='synchronous'."
                ) from None
            self.kind = "address"
        else:
            raise InputError(
                f"scheduler must be None (a local Dask cluster), 'synchronous', 'threads', a scheduler address "
                f"such as 'tcp://host:8786', or a distributed.Client; got {s!r}."
            )
        return self

    def __exit__(self, *exc):
        if self.kind in ("local-cluster", "address") and self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def width(self) -> int:
        """Tiles kept in flight."""
        if self.client is not None:
            return max(2, 2 * sum(self.client.nthreads().values()))
        if self.kind == "threads":
            return max(1, int(self.n_jobs or os.cpu_count() or 1))
        return 1

    @property
    def numba_threads(self) -> int | None:
        if self.kind == "local-cluster":
            return max(1, (os.cpu_count() or 1) // max(1, int(self.n_jobs or 1)))
        if self.kind == "threads":
            return 1
        return None

    def map(self, func, payloads, **kw):
        """Run ``func(payload, **kw)`` over an iterator of payloads; yields (payload, result) as they finish."""
        if self.client is not None:
            yield from self._map_distributed(func, payloads, **kw)
            return
        import dask

        batch = []
        sched = "threads" if self.kind == "threads" else "synchronous"

        def flush():
            tasks = [dask.delayed(func, pure=False)(p, **kw) for p in batch]
            return zip(batch, dask.compute(*tasks, scheduler=sched, num_workers=self.width), strict=True)

        for p in payloads:
            batch.append(p)
            if len(batch) >= self.width:
                yield from flush()
                batch = []
        if batch:
            yield from flush()

    def _map_distributed(self, func, payloads, **kw):
        from distributed import as_completed

        it = iter(payloads)
        pending = {}

        def submit(p):
            data = self.client.scatter(p.task_data(), hash=False)
            p.data = None  # the driver keeps only the rows
            fut = self.client.submit(func, data, pure=False, key=f"manifoldseg-tile-{p.tile.index}-{id(p):x}", **kw)
            pending[fut.key] = p
            return fut

        ac = as_completed()
        for _ in range(self.width):
            p = next(it, None)
            if p is None:
                break
            ac.add(submit(p))
        for fut in ac:
            p = pending.pop(fut.key)
            res = fut.result()
            fut.release()
            nxt = next(it, None)
            if nxt is not None:
                ac.add(submit(nxt))
            yield p, res


@dataclass
class _Payload:
    """Driver-side record of a tile: its rows (kept here) and the data sent to the task."""

    tile: Tile
    rows: np.ndarray
    data: TileData

    def task_data(self) -> TileData:
        return self.data


def _run_payload(payload, cell_diameter, segmenter, kwargs, numba_threads):
    data = payload.data if isinstance(payload, _Payload) else payload
    return run_tile(data, cell_diameter, segmenter, kwargs, numba_threads)


# --------------------------------------------------------------------------- the tiled run


@dataclass
class TiledResult:
    """Stitched labels and confidence of a tiled run (no embedding or graph: those stay per tile)."""

    labels: np.ndarray
    confidence: np.ndarray
    info: dict


def segment_tiled(
    coords: np.ndarray,
    X: sparse.csr_matrix,
    *,
    tile_size: float | str = "auto",
    overlap: float | None = None,
    cell_diameter: float | None = None,
    refine_diameter: bool = True,
    prior: np.ndarray | None = None,
    random_state: int = 0,
    scheduler: Any = None,
    n_jobs: int | None = None,
    progress: bool = True,
    segmenter: Callable | None = None,
    link_radius: float | None = None,
    **segment_kwargs,
) -> TiledResult:
    """Segment a whole section in overlapping tiles on Dask and stitch the tiles without seams.

    Parameters
    ----------
    coords
        Spot coordinates in um, (n, 2) or (n, 3); tiles are cut in x and y.
    X
        Counts, CSR (n, genes).
    tile_size
        Side of a tile's core in um, or ``"auto"`` (no tiling below 400,000 spots; above, tiles
        of about 250,000 spots). ``None`` is not accepted here (call ``segment_array``).
    overlap
        Margin around each core in um; default 2 cell diameters, at least 1.5.
    cell_diameter
        Used by every tile; estimated once on a central window of the section when None.
    refine_diameter
        Combine a given ``cell_diameter`` with the data's estimate (see ``ms.tl.segment``); ``False``
        uses it as is.
    prior
        Optional nucleus ids per spot (-1 outside nuclei).
    random_state
        Seed. The default segmenter's random draws are hashes of the seed and global spot ids (a
        tile's interior is laid out as in an untiled run); a custom ``segmenter`` gets
        :func:`tile_seed` ``(random_state, i)`` for tile ``i``.
    scheduler
        ``None``: a local ``distributed`` cluster of ``n_jobs`` worker processes (one thread each),
        started and closed by the call; ``"tcp://host:8786"``: an existing cluster;
        a ``distributed.Client``; ``"synchronous"`` (in-process, for debugging) or ``"threads"``.
    n_jobs
        Workers of the local cluster (default 1); threads with ``"threads"``.
    progress
        A tqdm bar over tiles (ETA included).
    segmenter
        The per-tile segmentation ``f(coords, X, *, cell_diameter, prior, random_state, **kw)
        -> (labels, confidence[, info])``; default ``segment_array``. Must be importable on the
        workers for process-based schedulers.
    link_radius
        Spots of a cell closer than this are connected (default from the spot spacing).
    **segment_kwargs
        Passed to the segmenter (e.g. ``n_neighbors``, ``persistence``).

    Returns
    -------
    :class:`TiledResult` with ``labels`` (int64, -1 background), ``confidence`` (float32) and
    ``info`` (cell diameter, tile size, overlap, tiles, cells, stitching counts, seconds).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    if not sparse.issparse(X):
        X = sparse.csr_matrix(X)
    X = X.tocsr()
    n = len(coords)
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    d, method, segment_kwargs, radius, dinfo = prepare_section(
        coords, X, prior, origin=coords.min(axis=0) if n else np.zeros(coords.shape[1]), cell_diameter=cell_diameter,
        random_state=random_state, segmenter=segmenter, segment_kwargs=segment_kwargs, link_radius=link_radius,
        refine_diameter=refine_diameter,
    )
    ov = resolve_overlap(overlap, d)
    size = resolve_tile_size(tile_size, coords, d, ov)
    if size is None:
        size = float(max(np.ptp(coords[:, 0]) if n else 0.0, np.ptp(coords[:, 1]) if n else 0.0, 1.0)) + 1.0
    layout = TileLayout.from_coords(coords, size, ov)
    index = TileIndex(coords, layout)
    stitcher = Stitcher(coords, counts, layout, radius)
    prior_arr = None if prior is None else np.asarray(prior)

    tile_rows = [(t, r) for t in layout.tiles() if len(r := index.rows(t))]
    n_work = len(tile_rows)

    def payloads():
        while tile_rows:
            tile, rows = tile_rows.pop(0)
            # the default segmenter draws its random numbers from global spot ids and the run's seed,
            # so a tile's interior is laid out as in an untiled run; other segmenters get a seed per tile
            seed, with_ids = tile_seed_ids(random_state, tile.index, segmenter)
            data = TileData(tile, coords[rows], X[rows], None if prior_arr is None else prior_arr[rows], seed,
                            rows if with_ids else None)
            yield _Payload(tile, rows, data)

    logger.info("segmenting %d spots in %d tiles of %.0f um (+%.0f um overlap), cell diameter %.1f um",
                n, n_work, size, ov, d)
    tile_seconds, stage_seconds = [], {}
    nuclear = None
    with _Runner(scheduler, n_jobs) as runner, tqdm(
        total=n_work, desc="tiles", unit="tile", disable=not progress
    ) as bar:
        kw = {"cell_diameter": d, "segmenter": segmenter, "kwargs": segment_kwargs,
              "numba_threads": runner.numba_threads}
        for p, res in runner.map(_run_payload, payloads(), **kw):
            stitcher.add(p.tile, p.rows, res.labels, res.confidence)
            nuclear = res.info.get("nuclear_genes", nuclear)  # the section's: the same in every tile
            tile_seconds.append(res.seconds)
            for k, v in (res.info.get("timings") or {}).items():
                stage_seconds[k] = round(stage_seconds.get(k, 0.0) + float(v), 3)
            bar.update(1)
        kind = runner.kind
    labels, conf, sinfo = stitcher.finish()
    info = {
        "tiled": True,
        "cell_diameter": d,
        "cell_diameter_method": method,
        **dinfo,
        "tile_size": size,
        "overlap": ov,
        "n_tiles": int(n_work),
        "grid": [layout.nx, layout.ny],
        "scheduler": kind,
        "link_radius": radius,
        "nuclear_genes": nuclear,
        **sinfo,
        "tile_seconds_total": round(float(np.sum(tile_seconds)), 3),
        "timings": stage_seconds,  # per stage, summed over tiles
        "tile_seconds_max": round(float(np.max(tile_seconds)) if tile_seconds else 0.0, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return TiledResult(labels, conf, info)


def use_tiles(tile_size: float | str | None, n_spots: int) -> bool:
    """Whether ``segment(..., tile_size=...)`` runs tiled: a number always, ``"auto"`` above
    :data:`AUTO_MIN_SPOTS` spots, ``None`` never."""
    if tile_size is None:
        return False
    if isinstance(tile_size, str):
        if tile_size != "auto":
            raise InputError(f"tile_size must be a number of um, 'auto' or None; got {tile_size!r}.")
        return n_spots > AUTO_MIN_SPOTS
    return True
