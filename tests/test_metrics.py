"""ms.metrics: known answers on hand-made segmentations, agreement with scikit-learn, speed."""

from __future__ import annotations

import logging
import math
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

import manifoldseg as ms

M = ms.metrics


def _cells(*sizes, start=0):
    """Labels for consecutive cells of the given sizes (a negative size = that many background items)."""
    out, cid = [], start
    for s in sizes:
        if s < 0:
            out += [-1] * (-s)
        else:
            out += [cid] * s
            cid += 1
    return np.array(out, dtype=np.int64)


# ------------------------------------------------------------------------------ perfect / permuted


@pytest.fixture
def truth():
    # three cells of 10, 30, 10 items and 5 background items
    return _cells(10, 30, 10, -5)


def test_perfect(truth):
    assert M.adjusted_rand(truth, truth) == 1.0
    assert M.adjusted_mutual_info(truth, truth) == pytest.approx(1.0)
    r = M.match_cells(truth, truth)
    assert r == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n_true": 3, "n_pred": 3, "n_matched": 3,
                 "mean_matched_iou": 1.0}
    assert M.average_precision(truth, truth)["ap"] == 1.0
    assert M.recovery(truth, truth) == 1.0
    ou = M.over_under_segmentation(truth, truth)
    assert ou["over_segmentation"] == 0.0 and ou["under_segmentation"] == 0.0
    bg = M.background_scores(truth, truth)
    assert bg == {"background_precision": 1.0, "background_recall": 1.0, "in_cell_assigned": 1.0,
                  "background_assigned": 0.0}
    assert M.nuclear_consistency(truth, truth) == 1.0
    assert M.merge_rate(truth, truth) == 0.0


def test_permuted_ids_give_same_scores(truth):
    perm = np.array([107, 3, 55])
    pred = np.where(truth >= 0, perm[np.maximum(truth, 0)], -1)
    a = M.score_all(truth, pred, nucleus=truth)
    b = M.score_all(truth, truth, nucleus=truth)
    assert a == b
    assert a["f1"] == 1.0 and a["ari"] == 1.0


# ------------------------------------------------------------------------------ merge / split


def test_one_merge(truth):
    pred = truth.copy()
    pred[truth == 1] = 0  # cells 0 (10 items) and 1 (30 items) merged into one of 40
    r = M.match_cells(truth, pred)
    # IoU(cell 1, merged) = 30/40 = 0.75 matches; cell 0 (IoU 10/40) does not; cell 2 matches
    assert (r["n_true"], r["n_pred"], r["n_matched"]) == (3, 2, 2)
    assert r["precision"] == 1.0
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(0.8)
    assert r["mean_matched_iou"] == pytest.approx((0.75 + 1.0) / 2)
    ou = M.over_under_segmentation(truth, pred)
    assert ou["over_segmentation"] == 0.0
    assert ou["under_segmentation"] == 0.5  # largest part of the merged cell: 30/40 < 0.8
    assert M.merge_rate(truth, pred) == 0.5  # 1 of 2 predicted cells holds two nuclei
    assert M.merge_rate(truth, pred, among="nucleated") == 0.5
    assert M.nuclear_consistency(truth, pred) == 1.0  # nothing cut
    assert M.recovery(truth, pred) == pytest.approx(2 / 3)
    # AP: thresholds 0.5..0.75 -> 2 matches of 3+2 cells (2/3), 0.8..0.95 -> only cell 2 (1/4)
    ap = M.average_precision(truth, pred)
    assert ap["n_matched"] == [2, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    assert ap["ap"] == pytest.approx((6 * 2 / 3 + 4 * 1 / 4) / 10)


def test_one_split():
    truth = _cells(20, 10)
    pred = np.array([0] * 12 + [5] * 8 + [1] * 10)  # cell 0 split 12 / 8
    r = M.match_cells(truth, pred)
    assert (r["n_true"], r["n_pred"], r["n_matched"]) == (2, 3, 2)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(0.8)
    ou = M.over_under_segmentation(truth, pred)
    assert ou["over_segmentation"] == 0.5  # 12/20 = 0.6 < 0.8
    assert ou["under_segmentation"] == 0.0
    # a nucleus over items 6..15 of cell 0 is cut 6 / 4 -> not kept whole
    nucleus = np.full(30, -1)
    nucleus[6:16] = 0
    nucleus[22:28] = 1
    assert M.nuclear_consistency(nucleus, pred) == 0.5
    assert M.merge_rate(nucleus, pred) == 0.0
    assert M.adjusted_rand(truth, pred) < 1.0


def test_all_background(truth):
    pred = np.full_like(truth, -1)
    r = M.match_cells(truth, pred)
    assert r["n_pred"] == 0 and r["n_matched"] == 0
    assert r["recall"] == 0.0 and r["f1"] == 0.0 and math.isnan(r["precision"])
    assert math.isnan(M.adjusted_rand(truth, pred))
    assert math.isnan(M.adjusted_mutual_info(truth, pred))
    bg = M.background_scores(truth, pred)
    assert bg["background_recall"] == 1.0 and bg["in_cell_assigned"] == 0.0
    assert bg["background_precision"] == pytest.approx(5 / 55)
    assert M.fraction_assigned(pred) == 0.0
    assert M.nuclear_consistency(truth, pred) == 0.0
    assert math.isnan(M.merge_rate(truth, pred))
    s = M.score_all(truth, pred)
    assert s["n_cells"] == 0 and s["f1"] == 0.0


# ------------------------------------------------------------------------------ background in cell sets


def test_background_lowers_iou_through_its_own_cell():
    truth = _cells(10, -5)
    swallow = np.zeros(15, dtype=int)  # the predicted cell takes the 5 background items too
    r = M.match_cells(truth, swallow)
    assert r["mean_matched_iou"] == pytest.approx(10 / 15)
    assert M.background_scores(truth, swallow)["background_assigned"] == 1.0
    # under-segmentation ignores swallowed background (measured by background_assigned instead)
    assert M.over_under_segmentation(truth, swallow)["under_segmentation"] == 0.0
    shrink = truth.copy()
    shrink[6:10] = -1  # 4 of the cell's items left unassigned
    assert M.match_cells(truth, shrink)["mean_matched_iou"] == pytest.approx(0.6)
    assert M.background_scores(truth, shrink)["in_cell_assigned"] == pytest.approx(0.6)
    assert M.over_under_segmentation(truth, shrink)["over_segmentation"] == 0.0
    assert M.nuclear_consistency(truth, shrink) == 0.0  # 6/10 of the "nucleus" in one cell


def test_weights_change_set_sizes():
    truth = np.array([0, 0])
    pred = np.array([0, -1])
    assert M.match_cells(truth, pred)["mean_matched_iou"] == 0.5
    assert M.match_cells(truth, pred, weights=[3, 1])["mean_matched_iou"] == 0.75
    assert M.fraction_assigned(pred, counts=[3, 1]) == 0.75


def test_hungarian_below_half_maximises_matches():
    # n(T1,P1)=5, n(T1,P2)=4, n(T2,P1)=4, 3 items of T2 unassigned, 2 background items in P2:
    # IoU(T1,P1)=5/13, IoU(T1,P2)=4/11, IoU(T2,P1)=4/12. Greedy (best IoU first) matches T1-P1 only;
    # the optimal one-to-one matching is T1-P2 and T2-P1.
    truth = np.array([0] * 5 + [0] * 4 + [1] * 4 + [1] * 3 + [-1] * 2)
    pred = np.array([0] * 5 + [1] * 4 + [0] * 4 + [-1] * 3 + [1] * 2)
    r = M.match_cells(truth, pred, iou_threshold=0.3)
    assert r["n_matched"] == 2
    assert r["mean_matched_iou"] == pytest.approx((4 / 11 + 4 / 12) / 2)
    assert M.match_cells(truth, pred, iou_threshold=0.35)["n_matched"] == 2 - 1
    assert M.match_cells(truth, pred)["n_matched"] == 0
    assert M.recovery(truth, pred, jaccard=0.3) == 1.0


def test_exact_half_ties_stay_one_to_one():
    truth = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 1, 1])  # both halves have IoU exactly 0.5 with the one true cell
    r = M.match_cells(truth, pred)
    assert r["n_matched"] == 1 and r["mean_matched_iou"] == 0.5


# ------------------------------------------------------------------------------ sklearn agreement


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ari_ami_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    t = rng.integers(-1, 40, n)
    p = np.where(rng.random(n) < 0.7, t, rng.integers(-1, 25, n))
    keep = (t >= 0) & (p >= 0)
    assert M.adjusted_rand(t, p) == pytest.approx(adjusted_rand_score(t[keep], p[keep]), abs=1e-12)
    assert M.adjusted_mutual_info(t, p) == pytest.approx(
        adjusted_mutual_info_score(t[keep], p[keep]), abs=1e-9
    )
    # purely random labels (near zero) and a skewed case
    q = rng.integers(0, 7, n)
    assert M.adjusted_rand(t, q) == pytest.approx(adjusted_rand_score(t[t >= 0], q[t >= 0]), abs=1e-12)
    assert M.adjusted_mutual_info(t, q) == pytest.approx(
        adjusted_mutual_info_score(t[t >= 0], q[t >= 0]), abs=1e-9
    )


def test_ari_ami_trivial_partitions_follow_sklearn():
    one = np.zeros(10, dtype=int)
    assert M.adjusted_rand(one, one) == adjusted_rand_score(one, one) == 1.0
    assert M.adjusted_mutual_info(one, one) == adjusted_mutual_info_score(one, one) == 1.0
    alone = np.arange(10)
    assert M.adjusted_rand(one, alone) == pytest.approx(adjusted_rand_score(one, alone))
    assert M.adjusted_mutual_info(one, alone) == pytest.approx(adjusted_mutual_info_score(one, alone))


# ------------------------------------------------------------------------------ MECR


def _two_types(n_doublets=0):
    """50 cells of type A (markers g0, g1), 50 of B (markers g2, g3), gene g4 everywhere."""
    rows = []
    for _ in range(50):
        rows.append([3, 1, 0, 0, 2])
    for _ in range(50):
        rows.append([0, 0, 2, 5, 2])
    clusters = ["A"] * 50 + ["B"] * 50
    for _ in range(n_doublets):
        rows.append([1, 1, 1, 1, 1])
        clusters.append("A")
    return np.array(rows, dtype=float), np.array(clusters)


def test_mecr_known_answers(caplog):
    X, cl = _two_types()
    assert M.mecr(X, cl) == 0.0
    mk = M.marker_genes(X, cl)
    assert sorted(mk["gene"]) == [0, 1, 2, 3]  # g4 is in every cell: no marker
    # 2 doublets in A: each cross pair (a, b) is detected together in 2 cells of 52 + 52 - 2
    X2, cl2 = _two_types(n_doublets=2)
    assert M.mecr(sparse.csr_matrix(X2), cl2) == pytest.approx(2 / 102)
    # 10 doublets: B's markers reach 10/60 of A's cells (> 5 %) -> no longer markers -> NaN + a note
    X3, cl3 = _two_types(n_doublets=10)
    with caplog.at_level(logging.WARNING, logger="manifoldseg"):
        assert math.isnan(M.mecr(X3, cl3))
    assert "fewer than two cell types" in caplog.text


def test_mecr_with_given_markers():
    X, cl = _two_types(n_doublets=10)
    # markers fixed from outside (e.g. a reference segmentation) keep MECR defined for mixed cells:
    # each cross pair is detected together in the 10 doublets of 60 + 60 - 10 cells
    assert M.mecr(X, markers={"A": [0, 1], "B": [2, 3]}) == pytest.approx(10 / 110)
    ref = M.marker_genes(*_two_types())
    assert M.mecr(X, markers=ref) == pytest.approx(10 / 110)
    with pytest.raises(ValueError, match="column indices"):
        M.mecr(X, markers={"A": [0], "B": [9]})


def test_mecr_clusters_itself():
    X, _ = _two_types()
    rng = np.random.default_rng(0)
    X = X * rng.uniform(0.5, 2.0, size=(X.shape[0], 1))  # library sizes vary
    assert M.mecr(X, n_clusters=2) == 0.0
    X2, _ = _two_types(n_doublets=2)
    assert M.mecr(X2, n_clusters=2) > 0.0


# ------------------------------------------------------------------------------ cell stats


def test_cell_stats_and_fraction_assigned():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    coords = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [5, 5], [6, 6], [7, 7], [9, 9]], dtype=float)
    X = sparse.csr_matrix(np.array([[1, 0], [2, 0], [0, 0], [1, 0], [0, 3], [1, 1], [0, 0], [4, 4]]))
    st = M.cell_stats(labels, X=X, coords=coords)
    assert list(st.index) == [0, 1]
    assert st["n_spots"].tolist() == [4, 3]
    assert st["total_counts"].tolist() == [4.0, 5.0]
    assert st["n_genes"].tolist() == [1, 2]
    assert st["area"].tolist() == pytest.approx([1.0, 0.0])  # unit square; collinear points
    assert st.loc[0, "x"] == 0.5 and st.loc[1, "y"] == 6.0
    st2 = M.cell_stats(labels, coords=coords, bin_size=2.0)
    assert st2["area"].tolist() == [16.0, 12.0]
    assert st2["total_counts"].tolist() == [4.0, 3.0]
    assert M.fraction_assigned(labels) == 7 / 8
    assert M.fraction_assigned(labels, counts=[1, 1, 1, 1, 1, 1, 1, 9]) == 7 / 16


# ------------------------------------------------------------------------------ score_all / evaluate


def _adata(pred):
    truth = _cells(10, 30, 10, -5)
    n = truth.shape[0]
    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.poisson(1.0, size=(n, 6)).astype(np.float32))
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"s{i}" for i in range(n)]))
    a.obs["true_cell"] = truth
    a.obs["nucleus"] = np.where(np.arange(n) % 2 == 0, truth, -1)
    a.obs["cell_id"] = pred(truth)
    a.obs["cell_id_confidence"] = 0.5
    a.obsm["spatial"] = rng.uniform(0, 20, size=(n, 2))
    return a


def test_evaluate_reads_obs_columns():
    a = _adata(lambda t: t)
    out = M.evaluate(a)
    for k in ("ari", "ami", "f1", "precision", "recall", "ap", "ap50", "ap75", "recovery",
              "over_segmentation", "under_segmentation", "background_precision", "in_cell_assigned",
              "nuclear_consistency", "merge_rate", "fraction_assigned", "median_area",
              "median_genes_per_cell", "mecr", "mean_confidence"):
        assert k in out, k
    assert out["f1"] == 1.0 and out["ari"] == 1.0 and out["nuclear_consistency"] == 1.0
    assert out["n_cells"] == 3 and out["mean_confidence"] == 0.5
    assert out["fraction_assigned"] == pytest.approx(50 / 55)
    # without truth columns only the reference-free scores remain
    b = a.copy()
    del b.obs["true_cell"], b.obs["nucleus"]
    out2 = M.evaluate(b)
    assert "f1" not in out2 and "nuclear_consistency" not in out2 and "n_cells" in out2
    with pytest.raises(KeyError, match="ms.tl.segment"):
        M.evaluate(a, key="nope")
    with pytest.raises(KeyError, match="truth_key"):
        M.evaluate(a, truth_key="nope")


def test_evaluate_merge_matches_arrays():
    a = _adata(lambda t: np.where(t == 1, 0, t))
    out = M.evaluate(a)
    assert out["f1"] == pytest.approx(0.8)
    assert out["under_segmentation"] == 0.5


def test_simulated_tissue_scores_truth_perfectly():
    sim = pytest.importorskip("manifoldseg.datasets")
    if not hasattr(sim, "simulate"):
        pytest.skip("manifoldseg.datasets.simulate not available yet")
    a = sim.simulate(mode="bins", bin_size=2.0, width=60.0, height=60.0, random_state=0)
    a.obs["cell_id"] = a.obs["true_cell"].to_numpy()
    out = M.evaluate(a)
    assert out["f1"] == 1.0 and out["ari"] == 1.0
    assert out["median_area"] > 20.0  # bins of 4 um2, cells of 7-18 um
    assert out["mecr"] < 0.05 and out["mecr_ref_markers"] == out["mecr_reference"]
    # cells cut along a coarse grid mix neighbours: worse on every score, MECR included
    xy = a.obsm["spatial"]
    a.obs["cell_id"] = (xy[:, 0] // 15).astype(int) * 10 + (xy[:, 1] // 15).astype(int)
    bad = M.evaluate(a)
    assert bad["f1"] < 0.3 and bad["ari"] < 0.8 and bad["background_assigned"] == 1.0
    assert bad["mecr_ref_markers"] > 3 * out["mecr_reference"]


# ------------------------------------------------------------------------------ errors


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="differ in length"):
        M.match_cells([0, 1], [0])
    with pytest.raises(ValueError, match="iou_threshold"):
        M.match_cells([0], [0], iou_threshold=0)
    with pytest.raises(ValueError, match="integer labels"):
        M.adjusted_rand([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="pred is required"):
        M.score_all([0, 1])
    with pytest.raises(ValueError, match="among"):
        M.merge_rate([0], [0], among="some")


def test_labels_from_pandas():
    t = pd.Series(pd.Categorical([0, 0, 1, 1]))
    p = pd.Series([1.0, 1.0, np.nan, 0.0])  # NaN read as background
    r = M.match_cells(t, p)  # cell 0 <-> pred 1 (IoU 1), cell 1 <-> pred 0 (IoU 1/2)
    assert r["n_pred"] == 2 and r["n_matched"] == 2
    assert r["mean_matched_iou"] == 0.75


# ------------------------------------------------------------------------------ speed


def test_speed_million_items():
    rng = np.random.default_rng(0)
    n, nc = 1_000_000, 10_000
    true = rng.integers(0, nc, n)
    true[rng.random(n) < 0.2] = -1
    pred = true.copy()
    flip = rng.random(n) < 0.1
    pred[flip] = rng.integers(-1, nc, flip.sum())
    M.adjusted_mutual_info(true[:1000], pred[:1000])  # numba compile outside the timing
    t0 = time.perf_counter()
    out = M.score_all(true, pred, nucleus=true)
    elapsed = time.perf_counter() - t0
    assert out["n_true"] == nc and out["recall"] > 0.99
    assert elapsed < 15.0, f"score_all took {elapsed:.1f} s on 1e6 items"
