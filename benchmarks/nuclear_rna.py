"""Nuclear-retained RNA: is it found, and what does weighting the nuclear contrast towards it buy?

Some transcripts stay in the nucleus (MALAT1, NEAT1; MZT2A on the CosMx Lung FOVs). With
``nuclear_genes="auto"`` (the default) ``ms.tl.segment`` finds such genes from the data
(:func:`manifoldseg.pp._nuclear.nuclear_gene_weights`, whose thresholds were chosen on the two
CosMx FOVs) and weights the nuclear contrast towards them; ``nuclear_genes=None`` weighs every gene
alike. This script runs both on

- the simulator (``simulate()`` defaults) with ``nuclear_retained`` = 0, 0.05 and 0.10 (share of each
  cell's transcripts from one broadly expressed gene made in the nucleus; CosMx's MZT2A is about
  0.10, 77-82 % of it in reference nuclei), as transcripts and as 1 um bins, seeds 0-2;
- the CosMx FOVs (RNA only, against NanoString's cells; the method's seeds 0-44), where MZT2A is
  the gene to find.

Per case and setting: the genes found (``exact`` = exactly the simulated nuclear gene; on CosMx,
the names), F1 at IoU >= 0.5, ARI, in-cell / background assigned and nuclei kept whole (medians
over seeds), and ``gain_*`` = auto minus off. With ``nuclear_retained=0`` no gene should be found,
so the two settings give the same labels.

Usage::

    python benchmarks/nuclear_rna.py                  # all cases (about 15 min on 2 cores)
    python benchmarks/nuclear_rna.py --cases sim_tx_10 --seeds 0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import _real  # noqa: E402
import accuracy as A  # noqa: E402
from _report import finish, parse_args, run_cases  # noqa: E402
from scaling import markdown_table, seed_list  # noqa: E402

#: case -> (loader, truth key, nucleus key, bin size, simulated nuclear share or None for real data)
CASES = {
    "sim_tx_0": (A._sim_loader("transcripts"), A.TRUTH_KEY, A.NUCLEUS_KEY, None, 0.0),
    "sim_tx_5": (A._sim_loader("transcripts", nuclear_retained=0.05), A.TRUTH_KEY, A.NUCLEUS_KEY, None, 0.05),
    "sim_tx_10": (A._sim_loader("transcripts", nuclear_retained=0.10), A.TRUTH_KEY, A.NUCLEUS_KEY, None, 0.10),
    "sim_bins_1um_0": (A._sim_loader("bins", 1.0), A.TRUTH_KEY, A.NUCLEUS_KEY, 1.0, 0.0),
    "sim_bins_1um_10": (A._sim_loader("bins", 1.0, nuclear_retained=0.10), A.TRUTH_KEY, A.NUCLEUS_KEY, 1.0, 0.10),
    "cosmx_fov2": (A._real_loader("cosmx_fov2"), _real.REF_CELL, _real.REF_NUCLEUS, None, None),
    "cosmx_fov3": (A._real_loader("cosmx_fov3"), _real.REF_CELL, _real.REF_NUCLEUS, None, None),
}
SETTINGS = {"auto": "auto", "off": None}  # nuclear_genes
KEYS = ("f1", "ari", "in_cell_assigned", "background_assigned", "nuclear_consistency")


def one(case: str, seed: int) -> list[dict]:
    """Rows (auto, off) for one case and seed."""
    load, truth_key, nucleus_key, bin_size, share = CASES[case]
    adata = load(seed)
    true_genes = (adata.var_names[adata.var["nuclear_retained"].to_numpy(dtype=bool)].tolist()
                  if "nuclear_retained" in adata.var else None)
    rows = []
    for setting, genes in SETTINGS.items():
        t0 = time.perf_counter()
        pred, summary = A.segment_only(adata, seed=seed, nuclear_genes=genes)
        secs = time.perf_counter() - t0
        sc = A.score(adata, pred, truth_key=truth_key, nucleus_key=nucleus_key, bin_size=bin_size)
        found = [str(g) for g in summary.get("nuclear_genes", [])]
        row = {"case": case, "seed": seed, "setting": setting, "nuclear_retained": share, "genes": ",".join(found),
               **{k: round(float(sc.get(k, np.nan)), 4) for k in KEYS}, "n_pred": sc.get("n_pred"),
               "seconds": round(secs, 1)}
        if true_genes is not None and setting == "auto":
            row["exact"] = sorted(found) == sorted(true_genes)
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Medians over seeds per case and setting; the auto row carries the gains over off."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        meds = {}
        for setting in SETTINGS:
            rs = [r for r in rows if r["case"] == case and r["setting"] == setting]
            if not rs:
                continue
            m = {k: float(np.median([r[k] for r in rs])) for k in KEYS}
            meds[setting] = m
            genes = sorted({r["genes"] for r in rs})
            row = {"case": case, "setting": setting, "nuclear_retained": rs[0]["nuclear_retained"],
                   "seeds": seed_list(r["seed"] for r in rs), "genes_found": " / ".join(g or "-" for g in genes),
                   **{k: round(v, 3) for k, v in m.items()}}
            if all("exact" in r for r in rs):
                row["exact_share"] = round(float(np.mean([r["exact"] for r in rs])), 3)
            out.append(row)
        if len(meds) == 2:
            for k in ("f1", "ari", "nuclear_consistency"):
                out[-2][f"gain_{k}"] = round(meds["auto"][k] - meds["off"][k], 3)
    return out



def table(summary: list[dict]) -> str:
    cols = ["case", "setting", "nuclear_retained", "seeds", "genes_found", "exact_share", *KEYS, "gain_f1", "gain_ari",
            "gain_nuclear_consistency"]
    return markdown_table(summary, cols)


NOTE = ("Medians over seeds. setting auto = `nuclear_genes=\"auto\"` (the default: genes found from the data), "
        "off = `nuclear_genes=None`; nuclear_retained = the simulator's share of each cell's transcripts from "
        "one nuclear-retained gene (`simulate(nuclear_retained=...)`; blank on CosMx, whose MZT2A is about "
        "0.10); exact_share = share of seeds where exactly the simulated gene was found; gain_* = auto - off.")


def main(argv=None) -> int:
    args = parse_args(argv, __doc__.split("\n")[0], list(CASES), RESULTS / "nuclear_rna.json")
    t0 = time.perf_counter()
    rows = run_cases(args, one, lambda rs: ", ".join(
        f"{r['setting']} [{r['genes'] or '-'}] F1 {r['f1']:.3f} ARI {r['ari']:.3f}" for r in rs))
    summary = summarize(rows)
    text = table(summary)
    finish(args.output, "Nuclear-retained RNA: found and used", NOTE, text, t0, settings=SETTINGS, rows=rows,
           summary=summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
