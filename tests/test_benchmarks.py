"""benchmarks/: the real-set loaders return the documented counts, the reference never reaches
the segmentation, and the harness scores and tabulates a tiny simulated case."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import manifoldseg as ms

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import _real  # noqa: E402
import accuracy  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:sklearn"),
    # bento's h5ad predates anndata's encoding metadata
    pytest.mark.filterwarnings("ignore:Element .* was written without encoding metadata"),
]


# --------------------------------------------------------------------------------------------- #
# loaders on the real data (SOURCE.txt counts)
# --------------------------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def cosmx(shared_data):
    return {fov: _real.load_cosmx(fov, root=shared_data) for fov in (2, 3)}


@pytest.mark.realdata
@pytest.mark.parametrize(("fov", "n_cells", "assigned"), [(2, 67, 0.785), (3, 53, 0.686)])
def test_cosmx_counts(cosmx, fov, n_cells, assigned):
    a = cosmx[fov]
    rc = a.obs["ref_cell"].to_numpy()
    rn = a.obs["ref_nucleus"].to_numpy()
    assert rc.dtype == np.int64 and rn.dtype == np.int64
    assert np.unique(rc[rc >= 0]).size == n_cells
    assert np.unique(rc[rc >= 0]).tolist() == list(range(n_cells))
    assert abs((rc >= 0).mean() - assigned) < 0.005
    # a nuclear transcript belongs to the same cell; nothing nuclear outside cells
    assert np.all(rn[rn >= 0] == rc[rn >= 0])
    assert 0.4 < (rn >= 0).mean() < 0.55
    assert not any(g.lower().startswith("negprb") for g in a.var_names)
    xy = a.obsm["spatial"]
    assert xy.shape == (a.n_obs, 2)
    # the crop is 672 x 648 px at 0.18 um/px (120.96 x 116.64 um); transcripts nearly fill it
    span = xy.max(0) - xy.min(0)
    assert np.all(span <= np.array([672, 648]) * 0.18 + 1e-6) and np.all(span > np.array([672, 648]) * 0.18 - 4.0)


@pytest.mark.realdata
def test_merscope_counts(shared_data):
    a = _real.load_merscope(root=shared_data)
    info = a.uns["reference"]
    assert abs(info["ref_assigned_fraction_z0"] - 0.42) < 0.01
    assert abs(info["ref_assigned_fraction_z1"] - 0.39) < 0.01
    assert (info["n_ref_cells_z0"], info["n_ref_cells_z1"]) == (456, 469)
    assert "ref_nucleus" not in a.obs
    assert not any(g.lower().startswith("blank") for g in a.var_names)
    assert a.n_vars == 450 and a.n_obs == 80_343 - 337


@pytest.mark.realdata
def test_pciseq_merfish_starmap(shared_data):
    p = _real.load_pciseq(root=shared_data)
    rn = p.obs["ref_nucleus"].to_numpy()
    assert p.n_obs == 72_336 and "ref_cell" not in p.obs
    assert np.unique(rn[rn >= 0]).size == 3184
    assert abs((rn >= 0).mean() - 0.61) < 0.01
    assert p.uns["reference"]["n_off_image"] == 6 and p.uns["reference"]["pixel_size_um"] == 0.27

    m = _real.load_merfish(root=shared_data)
    assert np.unique(m.obs["ref_cell"]).size == 15 and (m.obs["ref_cell"] >= 0).all()  # no background
    rn = m.obs["ref_nucleus"].to_numpy()
    assert np.unique(rn[rn >= 0]).size == 15 and abs((rn >= 0).mean() - 0.37) < 0.01
    # each nucleus lies in one cell
    rc = m.obs["ref_cell"].to_numpy()
    assert all(np.unique(rc[rn == k]).size == 1 for k in np.unique(rn[rn >= 0]))

    s = _real.load_starmap(root=shared_data)
    assert s.obsm["spatial"].shape == (55_171, 3) and s.n_vars == 8
    assert np.unique(s.obs["ref_cell"][s.obs["ref_cell"] >= 0]).size == 1125


@pytest.mark.realdata
def test_binned_reference_by_majority(cosmx):
    a = cosmx[2]
    b = _real.binned(a, 2.0)
    assert b.uns["reference"]["binned_um"] == 2.0
    assert int(b.X.sum()) == a.n_obs
    # recompute the majority for a few bins by hand
    xy = a.obsm["spatial"]
    bx = np.floor(xy[:, 0] / 2.0).astype(int)
    by = np.floor(xy[:, 1] / 2.0).astype(int)
    for i in np.flatnonzero(b.obs["n_transcripts"].to_numpy() >= 5)[:20]:
        sel = (bx == b.obs["bin_x"].iloc[i]) & (by == b.obs["bin_y"].iloc[i])
        vals, cnt = np.unique(a.obs["ref_cell"].to_numpy()[sel], return_counts=True)
        assert b.obs["ref_cell"].iloc[i] == vals[np.argmax(cnt)]  # ties -> smallest (np.unique order)


# --------------------------------------------------------------------------------------------- #
# the reference never reaches ms.tl.segment
# --------------------------------------------------------------------------------------------- #
def _spy(monkeypatch):
    seen = []

    def fake_segment(adata, *, prior_key=None, random_state=0, **kw):
        seen.append((adata.copy(), prior_key))
        adata.obs["cell_id"] = np.zeros(adata.n_obs, dtype=np.int64)
        adata.uns["manifoldseg"] = {"summary": {"cell_diameter": 10.0}}

    monkeypatch.setattr(ms.tl, "segment", fake_segment)
    return seen


def _assert_clean(seen_adata, allowed_prior=None):
    cols = set(seen_adata.obs.columns)
    forbidden = {c for c in cols if c in _real.REFERENCE_COLUMNS or c.startswith(("ref_", "true_"))
                 or (c == "nucleus" and allowed_prior != "nucleus")}
    assert not forbidden, forbidden
    assert "reference" not in seen_adata.uns and "simulation" not in seen_adata.uns


@pytest.mark.realdata
def test_reference_never_passed_real(cosmx, monkeypatch):
    seen = _spy(monkeypatch)
    case = next(c for c in accuracy.all_cases() if c.name == "cosmx_fov2")
    rows, adata, _ = accuracy.run_case(case, 0, baselines=False, adata=cosmx[2])
    assert len(seen) == 1 and seen[0][1] is None
    _assert_clean(seen[0][0])
    assert seen[0][0].n_obs == adata.n_obs
    np.testing.assert_array_equal(seen[0][0].obsm["spatial"], adata.obsm["spatial"])
    # the reference is still there for the metrics: one cell everywhere -> n_pred 1, n_true 67
    assert rows[0]["n_true"] == 67 and rows[0]["n_pred"] == 1 and rows[0]["prior"] is None


def test_reference_never_passed_simulated(small_bins, monkeypatch):
    seen = _spy(monkeypatch)
    case = accuracy.Case("tiny", "simulated", lambda s: small_bins, "true_cell", "nucleus",
                         priors=(None, "nucleus"), seeded=True, bin_size=1.0)
    accuracy.run_case(case, 0, baselines=False, adata=small_bins)
    assert [p for _, p in seen] == [None, "nucleus"]
    _assert_clean(seen[0][0])
    _assert_clean(seen[1][0], allowed_prior="nucleus")
    assert "nucleus" in seen[1][0].obs and "nucleus" not in seen[0][0].obs


# --------------------------------------------------------------------------------------------- #
# scoring, targets and tables
# --------------------------------------------------------------------------------------------- #
def test_perfect_segmentation_meets_every_target(small_bins):
    truth = small_bins.obs["true_cell"].to_numpy(dtype=np.int64)
    case = accuracy.Case("tiny", "simulated", lambda s: small_bins, "true_cell", "nucleus", bin_size=1.0)
    sc = accuracy.score(small_bins, truth, truth_key="true_cell", nucleus_key="nucleus", bin_size=1.0)
    assert sc["f1"] == 1.0 and sc["ari"] == 1.0 and sc["in_cell_assigned"] == 1.0
    assert sc["background_assigned"] == 0.0 and sc["nuclear_consistency"] == 1.0 and sc["merge_rate"] == 0.0
    assert sc["d_pred"] == sc["d_ref"] and 5.0 < sc["d_ref"] < 20.0
    row = accuracy._row(case, 0, "manifoldseg", None, sc, 1.0, small_bins.n_obs, {"cell_diameter": 11.0})
    summ = accuracy.summarize([row, {**row, "seed": 1, "f1": 0.5}, {**row, "seed": 2, "f1": 0.8}])
    assert len(summ) == 1 and summ[0]["seeds"] == [0, 1, 2]
    assert summ[0]["f1"] == 0.8  # median over seeds
    marks = {c["metric"]: c["met"] for c in summ[0]["targets"]}
    assert marks == {"f1": False, "ari": True, "in_cell_assigned": True, "background_assigned": True}
    table = accuracy.format_table(summ, "simulated")
    lines = table.splitlines()
    assert lines[0].startswith("| case | method | prior | seeds | n_true | n_pred | F1@0.5 | ARI")
    assert "0.800 MISS" in lines[2] and "1.000 ok" in lines[2] and "0.000 ok" in lines[2]
    text, met, total = accuracy.targets_report(summ)
    assert (met, total) == (3, 4) and "f1 >= 0.90: 0.800 -> NOT met" in text


def test_harness_on_tiny_simulated_case(small_bins):
    case = accuracy.Case("tiny", "simulated", lambda s: small_bins, "true_cell", "nucleus", bin_size=1.0)
    rows, _, labels = accuracy.run_case(case, 0, baselines=True, adata=small_bins)
    assert [(r["method"], r["prior"]) for r in rows] == [("manifoldseg", None), ("kmeans", None), ("oracle", None)]
    n_true = np.unique(small_bins.obs["true_cell"][small_bins.obs["true_cell"] >= 0]).size
    for r in rows:
        assert r["n_true"] == n_true and 0.0 <= r["f1"] <= 1.0 and r["seconds"] > 0
    assert rows[1]["n_pred"] == n_true and rows[1]["in_cell_assigned"] == 1.0  # KMeans assigns everything
    assert rows[0]["n_pred"] == np.unique(labels[None][labels[None] >= 0]).size
    # the oracle reads the labels around each item: it finds every cell, yet boundary labels cap its ARI
    assert rows[2]["f1"] >= 0.95 and 0.7 < rows[2]["ari"] < 1.0 and rows[2]["ari"] > rows[0]["ari"]
    table = accuracy.format_table(accuracy.summarize(rows))
    assert len(table.splitlines()) == 5 and "| tiny | kmeans |" in table and "| tiny | oracle |" in table


def test_cli_writes_json_and_markdown(small_bins, monkeypatch, tmp_path):
    _spy(monkeypatch)
    tiny = accuracy.Case("sim_bins_1um", "simulated", lambda s: small_bins.copy(), "true_cell", "nucleus",
                         priors=(None, "nucleus"), seeded=True, bin_size=1.0)
    monkeypatch.setattr(accuracy, "all_cases", lambda: [tiny])
    assert accuracy.main(["--quick", "--seeds", "0", "1", "--no-baselines", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "accuracy.json").read_text())
    assert {"date", "git", "machine", "loadavg_start", "loadavg_end", "summary", "rows"} <= set(res)
    assert len(res["loadavg_start"]) == 3 and len(res["rows"]) == 4  # 2 seeds x 2 priors
    assert res["options"]["seeds"] == [0, 1] and res["targets_total"] == 5
    md = (tmp_path / "accuracy.md").read_text()
    assert "## Simulated tissue" in md and "Targets (issue 3): 1 of 5 met" in md


def test_diameter_benchmark_verdict():
    """benchmarks/diameter.py: medians over seeds per mode and diameter, and 'holds up' only in the
    default (prior) mode and only when F1 at 0.7x and 1.3x is within the tolerance of F1 at 1.0x."""
    import diameter

    def row(case, seed, mode, factor, f1):
        return {"case": case, "seed": seed, "mode": mode, "factor": factor, "f1": f1, "ari": 0.5,
                "in_cell_assigned": 0.9, "background_assigned": 0.2, "nuclear_consistency": 0.8,
                "cell_diameter": 10.0, "n_pred": 10}

    rows = []
    for seed, (lo, mid, hi) in enumerate([(0.70, 0.74, 0.71), (0.72, 0.76, 0.70), (0.60, 0.75, 0.73)]):
        for mode in ("prior", "fixed"):
            rows += [row("a", seed, mode, 0.7, lo), row("a", seed, mode, 1.0, mid), row("a", seed, mode, 1.3, hi)]
        rows += [row("a", seed, "estimate", None, mid)]
        rows += [row("b", seed, "prior", 0.7, mid - 0.2), row("b", seed, "prior", 1.0, mid),
                 row("b", seed, "prior", 1.3, mid), row("b", seed, "estimate", None, mid)]
    out = {(r["case"], r["mode"], r["factor"]): r for r in diameter.summarize(rows)}
    a = out[("a", "prior", 1.0)]
    assert out[("a", "prior", 0.7)]["f1"] == 0.70 and a["f1"] == 0.75 and out[("a", "prior", 1.3)]["f1"] == 0.71
    assert a["largest_f1_drop_at_30pct"] == 0.05 and a["holds_up"]
    assert out[("b", "prior", 1.0)]["largest_f1_drop_at_30pct"] == 0.2 and not out[("b", "prior", 1.0)]["holds_up"]
    # the fixed mode is reported but carries no verdict
    assert out[("a", "fixed", 1.0)]["largest_f1_drop_at_30pct"] == 0.05 and "holds_up" not in out[("a", "fixed", 1.0)]
    assert out[("a", "estimate", "estimate")]["seeds"] == "0-2" and "holds_up" not in out[("a", "prior", 0.7)]
    assert "| a | prior | 1.0 | 0-2 |" in diameter.table(list(out.values()))


def test_seed_list_writes_runs_as_ranges():
    from scaling import seed_list

    assert seed_list(range(45)) == "0-44" and seed_list([2, 0, 1]) == "0-2"
    assert seed_list([0, 1]) == "0,1" and seed_list([0, 3, 7]) == "0,3,7" and seed_list([5]) == "5"


def test_nuclear_rna_benchmark_summary():
    """benchmarks/nuclear_rna.py: medians per case and setting, the share of seeds where exactly the
    simulated gene was found (auto only), gains = auto - off on the auto row, seeds as a range."""
    import nuclear_rna

    def row(seed, setting, f1, genes, exact=None):
        r = {"case": "s", "seed": seed, "setting": setting, "nuclear_retained": 0.1, "genes": genes, "f1": f1,
             "ari": f1 - 0.1, "in_cell_assigned": 0.9, "background_assigned": 0.2, "nuclear_consistency": 0.7}
        return r if exact is None else {**r, "exact": exact}

    rows = []
    for seed, (fa, fo, ok) in enumerate([(0.80, 0.70, True), (0.84, 0.76, True), (0.70, 0.72, False)]):
        rows += [row(seed, "auto", fa, "G1" if ok else "", ok), row(seed, "off", fo, "")]
    auto, off = nuclear_rna.summarize(rows)
    assert auto["setting"] == "auto" and auto["f1"] == 0.8 and off["f1"] == 0.72
    assert auto["gain_f1"] == 0.08 and auto["gain_ari"] == 0.08 and "gain_f1" not in off
    assert auto["exact_share"] == round(2 / 3, 3) and "exact_share" not in off
    assert auto["seeds"] == "0-2" and auto["genes_found"] == "- / G1" and off["genes_found"] == "-"
    assert "| s | auto | 0.1 | 0-2 | - / G1 | 0.667 |" in nuclear_rna.table([auto, off])


def test_real_sets_with_targets_run_every_method_seed():
    """The real sets with F1 / ARI targets (CosMx, MERSCOPE) take every seed; the others run once."""
    cases = {c.name: c for c in accuracy.all_cases()}
    assert {n for n, c in cases.items() if c.group == "real" and c.seeded} == {"cosmx_fov2", "cosmx_fov3", "merscope"}
    assert not any(c.seeded for c in cases.values() if c.group == "real_binned")
    # CosMx runs take 3-4 s and its small FOVs need many seeds; MERSCOPE's take about 30 s
    assert cases["cosmx_fov2"].method_seeds == cases["cosmx_fov3"].method_seeds == tuple(range(45))
    assert cases["merscope"].method_seeds == accuracy.METHOD_SEEDS == tuple(range(9))


def test_case_seeds_of_the_small_benchmarks(tmp_path):
    """diameter.py / seeds.py: 0 1 2 by default, the method's seeds 0-44 on CosMx, and the given
    seeds everywhere when --seeds is passed."""
    import _report

    default = _report.parse_args(["--output", str(tmp_path / "x.json")], "d", ["sim_bins_1um"], tmp_path / "x.json")
    assert _report.case_seeds(default, "sim_bins_1um") == [0, 1, 2]
    assert _report.case_seeds(default, "cosmx_fov3") == list(accuracy.COSMX_SEEDS) == list(range(45))
    given = _report.parse_args(["--seeds", "3"], "d", ["sim_bins_1um"], tmp_path / "x.json")
    assert _report.case_seeds(given, "sim_bins_1um") == [3] and _report.case_seeds(given, "cosmx_fov3") == [3]


def test_one_comparison_plot_per_real_case(small_bins, monkeypatch, tmp_path):
    """A real case scored over several method seeds gets one comparison PNG (the first seed's), listed once."""
    _spy(monkeypatch)
    tiny = accuracy.Case("tiny_real", "real", lambda s: small_bins.copy(), "true_cell", "nucleus", seeded=True,
                         bin_size=1.0)
    monkeypatch.setattr(accuracy, "all_cases", lambda: [tiny])
    # the case loads no file, so it runs where the real data is missing too (a clean clone, CI)
    monkeypatch.setattr(accuracy._real, "data_dir", lambda: tmp_path)
    res = accuracy.run(seeds=[0, 1], baselines=False, out=tmp_path)
    assert len(res["rows"]) == 2 and len(res["plots"]) == 1
    png = Path(res["plots"][0])
    assert png.name == "tiny_real_comparison.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "accuracy.md").read_text().count("tiny_real_comparison.png") == 1


def test_default_run_takes_more_method_seeds_on_real_cases(small_bins, monkeypatch, tmp_path):
    """A default run scores a seeded real case over its own method seeds (METHOD_SEEDS unless the
    case names others) and a simulated one over DEFAULT_SEEDS; seeds given on the command line
    apply to all."""
    seen = []

    def fake_run_case(case, seed, *, baselines=True, adata=None):
        seen.append((case.name, seed))
        return [], None, {}

    sim = accuracy.Case("tiny_sim", "simulated", lambda s: small_bins, "true_cell", None, seeded=True)
    real = accuracy.Case("tiny_real", "real", lambda s: small_bins, "true_cell", None, seeded=True)
    own = accuracy.Case("tiny_own", "real", lambda s: small_bins, "true_cell", None, seeded=True,
                        method_seeds=(7, 8, 9, 10))
    once = accuracy.Case("tiny_once", "real", lambda s: small_bins, "true_cell", None)
    monkeypatch.setattr(accuracy, "all_cases", lambda: [sim, real, own, once])
    monkeypatch.setattr(accuracy, "run_case", fake_run_case)
    monkeypatch.setattr(accuracy, "summarize", lambda rows: [])
    monkeypatch.setattr(accuracy._real, "data_dir", lambda: tmp_path)
    res = accuracy.run(baselines=False, out=tmp_path, plots=False)
    assert [s for c, s in seen if c == "tiny_sim"] == list(accuracy.DEFAULT_SEEDS) == [0, 1, 2]
    assert [s for c, s in seen if c == "tiny_real"] == list(accuracy.METHOD_SEEDS) == list(range(9))
    assert [s for c, s in seen if c == "tiny_own"] == [7, 8, 9, 10]
    assert [s for c, s in seen if c == "tiny_once"] == [0]
    assert res["options"]["method_seeds"] == {"tiny_real": list(range(9)), "tiny_own": [7, 8, 9, 10]}
    seen.clear()
    res = accuracy.run(seeds=[4, 5], baselines=False, out=tmp_path, plots=False)
    assert seen == [("tiny_sim", 4), ("tiny_sim", 5), ("tiny_real", 4), ("tiny_real", 5), ("tiny_own", 4),
                    ("tiny_own", 5), ("tiny_once", 4)]
    assert res["options"]["method_seeds"] == {"tiny_real": [4, 5], "tiny_own": [4, 5]}


def test_off_reference_exact():
    """benchmarks/accuracy.py: our cells with >= 80 % of their items on reference background, and
    the F1 once they are set to background; NaN without reference background or without cells."""
    import accuracy

    true = np.array([0] * 4 + [1] * 4 + [-1] * 5 + [2] * 2 + [-1] * 3)
    pred = np.full(len(true), -1)
    pred[0:4] = 0  # reference 0 exactly
    pred[[4, 5, 6, 8]] = 1  # 3 of reference 1 and one background item (IoU 3/5, matched)
    pred[[7, 9, 10, 11, 12]] = 2  # 4 of 5 items on background: off reference (at 0.8 exactly)
    pred[[13, 15, 16, 17]] = 3  # 3 of 4 on background: not off reference; IoU 1/5 with reference 2
    out = accuracy.off_reference(true, pred)
    assert out["off_reference"] == 1 / 4
    assert out["f1_without_off_reference"] == 2 * 2 / (3 + 3)  # with cell 2 kept: 2 * 2 / (3 + 4)
    assert accuracy.ms.metrics.match_cells(true, pred)["f1"] == 2 * 2 / (3 + 4)
    assert np.isnan(accuracy.off_reference(np.zeros(3, dtype=int), np.array([0, 0, 1]))["off_reference"])
    assert np.isnan(accuracy.off_reference(true, np.full(len(true), -1))["f1_without_off_reference"])


def test_neighbour_oracle_exact():
    """benchmarks/accuracy.py's oracle: each item takes the label most of its k nearest other items
    hold (never its own), ties to the nearer label; a label no position can tell is lost."""
    import accuracy
    import anndata as ad
    import pandas as pd

    def items(x, truth):
        a = ad.AnnData(obs=pd.DataFrame({"true_cell": truth}, index=[f"i{i}" for i in range(len(x))]))
        a.obsm["spatial"] = np.column_stack([x, np.zeros(len(x))])
        return a

    x = [0, 1, 2, 3, 3.9, 5.2, 6, 7, 8, 9, 20, 30, 31]
    truth = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, -1, -1, -1]
    out = accuracy.neighbour_oracle(items(x, truth), "true_cell", k=2)
    # item 3 (label 0) sits nearer to 3.9 (label 1) than to 2; item 4 (label 1) nearer to 3 than to 5.2
    assert out.tolist() == [0, 0, 0, 1, 0, 1, 1, 1, 1, 1, -1, -1, -1]
    # two items at one place: each takes the other's label, never its own
    out = accuracy.neighbour_oracle(items([0, 0, 10], [0, 1, 2]), "true_cell", k=1)
    assert out.tolist()[:2] == [1, 0]


def test_clumping_ratio_exact():
    """benchmarks/realism.py: same-label pairs within r per unit area over those within R."""
    import realism

    # pairs: (0,1) at 0.4 um and (2,3) at 0.4 um, both labels equal within a pair; (0,2) at 2 um
    xy = np.array([[0.0, 0.0], [0.4, 0.0], [2.0, 0.0], [2.4, 0.0], [50.0, 0.0]])
    same = np.zeros(5, dtype=np.int64)
    # within 0.5 um: 2 pairs; within 3 um: 6 pairs (all among the first four)
    assert realism.clumping_ratio(xy, same, 0.5) == (2 / 0.25) / (6 / 9)
    # other labels drop the cross pairs: only (0,1) and (2,3) are same-label pairs at any distance
    assert realism.clumping_ratio(xy, np.array([0, 0, 1, 1, 2]), 0.5) == (2 / 0.25) / (2 / 9)
    assert np.isnan(realism.clumping_ratio(xy[[0, 4]], same[:2], 0.5))


def test_simulator_clumping_matches_its_calibration():
    """The CosMx-like simulator options raise the realism statistics from the Poisson values (about
    1.15 in cells, 1.06 between them at 1 um) towards the CosMx ones (1.29-1.32, 1.36-1.44), bring
    background closer to cells (median distance about 5 um -> the CosMx FOVs' 2.7-3.4 um) and make
    cells as elongated, as varied in size and as rich in transcripts as there."""
    import realism

    def stats(**kw):
        a = ms.datasets.simulate(mode="transcripts", width=150.0, height=150.0, random_state=7, **kw)
        return realism.statistics(a.obsm["spatial"][:, :2], a.obs["true_cell"].to_numpy(), realism.gene_codes(a))

    plain, clumped = stats(), stats(**realism.VARIANTS["sim_cosmx_like"])
    assert plain["cell_clump_1"] < 1.2 and plain["bg_clump_1"] < 1.12
    assert clumped["cell_clump_1"] > 1.25 and clumped["bg_clump_1"] > 1.28
    assert clumped["cell_clump_05"] > clumped["cell_clump_1"] and clumped["bg_clump_05"] > clumped["bg_clump_1"]
    assert abs(plain["off_cell"] - 0.2) < 0.02 and abs(clumped["off_cell"] - 0.2) < 0.02
    assert plain["offcell_d50"] > 4.0 and clumped["offcell_d50"] < 4.0
    # cells as elongated and as varied in size as on the FOVs (1.52-1.59, CV 0.28-0.36), 137-167 transcripts
    assert plain["elongation"] < 1.42 < clumped["elongation"] and plain["d_cv"] < 0.27 < clumped["d_cv"]
    assert plain["tx_per_cell"] < 137 < clumped["tx_per_cell"] < 167
    assert abs(clumped["d_median"] - plain["d_median"]) < 1.0
    # cells as alike as on the FOVs: any two nearly as alike as one cell's halves (0.78-0.79), touching
    # ones more alike than any two (distinctness 0.25-0.62); the defaults' types differ and mix
    assert plain["expr_any"] / plain["expr_self"] < 0.5 < 0.7 < clumped["expr_any"] / clumped["expr_self"]
    assert clumped["distinctness"] < 0.7 < plain["distinctness"]


def test_expression_similarity_exact():
    """benchmarks/realism.py: cosine of gene counts between a cell's halves, touching cells and any
    two cells; distinctness 0 when touching cells are alike, 1 when they differ as any two do."""
    import realism

    def line(start, n=20):
        return np.column_stack([np.arange(start, start + n, dtype=float), np.zeros(n)])

    # four cells of 20 transcripts in a row pair by pair: 0 | 1 touch, 2 | 3 touch, the pairs far apart
    xy = np.vstack([line(0), line(20), line(1000), line(1020)])
    labels = np.repeat([0, 1, 2, 3], 20)
    # touching cells express the same single gene: as alike as one cell's halves
    alike = realism.expression_similarity(xy, labels, np.repeat([0, 0, 1, 1], 20))
    assert alike["expr_self"] == 1.0 and alike["expr_adjacent"] == 1.0
    assert alike["expr_any"] == 0.0  # of the 12 ordered pairs, 8 share no gene
    assert alike["distinctness"] == 0.0
    # touching cells express different genes: as unlike as any two
    unlike = realism.expression_similarity(xy, labels, np.repeat([0, 1, 0, 1], 20))
    assert unlike["expr_adjacent"] == 0.0 and unlike["distinctness"] == 1.0
    # cells below min_items and unlabelled transcripts do not count; one cell left: no answer
    assert np.isnan(realism.expression_similarity(xy, labels, np.repeat([0, 0, 1, 1], 20), min_items=21)["expr_self"])
    assert np.isnan(realism.expression_similarity(xy, np.full(80, -1), np.zeros(80, dtype=int))["distinctness"])


def test_cell_geometry_exact():
    """benchmarks/realism.py: equivalent diameters from convex hulls, their spread, elongation as the
    ratio of principal sds, nearest-centroid spacing over the median diameter, items per cell."""
    import realism

    square = [[-1, -1], [-1, 1], [1, -1], [1, 1], [0, 0]]  # area 4, round (elongation 1)
    bar = [[8, -0.5], [8, 0.5], [12, -0.5], [12, 0.5], [10, 0]]  # area 4, sds 2 and 0.5 (elongation 4)
    few = [[30, 0], [31, 0], [30, 1]]  # 3 items: too few to count
    xy = np.array(square + bar + few + [[50, 50]], dtype=float)
    labels = np.array([0] * 5 + [1] * 5 + [2] * 3 + [-1])
    out = realism.cell_geometry(xy, labels)
    d = 2 * np.sqrt(4 / np.pi)
    assert np.isclose(out["d_median"], d) and np.isclose(out["d_cv"], 0.0)
    assert np.isclose(out["elongation"], 2.5)  # median of 1 and 4
    assert np.isclose(out["neighbour_d"], 10 / d) and out["tx_per_cell"] == 5
    assert np.isnan(realism.cell_geometry(xy[:5], labels[:5])["d_median"])  # one cell: no spacing


def test_centroid_seeds_exact():
    """benchmarks/seeds.py: one item per reference cell, the one nearest its centroid (background
    ignored, ties to the lowest index), sorted."""
    import seeds

    coords = np.array([[0.0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [5, 5], [20, 0], [22, 0]])
    truth = np.array([3, 3, 3, 1, 1, -1, 7, 7])
    # cell 3: centroid (1, 0) -> item 1; cell 1: (10.5, 0), a tie -> item 3; cell 7: (21, 0) -> item 6
    assert seeds.centroid_seeds(truth, coords).tolist() == [1, 3, 6]
    assert seeds.centroid_seeds(np.full(3, -1), coords[:3]).tolist() == []


def test_maxima_fate_exact():
    """benchmarks/seeds.py: the merge tree of the climbed field on a path graph, and why reference
    cells hold no peak (no maximum / a merged one: its height and distance), on a hand-made case."""
    import seeds
    from scipy import sparse

    field = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 4.5, 0.0, -np.inf])
    n = len(field)
    i = np.arange(n - 1)
    graph = sparse.csr_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n))
    is_max, height, into = seeds.merge_tree(graph.indptr, graph.indices, field)
    # maxima at items 1 (3.0), 3 (5.0) and 5 (4.5); 5 meets 3 at item 4 (4.0), 1 meets 3 at item 2 (2.0)
    assert is_max.tolist() == [False, True, False, True, False, True, False, False]
    assert height[1] == 1.0 and height[5] == 0.5 and np.isinf(height[3])
    assert into[1] == 3 and into[5] == 3 and into[3] == -1
    # cell 0 (items 0-2) holds maximum 1 but no peak; cell 1 (3-5) the peak 3 and a lower maximum 5;
    # cell 2 (items 6-7) no maximum at all
    truth = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    coords = np.c_[[0.0, 1, 2, 3, 4, 6, 7, 8], np.zeros(n)]
    out = seeds.maxima_fate(truth, np.array([3]), field, graph, coords, diameter=2.0)
    assert out["no_maximum"] == 1 / 3 and out["merged_maximum"] == 1 / 3
    assert out["merged_persistence"] == 1.0 and out["merged_distance"] == 1.0  # |1 - 3| / 2
    assert out["extra_distance"] == 1.5  # item 5 to item 3: 3 um / 2
    assert np.isnan(seeds.maxima_fate(truth, np.array([3]), None, graph, coords, 2.0)["no_maximum"])


def test_seed_coverage_exact():
    """benchmarks/seeds.py: shares of reference cells holding 0 / 1 / 2+ peaks, peaks on background,
    the F1 bound and the missed cells' relative size, counts and type, on a hand-made case."""
    import seeds

    # reference cells 0 (4 items), 1 (4 items), 2 (2 items, faint); items 10-11 background
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, -1, -1])
    counts = np.array([2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1], dtype=float)
    ctype = np.array(["a"] * 4 + ["b"] * 4 + ["a"] * 2 + ["x"] * 2)
    # peaks: two in cell 0, none in 1 or 2, one on background; cell 1 and 2 lie in candidate 0
    peaks = np.array([0, 2, 11])
    cand = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2])
    pred = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 1])
    out = seeds.seed_coverage(truth, peaks, cand, pred, counts, ctype)
    assert out["n_true"] == 3 and out["n_peaks"] == 3 and out["n_pred"] == 2
    assert out["no_peak"] == 2 / 3 and out["one_peak"] == 0.0 and out["two_plus"] == 1 / 3
    assert out["peaks_in_background"] == 1 / 3 and out["f1_bound"] == 0.0
    assert np.isnan(out["missed_size"])  # no one-peak cell to compare with
    # both missed cells sit in candidate 0, which peaks in cell 0 (type a): cell 2 is type a, cell 1 type b
    assert out["missed_same_type"] == 0.5
    peaks1 = np.array([0, 5, 11])  # now cells 0 and 1 hold one peak each, cell 2 none
    cand1 = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2])
    out = seeds.seed_coverage(truth, peaks1, cand1, pred, counts, ctype)
    assert out["one_peak"] == 2 / 3 and out["no_peak"] == 1 / 3 and out["f1_bound"] == 2 * 2 / (3 + 2)
    assert out["missed_size"] == 0.5 and out["missed_counts"] == 0.25 and out["missed_same_type"] == 0.0
    # where the missed cells went: all into our cell 0, which holds reference cells 0 and 1 (4 + 4 of 10)
    assert out["missed_background"] == 0.0 and out["missed_mostly_background"] == 0.0
    assert out["missed_pieces"] == 1.0 and out["two_cell"] == 0.5  # our cell 1 holds only background


def test_seed_coverage_where_missed_cells_go():
    """benchmarks/seeds.py: missed cells' share left as background, the share more than half
    background, how many of our cells each is cut into, and our cells holding two reference cells."""
    import seeds

    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, -1, -1])
    peaks = np.array([0, 2, 11])  # cells 1 and 2 hold no peak
    cand = np.zeros(12, dtype=np.int64)
    # cell 1: one item in our cell 1, one in our cell 3, two background; cell 2: all background
    pred = np.array([0, 0, 0, 0, 1, 3, -1, -1, -1, -1, -1, 2])
    out = seeds.seed_coverage(truth, peaks, cand, pred, np.ones(12))
    assert out["missed_background"] == 0.75 and out["missed_mostly_background"] == 0.5
    assert out["missed_pieces"] == 1.0  # cell 1 in 2 pieces, cell 2 in none
    assert out["two_cell"] == 0.0 and np.isnan(out["missed_same_type"])


def test_missed_spacing_exact():
    """benchmarks/seeds.py: distances (in cell diameters) from missed cells' centroids to the
    nearest peak and to the nearest other reference cell, and from found cells to their neighbour."""
    import seeds

    # cell 0 centred at (0, 0), cell 1 at (4, 0), cell 2 at (10, 0); item 6 background
    coords = np.array([[-1, 0], [1, 0], [3, 0], [5, 0], [9, 0], [11, 0], [30, 0]], dtype=float)
    truth = np.array([0, 0, 1, 1, 2, 2, -1])
    peaks = np.array([1, 4])  # cells 0 and 2 hold a peak (at x 1 and x 9), cell 1 none
    out = seeds.missed_spacing(truth, peaks, coords, 2.0)
    assert out["missed_peak_distance"] == 3.0 / 2  # from (4, 0): 3 to the peak at x 1, 5 to x 9
    assert out["missed_neighbour_distance"] == 4.0 / 2
    assert out["found_neighbour_distance"] == np.median([4.0, 6.0]) / 2
    none = seeds.missed_spacing(truth, np.array([1, 2, 4]), coords, 2.0)  # every cell holds a peak
    assert np.isnan(none["missed_peak_distance"]) and np.isnan(none["missed_neighbour_distance"])
    assert np.isnan(seeds.missed_spacing(np.array([0, 0, -1]), np.array([0]), coords[:3], 2.0)["missed_peak_distance"])


def test_nucleus_fate_exact():
    """benchmarks/seeds.py: nuclei kept whole (>= 90 % in one cell) and, for the split ones, the
    mean share left as background and in other cells; nucleus ids need not be consecutive."""
    import seeds

    nucleus = np.array([5] * 10 + [7] * 4 + [9] * 2 + [-1])
    pred = np.array([0] * 9 + [1] + [0, 0, -1, 1] + [-1, -1] + [2])
    out = seeds.nucleus_fate(nucleus, pred)
    assert out["nuclei_whole"] == 1 / 3  # nucleus 5: 9 of 10 in cell 0
    assert out["split_nuclei_background"] == (0.25 + 1.0) / 2 and out["split_nuclei_other"] == (0.25 + 0.0) / 2
    assert np.isnan(seeds.nucleus_fate(np.full(3, -1), pred[:3])["nuclei_whole"])


def test_machine_records_the_cpu_and_its_vector_extensions():
    """Benchmarks record the CPU model and its SIMD extensions: scores of the transcript cases were
    seen to move by up to 0.01 between two VMs with the same code and packages."""
    import accuracy
    import scaling

    info = scaling.cpu_info()
    if not Path("/proc/cpuinfo").exists():
        assert info == {}
        return
    assert info["cpu_model"] and set(info["cpu_simd"]) <= set(scaling.SIMD_FLAGS)
    assert {"cpu_model", "cpu_simd"} <= set(accuracy._machine()) and {"cpu_model", "cpu_simd"} <= set(scaling.machine())
