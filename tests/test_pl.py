"""ms.pl: render each plot to PNG and check what is in the pixels."""

from __future__ import annotations

import anndata as ad
import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import sparse  # noqa: E402

import manifoldseg as ms  # noqa: E402

GREY = np.array(matplotlib.colors.to_rgb("lightgrey"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(ax, path):
    fig = ax.figure if not isinstance(ax, np.ndarray) else ax.ravel()[0].figure
    fig.savefig(path, dpi=fig.dpi)
    img = mpimg.imread(path)[..., :3]
    return img


def _pixel_xy(ax, img, x, y):
    """Pixel (row, col) of data point (x, y) in the saved image."""
    dx, dy = ax.transData.transform((x, y))
    return int(round(img.shape[0] - dy)), int(round(dx))


def _color_at(ax, img, x, y):
    r, c = _pixel_xy(ax, img, x, y)
    return img[r, c]


def _dark_near(ax, img, x, y, radius=2):
    r, c = _pixel_xy(ax, img, x, y)
    patch = img[r - radius : r + radius + 1, c - radius : c + radius + 1]
    return bool((patch.max(axis=-1) < 0.3).any())


def _grid_adata(labels_fn, nx, ny, n_genes=3):
    xs, ys = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float), indexing="ij")
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    labels = np.array([labels_fn(x, y) for x, y in xy], dtype=np.int64)
    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.poisson(2.0, size=(xy.shape[0], n_genes)).astype(np.float32))
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"s{i}" for i in range(xy.shape[0])]),
                   var=pd.DataFrame(index=[f"G{j}" for j in range(n_genes)]))
    a.obs["cell_id"] = labels
    a.obsm["spatial"] = xy
    return a


# ------------------------------------------------------------------------------ segmentation


def test_segmentation_two_adjacent_cells(tmp_path):
    # cell 0: x 0..9, cell 1: x 10..19, background: x 20..23 (all y 0..9)
    a = _grid_adata(lambda x, y: -1 if x >= 20 else int(x >= 10), 24, 10)
    ax = ms.pl.segmentation(a)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_title() == "cell_id (2 cells)"
    x0, x1 = ax.get_xlim()
    assert x0 < 0 and x1 > 23
    img = _render(ax, tmp_path / "seg.png")
    c0, c1, bg = (_color_at(ax, img, x, 4.0) for x in (4.0, 15.0, 22.0))
    assert np.abs(c0 - c1).max() > 0.2  # the two cells differ
    for c in (c0, c1):
        assert np.abs(c - GREY).max() > 0.15 and c.min() < 0.9  # coloured, neither grey nor white
    assert np.abs(bg - GREY).max() < 0.05  # background grey
    for y in (1.0, 3.0, 5.0, 7.0, 8.0):
        assert _dark_near(ax, img, 9.5, y), f"no boundary between the cells at y={y}"
        assert _dark_near(ax, img, 19.5, y), f"no boundary between cell and background at y={y}"
        assert not _dark_near(ax, img, 4.0, y), "boundary drawn inside a cell"
        assert not _dark_near(ax, img, 21.5, y), "boundary drawn inside the background"


def test_segmentation_neighbours_get_different_colours(tmp_path):
    # 6 x 6 square cells of 5 x 5 spots each
    a = _grid_adata(lambda x, y: int(x // 5) * 6 + int(y // 5), 30, 30)
    ax = ms.pl.segmentation(a, boundaries=False)
    img = _render(ax, tmp_path / "grid.png")
    centre = {(i, j): _color_at(ax, img, 5 * i + 2, 5 * j + 2) for i in range(6) for j in range(6)}
    for (i, j), c in centre.items():
        for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
            nb = centre.get((i + di, j + dj))
            if nb is not None:
                assert np.abs(c - nb).max() > 0.15, f"cells {(i, j)} and {(i + di, j + dj)} look alike"
    distinct = {tuple(np.round(c, 2)) for c in centre.values()}
    assert len(distinct) >= 8


def test_segmentation_region_and_hull_boundaries(tmp_path):
    rng = np.random.default_rng(1)
    # transcripts: two discs of radius 5 touching at x = 10, plus scattered background
    pts, lab = [], []
    for cid, cx in ((0, 5.0), (1, 15.0)):
        r = 5 * np.sqrt(rng.random(400))
        t = 2 * np.pi * rng.random(400)
        pts.append(np.column_stack([cx + r * np.cos(t), 5 + r * np.sin(t)]))
        lab += [cid] * 400
    pts.append(rng.uniform([-5, -5], [25, 15], size=(200, 2)))
    lab += [-1] * 200
    a = ad.AnnData(obs=pd.DataFrame({"cell_id": lab}, index=[f"t{i}" for i in range(len(lab))]))
    a.obsm["spatial"] = np.concatenate(pts)
    ax = ms.pl.segmentation(a, region=(0, 20, 0, 10), title="zoom")
    assert ax.get_xlim() == (0.0, 20.0) and ax.get_ylim() == (0.0, 10.0)
    assert ax.get_title() == "zoom"
    img = _render(ax, tmp_path / "tx.png")
    # hull outlines run along the discs' edges (left of disc 0, right of disc 1), not in their centres
    assert _dark_near(ax, img, 0.1, 5.0, radius=4) and _dark_near(ax, img, 19.9, 5.0, radius=4)
    assert not _dark_near(ax, img, 5.0, 5.0) and not _dark_near(ax, img, 15.0, 5.0)


def test_segmentation_errors():
    a = _grid_adata(lambda x, y: 0, 4, 4)
    with pytest.raises(KeyError, match="ms.tl.segment"):
        ms.pl.segmentation(a, key="missing")
    with pytest.raises(ValueError, match="region"):
        ms.pl.segmentation(a, region=(5, 1, 0, 1))
    with pytest.raises(ValueError, match="boundaries"):
        ms.pl.segmentation(a, boundaries="stars")
    with pytest.raises(KeyError, match="spatial_key"):
        ms.pl.segmentation(a, spatial_key="xy")


# ------------------------------------------------------------------------------ cells


def _two_squares():
    obs = pd.DataFrame(
        {
            "cell_id": [0, 1],
            "total_counts": [1.0, 10.0],
            "type": pd.Categorical(["a", "b"]),
            "boundary": ["POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))", "POLYGON ((10 0, 20 0, 20 10, 10 10, 10 0))"],
        },
        index=["cell_0", "cell_1"],
    )
    return ad.AnnData(X=sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, 4.0]])), obs=obs,
                      var=pd.DataFrame(index=["G0", "G1"]))


def test_cells_numeric(tmp_path):
    c = _two_squares()
    ax = ms.pl.cells(c, color="total_counts")
    assert ax.get_title() == "total_counts"
    assert len(ax.figure.axes) == 2  # the colour bar
    img = _render(ax, tmp_path / "cells.png")
    vir = plt.get_cmap("viridis")
    assert np.abs(_color_at(ax, img, 5, 5) - np.array(vir(0.0)[:3])).max() < 0.03
    assert np.abs(_color_at(ax, img, 15, 5) - np.array(vir(1.0)[:3])).max() < 0.03
    assert _dark_near(ax, img, 10, 5)  # the shared edge is outlined
    assert not _dark_near(ax, img, 5, 5, radius=3)


def test_cells_categorical_gene_and_labels(tmp_path):
    c = _two_squares()
    ax = ms.pl.cells(c, color="type")
    leg = ax.get_legend()
    assert [t.get_text() for t in leg.get_texts()] == ["a", "b"]
    img = _render(ax, tmp_path / "cat.png")
    assert np.abs(_color_at(ax, img, 5, 5) - _color_at(ax, img, 15, 5)).max() > 0.2
    ax2 = ms.pl.cells(c, color="G1", cmap="magma")  # a gene
    img2 = _render(ax2, tmp_path / "gene.png")
    mag = plt.get_cmap("magma")
    assert np.abs(_color_at(ax2, img2, 15, 5) - np.array(mag(1.0)[:3])).max() < 0.03
    ax3 = ms.pl.cells(c, color="cell_id", region=(0, 20, 0, 10))
    img3 = _render(ax3, tmp_path / "ids.png")
    assert np.abs(_color_at(ax3, img3, 5, 5) - _color_at(ax3, img3, 15, 5)).max() > 0.15
    with pytest.raises(KeyError, match="neither an obs column nor a gene"):
        ms.pl.cells(c, color="nope")
    del c.obs["boundary"]
    with pytest.raises(KeyError, match="ms.tl.aggregate"):
        ms.pl.cells(c)


def test_segmentation_with_cell_polygons(tmp_path):
    a = _grid_adata(lambda x, y: int(x >= 10), 20, 10)
    c = _two_squares()
    c.obs["boundary"] = ["POLYGON ((-0.5 -0.5, 9.5 -0.5, 9.5 9.5, -0.5 9.5, -0.5 -0.5))",
                         "POLYGON ((9.5 -0.5, 19.5 -0.5, 19.5 9.5, 9.5 9.5, 9.5 -0.5))"]
    ax = ms.pl.segmentation(a, cells=c)
    img = _render(ax, tmp_path / "poly.png")
    assert _dark_near(ax, img, 9.5, 5.0) and not _dark_near(ax, img, 4.0, 5.0)


# ------------------------------------------------------------------------------ embedding


def _embedded():
    a = _grid_adata(lambda x, y: int(x >= 5), 10, 10)
    rng = np.random.default_rng(0)
    lab = a.obs["cell_id"].to_numpy()
    a.obsm["X_manifold"] = np.column_stack([lab * 10.0, np.zeros(a.n_obs)]) + rng.normal(0, 1, (a.n_obs, 2))
    a.X = sparse.csr_matrix(np.column_stack([lab * 5.0, np.ones(a.n_obs), np.zeros(a.n_obs)]).astype(np.float32))
    return a


def test_embedding_by_cell_and_gene(tmp_path):
    a = _embedded()
    ax = ms.pl.embedding(a)
    assert ax.get_title() == "cell_id" and ax.get_xlabel() == "manifold 1"
    img = _render(ax, tmp_path / "emb.png")
    # the drawn (non-white) pixels around each blob's centre have one colour per cell, and they differ
    lab = a.obs["cell_id"].to_numpy()
    cols = []
    for cid in (0, 1):
        r, c = _pixel_xy(ax, img, *a.obsm["X_manifold"][lab == cid].mean(axis=0))
        win = img[r - 20 : r + 21, c - 20 : c + 21].reshape(-1, 3)
        drawn = win[win.min(axis=1) < 0.9]
        assert drawn.shape[0] > 20
        cols.append(np.median(drawn, axis=0))
    assert np.abs(cols[0] - cols[1]).max() > 0.2
    ax2 = ms.pl.embedding(a, color="G0")
    assert ax2.get_title() == "G0" and len(ax2.figure.axes) == 2
    with pytest.raises(KeyError, match="ms.tl.embed"):
        ms.pl.embedding(a, basis="X_umap")


# ------------------------------------------------------------------------------ qc


def test_qc_from_spots_and_cells(tmp_path):
    a = _grid_adata(lambda x, y: int(x // 5) * 4 + int(y // 5), 20, 20)
    a.obs["cell_id_confidence"] = np.linspace(0, 1, a.n_obs)
    axes = ms.pl.qc(a)
    assert axes.shape == (4,)
    assert axes[0].get_title().startswith("counts per cell")
    assert all(len(ax.patches) > 0 for ax in axes)  # four histograms
    assert axes[0].figure.get_suptitle() == "QC: 16 cells"
    _render(axes, tmp_path / "qc.png")
    c = _two_squares()
    c.obs["area"] = [100.0, 100.0]
    axes2 = ms.pl.qc(c)
    assert len(axes2[0].patches) > 0 and len(axes2[3].patches) == 0
    assert "not available" in axes2[3].texts[0].get_text()


# ------------------------------------------------------------------------------ palette


def test_palette_is_distinct_and_deterministic():
    p = ms.pl.palette(20)
    assert np.array_equal(p, ms.pl.palette(20))
    d = np.abs(p[:, None, :] - p[None, :, :]).max(axis=-1)
    np.fill_diagonal(d, 1)
    assert d.min() > 0.05
    assert np.abs(p - GREY).max(axis=1).min() > 0.15  # nothing looks like background
    ids, cols = ms.pl.label_colors(np.array([3, 3, 7, 7, -1]), np.array([[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]]))
    assert ids.tolist() == [3, 7] and np.abs(cols[0] - cols[1]).max() > 0.15


def test_simulated_tissue_renders(tmp_path):
    datasets = pytest.importorskip("manifoldseg.datasets")
    if not hasattr(datasets, "simulate"):
        pytest.skip("manifoldseg.datasets.simulate not available yet")
    a = datasets.simulate(mode="bins", bin_size=2.0, width=60.0, height=60.0, random_state=0)
    ax = ms.pl.segmentation(a, key="true_cell", region=(10, 50, 10, 50))
    img = _render(ax, tmp_path / "sim.png")
    inside = img[int(0.2 * img.shape[0]) : int(0.8 * img.shape[0]), int(0.2 * img.shape[1]) : int(0.8 * img.shape[1])]
    colours = {tuple(c) for c in np.round(inside.reshape(-1, 3), 1)}
    assert len(colours) >= 10  # many cells in many colours
    assert (inside.max(axis=-1) < 0.3).mean() > 0.005  # boundaries drawn
