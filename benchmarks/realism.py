"""How close the simulator is to the real sets: statistics of where RNA lies (issue 3: "make the
simulator's defaults as hard as the real sets so that progress on it carries over").

Per data set, with its reference (the simulator's true cells, CosMx's NanoString cells, MERSCOPE's
Vizgen polygons; NegPrb / Blank rows dropped):

- ``off_cell``: share of transcripts outside reference cells;
- ``offcell_d25`` ... ``offcell_d90``: quantiles of the distance (um) from an off-cell transcript to
  the nearest in-cell one (how far background lies from cells: wide gaps or narrow ones);
- ``cell_clump_1`` / ``cell_clump_05``: clumping of RNA inside cells, :func:`clumping_ratio` of
  same-cell pairs within 1 um / 0.5 um against 3 um (1 for an even spread, a little above it
  from edge effects and the denser nucleus);
- ``bg_clump_1`` / ``bg_clump_05``: the same among off-cell transcripts;
- cell geometry (:func:`cell_geometry`, cells of 5+ transcripts, convex hulls): ``d_median``, the
  median equivalent diameter (um); ``d_cv``, its coefficient of variation; ``elongation``, the
  median ratio of a cell's principal standard deviations; ``neighbour_d``, the median distance from
  a cell's centroid to the nearest other cell's, over ``d_median``; ``tx_per_cell``, the median
  transcripts per cell;
- how alike cells' expression is (:func:`expression_similarity`, cells of 20+ transcripts, each
  split at random into two halves, cosine of raw gene counts between halves): ``expr_self``, the
  median between a cell's own halves; ``expr_adjacent``, between touching cells; ``expr_any``,
  between any two cells; ``distinctness`` = (self - adjacent) / (self - any): 0 when touching cells
  are as alike as the halves of one cell (expression cannot tell them apart), 1 when they differ
  as much as any two cells.

The simulator runs at its defaults and with the options that model what the defaults lack
(:data:`VARIANTS`). Transcripts only: bins hide sub-micron structure.

Usage::

    python benchmarks/realism.py                 # real sets + simulator variants, seeds 0 1 2 (about 1 min)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import _real  # noqa: E402
import accuracy as A  # noqa: E402
from _report import finish, parse_args  # noqa: E402
from scaling import markdown_table, seed_list  # noqa: E402

#: the simulator at its defaults and with the options that match the CosMx FOVs
#: (:data:`accuracy.COSMX_CALIBRATED`, calibrated here on 2026-12-07): RNA clumps inside cells
#: (1.29-1.32 at 1 um, 1.44-1.48 at 0.5 um) and more so between them (1.36-1.44 / 1.78-1.90), and
#: background lies in narrow gaps (median 2.7-3.4 um from a cell), cells are elongated (1.52-1.59)
#: and varied in size (diameter CV 0.28-0.36), and cells are alike in expression (any two cells'
#: cosine 0.78-0.79 of one cell's halves, touching cells' distinctness 0.25-0.62); the defaults have
#: Poisson RNA diffused by 0.6 um, wide gaps (gap_scale 30 um), rounder, more even cells (1.36-1.40,
#: 0.25) and distinct cell types placed with little clustering (0.38, 0.87)
VARIANTS = {"sim_defaults": {}, "sim_cosmx_like": A.COSMX_CALIBRATED}
KEYS = ("off_cell", "offcell_d25", "offcell_d50", "offcell_d75", "offcell_d90", "cell_clump_1", "cell_clump_05",
        "bg_clump_1", "bg_clump_05", "d_median", "d_cv", "elongation", "neighbour_d", "tx_per_cell",
        "expr_self", "expr_adjacent", "expr_any", "distinctness")
EXPRESSION_KEYS = KEYS[-4:]
CONTROL_PREFIXES = ("NegPrb", "Blank", "NegControl", "SystemControl")


def clumping_ratio(xy: np.ndarray, labels: np.ndarray, radius: float, reference: float = 3.0) -> float:
    """Pairs of items with the same label within ``radius``, per unit area, over the same within
    ``reference``: (N(r) / r^2) / (N(R) / R^2). 1 for items spread evenly (less edge effects),
    above 1 when they clump at scales below ``reference``. NaN without pairs within ``reference``."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    tree = cKDTree(xy)
    counts = []
    for r in (radius, reference):
        pairs = tree.query_pairs(r, output_type="ndarray")
        counts.append(int((labels[pairs[:, 0]] == labels[pairs[:, 1]]).sum()) if len(pairs) else 0)
    if counts[1] == 0:
        return float("nan")
    return float((counts[0] / radius**2) / (counts[1] / reference**2))


def cell_geometry(xy: np.ndarray, labels: np.ndarray, min_items: int = 5) -> dict:
    """Size, size spread, elongation, spacing and transcripts of the labelled cells (module
    docstring); sizes, centroids and convex-hull areas from :func:`ms.metrics.cell_stats`."""
    from scipy.spatial import cKDTree

    import manifoldseg as ms

    labels = np.asarray(labels, dtype=np.int64)
    keys = ("d_median", "d_cv", "elongation", "neighbour_d", "tx_per_cell")
    inside = labels >= 0
    if not inside.any():
        return {k: float("nan") for k in keys}
    xy = np.asarray(xy, dtype=np.float64)[inside, :2]
    st = ms.metrics.cell_stats(labels[inside], coords=xy)
    code = np.searchsorted(st.index.to_numpy(), labels[inside])
    centroid = st[["x", "y"]].to_numpy()
    d = xy - centroid[code]  # second moments about each cell's centroid
    n = st["n_spots"].to_numpy()
    cov = [np.bincount(code, weights=d[:, i] * d[:, j], minlength=len(n)) / np.maximum(n - 1, 1)
           for i, j in ((0, 0), (1, 1), (0, 1))]
    half_gap = np.sqrt(((cov[0] - cov[1]) / 2.0) ** 2 + cov[2] ** 2)
    major, minor = (cov[0] + cov[1]) / 2.0 + half_gap, (cov[0] + cov[1]) / 2.0 - half_gap
    keep = (n >= min_items) & (st["area"].to_numpy() > 0)  # 2D cells of a few items or more
    if keep.sum() < 2:
        return {k: float("nan") for k in keys}
    diameter = 2.0 * np.sqrt(st["area"].to_numpy()[keep] / np.pi)
    d_med = float(np.median(diameter))
    neighbour = cKDTree(centroid[keep]).query(centroid[keep], 2)[0][:, 1]
    return {"d_median": d_med, "d_cv": float(diameter.std() / diameter.mean()),
            "elongation": float(np.median(np.sqrt(major[keep] / np.maximum(minor[keep], 1e-12)))),
            "neighbour_d": float(np.median(neighbour) / d_med), "tx_per_cell": float(np.median(n[keep]))}


def expression_similarity(xy: np.ndarray, labels: np.ndarray, genes: np.ndarray | None, *, min_items: int = 20,
                          n_neighbors: int = 6, seed: int = 0) -> dict:
    """How alike the expression of one cell's halves, of touching cells and of any two cells is
    (module docstring). ``genes``: a gene code per transcript (None: all NaN). Two cells touch when one's transcript
    has one of the other's among its ``n_neighbors`` nearest transcripts. Each cell's transcripts
    are split into halves by a random permutation (``seed``); pairs compare one cell's first half
    with the other's second, so every cosine is between profiles of about the same depth."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    nan = dict.fromkeys(EXPRESSION_KEYS, float("nan"))
    if genes is None:
        return nan
    labels = np.asarray(labels, dtype=np.int64)
    genes = np.asarray(genes, dtype=np.int64)
    inside = np.nonzero(labels >= 0)[0]
    if not len(inside):
        return nan
    ids, code = np.unique(labels[inside], return_inverse=True)
    k, n_genes = len(ids), int(genes.max()) + 1
    first = np.random.default_rng(seed).random(len(inside)) < 0.5
    halves = []
    for part in (first, ~first):
        m = sparse.csr_matrix((np.ones(part.sum()), (code[part], genes[inside[part]])), shape=(k, n_genes))
        norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        halves.append(sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ m)
    cos = (halves[0] @ halves[1].T).toarray()
    ok = np.bincount(code, minlength=k) >= min_items
    if ok.sum() < 2:
        return nan
    cell = np.full(len(labels), -1)
    cell[inside] = code
    xy = np.asarray(xy, dtype=np.float64)[:, :2]
    _, nb = cKDTree(xy).query(xy[inside], min(n_neighbors + 1, len(labels)))
    a = np.repeat(code, nb.shape[1] - 1)
    b = cell[nb[:, 1:]].ravel()
    touch = (b >= 0) & (a != b)
    pairs = np.unique(np.stack([a[touch], b[touch]], axis=1), axis=0)
    pairs = pairs[ok[pairs[:, 0]] & ok[pairs[:, 1]]]
    sub = cos[np.ix_(ok, ok)]
    self_ = float(np.median(np.diag(sub)))
    any_ = float(np.median(sub[~np.eye(len(sub), dtype=bool)]))
    adjacent = float(np.median(cos[pairs[:, 0], pairs[:, 1]])) if len(pairs) else float("nan")
    spread = self_ - any_
    return {"expr_self": self_, "expr_adjacent": adjacent, "expr_any": any_,
            "distinctness": float((self_ - adjacent) / spread) if spread > 0 else float("nan")}


def statistics(xy: np.ndarray, labels: np.ndarray, genes: np.ndarray | None = None) -> dict:
    """Every statistic of the module docstring for transcripts at ``xy`` with reference ``labels``
    (the expression ones need ``genes``, a gene code per transcript)."""
    from scipy.spatial import cKDTree

    labels = np.asarray(labels, dtype=np.int64)
    inside = labels >= 0
    d, _ = cKDTree(xy[inside]).query(xy[~inside])
    q = np.quantile(d, [0.25, 0.5, 0.75, 0.9]) if len(d) else np.full(4, np.nan)
    return {
        "off_cell": float(np.mean(~inside)),
        **{f"offcell_d{p}": float(v) for p, v in zip((25, 50, 75, 90), q, strict=True)},
        "cell_clump_1": clumping_ratio(xy[inside], labels[inside], 1.0),
        "cell_clump_05": clumping_ratio(xy[inside], labels[inside], 0.5),
        "bg_clump_1": clumping_ratio(xy[~inside], labels[~inside], 1.0),
        "bg_clump_05": clumping_ratio(xy[~inside], labels[~inside], 0.5),
        **cell_geometry(xy, labels),
        **expression_similarity(xy, labels, genes),
    }


def gene_codes(adata) -> np.ndarray:
    """A gene code per transcript of one-hot ``adata.X`` (the column of its one count)."""
    from scipy import sparse

    x = sparse.csr_matrix(adata.X)
    if np.any(np.diff(x.indptr) != 1):
        raise ValueError("realism statistics need one transcript per row (one count in each row of X)")
    return x.indices.astype(np.int64)


def real_case(name: str) -> dict:
    adata = _real.load(name)
    genes = adata.obs["gene"].astype(str) if "gene" in adata.obs else pd.Series([""] * adata.n_obs)
    keep = ~genes.str.startswith(CONTROL_PREFIXES).to_numpy()
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)[keep, :2]
    return statistics(xy, adata.obs[_real.REF_CELL].to_numpy()[keep], gene_codes(adata)[keep])


def sim_case(variant: str, seed: int) -> dict:
    import manifoldseg as ms

    adata = ms.datasets.simulate(mode="transcripts", random_state=seed, **VARIANTS[variant])
    return statistics(np.asarray(adata.obsm["spatial"])[:, :2], adata.obs[A.TRUTH_KEY].to_numpy(), gene_codes(adata))


REAL = ("cosmx_fov2", "cosmx_fov3", "merscope")


#: the markdown page's note under its title
NOTE = ("Transcripts; reference cells as labels (simulator: true cells, medians over seeds). off_cell = share "
        "outside cells; offcell_dNN = quantiles of the distance (um) from an off-cell transcript to the nearest "
        "in-cell one; cell_clump / bg_clump = same-cell (in cells) or off-cell pairs within 1 um (_1) or 0.5 um "
        "(_05), per unit area, over those within 3 um (1 = even); d_median / d_cv = median equivalent diameter "
        "(um, convex hulls) and its coefficient of variation, elongation = median ratio of principal sds, "
        "neighbour_d = median nearest-centroid distance / d_median, tx_per_cell = median transcripts per cell; "
        "expr_self / expr_adjacent / expr_any = median cosine of gene counts between a cell's two random halves, "
        "touching cells and any two cells (cells of 20+ transcripts), distinctness = (self - adjacent) / "
        "(self - any): 0 = touching cells as alike as one cell's halves. "
        "Simulator variants: "
        f"{VARIANTS}. See the docstring of benchmarks/realism.py.")


def main(argv=None) -> int:
    cases = [*REAL, *VARIANTS]
    args = parse_args(argv, __doc__.split("\n")[0], cases, RESULTS / "realism.json")
    t0 = time.perf_counter()
    rows = []
    for case in args.cases:
        if case in REAL:
            if _real.data_dir() is None:
                print(f"{case}: skipped (no real data: set MANIFOLDSEG_DATA)", flush=True)
                continue
            rows.append({"case": case, "seeds": "-", **real_case(case)})
        else:
            per_seed = [sim_case(case, s) for s in args.seeds]
            rows.append({"case": case, "seeds": seed_list(args.seeds),
                         **{k: float(np.median([r[k] for r in per_seed])) for k in KEYS}})
        print(case, " ".join(f"{k} {rows[-1][k]:.2f}" for k in KEYS), flush=True)
    rows = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    text = markdown_table(rows, ["case", "seeds", *KEYS])
    finish(args.output, "Simulator realism: where RNA lies", NOTE, text, t0, variants=VARIANTS, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
