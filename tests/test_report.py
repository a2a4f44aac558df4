"""The HTML report: one self-contained page with the summary, metrics, plots and parameters."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

import manifoldseg as ms
from manifoldseg.cli import main
from manifoldseg.report import report_html, write_report, zoom_regions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images(text: str) -> dict[str, bytes]:
    """alt text -> PNG bytes of every embedded image."""
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', text)
    return {alt: base64.b64decode(data) for data, alt in found}


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def segmented(_small_bins):
    adata = _small_bins.copy()
    ms.tl.segment(adata, random_state=0)
    cells = ms.tl.aggregate(adata)
    return adata, cells


@pytest.fixture(scope="module")
def report(segmented, tmp_path_factory):
    adata, cells = segmented
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(adata, path, cells=cells, truth_key="true_cell") == path
    return path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    path, text = report
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # nothing is fetched from elsewhere: no external src/href, stylesheet links or scripts
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', text)
    assert "<link" not in text and "<script" not in text and "http://" not in text and "https://" not in text
    assert path.parent.iterdir() and sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def test_report_embeds_the_plots(report, segmented):
    _, text = report
    imgs = images(text)
    alts = list(imgs)
    assert "overview of the section coloured by cell" in alts
    assert "QC distributions" in alts and "manifold embedding" in alts and "cell polygons by total counts" in alts
    zooms = [a for a in alts if a.startswith("zoomed region")]
    assert len(zooms) == 3  # an 80 um tissue holds three windows of about four cell diameters
    for alt, png in imgs.items():
        assert png.startswith(PNG_MAGIC), alt
        w, h = png_size(png)
        assert w >= 300 and h >= 200, (alt, w, h)
    # the overview is drawn in colour: many distinct colours (cells), not a blank canvas
    import io

    import matplotlib.image as mpimg

    rgb = mpimg.imread(io.BytesIO(imgs["overview of the section coloured by cell"]), format="png")[..., :3]
    colours = np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert colours.shape[0] > 30


def test_report_holds_parameters_summary_and_metrics(report, segmented):
    adata, _ = segmented
    _, text = report
    params = adata.uns["manifoldseg"]["params"]
    for k in params:
        assert f"<td>{k}</td>" in text, k
    scores = ms.metrics.evaluate(adata, truth_key="true_cell")
    for name in ("f1", "ari", "precision", "recall", "in_cell_assigned", "background_assigned", "n_cells"):
        assert f"<td>{name}</td>" in text, name
    f1 = f"{scores['f1']:.3f}"
    assert f'<td>f1</td><td class="num">{f1}</td>' in text
    n_cells = int(np.unique(adata.obs["cell_id"][adata.obs["cell_id"] >= 0]).size)
    assert f"<b>{n_cells:,}</b><span>cells</span>" in text
    assert "seconds per step" in text  # the run summary of uns["manifoldseg"]
    # the diameter: estimated here (cell_diameter=None), so no given value is listed
    est = adata.uns["manifoldseg"]["summary"]["cell_diameter_estimate"]
    assert f"<td>cell diameter estimate</td><td>{est:.4g}</td>" in text and "cell diameter given" not in text


def test_write_report_refuses_overwrite_before_any_work(segmented, tmp_path, monkeypatch):
    adata, _ = segmented
    path = tmp_path / "r.html"
    path.write_text("old")

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("plots were drawn before the overwrite check")

    monkeypatch.setattr("manifoldseg.report.report_html", boom)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_report(adata, path)
    assert path.read_text() == "old"


def test_report_of_labels_without_a_run_and_with_a_broken_plot(segmented, monkeypatch):
    adata, _ = segmented
    plain = ms.datasets.simulate(mode="bins", width=30, height=30, random_state=3)
    plain.obs["cell_id"] = plain.obs["true_cell"].to_numpy()

    def broken(*a, **k):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(ms.pl, "qc", broken)
    text = report_html(plain, title="truth as labels")
    assert "truth as labels" in text
    assert "no run summary" in text  # uns["manifoldseg"] is absent, and the page says so
    assert "The QC plot could not be drawn (RuntimeError: cannot draw)" in text
    assert "not present" in text  # no embedding
    assert '<td>f1</td><td class="num">1.000</td>' in text  # labels == truth
    assert "overview of the section coloured by cell" in images(text)


def test_report_without_cells_found():
    plain = ms.datasets.simulate(mode="bins", width=25, height=25, random_state=4)
    plain.obs["cell_id"] = -1
    text = report_html(plain)
    assert "No cells: nothing to show." in text and "<b>0</b><span>cells</span>" in text


def test_zoom_regions_pick_dense_places():
    rng = np.random.default_rng(0)
    sparse_xy = rng.uniform(0, 200, size=(400, 2))
    blob_a = rng.normal((150, 40), 3, size=(300, 2))
    blob_b = rng.normal((40, 160), 3, size=(200, 2))
    xy = np.vstack([sparse_xy, blob_a, blob_b])
    labels = np.r_[np.full(400, -1), np.zeros(300, int), np.ones(200, int)]
    regions = zoom_regions(xy, labels, width=40.0, n=2)
    assert len(regions) == 2
    (ax0, ax1, ay0, ay1), (bx0, bx1, by0, by1) = regions
    assert ax1 - ax0 == pytest.approx(40) and ay1 - ay0 == pytest.approx(40)
    assert ax0 <= 150 <= ax1 and ay0 <= 40 <= ay1  # the denser blob first
    assert bx0 <= 40 <= bx1 and by0 <= 160 <= by1
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    for x0, x1, y0, y1 in regions:  # inside the section
        assert x0 >= lo[0] - 1e-9 and x1 <= hi[0] + 1e-9 and y0 >= lo[1] - 1e-9 and y1 <= hi[1] + 1e-9
    # neighbouring squares are skipped while others remain: three windows are not all on blob A
    three = zoom_regions(xy, labels, width=40.0, n=3)
    assert len(three) == 3 and len({(round(r[0]), round(r[2])) for r in three}) == 3
    # a section not much larger than a window gets no zooms
    assert zoom_regions(xy[:50] / 10, labels[:50], width=40.0) == []


def test_report_command(tmp_path, capsys):
    # a small tissue labelled with its truth keeps this test fast; the plots are tested above
    plain = ms.datasets.simulate(mode="bins", width=30, height=30, random_state=5)
    plain.obs["cell_id"] = plain.obs["true_cell"].to_numpy()
    ms.io.write_h5ad(plain, tmp_path / "seg.h5ad")
    ms.io.write_h5ad(ms.tl.aggregate(plain), tmp_path / "cells.h5ad")
    out = tmp_path / "r.html"
    code = main(["report", str(tmp_path / "seg.h5ad"), "-o", str(out), "--cells", str(tmp_path / "cells.h5ad")])
    captured = capsys.readouterr()
    assert code == 0 and out.exists() and f"-> {out}" in captured.out
    text = out.read_text()
    assert "manifoldseg report: seg.h5ad" in text and "cell polygons by total counts" in images(text)
    # existing report: refused without --force, replaced with it
    code = main(["report", str(tmp_path / "seg.h5ad"), "-o", str(out)])
    assert code == 1 and "--force" in capsys.readouterr().err
    out.write_text("old")
    code = main(["report", str(tmp_path / "seg.h5ad"), "-o", str(out), "--force", "-q"])
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    # an h5ad without labels: one-line error naming the fix, nothing written
    ms.io.write_h5ad(ms.datasets.simulate(mode="bins", width=20, height=20), tmp_path / "raw.h5ad")
    code = main(["report", str(tmp_path / "raw.h5ad"), "-o", str(tmp_path / "x.html")])
    err = capsys.readouterr().err
    assert code == 1 and "manifoldseg segment" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["cells.h5ad", "r.html", "raw.h5ad", "seg.h5ad"]
