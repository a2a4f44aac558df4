"""Where the RNA-only misses come from: how many reference cells get a seed (issue 3, steps 5-6).

Without a nuclear prior, the refinement grows one cell from each candidate's density peak
(``SegmentResult.peaks``). A reference cell that holds no peak cannot be found (a neighbour
absorbs it, or it is left as background); a cell with two peaks is split unless the refinement
merges them. With the simulator's nuclei as seeds (``prior_key="nucleus"``) F1 is 0.95-0.97, so
the seeds bound the RNA-only score. Per case, over seeds (0-2; 0-44 on CosMx; medians):

- ``no_peak`` / ``one_peak`` / ``two_plus``: share of reference cells holding 0, 1, 2+ peaks;
  ``peaks_in_background``: share of peaks on reference background;
- ``f1_bound``: the F1 if every one-peak cell were matched and nothing else,
  2 x one-peak cells / (reference cells + our cells); ``f1``: what the run reached;
- ``missed_size`` / ``missed_counts``: median size (items) and counts of no-peak cells relative
  to those of one-peak cells; ``missed_same_type``: share of no-peak cells whose absorbing
  candidate peaks in a cell of the same type (simulator only: RNA cannot tell those apart);
- where missed cells go: ``missed_background``, the median share of a no-peak cell's items our run
  leaves as background; ``missed_mostly_background``, the share of no-peak cells more than half
  background; ``missed_pieces``, the median number of our cells holding >= 10 % of a no-peak cell;
- how far missed cells lie from what was found, in units of the method's cell diameter:
  ``missed_peak_distance``, the median distance from a no-peak cell's centroid to the nearest
  peak; ``missed_neighbour_distance`` / ``found_neighbour_distance``, the median distance from a
  no-peak / one-peak cell's centroid to the nearest other reference cell's centroid (a second
  seed for a missed cell has to sit this close to its neighbour's);
- ``two_cell``: share of our cells in which a second reference cell holds >= 25 % of the items
  (a missed cell swallowed whole, or two cells joined);
- why a cell has no peak, from the merge tree of the field the candidates climbed
  (``SegmentResult.field``; every local maximum, merged by height alone): ``no_maximum``, the
  share of reference cells holding no local maximum of it at all; ``merged_maximum``, the share
  holding one that the candidates merged into a neighbour (in each run, no_peak = the two
  together); for those, the median height of their highest maximum
  above the level where it meets a higher one (``merged_persistence``, the candidates' ``persistence``
  is 0.3) and its distance to that higher maximum (``merged_distance``); for comparison,
  ``extra_distance``, the same distance for a cell's lower maxima (two maxima of one cell);
- where split nuclei go (reference nuclei: the simulator's ``nucleus``, CosMx's ``CellComp``):
  ``nuclei_whole``, the share of nuclei with >= 90 % of their items in one of our cells (the
  accuracy benchmark's nuclear consistency); among the others, the mean share of their items
  left as background (``split_nuclei_background``) and in cells other than the main one
  (``split_nuclei_other``);
- what better seeds could buy: the run's ``f1``, ``ari`` and ``nuclei_whole`` against
  ``oracle_f1``, ``oracle_ari`` and ``oracle_nuclei_whole``, the same method with its density
  peaks replaced by one seed per reference cell, the item nearest the cell's centroid
  (:func:`centroid_seeds`; ``segment_array(seed_points=...)``). It reads the reference, so it is
  not a method: it is the ceiling of the refinement, and what the seeds cost is the gap to it.

Usage::

    python benchmarks/seeds.py                 # seeds 0 1 2 (0-44 on CosMx), all cases (about 15 min on 2 cores)
    python benchmarks/seeds.py --cases cosmx_fov2 --seeds 0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import _real  # noqa: E402
import accuracy as A  # noqa: E402
from _report import finish, parse_args, run_cases  # noqa: E402
from scaling import markdown_table, seed_list  # noqa: E402

import manifoldseg as ms  # noqa: E402
from manifoldseg._kernels._density import merge_tree as _merge_tree  # noqa: E402  (ToMATo's own loop)
from manifoldseg.metrics._labels import axis_max, axis_sum, background_overlap  # noqa: E402

CASES = {
    "sim_bins_1um": (A._sim_loader("bins", 1.0), A.TRUTH_KEY, 1.0),
    "sim_bins_2um": (A._sim_loader("bins", 2.0), A.TRUTH_KEY, 2.0),
    "sim_transcripts": (A._sim_loader("transcripts"), A.TRUTH_KEY, None),
    "cosmx_fov2": (A._real_loader("cosmx_fov2"), _real.REF_CELL, None),
    "cosmx_fov3": (A._real_loader("cosmx_fov3"), _real.REF_CELL, None),
}
TYPE_KEY = "true_type"
KEYS = ("no_peak", "one_peak", "two_plus", "peaks_in_background", "f1_bound", "f1", "missed_size",
        "missed_counts", "missed_same_type", "missed_background", "missed_mostly_background", "missed_pieces",
        "missed_peak_distance", "missed_neighbour_distance", "found_neighbour_distance", "no_maximum",
        "merged_maximum", "merged_persistence", "merged_distance", "extra_distance", "two_cell", "nuclei_whole",
        "split_nuclei_background", "split_nuclei_other", "ari", "oracle_f1", "oracle_ari", "oracle_nuclei_whole")
NUCLEUS_KEYS = {"sim_bins_1um": "nucleus", "sim_bins_2um": "nucleus", "sim_transcripts": "nucleus",
                "cosmx_fov2": _real.REF_NUCLEUS, "cosmx_fov3": _real.REF_NUCLEUS}

#: the markdown page's note under its title
NOTE = (
    "Medians over seeds. Shares of reference cells holding 0 / 1 / 2+ of the density peaks the "
    "refinement grows cells from; f1_bound = 2 x one-peak cells / (reference + our cells); "
    "missed_size / missed_counts = median size / counts of no-peak cells over those of one-peak "
    "cells; missed_same_type = share of no-peak cells absorbed by a candidate peaking in a cell "
    "of the same type (simulator only); missed_background / missed_mostly_background / missed_pieces: "
    "median share of a no-peak cell left as background, share of no-peak cells more than half "
    "background, median number of our cells holding >= 10 % of one; missed_peak_distance = median distance "
    "(in cell diameters) from a no-peak cell's centroid to the nearest peak, missed_ / "
    "found_neighbour_distance = to the nearest other reference cell's centroid (no-peak / one-peak "
    "cells); two_cell = share of our cells "
    "where a second reference cell holds >= 25 %; nuclei_whole = share of reference nuclei >= 90 % "
    "in one cell, split_nuclei_background / _other = mean share of a split nucleus left as "
    "background / in other cells; f1 / ari / nuclei_whole: the run's scores; oracle_f1 / oracle_ari / "
    "oracle_nuclei_whole: the same method seeded with one point at each reference cell's centroid instead "
    "of its density peaks (reads the reference: not a method, the refinement's ceiling). See the docstring "
    "of benchmarks/seeds.py.")


def centroid_seeds(truth: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """One item per reference cell (``truth`` >= 0): the one nearest the cell's centroid (ties: the
    lowest index), sorted."""
    truth = np.asarray(truth, dtype=np.int64)
    xy = np.asarray(coords, dtype=np.float64)
    idx = np.flatnonzero(truth >= 0)
    if not len(idx):
        return np.zeros(0, dtype=np.int64)
    idx = idx[np.argsort(truth[idx], kind="stable")]
    ids, start = np.unique(truth[idx], return_index=True)
    out = np.empty(len(ids), dtype=np.int64)
    for k, (a, b) in enumerate(zip(start, [*start[1:], len(idx)], strict=True)):
        members = idx[a:b]
        centre = xy[members].mean(axis=0)
        out[k] = members[int(np.argmin(((xy[members] - centre) ** 2).sum(axis=1)))]
    return np.sort(out)


def peaks_per_cell(truth: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference cell ids (sorted) and how many of the ``peaks`` (item indices) each holds."""
    ids = np.unique(truth[truth >= 0])
    on = truth[peaks]
    k = int(ids.max()) + 1 if len(ids) else 0
    return ids, np.bincount(on[on >= 0], minlength=k)[ids]


def seed_coverage(truth: np.ndarray, peaks: np.ndarray, candidates: np.ndarray, pred: np.ndarray,
                  counts: np.ndarray, cell_type: np.ndarray | None = None) -> dict:
    """Seed coverage of the reference cells (see the module docstring); ``truth`` -1 = background."""
    truth = np.asarray(truth, dtype=np.int64)
    peaks = np.asarray(peaks, dtype=np.int64)
    ids, n_peaks = peaks_per_cell(truth, peaks)
    k = int(truth.max()) + 1 if len(ids) else 0
    on = truth[peaks]
    none, one = ids[n_peaks == 0], ids[n_peaks == 1]
    n_pred = int(np.unique(pred[pred >= 0]).size)
    size = np.bincount(truth[truth >= 0], minlength=k).astype(np.float64)
    cnt = np.bincount(truth[truth >= 0], weights=counts[truth >= 0], minlength=k)
    out = {
        "n_true": int(len(ids)), "n_peaks": int(len(peaks)), "n_pred": n_pred,
        "no_peak": float(len(none) / max(len(ids), 1)), "one_peak": float(len(one) / max(len(ids), 1)),
        "two_plus": float((n_peaks >= 2).mean()) if len(ids) else float("nan"),
        "peaks_in_background": float((on < 0).mean()) if len(peaks) else float("nan"),
        "f1_bound": float(2 * len(one) / max(len(ids) + n_pred, 1)),
        "missed_size": float(np.median(size[none]) / np.median(size[one])) if len(none) and len(one) else float("nan"),
        "missed_counts": float(np.median(cnt[none]) / np.median(cnt[one])) if len(none) and len(one) else float("nan"),
        "missed_same_type": float("nan"),
        **_missed_fate(truth, pred, none),
        "two_cell": _two_cell_share(truth, pred),
    }
    if cell_type is not None and len(none):
        labelled, first = np.unique(truth, return_index=True)
        type_of = dict(zip(labelled.tolist(), np.asarray(cell_type)[first], strict=True))
        same = []
        for c in none:
            cand = candidates[(truth == c) & (candidates >= 0)]
            if not len(cand):
                continue
            host = int(truth[peaks[np.bincount(cand).argmax()]])
            same.append(host >= 0 and type_of[host] == type_of[int(c)])
        out["missed_same_type"] = float(np.mean(same)) if same else float("nan")
    return out


def missed_spacing(truth: np.ndarray, peaks: np.ndarray, coords: np.ndarray, diameter: float) -> dict:
    """How far the no-peak cells' centroids lie from the nearest peak and from the nearest other
    reference cell's centroid (one-peak cells for comparison); medians, in units of ``diameter``."""
    from scipy.spatial import cKDTree


    truth = np.asarray(truth, dtype=np.int64)
    peaks = np.asarray(peaks, dtype=np.int64)
    xy = np.asarray(coords, dtype=np.float64)[:, :2]
    ids, n_peaks = peaks_per_cell(truth, peaks)
    nan = float("nan")
    if len(ids) < 2:
        return {"missed_peak_distance": nan, "missed_neighbour_distance": nan, "found_neighbour_distance": nan}
    inside = truth >= 0
    centroid = ms.metrics.cell_stats(truth[inside], coords=xy[inside])[["x", "y"]].to_numpy()  # order of ids
    neighbour = cKDTree(centroid).query(centroid, 2)[0][:, 1] / diameter
    to_peak = cKDTree(xy[peaks]).query(centroid)[0] / diameter if len(peaks) else np.full(len(ids), np.inf)

    def med(v, sel):
        return float(np.median(v[sel])) if sel.any() else nan

    none, one = n_peaks == 0, n_peaks == 1
    return {"missed_peak_distance": med(to_peak, none), "missed_neighbour_distance": med(neighbour, none),
            "found_neighbour_distance": med(neighbour, one)}


def merge_tree(indptr: np.ndarray, indices: np.ndarray, field: np.ndarray):
    """Every local maximum of ``field`` on the graph, merged by height alone (ToMATo's own loop
    without its thresholds, :func:`manifoldseg._kernels._density.merge_tree`; items at -inf left
    out): per item, whether it is a maximum (a new cluster in ToMATo's order), its height above the
    level where its cluster meets a higher one (inf for the highest of a component) and the maximum
    it meets there (-1)."""
    return _merge_tree(np.asarray(indptr, np.int64), np.asarray(indices, np.int64), np.asarray(field, np.float64))


def maxima_fate(truth: np.ndarray, peaks: np.ndarray, field: np.ndarray, graph, coords: np.ndarray,
                diameter: float) -> dict:
    """Why reference cells hold no peak (see the module docstring): no local maximum of the
    climbed ``field`` at all, or one the candidates merged away (how high it stood above its merge
    level, how far from the higher maximum it met); distances in units of ``diameter``."""
    nan = float("nan")
    truth = np.asarray(truth, dtype=np.int64)
    ids, n_peaks = peaks_per_cell(truth, np.asarray(peaks, dtype=np.int64))
    if field is None or not len(ids):
        return {k: nan for k in ("no_maximum", "merged_maximum", "merged_persistence", "merged_distance",
                                 "extra_distance")}
    g = sparse.csr_matrix(graph)
    is_max, height, into = merge_tree(g.indptr, g.indices, field)
    xy = np.asarray(coords, dtype=np.float64)

    def distance(i):
        return float(np.linalg.norm(xy[i] - xy[into[i]]) / diameter) if into[i] >= 0 else nan

    mx = np.flatnonzero(is_max & (truth >= 0))
    mx = mx[np.lexsort((-np.asarray(field)[mx], truth[mx]))]  # by cell, highest first
    first = np.ones(len(mx), dtype=bool)
    first[1:] = truth[mx][1:] != truth[mx][:-1]
    top = dict(zip(truth[mx[first]].tolist(), mx[first].tolist(), strict=True))
    without = ids[n_peaks == 0]
    merged = [top[c] for c in without.tolist() if c in top]
    extra = [distance(i) for i in mx[~first]]
    return {
        "no_maximum": float(sum(c not in top for c in without.tolist()) / len(ids)),
        "merged_maximum": float(len(merged) / len(ids)),
        "merged_persistence": float(np.median(height[merged])) if merged else nan,
        "merged_distance": float(np.nanmedian([distance(i) for i in merged])) if merged else nan,
        "extra_distance": float(np.nanmedian(extra)) if extra else nan,
    }


def _overlap(rows: np.ndarray, cols: np.ndarray):
    """``ms.metrics``' contingency of two label arrays, each row label's item count and the share
    of its items that ``cols`` leaves as background (-1)."""
    c, size, outside = background_overlap(rows, cols)
    return c, size, outside / np.maximum(size, 1.0)


def _missed_fate(truth: np.ndarray, pred: np.ndarray, missed: np.ndarray) -> dict:
    """Where the reference cells without a peak went: background, and into how many of our cells."""
    if not len(missed):
        return {"missed_background": float("nan"), "missed_mostly_background": float("nan"),
                "missed_pieces": float("nan")}
    c, size, bg = _overlap(truth, pred)
    at = np.searchsorted(c.row_ids, missed)
    share = sparse.diags(1.0 / size[at]) @ c.table[at]
    share.data = (share.data >= 0.1).astype(np.float64)
    return {"missed_background": float(np.median(bg[at])),
            "missed_mostly_background": float(np.mean(bg[at] > 0.5)),
            "missed_pieces": float(np.median(axis_sum(share, 1)))}


def _two_cell_share(truth: np.ndarray, pred: np.ndarray) -> float:
    """Share of our cells in which a second reference cell holds >= 25 % of the items."""
    c, size, _ = _overlap(pred, truth)  # rows: our cells, columns: reference cells
    if not len(size):
        return float("nan")
    table = c.table.toarray()
    second = np.sort(table, axis=1)[:, -2] if table.shape[1] > 1 else np.zeros(len(size))
    return float(np.mean(second >= 0.25 * size))


def nucleus_fate(nucleus: np.ndarray, pred: np.ndarray) -> dict:
    """Nuclei kept whole (``ms.metrics.nuclear_consistency``: >= 90 % of their items in one of our
    cells) and, for the others, the mean share of their items left as background and in other cells."""

    c, size, bg = _overlap(nucleus, pred)
    if not len(size):
        return {"nuclei_whole": float("nan"), "split_nuclei_background": float("nan"),
                "split_nuclei_other": float("nan")}
    main = axis_max(c.table, 1) / size
    split = main < 0.9 - 1e-9  # as nuclear_consistency counts a nucleus whole
    return {"nuclei_whole": ms.metrics.nuclear_consistency(nucleus, pred),
            "split_nuclei_background": float(np.mean(bg[split])) if split.any() else float("nan"),
            "split_nuclei_other": float(np.mean(1.0 - main[split] - bg[split])) if split.any() else float("nan")}


def one(case: str, seed: int) -> dict:
    """Segment one case RNA-only (as ``ms.tl.segment`` does, untiled) and measure its seeds."""
    from manifoldseg._validate import check_adata
    from manifoldseg.tl._segment import segment_array

    load, truth_key, bin_size = CASES[case]
    adata = load(seed)
    sub = _real.segmentation_input(adata)
    coords, X = check_adata(sub)
    t0 = time.perf_counter()
    res = segment_array(coords, X, random_state=seed)
    secs = time.perf_counter() - t0
    truth = adata.obs[truth_key].to_numpy(dtype=np.int64)
    counts = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
    ctype = adata.obs[TYPE_KEY].to_numpy() if TYPE_KEY in adata.obs else None
    row = seed_coverage(truth, res.peaks, res.candidates, res.labels, counts, ctype)
    row.update(missed_spacing(truth, res.peaks, coords, float(res.info["cell_diameter"])))
    row.update(maxima_fate(truth, res.peaks, res.field, res.graph, coords, float(res.info["cell_diameter"])))
    nucleus = adata.obs[NUCLEUS_KEYS[case]].to_numpy(dtype=np.int64)
    row.update(nucleus_fate(nucleus, res.labels))
    scores = A.score(adata, res.labels, truth_key=truth_key, nucleus_key=None, bin_size=bin_size)
    row["f1"], row["ari"] = float(scores["f1"]), float(scores["ari"])
    ideal = segment_array(coords, X, random_state=seed, seed_points=centroid_seeds(truth, coords))
    scores = A.score(adata, ideal.labels, truth_key=truth_key, nucleus_key=None, bin_size=bin_size)
    row["oracle_f1"], row["oracle_ari"] = float(scores["f1"]), float(scores["ari"])
    row["oracle_nuclei_whole"] = float(ms.metrics.nuclear_consistency(nucleus, ideal.labels))
    return {"case": case, "seed": seed, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()},
            "cell_diameter": round(float(res.info["cell_diameter"]), 2), "seconds": round(secs, 1)}


def summarize(rows: list[dict]) -> list[dict]:
    """Medians over seeds per case."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        rs = [r for r in rows if r["case"] == case]
        med = {k: round(float(np.nanmedian([r[k] for r in rs])), 3) if not all(np.isnan(r[k]) for r in rs)
               else float("nan") for k in KEYS}
        counts = {k: int(np.median([r[k] for r in rs])) for k in ("n_true", "n_pred")}
        out.append({"case": case, "seeds": seed_list(r["seed"] for r in rs), **counts, **med})
    return out


def table(summary: list[dict]) -> str:
    return markdown_table(summary, ["case", "seeds", "n_true", "n_pred", *KEYS])


def main(argv=None) -> int:
    args = parse_args(argv, __doc__.split("\n")[0], list(CASES), RESULTS / "seeds.json")
    t0 = time.perf_counter()
    rows = run_cases(args, one, lambda rs: (
        f"{rs[0]['n_true']} cells, no peak {rs[0]['no_peak']:.3f}, one {rs[0]['one_peak']:.3f}, "
        f"2+ {rs[0]['two_plus']:.3f}, F1 bound {rs[0]['f1_bound']:.3f}, F1 {rs[0]['f1']:.3f}"))
    summary = summarize(rows)
    finish(args.output, "Seed coverage, RNA only", NOTE, table(summary), t0, rows=rows, summary=summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
