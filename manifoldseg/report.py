"""A self-contained HTML report of a segmentation (one file, images embedded as PNG).

What Baysor's diagnostics page gives its users: the run summary, every metric the data allow,
QC distributions, an overview of the whole section with a few zoomed regions at dense places
(with the reference next to the prediction when there is one), the manifold embedding and the
parameters used. ``manifoldseg report OUTPUT.h5ad -o report.html`` writes it from the command line.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._cli_format import fmt_value, json_ready, ordered_metrics
from ._constants import (
    CELL_KEY,
    CONFIDENCE_SUFFIX,
    EMBEDDING_KEY,
    NUCLEUS_KEY,
    SPATIAL_KEY,
    TRUTH_KEY,
    UNS_KEY,
)
from ._validate import InputError, MissingKeyError, _fmt_list
from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

logger = logging.getLogger("manifoldseg")

__all__ = ["write_report", "report_html", "zoom_regions"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:1.55em;margin:0.4em 0 0.1em}h2{font-size:1.2em;margin:1.6em 0 0.5em;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:1em;margin:1em 0 0.3em}
.sub{color:#666;font-size:0.92em}nav a{margin-right:14px;color:#2a5db0;text-decoration:none;font-size:0.92em}
table{border-collapse:collapse;font-size:0.9em;margin:6px 0 12px}td,th{padding:3px 10px;border-bottom:1px solid #e6e6e6;
text-align:left;vertical-align:top}th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.card{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:8px 14px;min-width:120px}.card b{display:block;font-size:1.35em}.card span{color:#666;font-size:0.85em}
figure{margin:8px 0 18px;background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:8px}
figure img{max-width:100%;height:auto;display:block;margin:auto}figcaption{color:#555;font-size:0.88em;margin-top:4px}
.zooms{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:10px}
.note{color:#8a5a00;background:#fff8e6;border:1px solid #f0dca8;padding:6px 10px;border-radius:4px;font-size:0.9em}
code{background:#f2f2f2;padding:1px 4px;border-radius:3px;font-size:0.9em}
"""


# --------------------------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------------------------- #
def _png(fig) -> str:
    """A figure as base64 PNG (the figure is closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float, dpi: float = 100.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def _img(data: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">{cap}</figure>'


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="num">{html.escape(str(v))}</td>' if i in numeric else f"<td>{html.escape(str(v))}</td>"
            for i, v in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        v = json_ready(d)
        if isinstance(v, list) and len(v) > 12:
            v = f"[{', '.join(map(str, v[:12]))}, ... ({len(v)} values)]"
        elif isinstance(v, float):
            v = f"{v:.6g}"
        out.append((prefix, v))
    return out


def _labels(adata, key: str) -> np.ndarray:
    raw = adata.obs[key].to_numpy()
    try:
        v = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"obs[{key!r}] must hold integer cell ids (-1 = background).") from None
    return np.where(np.isfinite(v), v, -1).astype(np.int64)


def _cell_diameter(adata, labels: np.ndarray, xy: np.ndarray) -> float:
    """A typical cell diameter (um): from the cells' spread when there are cells, else uns."""
    fg = labels >= 0
    if fg.sum() >= 3:
        ids, inv = np.unique(labels[fg], return_inverse=True)
        n = np.bincount(inv).astype(np.float64)
        big = n >= 3
        if big.any():
            p = xy[fg]
            var = np.zeros(ids.size)
            for dim in range(2):
                m = np.bincount(inv, weights=p[:, dim]) / n
                var += np.bincount(inv, weights=p[:, dim] ** 2) / n - m**2
            # a uniform disc of diameter d has var(x) + var(y) = d^2 / 8
            d = float(np.median(np.sqrt(8.0 * np.maximum(var[big], 0.0))))
            if d > 0:
                return d
    summary = adata.uns.get(UNS_KEY, {}).get("summary", {}) if isinstance(adata.uns.get(UNS_KEY), dict) else {}
    d = summary.get("cell_diameter") if isinstance(summary, dict) else None
    return float(d) if d else 10.0


def zoom_regions(xy: np.ndarray, labels: np.ndarray, *, width: float, n: int = 3) -> list[tuple[float, float, float, float]]:
    """Up to ``n`` square windows of side ``width`` (um) at the places densest in assigned items.

    The section is cut into a grid of ``width``-sized squares; squares are taken in decreasing
    number of assigned items, skipping squares next to one already taken while others remain.
    Returns ``(x0, x1, y0, y1)`` tuples (empty when the section is not much larger than a window).
    """
    if xy.shape[0] == 0 or n <= 0 or width <= 0:
        return []
    lo, hi = xy[:, :2].min(axis=0), xy[:, :2].max(axis=0)
    extent = hi - lo
    if max(extent) < 1.5 * width:
        return []
    nx, ny = max(int(math.ceil(extent[0] / width)), 1), max(int(math.ceil(extent[1] / width)), 1)
    fg = labels >= 0
    pts = xy[fg, :2] if fg.any() else xy[:, :2]
    ix = np.clip(((pts[:, 0] - lo[0]) / width).astype(np.int64), 0, nx - 1)
    iy = np.clip(((pts[:, 1] - lo[1]) / width).astype(np.int64), 0, ny - 1)
    counts = np.bincount(ix * ny + iy, minlength=nx * ny)
    order = np.argsort(-counts, kind="stable")
    chosen: list[int] = []
    for relaxed in (False, True):
        for b in order:
            if len(chosen) >= n or counts[b] == 0:
                break
            if b in chosen:
                continue
            bx, by = divmod(int(b), ny)
            if not relaxed and any(abs(bx - c // ny) <= 1 and abs(by - c % ny) <= 1 for c in chosen):
                continue
            chosen.append(int(b))
    out = []
    for b in chosen:
        bx, by = divmod(b, ny)
        # keep the window inside the section (the last grid square may stick out)
        x0 = min(lo[0] + bx * width, max(lo[0], hi[0] - width))
        y0 = min(lo[1] + by * width, max(lo[1], hi[1] - width))
        out.append((float(x0), float(x0 + width), float(y0), float(y0 + width)))
    return out


# --------------------------------------------------------------------------------------------- #
# sections
# --------------------------------------------------------------------------------------------- #
def _overview(adata, key, spatial_key, xy, diameter, regions, cells) -> str:
    from matplotlib.patches import Rectangle

    import manifoldseg as ms

    lo, hi = xy.min(axis=0), xy.max(axis=0)
    w_um, h_um = max(float(hi[0] - lo[0]), 1e-6), max(float(hi[1] - lo[1]), 1e-6)
    width = 10.0
    height = float(np.clip(width * h_um / w_um, 2.5, 16.0))
    # enough pixels that a cell is at least ~6 px wide, within 100..220 dpi
    dpi = float(np.clip(6.0 * w_um / (max(diameter, 1e-6) * 0.8 * width), 100.0, 220.0))
    fig = _figure(width, height, dpi)
    ax = fig.add_subplot(1, 1, 1)
    boundaries = True if (cells is not None or xy.shape[0] <= 200_000) else False
    ms.pl.segmentation(adata, key=key, spatial_key=spatial_key, ax=ax, cells=cells, boundaries=boundaries,
                       boundary_width=0.5 if w_um / max(diameter, 1e-6) > 30 else 0.8)
    for i, (x0, x1, y0, y1) in enumerate(regions, start=1):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="red", linewidth=1.5, zorder=4))
        ax.text(x0, y1, str(i), color="red", fontsize=11, fontweight="bold", va="top", ha="left", clip_on=True,
                bbox={"facecolor": "white", "edgecolor": "red", "pad": 1.5, "alpha": 0.9}, zorder=5)
    return _png(fig)


def _zoom(adata, key, truth_key, spatial_key, region, cells) -> str:
    import manifoldseg as ms

    panels = [(key, "segmentation")] + ([(truth_key, "reference")] if truth_key else [])
    fig = _figure(5.0 * len(panels), 5.0, 110.0)
    for j, (k, name) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), j)
        use_cells = cells if k == key else None
        ms.pl.segmentation(adata, key=k, spatial_key=spatial_key, region=region, ax=ax, cells=use_cells)
        ax.set_title(f"{name}: {ax.get_title()}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _qc(adata, key, spatial_key) -> str:
    import manifoldseg as ms

    fig = _figure(9.0, 6.5, 100.0)
    # per-cell values from the spots (areas from their coordinates); a cells AnnData also has an
    # obs "cell_id" column, which ms.pl.qc would read as labels of spots
    ms.pl.qc(adata, key=key, spatial_key=spatial_key, fig=fig)
    fig.tight_layout()
    return _png(fig)


def _embedding(adata, key, truth_key, spatial_key) -> str:
    import manifoldseg as ms

    panels = [key] + ([truth_key] if truth_key else [])
    fig = _figure(5.0 * len(panels), 5.0, 100.0)
    for j, k in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), j)
        ms.pl.embedding(adata, basis=EMBEDDING_KEY, color=k, ax=ax, spatial_key=spatial_key, legend=False)
    fig.tight_layout()
    return _png(fig)


def _cells_map(cells) -> str:
    import manifoldseg as ms

    fig = _figure(7.0, 6.0, 100.0)
    ax = fig.add_subplot(1, 1, 1)
    ms.pl.cells(cells, color="total_counts", ax=ax)
    return _png(fig)


# --------------------------------------------------------------------------------------------- #
# the report
# --------------------------------------------------------------------------------------------- #
def report_html(
    adata: AnnData,
    *,
    cells: AnnData | None = None,
    key: str = CELL_KEY,
    truth_key: str | None = None,
    nucleus_key: str | None = None,
    spatial_key: str = SPATIAL_KEY,
    n_zooms: int = 3,
    title: str | None = None,
    metrics: dict | None = None,
) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    import manifoldseg as ms

    if key not in adata.obs:
        raise MissingKeyError(
            f"obs[{key!r}] not found (obs columns: {_fmt_list(adata.obs.columns)}); segment first "
            "(ms.tl.segment or 'manifoldseg segment') or pass key= the column of cell labels."
        )
    if spatial_key not in adata.obsm:
        raise MissingKeyError(f"obsm[{spatial_key!r}] not found (obsm keys: {_fmt_list(adata.obsm.keys())}); pass spatial_key=.")
    for name, col in (("truth_key", truth_key), ("nucleus_key", nucleus_key)):
        if col is not None and col not in adata.obs:
            raise MissingKeyError(f"obs[{col!r}] not found; pass {name}= an existing obs column, or leave it out.")
    if truth_key is None and TRUTH_KEY in adata.obs:
        truth_key = TRUTH_KEY
    if nucleus_key is None and NUCLEUS_KEY in adata.obs:
        nucleus_key = NUCLEUS_KEY

    started = time.perf_counter()
    labels = _labels(adata, key)
    xy = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]
    n_items = int(labels.size)
    n_cells = int(np.unique(labels[labels >= 0]).size)
    assigned = float((labels >= 0).mean()) if n_items else 0.0
    word = "transcripts" if ("manifoldseg_io" in adata.uns or "gene" in adata.obs) else "spots"
    info = adata.uns.get(UNS_KEY, {}) if isinstance(adata.uns.get(UNS_KEY, {}), dict) else {}
    params = info.get("params", {}) if isinstance(info.get("params", {}), dict) else {}
    summary = info.get("summary", {}) if isinstance(info.get("summary", {}), dict) else {}
    run = info.get("run", {}) if isinstance(info.get("run", {}), dict) else {}
    diameter = _cell_diameter(adata, labels, xy)
    notes: list[str] = []

    if metrics is None:
        metrics = ms.metrics.evaluate(adata, key=key, truth_key=truth_key, nucleus_key=nucleus_key,
                                      cells=cells, spatial_key=spatial_key)

    def section(name: str, fn, *a) -> str | None:
        try:
            return fn(*a)
        except Exception as err:  # one broken plot must not cost the user the whole report
            logger.warning("report: the %s plot failed (%s: %s)", name, type(err).__name__, err)
            notes.append(f"The {name} plot could not be drawn ({type(err).__name__}: {err}).")
            return None

    regions = zoom_regions(xy, labels, width=4.0 * diameter, n=n_zooms)
    overview = section("overview", _overview, adata, key, spatial_key, xy, diameter, regions, cells) if n_items else None
    zooms = [section(f"zoom {i}", _zoom, adata, key, truth_key, spatial_key, r, cells)
             for i, r in enumerate(regions, start=1)]
    qc = section("QC", _qc, adata, key, spatial_key) if n_cells else None
    emb = section("embedding", _embedding, adata, key, truth_key, spatial_key) if EMBEDDING_KEY in adata.obsm else None
    cmap = section("cells", _cells_map, cells) if cells is not None and "boundary" in cells.obs else None

    title = title or "segmentation"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>manifoldseg report: {html.escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>manifoldseg report: {html.escape(title)}</h1>",
        f'<div class="sub">manifoldseg {html.escape(__version__)} &middot; written '
        f"{html.escape(time.strftime('%Y-%m-%d %H:%M'))}</div>",
        '<nav><a href="#summary">Summary</a><a href="#metrics">Metrics</a><a href="#overview">Overview</a>'
        '<a href="#zooms">Zoomed regions</a><a href="#qc">QC</a><a href="#embedding">Embedding</a>'
        '<a href="#parameters">Parameters</a></nav>',
    ]

    # summary
    cards = [
        (f"{n_cells:,}", "cells"),
        (f"{n_items:,}", word),
        (f"{100 * assigned:.1f}%", f"{word} assigned"),
        (f"{diameter:.1f} um", "typical cell diameter"),
    ]
    if "f1" in metrics:
        cards.append((fmt_value("f1", metrics["f1"]), "cell F1 (IoU >= 0.5)"))
    if "ari" in metrics:
        cards.append((fmt_value("ari", metrics["ari"]), "ARI"))
    if summary.get("seconds") is not None:
        cards.append((f"{float(summary['seconds']):.1f} s", "segmentation time"))
    parts.append('<h2 id="summary">Summary</h2><div class="cards">')
    parts += [f"<div class=card><b>{html.escape(v)}</b><span>{html.escape(t)}</span></div>" for v, t in cards]
    parts.append("</div>")
    rows = [("input", run.get("input", "")), ("command", run.get("command", "")), ("run on", run.get("date", "")),
            ("manifoldseg version", run.get("version", ""))]
    rows = [r for r in rows if r[1]]
    if summary:
        for k in ("cell_diameter", "cell_diameter_method", "cell_diameter_given", "cell_diameter_estimate",
                  "n_candidates", "n_cells", "assigned_fraction", "seconds"):
            if summary.get(k) is not None:
                v = summary[k]
                rows.append((k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else v))
        timings = summary.get("timings")
        if isinstance(timings, dict) and timings:
            rows.append(("seconds per step", ", ".join(f"{k} {float(v):.1f}" for k, v in timings.items())))
    else:
        notes.append(f"uns[{UNS_KEY!r}] holds no run summary: these labels did not come from ms.tl.segment "
                     "(or the file was written without uns).")
    if rows:
        parts.append(_table(rows, ("", "")))

    # metrics
    parts.append('<h2 id="metrics">Metrics</h2>')
    ref = f"reference cells <code>{html.escape(truth_key)}</code>" if truth_key else "no reference cells"
    nuc = f", reference nuclei <code>{html.escape(nucleus_key)}</code>" if nucleus_key else ""
    parts.append(f'<div class="sub">labels <code>{html.escape(key)}</code>; {ref}{nuc}. Definitions: '
                 "<code>help(ms.metrics)</code>.</div>")
    parts.append(_table([(k, fmt_value(k, v), d) for k, v, d in ordered_metrics(metrics)],
                        ("metric", "value", "definition"), numeric=(1,)))

    # images
    parts.append('<h2 id="overview">Overview</h2>')
    if overview:
        parts.append(_img(overview, "overview of the section coloured by cell",
                          f"All {n_items:,} {word} coloured by cell (neighbouring cells differ in colour), background "
                          f"grey, boundaries black. Red squares: the zoomed regions below."))
    parts.append('<h2 id="zooms">Zoomed regions</h2>')
    if not regions:
        parts.append('<div class="sub">The section is small; the overview shows it at full detail.</div>')
    elif zooms:
        parts.append('<div class="zooms">')
        for i, (r, z) in enumerate(zip(regions, zooms, strict=True), start=1):
            if z:
                parts.append(_img(z, f"zoomed region {i}",
                                  f"Region {i}: x {r[0]:.0f}-{r[1]:.0f} um, y {r[2]:.0f}-{r[3]:.0f} um"
                                  + (" (left: segmentation, right: reference)" if truth_key else "")))
        parts.append("</div>")
    parts.append('<h2 id="qc">QC distributions</h2>')
    if qc:
        parts.append(_img(qc, "QC distributions", "Counts, genes and area per cell, and the assignment confidence."))
    else:
        parts.append('<div class="sub">No cells: nothing to show.</div>')
    if cmap:
        parts.append(_img(cmap, "cell polygons by total counts", "Cell polygons filled by total counts."))
    parts.append('<h2 id="embedding">Embedding</h2>')
    if emb:
        parts.append(_img(emb, "manifold embedding", f"obsm['{EMBEDDING_KEY}'] coloured by cell"
                          + (" (left) and by reference cell (right)." if truth_key else ".")))
    else:
        parts.append(f'<div class="sub">obsm[\'{EMBEDDING_KEY}\'] not present.</div>')

    # parameters
    parts.append('<h2 id="parameters">Parameters</h2>')
    if params:
        parts.append(_table(_flatten(params), ("parameter", "value")))
    else:
        parts.append('<div class="sub">No parameters recorded.</div>')
    io_info = adata.uns.get("manifoldseg_io")
    if isinstance(io_info, dict) and io_info:
        parts.append("<h3>Input reading (ms.io.read_transcripts)</h3>")
        parts.append(_table(_flatten(io_info), ("setting", "value")))
    details = {k: v for k, v in summary.items() if isinstance(v, dict) and k != "timings"}
    if details:
        parts.append("<h3>Pipeline details</h3>")
        parts.append(_table(_flatten(details), ("setting", "value")))
    conf = f"{key}{CONFIDENCE_SUFFIX}"
    if conf not in adata.obs:
        notes.append(f"obs[{conf!r}] is missing: no confidence distribution.")
    if notes:
        parts.append('<h2 id="notes">Notes</h2>')
        parts += [f'<div class="note">{html.escape(n)}</div>' for n in notes]
    parts.append(f'<div class="sub" style="margin-top:30px">Report made in {time.perf_counter() - started:.1f} s.</div>')
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_report(
    adata: AnnData,
    path: str | os.PathLike,
    *,
    cells: AnnData | None = None,
    key: str = CELL_KEY,
    truth_key: str | None = None,
    nucleus_key: str | None = None,
    spatial_key: str = SPATIAL_KEY,
    n_zooms: int = 3,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained HTML report of a segmentation.

    Parameters
    ----------
    adata
        Segmented spots or transcripts: ``obs[key]`` (-1 = background), ``obsm[spatial_key]``
        (um); ``obsm["X_manifold"]`` and ``uns["manifoldseg"]`` from :func:`manifoldseg.tl.segment`
        are shown when present.
    path
        Output ``.html`` file.
    cells
        Optional cells AnnData from :func:`manifoldseg.tl.aggregate`: its polygons are drawn as
        boundaries, its QC columns feed the distributions and MECR.
    key
        ``obs`` column of the segmentation.
    truth_key, nucleus_key
        ``obs`` columns of reference cells and nuclei (default ``"true_cell"`` and ``"nucleus"``
        when present); reference panels and agreement metrics are added when given.
    spatial_key
        ``obsm`` key of the coordinates.
    n_zooms
        Number of zoomed regions (squares of about 4 cell diameters at the densest places).
    title
        Title of the page (default ``"segmentation"``).
    overwrite
        Replace an existing file; otherwise ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        The file written: one HTML page with all images embedded as base64 PNG (no external
        files or links), holding the run summary, metrics table (:func:`manifoldseg.metrics.evaluate`),
        an overview of the whole section, zoomed regions, QC distributions, the embedding and the
        parameters (``uns["manifoldseg"]["params"]``).
    """
    from .io import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:  # fail before the (slow) plots
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True (--force) or choose another path.")
    text = report_html(adata, cells=cells, key=key, truth_key=truth_key, nucleus_key=nucleus_key,
                       spatial_key=spatial_key, n_zooms=n_zooms, title=title)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
