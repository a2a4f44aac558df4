"""Tiles, overlap, stitching and the Dask runner (manifoldseg._tiling)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.spatial import cKDTree

import manifoldseg as ms
from manifoldseg import _tiling as T
from manifoldseg._validate import InputError, ManifoldsegError


def oracle(coords, X, *, cell_diameter, prior, random_state, **kw):
    """A perfect, purely local segmenter: the true cells given as ``prior``, numbered arbitrarily
    (a permutation drawn from the tile's seed), so stitching can be checked exactly."""
    labels = np.full(len(coords), -1, dtype=np.int64)
    inside = prior >= 0
    ids, inv = np.unique(prior[inside], return_inverse=True)
    perm = np.random.default_rng(random_state).permutation(len(ids))
    labels[inside] = perm[inv]
    return labels, np.where(inside, 0.9, 0.1).astype(np.float32)


def same_partition(a, b) -> bool:
    """Equal up to renumbering, with the same background."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = np.unique(np.stack([a[a >= 0], b[b >= 0]], 1), axis=0)
    return len(pairs) == len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1]))


def n_disconnected(xy, labels, radius) -> int:
    bad = 0
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        p = cKDTree(xy[idx]).query_pairs(radius, output_type="ndarray")
        g = sparse.coo_matrix((np.ones(len(p)), (p[:, 0], p[:, 1])), shape=(len(idx),) * 2)
        bad += sparse.csgraph.connected_components(g, directed=False)[0] > 1
    return bad


@pytest.fixture(scope="module")
def tissue():
    """A 150 x 150 um tissue (about 150 cells, many on the borders of 50 um tiles)."""
    a = ms.datasets.simulate(width=150.0, height=150.0, random_state=3)
    return np.asarray(a.obsm["spatial"]), a.X.tocsr(), a.obs["true_cell"].to_numpy().astype(np.int64)


# ---------------------------------------------------------------- layout


def test_layout_cores_partition_and_tiles_hold_their_overlap():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, size=(5000, 2))
    lay = T.TileLayout.from_coords(xy, 100.0, 20.0)
    assert (lay.nx, lay.ny) == (3, 3)
    core = lay.core_index(xy)
    t4 = lay.tile(4)  # the middle tile
    x0, y0, x1, y1 = t4.core
    in_core = (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)
    assert np.array_equal(core == 4, in_core)
    assert t4.outer == (x0 - 20, y0 - 20, x1 + 20, y1 + 20)
    # the highest point falls in the last core, not outside the grid
    assert lay.core_index(xy.max(axis=0)[None])[0] == 8
    idx = T.TileIndex(xy, lay)
    for t in lay.tiles():
        ox0, oy0, ox1, oy1 = t.outer
        brute = np.flatnonzero((xy[:, 0] >= ox0) & (xy[:, 0] <= ox1) & (xy[:, 1] >= oy0) & (xy[:, 1] <= oy1))
        assert np.array_equal(idx.rows(t), brute)
        assert np.array_equal(np.sort(idx.core_rows(t.index)), np.flatnonzero(core == t.index))


def test_tile_size_and_overlap_rules():
    xy = np.random.default_rng(1).uniform(0, 1000, size=(1000, 2))
    assert T.resolve_tile_size(None, xy, 10.0, 20.0) is None
    assert T.resolve_tile_size("auto", xy, 10.0, 20.0) is None  # few spots: no tiling
    assert T.resolve_tile_size(200, xy, 10.0, 20.0) == 200.0
    with pytest.raises(InputError, match="smaller than 3 cell diameters"):
        T.resolve_tile_size(25, xy, 10.0, 20.0)
    with pytest.raises(InputError, match="'auto' or None"):
        T.resolve_tile_size("big", xy, 10.0, 20.0)
    assert T.resolve_overlap(None, 10.0) == 20.0
    with pytest.raises(InputError, match="1.5 cell diameters"):
        T.resolve_overlap(10.0, 10.0)
    assert not T.use_tiles("auto", T.AUTO_MIN_SPOTS) and T.use_tiles("auto", T.AUTO_MIN_SPOTS + 1)
    assert T.tile_seed(0, 1) != T.tile_seed(0, 2) and T.tile_seed(5, 3) == T.tile_seed(5, 3)


def test_auto_tile_size_keeps_tiles_near_the_target():
    n = 2_000_000
    xy = np.random.default_rng(2).uniform(0, 2000, size=(n, 2))
    size = T.resolve_tile_size("auto", xy, 10.0, 20.0)
    per_tile = n * (size + 40) ** 2 / 2000**2
    assert 100_000 < per_tile <= T.AUTO_SPOTS_PER_TILE * 1.05
    assert abs(2000 / size - round(2000 / size)) < 1e-3  # even cores


# ---------------------------------------------------------------- stitching, exact


def test_stitch_conflicts_ownership_and_numbering_exact():
    # spots on a line x = 0..19 (y = 0); cores [0, 10) and [10, 20); overlap 5
    xy = np.stack([np.arange(20.0), np.zeros(20)], 1)
    lay = T.TileLayout((0.0, 0.0), 10.0, 5.0, 2, 1)
    counts = np.ones(20)
    rows0 = np.arange(0, 16)  # tile 0 sees x in [-5, 15]
    rows1 = np.arange(5, 20)  # tile 1 sees x in [5, 25]
    # tile 0: cell 7 = x 2..12 (centroid 7, in core 0: kept); cell 3 = x 14..15 (centroid 14.5: dropped)
    lab0 = np.full(16, -1)
    lab0[2:13] = 7
    lab0[14:16] = 3
    # tile 1: cell 0 = x 5..8 (centroid 6.5, core 0: dropped); cell 1 = x 9..18 (centroid 13.5: kept)
    lab1 = np.full(15, -1)
    lab1[0:4] = 0
    lab1[4:14] = 1
    conf0, conf1 = np.full(16, 0.25, np.float32), np.full(15, 0.75, np.float32)
    expected = np.full(20, -1)
    # conflict x = 9..12: nearer centroid wins (9, 10 -> cell at 7; 11, 12 -> cell at 13.5)
    expected[2:11] = 0  # tile 0's cell is numbered first
    expected[11:19] = 1
    for order in ((0, 1), (1, 0)):
        st = T.Stitcher(xy, counts, lay, link_radius=1.5)
        for t in order:
            st.add(lay.tile(t), *((rows0, lab0, conf0) if t == 0 else (rows1, lab1, conf1)))
        labels, conf, info = st.finish()
        assert np.array_equal(labels, expected), order
        assert info["n_cells"] == 2 and info["n_conflict_spots"] == 4 and info["n_cells_left_to_neighbours"] == 2
        # confidence from the tile whose cell won; background from the tile whose core holds the spot
        assert np.allclose(conf[2:11], 0.25) and np.allclose(conf[11:19], 0.75)
        assert conf[0] == 0.25 and conf[19] == 0.75


@pytest.mark.parametrize(("block", "label0"), [(None, 0), (3, 10**12)])
def test_stitch_keeps_one_piece_of_a_cell_cut_by_a_conflict(monkeypatch, block, label0):
    # tile 1's cell claims the middle of tile 0's cell: tile 0's cell keeps its larger side only;
    # the same when finish() runs in blocks of 3 spots and a local label does not fit in 32 bits
    if block is not None:
        monkeypatch.setattr(T, "STITCH_BLOCK", block)
    xy = np.stack([np.arange(20.0), np.zeros(20)], 1)
    counts = np.ones(20, np.float32)
    lay = T.TileLayout((0.0, 0.0), 10.0, 10.0, 2, 1)
    st = T.Stitcher(xy, counts, lay, link_radius=1.5)
    # besides the coordinates and counts it was given (not copied), five 4-byte arrays per spot
    assert st.counts is counts and np.shares_memory(st.xy, xy)
    per_spot = {k: v for k, v in vars(st).items() if isinstance(v, np.ndarray) and k not in ("xy", "counts")}
    assert sorted(per_spot) == ["cell", "claim_tile", "confidence", "dist", "size"]
    assert all(v.shape == (20,) and v.itemsize == 4 for v in per_spot.values())
    lab0 = np.full(20, -1)
    lab0[0:14] = label0  # centroid 6.5, core 0; reaches x = 13
    lab1 = np.full(20, -1)
    lab1[9:12] = 5  # a small cell centred at 10 (core 1)
    st.add(lay.tile(0), np.arange(20), lab0, np.ones(20, np.float32))
    st.add(lay.tile(1), np.arange(20), lab1, np.ones(20, np.float32))
    labels, _, info = st.finish()
    # x 9 is nearer 6.5? |9-6.5| = 2.5 > |9-10| = 1 -> cell 1; x 12..13 detached from cell 0 -> background
    expected = np.full(20, -1)
    expected[0:9] = 0
    expected[9:12] = 1
    assert labels.dtype == np.int64 and np.array_equal(labels, expected)
    assert info["n_detached_pieces"] == 1 and info["n_cells"] == 2 and info["assigned_fraction"] == 12 / 20


def test_tiled_oracle_reproduces_the_cells_exactly(tissue):
    coords, X, truth = tissue
    res = T.segment_tiled(coords, X, tile_size=50.0, cell_diameter=11.0, prior=truth, scheduler="synchronous",
                          progress=False, segmenter=oracle)
    assert res.info["n_tiles"] == 9
    assert same_partition(res.labels, truth)
    # cells on borders were seen by several tiles and kept once
    assert res.info["n_cells_left_to_neighbours"] > 20
    assert res.info["n_cells"] == len(np.unique(truth[truth >= 0]))
    # numbering is deterministic: by (tile, local label), 0..k-1
    assert np.array_equal(np.unique(res.labels[res.labels >= 0]), np.arange(res.info["n_cells"]))


# ---------------------------------------------------------------- the real pipeline


@pytest.fixture(scope="module")
def small_tissue():
    """100 x 100 um (about 70 cells) for the real pipeline in 4 tiles of 50 um."""
    a = ms.datasets.simulate(width=100.0, height=100.0, random_state=4)
    return np.asarray(a.obsm["spatial"]), a.X.tocsr(), a.obs["true_cell"].to_numpy().astype(np.int64)


FAST = {"tile_size": 50.0, "cell_diameter": 11.0, "progress": False, "n_epochs": 50}


@pytest.fixture(scope="module")
def real_runs(small_tissue):
    coords, X, truth = small_tissue
    from manifoldseg.tl._segment import segment_array

    untiled = segment_array(coords, X, cell_diameter=11.0, random_state=0, n_epochs=50).labels
    tiled = T.segment_tiled(coords, X, scheduler="synchronous", **FAST)
    return untiled, tiled


def test_tiled_agrees_with_untiled_and_cells_are_whole(small_tissue, real_runs):
    coords, X, truth = small_tissue
    untiled, tiled = real_runs
    assert tiled.info["n_tiles"] == 4
    f1_u = ms.metrics.match_cells(truth, untiled)["f1"]
    f1_t = ms.metrics.match_cells(truth, tiled.labels)["f1"]
    assert f1_t >= f1_u - 0.08, (f1_t, f1_u)
    # section-wide parameters + random draws keyed on global spot ids: a tile's interior is
    # segmented as in the untiled run (issue target on a larger tissue: ARI >= 0.98, F1 >= 0.97)
    assert ms.metrics.adjusted_rand(untiled, tiled.labels) >= 0.95
    assert ms.metrics.match_cells(untiled, tiled.labels)["f1"] >= 0.93
    r = tiled.info["link_radius"]
    assert n_disconnected(coords[:, :2], tiled.labels, r) <= n_disconnected(coords[:, :2], untiled, r) + 3
    assert ((tiled.confidence >= 0) & (tiled.confidence <= 1)).all()


def test_schedulers_give_the_same_labels(small_tissue, real_runs):
    distributed = pytest.importorskip("distributed")
    coords, X, _ = small_tissue
    _, sync = real_runs
    kw = FAST
    threads = T.segment_tiled(coords, X, scheduler="threads", n_jobs=2, **kw)
    assert np.array_equal(threads.labels, sync.labels)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            on_client = T.segment_tiled(coords, X, scheduler=client, **kw)
            by_address = T.segment_tiled(coords, X, scheduler=lc.scheduler_address, **kw)
    assert on_client.info["scheduler"] == "client" and by_address.info["scheduler"] == "address"
    assert np.array_equal(on_client.labels, sync.labels)
    assert np.array_equal(by_address.labels, sync.labels)
    assert np.allclose(on_client.confidence, sync.confidence)


def test_progress_bar_over_tiles(tissue, capsys):
    coords, X, truth = tissue
    kw = {"tile_size": 50.0, "cell_diameter": 11.0, "prior": truth, "scheduler": "synchronous", "segmenter": oracle}
    T.segment_tiled(coords, X, progress=False, **kw)
    assert "tiles" not in capsys.readouterr().err
    T.segment_tiled(coords, X, progress=True, **kw)
    err = capsys.readouterr().err
    assert "tiles" in err and "9/9" in err


def test_bad_schedulers_are_clear(tissue, monkeypatch):
    coords, X, truth = tissue
    kw = {"tile_size": 50.0, "cell_diameter": 11.0, "prior": truth, "segmenter": oracle, "progress": False}
    with pytest.raises(InputError, match="scheduler must be"):
        T.segment_tiled(coords, X, scheduler="bogus", **kw)
    monkeypatch.setattr(T, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ManifoldsegError, match="could not connect to the Dask scheduler at 'tcp://127.0.0.1:9'"):
        T.segment_tiled(coords, X, scheduler="tcp://127.0.0.1:9", **kw)
    with pytest.raises(InputError, match="smaller than 3 cell diameters"):
        T.segment_tiled(coords, X, scheduler="synchronous", **{**kw, "tile_size": 20.0})


def test_segment_wrapper_tiles(small_bins):
    # the AnnData API: tile_size= tiles; the stitched labels land in obs, no embedding is written
    ms.tl.segment(small_bins, cell_diameter=11.0, tile_size=40.0, scheduler="synchronous")
    summ = small_bins.uns["manifoldseg"]["summary"]
    assert summ["tiled"] and summ["n_tiles"] == 4
    lab = small_bins.obs["cell_id"].to_numpy()
    assert lab.max() + 1 == summ["n_cells"] > 10
    assert "X_manifold" not in small_bins.obsm
    assert small_bins.uns["manifoldseg"]["params"]["tile_size"] == 40.0

