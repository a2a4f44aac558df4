"""Render every ms.pl plot on a simulated tissue to docs/figures/*.png (and the HTML report).

    .venv/bin/python docs/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import manifoldseg as ms  # noqa: E402

OUT = Path(__file__).parent / "figures"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    adata = ms.datasets.simulate(mode="bins", width=150.0, height=150.0, random_state=0)
    ms.tl.segment(adata)
    cells = ms.tl.aggregate(adata)

    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5))
    ms.pl.segmentation(adata, key="true_cell", region=(0, 80, 0, 80), ax=axes[0], title="simulated truth")
    ms.pl.segmentation(adata, region=(0, 80, 0, 80), ax=axes[1], title="manifoldseg (RNA only)")
    fig.tight_layout()
    fig.savefig(OUT / "segmentation.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 6))
    ms.pl.cells(cells, color="total_counts", ax=ax)
    fig.savefig(OUT / "cells.png", dpi=80, bbox_inches="tight")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    ms.pl.embedding(adata, color="cell_id", ax=axes[0])
    ms.pl.embedding(adata, color="true_type", ax=axes[1])
    fig.tight_layout()
    fig.savefig(OUT / "embedding.png", dpi=80)
    plt.close(fig)

    axes = ms.pl.qc(cells)
    axes.ravel()[0].figure.savefig(OUT / "qc.png", dpi=80, bbox_inches="tight")
    plt.close("all")

    from manifoldseg.report import write_report

    write_report(adata, OUT / "report.html", cells=cells, truth_key="true_cell", overwrite=True)
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
