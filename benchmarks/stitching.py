"""Tiled vs untiled agreement: are tiles stitched without seams?

On simulated tissues (``simulate()`` defaults at 300 x 300 um, cut into 3 x 3 tiles of 100 um: a
large share of the cells lies on tile borders), ``ms.tl.segment``'s pipeline runs once untiled and
once tiled (``_tiling.segment_tiled``, synchronous scheduler and a real Dask ``LocalCluster``), with
the same seed and cell diameter. Reported per case and seed:

- ARI (over spots assigned in both runs) and one-to-one cell F1 at IoU >= 0.5 between the tiled and
  the untiled labels (issue 5 targets: ARI >= 0.98, F1 >= 0.97);
- border splits: untiled cells that cross a tile-core border and that the tiled run cuts into two
  or more cells (each piece >= 20% of the cell), as a share of border-crossing cells, next to the
  same share for cells inside one core (the method's own disagreement away from borders);
- output cells that span two tile cores and fall apart into two pieces (spots farther apart than
  the stitcher's link radius), tiled next to untiled (target: no more than untiled); the stitcher's
  own count of detached pieces it returned to background is listed too;
- whether the LocalCluster run gives exactly the synchronous labels;
- F1 of both runs against the simulated truth.

Usage::

    python benchmarks/stitching.py                  # 3 seeds x (bins 1 um, transcripts)
    python benchmarks/stitching.py --seeds 0 --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from scaling import machine, markdown_table  # noqa: E402

CASES = {"bins_1um": {"mode": "bins", "bin_size": 1.0}, "transcripts": {"mode": "transcripts"}}
TARGETS = {"ari": 0.98, "f1": 0.97}


def border_splits(xy, untiled, tiled, layout, min_share=0.2):
    """(split share of border-crossing untiled cells, split share of interior cells, counts)."""
    core = layout.core_index(xy)
    out = {"border": [0, 0], "interior": [0, 0]}
    for c in np.unique(untiled[untiled >= 0]):
        idx = np.flatnonzero(untiled == c)
        kind = "border" if len(np.unique(core[idx])) > 1 else "interior"
        lab = tiled[idx]
        lab = lab[lab >= 0]
        pieces = 0
        if len(lab):
            _, cnt = np.unique(lab, return_counts=True)
            pieces = int((cnt >= min_share * len(idx)).sum())
        out[kind][0] += pieces >= 2
        out[kind][1] += 1
    share = {k: (v[0] / v[1] if v[1] else 0.0) for k, v in out.items()}
    return share["border"], share["interior"], out


def split_border_cells(xy, labels, layout, radius) -> int:
    """Cells spanning two or more tile cores whose spots form more than one piece at ``radius``."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    core = layout.core_index(xy)
    bad = 0
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2 or len(np.unique(core[idx])) < 2:
            continue
        p = cKDTree(xy[idx]).query_pairs(radius, output_type="ndarray")
        g = sparse.coo_matrix((np.ones(len(p)), (p[:, 0], p[:, 1])), shape=(len(idx),) * 2)
        bad += sparse.csgraph.connected_components(g, directed=False)[0] > 1
    return int(bad)


def one(case: str, seed: int, size: float, tile: float, cluster: bool) -> dict:
    import manifoldseg as ms
    from manifoldseg import _tiling as T
    from manifoldseg._validate import check_adata
    from manifoldseg.tl._segment import segment_array

    a = ms.datasets.simulate(width=size, height=size, random_state=seed, **CASES[case])
    coords, X = check_adata(a)
    truth = a.obs["true_cell"].to_numpy()
    d = 11.0
    t0 = time.perf_counter()
    untiled = segment_array(coords, X, cell_diameter=d, random_state=seed).labels
    t_u = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiled = T.segment_tiled(coords, X, tile_size=tile, cell_diameter=d, random_state=seed,
                            scheduler="synchronous", progress=False)
    t_t = time.perf_counter() - t0
    same_cluster = None
    if cluster:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
            dask = T.segment_tiled(coords, X, tile_size=tile, cell_diameter=d, random_state=seed,
                                   scheduler=lc.scheduler_address, progress=False)
        same_cluster = bool(np.array_equal(dask.labels, tiled.labels))
    layout = T.TileLayout.from_coords(coords, tile, tiled.info["overlap"])
    b, i, counts = border_splits(coords[:, :2], untiled, tiled.labels, layout)
    radius = tiled.info["link_radius"]
    return {
        "case": case, "seed": seed, "n_spots": int(len(coords)), "n_tiles": tiled.info["n_tiles"],
        "ari": round(float(ms.metrics.adjusted_rand(untiled, tiled.labels)), 4),
        "f1": round(float(ms.metrics.match_cells(untiled, tiled.labels)["f1"]), 4),
        "border_split_share": round(b, 4), "interior_split_share": round(i, 4),
        "border_cells": counts["border"][1], "interior_cells": counts["interior"][1],
        "two_piece_border_cells_tiled": split_border_cells(coords[:, :2], tiled.labels, layout, radius),
        "two_piece_border_cells_untiled": split_border_cells(coords[:, :2], untiled, layout, radius),
        "stitcher_detached_pieces": int(tiled.info.get("n_detached_pieces", 0)),
        "localcluster_same_labels": same_cluster,
        "f1_truth_untiled": round(float(ms.metrics.match_cells(truth, untiled)["f1"]), 4),
        "f1_truth_tiled": round(float(ms.metrics.match_cells(truth, tiled.labels)["f1"]), 4),
        "seconds_untiled": round(t_u, 1), "seconds_tiled": round(t_t, 1),
    }


def _table(rows: list[dict]) -> str:
    cols = ["case", "seed", "n_spots", "n_tiles", "ari", "f1", "border_cells", "border_split_share",
            "interior_split_share", "two_piece_border_cells_tiled", "two_piece_border_cells_untiled",
            "stitcher_detached_pieces", "localcluster_same_labels", "f1_truth_untiled",
            "f1_truth_tiled", "seconds_untiled", "seconds_tiled"]
    return markdown_table(rows, cols)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--size", type=float, default=300.0, help="tissue side (um)")
    ap.add_argument("--tile-size", type=float, default=100.0)
    ap.add_argument("--quick", action="store_true", help="no LocalCluster run")
    ap.add_argument("--output", type=Path, default=RESULTS / "stitching.json")
    args = ap.parse_args(argv)
    logging.disable(logging.INFO)
    rows = []
    for case in args.cases:
        for seed in args.seeds:
            r = one(case, seed, args.size, args.tile_size, cluster=not args.quick and seed == args.seeds[0])
            rows.append(r)
            print(f"{case} seed {seed}: ARI {r['ari']:.3f} F1 {r['f1']:.3f} border splits "
                  f"{r['border_split_share']:.3f} (interior {r['interior_split_share']:.3f}), two-piece border cells "
                  f"{r['two_piece_border_cells_tiled']} (untiled {r['two_piece_border_cells_untiled']}), LocalCluster same: {r['localcluster_same_labels']}", flush=True)
    med = {}
    for case in args.cases:
        rs = [r for r in rows if r["case"] == case]
        med[case] = {k: float(np.median([r[k] for r in rs])) for k in
                     ("ari", "f1", "border_split_share", "interior_split_share",
                      "two_piece_border_cells_tiled", "two_piece_border_cells_untiled")}
        med[case]["meets"] = {k: med[case][k] >= v for k, v in TARGETS.items()}
        med[case]["meets"]["two_piece_border_cells"] = all(
            r["two_piece_border_cells_tiled"] <= r["two_piece_border_cells_untiled"] for r in rs)
    result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
              "size_um": args.size, "tile_size_um": args.tile_size, "rows": rows, "medians": med,
              "targets": TARGETS}
    table = _table(rows)
    summary = "\n".join(
        f"- {c}: median ARI {m['ari']:.3f}, F1 {m['f1']:.3f}, border splits {m['border_split_share']:.3f} "
        f"(interior {m['interior_split_share']:.3f}); targets met: {m['meets']}" for c, m in med.items())
    print()
    print(table)
    print(summary)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    args.output.with_suffix(".md").write_text(
        f"# Tiled vs untiled ({result['date']}, {result['machine'].get('cpu_model', '')}, "
        f"{result['machine']['cpu_count']} cores)\n\n{args.size:.0f} x {args.size:.0f} um tissues, tiles of "
        f"{args.tile_size:.0f} um, cell diameter 11 um given.\n\n" + table + "\n" + summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
