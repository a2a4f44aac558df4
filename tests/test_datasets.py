"""Tests of the tissue simulator ``ms.datasets.simulate``: truth consistent with geometry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

import manifoldseg as ms

SIZE = 150.0
SEED = 7


@pytest.fixture(scope="session")
def tissue_tx():
    return ms.datasets.simulate(mode="transcripts", width=SIZE, height=SIZE, random_state=SEED)


@pytest.fixture(scope="session")
def tissue_bins():
    return ms.datasets.simulate(mode="bins", width=SIZE, height=SIZE, bin_size=1.0, random_state=SEED)


@pytest.fixture
def tx(tissue_tx):
    return tissue_tx.copy()


@pytest.fixture
def bins(tissue_bins):
    return tissue_bins.copy()


def _cells_table(adata) -> pd.DataFrame:
    return pd.DataFrame(adata.uns["simulation"]["cells"]).set_index("cell_id")


# --------------------------------------------------------------------------- structure


def test_transcripts_mode_structure(tx):
    n = tx.n_obs
    assert n == tx.uns["simulation"]["n_transcripts"]
    assert sparse.issparse(tx.X) and tx.X.format == "csr"
    assert tx.X.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(tx.X.sum(axis=1)).ravel(), np.ones(n))
    # the gene column names the one-hot entry
    np.testing.assert_array_equal(tx.obs["gene"].astype(str).to_numpy(), tx.var_names.to_numpy()[tx.X.indices])
    assert isinstance(tx.obs["gene"].dtype, pd.CategoricalDtype)
    assert tx.var_names[0] == "Gene0001" and tx.n_vars == 500
    xy = tx.obsm["spatial"]
    assert xy.dtype == np.float64 and xy.shape == (n, 2)
    assert xy.min() >= 0 and xy[:, 0].max() < SIZE and xy[:, 1].max() < SIZE
    assert tx.obs["true_cell"].dtype.kind == "i" and tx.obs["nucleus"].dtype.kind == "i"
    n_cells = tx.uns["simulation"]["n_cells"]
    assert set(np.unique(tx.obs["true_cell"])) == set(range(-1, n_cells))
    bg = tx.obs["true_cell"].to_numpy() < 0
    assert (tx.obs["true_type"].to_numpy()[bg] == "background").all()
    assert not (tx.obs["true_type"].to_numpy()[~bg] == "background").any()
    # true_type agrees with the per-cell table
    types = _cells_table(tx)["type"]
    cell = tx.obs["true_cell"].to_numpy()
    np.testing.assert_array_equal(tx.obs["true_type"].to_numpy()[~bg], types.to_numpy()[cell[~bg]])


def test_defaults_as_hard_as_real_data(tx):
    sim = tx.uns["simulation"]
    # background share close to the requested 20%
    assert 0.17 < sim["background_share"] < 0.23
    # transcripts per full-size cell near 150 (CosMx medians 131-167)
    cells = _cells_table(tx)
    n = cells["n_transcripts"].to_numpy()
    assert 90 < np.median(n) < 220
    assert 0.25 < sim["gap_fraction"] < 0.45


def test_bins_counts_equal_transcripts(bins, tx):
    # same seed and parameters: the same transcripts, binned
    assert bins.X.format == "csr" and bins.X.dtype == np.float32
    assert bins.X.sum() == tx.n_obs == bins.uns["simulation"]["n_transcripts"]
    assert (np.asarray(bins.X.sum(axis=1)).ravel() > 0).all()  # only spots with counts
    np.testing.assert_array_equal(
        np.asarray(bins.X.sum(axis=0)).ravel(), np.asarray(tx.X.sum(axis=0)).ravel()
    )
    # bin centres on the 1 um grid
    xy = bins.obsm["spatial"]
    np.testing.assert_allclose(xy[:, 0], bins.obs["bin_x"].to_numpy() + 0.5)
    np.testing.assert_allclose(xy[:, 1], bins.obs["bin_y"].to_numpy() + 0.5)
    assert not pd.Index(zip(bins.obs["bin_x"], bins.obs["bin_y"], strict=True)).has_duplicates


def test_bins_truth_is_majority_of_transcripts(bins, tx):
    xy = tx.obsm["spatial"]
    key = np.floor(xy[:, 1]).astype(int) * 1000 + np.floor(xy[:, 0]).astype(int)
    df = pd.DataFrame({"bin": key, "cell": tx.obs["true_cell"].to_numpy(), "nuc": tx.obs["nucleus"].to_numpy()})
    bkey = bins.obs["bin_y"].to_numpy() * 1000 + bins.obs["bin_x"].to_numpy()
    for col, truth in (("cell", "true_cell"), ("nuc", "nucleus")):
        counts = df.groupby(["bin", col]).size()
        top = counts.groupby(level=0).max()
        n_winners = (counts == top.reindex(counts.index.get_level_values(0)).to_numpy()).groupby(level=0).sum()
        got = pd.MultiIndex.from_arrays([bkey, bins.obs[truth].to_numpy()])
        # the spot's label is one of its most frequent labels, and the only one where unique
        np.testing.assert_array_equal(counts.reindex(got).to_numpy(), top.loc[bkey].to_numpy())
        assert (n_winners.loc[bkey] == 1).mean() > 0.8


def test_modes_share_cells(bins, tx):
    assert bins.uns["simulation"]["cells"] == tx.uns["simulation"]["cells"]


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_tissue(tx):
    again = ms.datasets.simulate(mode="transcripts", width=SIZE, height=SIZE, random_state=SEED)
    np.testing.assert_array_equal(again.obsm["spatial"], tx.obsm["spatial"])
    np.testing.assert_array_equal(again.obs["true_cell"], tx.obs["true_cell"])
    np.testing.assert_array_equal(again.obs["nucleus"], tx.obs["nucleus"])
    assert (again.X != tx.X).nnz == 0


def test_generator_seed_and_different_seed():
    a = ms.datasets.simulate(width=60.0, height=60.0, random_state=np.random.default_rng(3))
    b = ms.datasets.simulate(width=60.0, height=60.0, random_state=np.random.default_rng(3))
    c = ms.datasets.simulate(width=60.0, height=60.0, random_state=4)
    assert a.uns["simulation"]["params"]["random_state"] == "Generator"
    np.testing.assert_array_equal(a.obsm["spatial"], b.obsm["spatial"])
    assert (a.X != b.X).nnz == 0
    assert a.n_obs != c.n_obs or not np.array_equal(a.obsm["spatial"], c.obsm["spatial"])


# --------------------------------------------------------------------------- geometry


def _bin_component_shares(bins):
    """Per true cell, the share of its spots in its largest 8-connected piece on the bin grid."""
    ix = bins.obs["bin_x"].to_numpy()
    iy = bins.obs["bin_y"].to_numpy()
    cell = bins.obs["true_cell"].to_numpy()
    grid = np.full((iy.max() + 1, ix.max() + 1), -1)
    grid[iy, ix] = cell
    largest, total = [], []
    for c, sl in enumerate(ndimage.find_objects(grid + 1)):
        if sl is None:
            continue
        comp, _ = ndimage.label(grid[sl] == c, structure=np.ones((3, 3)))
        sizes = np.bincount(comp.ravel())[1:]
        largest.append(sizes.max())
        total.append(sizes.sum())
    return np.array(largest), np.array(total)


def test_each_cell_connected_dense_bins():
    # densely sampled, every cell is one 8-connected piece of spots even with diffusion
    bins = ms.datasets.simulate(
        width=100.0, height=100.0, transcripts_per_cell=3000.0, n_genes=50, markers_per_type=5, random_state=3
    )
    largest, total = _bin_component_shares(bins)
    assert len(total) == bins.uns["simulation"]["n_cells"]
    np.testing.assert_array_equal(largest, total)


def test_cells_mostly_connected_sparse_bins(bins):
    # at real-data sparsity, spots holding only a diffused stray form small separate pieces
    largest, total = _bin_component_shares(bins)
    assert len(total) == bins.uns["simulation"]["n_cells"]
    assert largest.sum() / total.sum() > 0.9
    assert np.median(largest / total) > 0.95


def test_each_cell_connected_in_transcripts(tx):
    # radius graph of each cell's transcripts at 2.5 x their mean spacing (about 2 um by default)
    xy = tx.obsm["spatial"]
    cell = tx.obs["true_cell"].to_numpy()
    cells = _cells_table(tx)
    shares = []
    for c in cells.index:
        p = xy[cell == c]
        if len(p) < 20:  # a handful of transcripts cannot show a shape
            continue
        r = 2.5 / np.sqrt(len(p) / cells.loc[c, "area_um2"])
        pairs = cKDTree(p).query_pairs(r, output_type="ndarray")
        graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(p), len(p)))
        _, comp = connected_components(graph, directed=False)
        shares.append(np.bincount(comp).max() / len(p))
    shares = np.array(shares)
    assert len(shares) >= 0.8 * len(cells)
    assert (shares >= 0.95).mean() >= 0.95
    assert shares.min() >= 0.75


def test_equivalent_diameters_in_range(tx):
    cells = _cells_table(tx)
    d = 2 * np.sqrt(cells["area_um2"].to_numpy() / np.pi)
    assert d.min() >= 5.9 and d.max() <= 19.9
    assert 9 < np.median(d) < 13
    assert np.quantile(d, 0.9) - np.quantile(d, 0.1) > 4  # varied sizes
    # independent check from the transcripts: a uniform disk of radius R has det(cov) = R^4 / 16
    xy = tx.obsm["spatial"]
    cell = tx.obs["true_cell"].to_numpy()
    border = 12.0
    est = []
    for c in np.flatnonzero(cells["n_transcripts"].to_numpy() >= 40):
        p = xy[cell == c]
        cx, cy = p.mean(axis=0)
        if min(cx, cy, SIZE - cx, SIZE - cy) < border:
            continue
        est.append(4 * np.linalg.det(np.cov(p.T)) ** 0.25)
        est[-1] = (est[-1], 2 * np.sqrt(cells.loc[c, "area_um2"] / np.pi))
    est = np.array(est)
    assert len(est) > 50
    ratio = est[:, 0] / est[:, 1]
    assert 0.8 < np.median(ratio) < 1.2  # nuclei and diffusion bias it a little
    assert 5 < est[:, 0].min() and est[:, 0].max() < 22


def test_background_outside_cells(tx):
    xy = tx.obsm["spatial"]
    cell = tx.obs["true_cell"].to_numpy()
    _, nn = cKDTree(xy).query(xy, k=9)
    neigh = cell[nn[:, 1:]]
    # a point is "inside cell c" when at least 7 of its 8 nearest neighbours belong to c
    mode_share = np.array([np.bincount(row[row >= 0]).max() if (row >= 0).any() else 0 for row in neigh]) / 8
    inside = mode_share >= 0.875
    bg = cell < 0
    assert inside[bg].mean() < 0.05  # about 2.5%: strays at cell edges
    assert inside[~bg].mean() > 0.6  # the same statistic sees cells where there are cells (about 80%)


def test_nucleus_inside_its_cell_and_denser(tx):
    cell = tx.obs["true_cell"].to_numpy()
    nuc = tx.obs["nucleus"].to_numpy()
    in_nuc = nuc >= 0
    assert (cell[in_nuc] == nuc[in_nuc]).mean() > 0.9
    cells = _cells_table(tx)
    ratio_d = np.sqrt(cells["nucleus_area_um2"] / cells["area_um2"]).to_numpy()
    assert 0.35 < np.median(ratio_d) < 0.6
    assert (cells["nucleus_area_um2"] <= cells["area_um2"]).all()
    # nucleus centre near the cell centroid (a strip of a cell cut by the border may differ)
    dist = np.hypot(cells["nucleus_x"] - cells["x"], cells["nucleus_y"] - cells["y"]).to_numpy()
    r_eq = np.sqrt(cells["area_um2"].to_numpy() / np.pi)
    assert (dist < r_eq).mean() > 0.98
    assert np.median(dist / r_eq) < 0.3
    # transcript density in nuclei about twice the cytoplasm's
    own = (cell >= 0) & (nuc == cell)
    share_tx = own.sum() / (cell >= 0).sum()
    share_area = cells["nucleus_area_um2"].sum() / cells["area_um2"].sum()
    enrichment = share_tx / share_area
    assert 1.3 < enrichment < 2.0


def test_library_size_variation():
    kw = dict(mode="transcripts", width=100.0, height=100.0, random_state=1)
    flat = ms.datasets.simulate(library_size_sd=0.0, **kw)
    varied = ms.datasets.simulate(**kw)

    def per_area_sd(adata):
        cells = _cells_table(adata)
        big = cells[cells["area_um2"] > 60]
        return np.log((big["n_transcripts"] + 1) / big["area_um2"]).std()

    assert per_area_sd(varied) > 0.35
    assert per_area_sd(flat) < 0.25


def test_markers_enriched(tx):
    sim = tx.uns["simulation"]
    cell = tx.obs["true_cell"].to_numpy()
    keep = cell >= 0
    counts = sparse.csr_matrix(
        (np.ones(keep.sum()), (cell[keep], tx.X.indices[keep])), shape=(sim["n_cells"], tx.n_vars)
    ).toarray()
    frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    types = np.array(sim["cells"]["type"])
    for t in sim["types"]:
        genes = tx.var_names.get_indexer(sim["markers"][t])
        assert (tx.var["marker_of"].to_numpy()[genes] == t).all()
        score = frac[:, genes].sum(axis=1)
        if (types == t).sum() < 3:
            continue
        assert score[types == t].mean() > 5 * score[types != t].mean()


def test_clumping_keeps_the_tissue(tx):
    """``clumping`` / ``background_clumping`` change where RNA lies, not the tissue: the same cells,
    nuclei and types, the same background share; at 0 the tissue of a seed is unchanged. (How much
    they clump is tested against the realism benchmark's statistic in test_benchmarks.py.)"""
    kw = {"mode": "transcripts", "width": SIZE, "height": SIZE, "random_state": SEED}
    same = ms.datasets.simulate(clumping=0.0, background_clumping=0.0, **kw)
    np.testing.assert_array_equal(same.X.indices, tx.X.indices)
    np.testing.assert_array_equal(same.obsm["spatial"], tx.obsm["spatial"])
    clumped = ms.datasets.simulate(clumping=2.0, background_clumping=4.0, **kw)
    a, b = tx.uns["simulation"], clumped.uns["simulation"]
    assert a["n_cells"] == b["n_cells"] and a["gap_fraction"] == b["gap_fraction"]
    for key in ("area_um2", "nucleus_area_um2", "type"):
        assert a["cells"][key] == b["cells"][key]
    assert abs(b["background_share"] - 0.2) < 0.02
    assert abs(clumped.n_obs / tx.n_obs - 1.0) < 0.1  # gamma multipliers of mean 1
    assert b["params"]["clumping"] == 2.0 and b["params"]["background_clumping"] == 4.0
    again = ms.datasets.simulate(clumping=2.0, background_clumping=4.0, **kw)
    np.testing.assert_array_equal(again.obsm["spatial"], clumped.obsm["spatial"])


def test_false_positives_spread_over_the_panel(tx):
    """``false_positive_fraction`` redraws that share of genes evenly over the panel, in cells and
    outside, and leaves positions and truth alone; at 0 the tissue of a seed is unchanged."""
    kw = {"mode": "transcripts", "width": SIZE, "height": SIZE, "random_state": SEED}
    same = ms.datasets.simulate(false_positive_fraction=0.0, **kw)
    np.testing.assert_array_equal(same.X.indices, tx.X.indices)
    noisy = ms.datasets.simulate(false_positive_fraction=0.5, **kw)
    np.testing.assert_array_equal(noisy.obsm["spatial"], tx.obsm["spatial"])
    np.testing.assert_array_equal(noisy.obs["true_cell"].to_numpy(), tx.obs["true_cell"].to_numpy())
    changed = noisy.X.indices != tx.X.indices
    # half are redrawn, and a redraw hits the same gene 1 time in 500
    assert abs(changed.mean() - 0.5 * (1 - 1 / tx.n_vars)) < 0.01
    # the redrawn genes are even over the panel (chi-square, 499 degrees of freedom)
    k = np.bincount(noisy.X.indices[changed], minlength=tx.n_vars)
    chi2 = ((k - k.mean()) ** 2 / k.mean()).sum()
    assert chi2 < tx.n_vars + 4 * np.sqrt(2 * tx.n_vars)
    # markers are diluted: their share in their own type's cells falls by about half the excess
    def own_marker_share(a):
        sim, cell = a.uns["simulation"], a.obs["true_cell"].to_numpy()
        types = np.array(sim["cells"]["type"])
        own = [a.var_names.get_indexer(sim["markers"][types[c]]) for c in range(sim["n_cells"])]
        hits = [np.isin(a.X.indices[cell == c], own[c]).mean() for c in range(sim["n_cells"]) if (cell == c).sum() > 20]
        return float(np.mean(hits))
    clean, diluted = own_marker_share(tx), own_marker_share(noisy)
    uniform = tx.uns["simulation"]["params"]["markers_per_type"] / tx.n_vars
    assert diluted == pytest.approx(0.5 * clean + 0.5 * uniform, abs=0.02)


def test_nuclear_retained_rna_lies_in_nuclei(tx):
    """``nuclear_retained`` makes that share of each cell's transcripts from one non-marker gene
    (flagged in var), at the nucleus: most of it lies in nuclei, far more than other RNA, and the
    cells keep their size, truth and background share; at 0 the tissue of a seed is unchanged."""
    kw = {"mode": "transcripts", "width": SIZE, "height": SIZE, "random_state": SEED}
    assert not tx.var["nuclear_retained"].any()
    same = ms.datasets.simulate(nuclear_retained=0.0, **kw)
    np.testing.assert_array_equal(same.obsm["spatial"], tx.obsm["spatial"])
    np.testing.assert_array_equal(same.X.indices, tx.X.indices)
    a = ms.datasets.simulate(nuclear_retained=0.1, **kw)
    flag = a.var["nuclear_retained"].to_numpy()
    assert flag.sum() == 1
    gene = int(np.flatnonzero(flag)[0])
    assert a.var["marker_of"].iloc[gene] == ""
    in_cell = a.obs["true_cell"].to_numpy() >= 0
    in_nucleus = a.obs["nucleus"].to_numpy() >= 0
    is_gene = a.X.indices == gene
    # 10 % made in nuclei, plus the gene's small baseline share anywhere in the cell
    assert 0.09 < is_gene[in_cell].mean() < 0.12
    assert in_nucleus[is_gene & in_cell].mean() > 0.7
    assert in_nucleus[~is_gene & in_cell].mean() < 0.45
    # the same cells; per-cell totals kept (the nuclear share comes out of transcripts_per_cell)
    assert a.uns["simulation"]["n_cells"] == tx.uns["simulation"]["n_cells"]
    assert a.uns["simulation"]["cells"]["area_um2"] == tx.uns["simulation"]["cells"]["area_um2"]
    ratio = np.median(a.uns["simulation"]["cells"]["n_transcripts"]) / np.median(tx.uns["simulation"]["cells"]["n_transcripts"])
    assert 0.9 < ratio < 1.1
    assert abs(a.uns["simulation"]["background_share"] - 0.2) < 0.02
    with pytest.raises(ValueError, match="all n_genes=60 are markers"):
        ms.datasets.simulate(nuclear_retained=0.1, n_genes=60, n_types=6, markers_per_type=10, **kw)


# --------------------------------------------------------------------------- 3D, round trip


@pytest.mark.parametrize("mode", ["bins", "transcripts"])
def test_3d(mode):
    a = ms.datasets.simulate(mode=mode, width=50.0, height=50.0, depth=8.0, bin_size=2.0, random_state=2)
    xyz = a.obsm["spatial"]
    assert xyz.shape == (a.n_obs, 3)
    assert xyz[:, 2].min() >= 0 and xyz[:, 2].max() <= 8.0
    assert np.ptp(xyz[:, 2]) > 4
    if mode == "bins":
        assert {"bin_x", "bin_y", "bin_z"} <= set(a.obs.columns)
        np.testing.assert_allclose(xyz[:, 2], 2.0 * a.obs["bin_z"].to_numpy() + 1.0)
        assert a.X.sum() == a.uns["simulation"]["n_transcripts"]


def test_h5ad_round_trip(bins, tmp_path):
    import anndata as ad

    path = tmp_path / "sim.h5ad"
    bins.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.obs["true_cell"], bins.obs["true_cell"])
    assert back.uns["simulation"]["n_cells"] == bins.uns["simulation"]["n_cells"]
    assert back.uns["simulation"]["params"]["mode"] == "bins"
    assert back.uns["simulation"]["params"]["depth"] == "None"


def test_no_gaps_and_no_background():
    a = ms.datasets.simulate(
        mode="transcripts", width=60.0, height=60.0, gap_fraction=0.0, background_fraction=0.0, random_state=0
    )
    assert (a.obs["true_cell"] >= 0).all()
    assert a.uns["simulation"]["gap_fraction"] < 0.15


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "spots"}, "mode="),
        ({"width": 0}, "width="),
        ({"height": -5.0}, "height="),
        ({"depth": 0.0}, "depth="),
        ({"bin_size": float("nan")}, "bin_size="),
        ({"bin_size": 500.0}, "bin_size="),
        ({"n_types": 0}, "n_types="),
        ({"n_genes": 2.5}, "n_genes="),
        ({"n_genes": 20, "markers_per_type": 10}, "markers_per_type"),
        ({"markers_per_type": 0}, "marker_fraction"),
        ({"background_fraction": 1.0}, "background_fraction="),
        ({"false_positive_fraction": 1.2}, "false_positive_fraction="),
        ({"nuclear_retained": 1.0}, "nuclear_retained="),
        ({"clumping": -1.0}, "clumping="),
        ({"background_clumping": float("nan")}, "background_clumping="),
        ({"gap_fraction": -0.1}, "gap_fraction="),
        ({"diffusion": -1.0}, "diffusion="),
        ({"elongation": float("inf")}, "elongation="),
        ({"marker_fraction": 1.5}, "marker_fraction="),
        ({"n_types": True}, "n_types="),
        ({"transcripts_per_cell": 0}, "transcripts_per_cell="),
        ({"cell_diameter": (10.0, 5.0)}, "cell_diameter="),
        ({"cell_diameter": 10.0}, "cell_diameter="),
        ({"nucleus_size": (0.4, 1.5)}, "nucleus_size="),
        ({"resolution": 5.0}, "resolution="),
        ({"random_state": "a"}, "random_state="),
        ({"random_state": -1}, "random_state="),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ms.datasets.simulate(**{"width": 40.0, "height": 40.0, **kwargs})


def test_positional_arguments_refused():
    with pytest.raises(TypeError):
        ms.datasets.simulate("bins")  # type: ignore[misc]


def test_tissue_too_small_for_cells():
    with pytest.raises(ValueError, match="no cells"):
        ms.datasets.simulate(width=3.0, height=3.0, gap_fraction=0.9, random_state=0, bin_size=1.0)
