"""The command line: subcommands, outputs, exit codes, atomic writes, nothing overwritten or lost.

Commands run in-process through ``manifoldseg.cli.main([...])`` (fast: numba compiles once), plus
a few real subprocesses for ``--help`` timing, ``--version`` and exit codes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import manifoldseg as ms
from manifoldseg.cli import main

CONTROL_GENES = ("NegControlProbe_00001", "BLANK_0007")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def run(argv, capsys=None):
    """main(argv) -> (exit code, stdout, stderr) when capsys is given."""
    code = main([str(a) for a in argv])
    if capsys is None:
        return code
    out = capsys.readouterr()
    return code, out.out, out.err


def _script() -> list[str]:
    exe = Path(sys.executable).parent / "manifoldseg"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "manifoldseg.cli"]


def _fake_segment(calls: list | None = None, **extra):
    """A stand-in for ms.tl.segment (labels = the simulated truth) so error paths run fast."""

    def segment(adata, *, cell_diameter=None, prior_key=None, spatial_key="spatial", key_added="cell_id",
                n_jobs=None, random_state=0, progress=False, **kw):
        if calls is not None:
            calls.append({"prior_key": prior_key, "key_added": key_added, "obs": adata.obs.copy(), **kw})
        if "true_cell" in adata.obs:
            truth = adata.obs["true_cell"].to_numpy()
        else:  # a transcript table: a label that tells the rows apart
            truth = adata.obs["input_row"].to_numpy() % 5
        adata.obs[key_added] = np.asarray(truth, dtype=np.int64)
        adata.obs[f"{key_added}_confidence"] = np.float32(0.5)
        adata.uns["manifoldseg"] = {"params": {"random_state": random_state}, "summary": {"n_cells": 1}}

    return segment


# --------------------------------------------------------------------------------------------- #
# shared data: simulated through the CLI itself, segmented once per module
# --------------------------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_data")
    assert main(["simulate", str(d / "bins.h5ad"), "--width", "50", "--height", "50", "--seed", "1", "-q"]) == 0
    assert main(["simulate", str(d / "tx.csv"), "--width", "50", "--height", "50", "--seed", "2", "-q"]) == 0
    # control-probe rows, which the reader drops, scattered through the table
    df = pd.read_csv(d / "tx.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    ctrl = df.sample(12, random_state=0).copy()
    ctrl["gene"] = rng.choice(CONTROL_GENES, size=len(ctrl))
    ctrl["true_cell"] = "-1"
    ctrl["nucleus"] = "-1"
    pos = np.sort(rng.choice(len(df), size=len(ctrl), replace=False))
    parts, last = [], 0
    for p, (_, row) in zip(pos, ctrl.iterrows(), strict=True):
        parts += [df.iloc[last:p], row.to_frame().T]
        last = p
    parts.append(df.iloc[last:])
    with_ctrl = pd.concat(parts, ignore_index=True)
    with_ctrl.to_csv(d / "tx_ctrl.csv", index=False)
    typed = pd.read_csv(d / "tx_ctrl.csv")
    typed.to_parquet(d / "tx_ctrl.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def seg_h5ad(data):
    d = data / "seg_h5ad"
    d.mkdir()
    before = sha256(data / "bins.h5ad")
    code = main(["segment", str(data / "bins.h5ad"), "-o", str(d / "out.h5ad"), "--cells", str(d / "cells.h5ad"),
                 "--boundaries", str(d / "cells.geojson"), "-q", "--seed", "0"])
    assert code == 0
    return {"dir": d, "sha_before": before}


@pytest.fixture(scope="module")
def seg_csv(data):
    d = data / "seg_csv"
    d.mkdir()
    code = main(["segment", str(data / "tx_ctrl.csv"), "-o", str(d / "out.csv"), "-q"])
    assert code == 0
    return d / "out.csv"


# --------------------------------------------------------------------------------------------- #
# real processes: --help speed, --version, exit codes
# --------------------------------------------------------------------------------------------- #
def test_help_is_fast_and_shows_examples():
    t0 = time.perf_counter()
    res = subprocess.run([*_script(), "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0
    for word in ("segment", "simulate", "evaluate", "report", "demo", "examples:", "Exit codes"):
        assert word in res.stdout
    assert elapsed < 2.0, f"manifoldseg --help took {elapsed:.2f} s"
    # nothing heavy is imported to parse arguments
    probe = "import sys, manifoldseg.cli; print(sorted(m for m in ('numpy','anndata','scanpy','numba','pandas') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr


def test_version_and_exit_codes_in_real_processes(tmp_path):
    res = subprocess.run([*_script(), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"manifoldseg {ms.__version__}"
    res = subprocess.run([*_script(), "segment", "in.h5ad"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 2 and "-o/--output" in res.stderr
    res = subprocess.run([*_script(), "nonsense"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    res = subprocess.run([*_script(), "segment", "missing.h5ad", "-o", "out.h5ad"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.h5ad" in lines[0] and "not found" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert files_in(tmp_path) == set()


# --------------------------------------------------------------------------------------------- #
# simulate
# --------------------------------------------------------------------------------------------- #
def test_simulate_outputs(data):
    a = ms.io.read_h5ad(data / "bins.h5ad")
    assert {"true_cell", "nucleus"} <= set(a.obs.columns) and a.obsm["spatial"].shape[1] == 2
    assert a.obsm["spatial"].max() <= 51
    df = pd.read_csv(data / "tx.csv")
    assert list(df.columns) == ["x", "y", "gene", "true_cell", "true_type", "nucleus"]
    assert df["true_cell"].max() >= 5 and (df["true_cell"] == -1).any()
    # the table reads back as transcripts
    t = ms.io.read_transcripts(data / "tx.csv")
    assert t.n_obs == len(df) and t.uns["manifoldseg_io"]["platform"] == "generic"


def test_simulate_refuses_overwrite_and_bins_as_table(tmp_path, capsys):
    out = tmp_path / "t.h5ad"
    out.write_text("keep me")
    code, _, err = run(["simulate", out, "--width", "20", "--height", "20"], capsys)
    assert code == 1 and "--force" in err and out.read_text() == "keep me"
    code, _, _ = run(["simulate", out, "--width", "20", "--height", "20", "--force", "-q"], capsys)
    assert code == 0 and ms.io.read_h5ad(out).n_obs > 0
    code, _, err = run(["simulate", tmp_path / "b.csv", "--mode", "bins"], capsys)
    assert code == 2 and "transcripts" in err
    code, _, err = run(["simulate", tmp_path / "n.h5ad", "--false-positive-fraction", "1.5"], capsys)
    assert code == 2 and "--false-positive-fraction" in err and "[0, 1]" in err and not (tmp_path / "n.h5ad").exists()


def test_simulate_clumping_options(tmp_path, capsys):
    """--clumping, --background-clumping and --diffusion reach the simulator (recorded in uns) and
    are validated with a message naming the option."""
    out = tmp_path / "c.h5ad"
    args = ["--mode", "transcripts", "--width", "40", "--height", "40", "-q"]
    assert run(["simulate", out, *args, "--clumping", "2", "--background-clumping", "4", "--diffusion", "0.3"],
               capsys)[0] == 0
    params = ms.io.read_h5ad(out).uns["simulation"]["params"]
    assert (params["clumping"], params["background_clumping"], params["diffusion"]) == (2.0, 4.0, 0.3)
    code, _, err = run(["simulate", tmp_path / "n.h5ad", *args, "--clumping", "-1"], capsys)
    assert code == 2 and "--clumping" in err and ">= 0" in err and not (tmp_path / "n.h5ad").exists()


def test_simulate_false_positives(tmp_path, capsys):
    # the same seed with and without decoding noise: same places and truth, genes redrawn
    args = ["--mode", "transcripts", "--width", "40", "--height", "40", "--seed", "3", "-q"]
    assert run(["simulate", tmp_path / "clean.csv", *args], capsys)[0] == 0
    assert run(["simulate", tmp_path / "noisy.csv", *args, "--false-positive-fraction", "0.5"], capsys)[0] == 0
    clean, noisy = pd.read_csv(tmp_path / "clean.csv"), pd.read_csv(tmp_path / "noisy.csv")
    np.testing.assert_array_equal(clean[["x", "y", "true_cell"]].to_numpy(), noisy[["x", "y", "true_cell"]].to_numpy())
    assert 0.4 < (clean["gene"] != noisy["gene"]).mean() < 0.6


# --------------------------------------------------------------------------------------------- #
# segment: h5ad
# --------------------------------------------------------------------------------------------- #
def test_segment_h5ad_round_trip(data, seg_h5ad):
    d = seg_h5ad["dir"]
    assert sha256(data / "bins.h5ad") == seg_h5ad["sha_before"], "the input was modified"
    inp = ms.io.read_h5ad(data / "bins.h5ad")
    out = ms.io.read_h5ad(d / "out.h5ad")
    assert list(out.obs_names) == list(inp.obs_names)  # input order kept
    np.testing.assert_array_equal(out.obsm["spatial"], inp.obsm["spatial"])
    lab = out.obs["cell_id"].to_numpy()
    assert lab.dtype.kind == "i" and lab.min() >= -1 and (lab >= 0).sum() > 0.3 * lab.size
    assert np.unique(lab[lab >= 0]).size >= 5
    conf = out.obs["cell_id_confidence"].to_numpy()
    assert np.all((conf >= 0) & (conf <= 1))
    run_info = out.uns["manifoldseg"]["run"]
    assert run_info["command"].startswith("manifoldseg segment") and run_info["input"].endswith("bins.h5ad")
    assert files_in(d) == {"out.h5ad", "cells.h5ad", "cells.geojson"}  # no temporary files left


def test_segment_cells_conserve_counts(data, seg_h5ad):
    inp = ms.io.read_h5ad(data / "bins.h5ad")
    out = ms.io.read_h5ad(seg_h5ad["dir"] / "out.h5ad")
    cells = ms.io.read_h5ad(seg_h5ad["dir"] / "cells.h5ad")
    lab = out.obs["cell_id"].to_numpy()
    assert cells.n_obs == np.unique(lab[lab >= 0]).size
    assert list(cells.var_names) == list(inp.var_names)
    bg = np.asarray(cells.uns["manifoldseg"]["background_counts"])
    assert np.isclose(cells.X.sum() + bg.sum(), inp.X.sum())
    np.testing.assert_allclose(np.asarray(cells.X.sum(axis=0)).ravel() + bg, np.asarray(inp.X.sum(axis=0)).ravel(),
                               rtol=1e-5)
    assert {"n_spots", "total_counts", "area", "boundary"} <= set(cells.obs.columns)
    assert cells.obsm["spatial"].shape == (cells.n_obs, 2)


def test_segment_geojson_is_valid(seg_h5ad):
    import shapely.geometry

    cells = ms.io.read_h5ad(seg_h5ad["dir"] / "cells.h5ad")
    with open(seg_h5ad["dir"] / "cells.geojson") as fh:
        gj = json.load(fh)
    assert gj["type"] == "FeatureCollection"
    feats = gj["features"]
    assert len(feats) == cells.n_obs
    assert [f["properties"]["cell_id"] for f in feats] == cells.obs["cell_id"].tolist()
    for f in feats:
        assert f["type"] == "Feature" and f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert {"cell_id", "n_spots", "total_counts", "area"} <= set(f["properties"])
        geom = shapely.geometry.shape(f["geometry"])
        assert geom.is_valid and geom.area > 0
        assert -2 <= geom.bounds[0] and geom.bounds[2] <= 53  # in um, inside the 50 um tissue
    # the polygon of a cell holds its centroid's neighbourhood: its spots lie in or near it
    out = ms.io.read_h5ad(seg_h5ad["dir"] / "out.h5ad")
    f0 = feats[0]
    pts = out.obsm["spatial"][out.obs["cell_id"].to_numpy() == f0["properties"]["cell_id"]]
    poly = shapely.geometry.shape(f0["geometry"]).buffer(1.0)
    inside = np.mean([poly.contains(shapely.geometry.Point(p)) for p in pts])
    assert inside > 0.9


# --------------------------------------------------------------------------------------------- #
# segment: transcript tables
# --------------------------------------------------------------------------------------------- #
def test_segment_csv_keeps_original_rows(data, seg_csv):
    original = pd.read_csv(data / "tx_ctrl.csv", dtype=str, keep_default_na=False)
    out = pd.read_csv(seg_csv, dtype=str, keep_default_na=False)
    assert list(out.columns) == [*original.columns, "cell_id", "cell_id_confidence"]
    assert len(out) == len(original)
    pd.testing.assert_frame_equal(out[original.columns], original)  # every value as it was, same order
    lab = out["cell_id"].astype(int).to_numpy()
    ctrl = original["gene"].isin(CONTROL_GENES).to_numpy()
    assert ctrl.sum() == 12
    assert np.all(lab[ctrl] == -1) and (out["cell_id_confidence"][ctrl] == "").all()
    assert (lab[~ctrl] >= 0).mean() > 0.3 and np.unique(lab[lab >= 0]).size >= 5
    conf = pd.to_numeric(out["cell_id_confidence"][~ctrl]).to_numpy()
    assert np.all((conf >= 0) & (conf <= 1))


def test_segment_parquet_keeps_original_rows(data, tmp_path, capsys):
    out_path = tmp_path / "out.parquet"
    code, stdout, _ = run(["segment", data / "tx_ctrl.parquet", "-o", out_path, "--seed", "0"], capsys)
    assert code == 0
    assert stdout.startswith("manifoldseg: ") and "cells" in stdout and "% of transcripts assigned" in stdout
    original = pd.read_parquet(data / "tx_ctrl.parquet")
    out = pd.read_parquet(out_path)
    assert list(out.columns) == [*original.columns, "cell_id", "cell_id_confidence"]
    pd.testing.assert_frame_equal(out[original.columns], original)
    ctrl = original["gene"].isin(CONTROL_GENES).to_numpy()
    assert np.all(out["cell_id"].to_numpy()[ctrl] == -1)
    assert out["cell_id"].dtype == np.int64 and np.isnan(out["cell_id_confidence"].to_numpy()[ctrl]).all()
    assert (out["cell_id"].to_numpy()[~ctrl] >= 0).mean() > 0.3


def test_segment_table_to_csv_gz_and_h5ad(data, tmp_path, monkeypatch):
    monkeypatch.setattr(ms.tl, "segment", _fake_segment())
    assert main(["segment", str(data / "tx_ctrl.parquet"), "-o", str(tmp_path / "o.csv.gz"), "-q"]) == 0
    out = pd.read_csv(tmp_path / "o.csv.gz")
    original = pd.read_parquet(data / "tx_ctrl.parquet")
    np.testing.assert_allclose(out["x"], original["x"])
    np.testing.assert_array_equal(out["cell_id"], np.where(original["gene"].isin(CONTROL_GENES), -1,
                                                           np.arange(len(original)) % 5))
    assert main(["segment", str(data / "tx_ctrl.csv"), "-o", str(tmp_path / "o.h5ad"), "-q"]) == 0
    a = ms.io.read_h5ad(tmp_path / "o.h5ad")
    assert a.n_obs == len(original) - 12 and "cell_id" in a.obs and "gene" in a.obs


def test_segment_table_with_cell_id_column_and_prior(tmp_path, data, monkeypatch):
    calls: list = []
    monkeypatch.setattr(ms.tl, "segment", _fake_segment(calls))
    df = pd.read_csv(data / "tx.csv")
    df["cell_id"] = 7  # a vendor column with our name
    df.to_csv(tmp_path / "v.csv", index=False)
    assert main(["segment", str(tmp_path / "v.csv"), "-o", str(tmp_path / "o.csv"), "--prior-key", "nucleus",
                 "-q"]) == 0
    out = pd.read_csv(tmp_path / "o.csv")
    assert (out["cell_id"] == 7).all()  # the original column is untouched
    np.testing.assert_array_equal(out["manifoldseg_cell_id"], np.arange(len(df)) % 5)
    assert "manifoldseg_cell_id" in out and "manifoldseg_cell_id_confidence" in out
    assert calls[0]["prior_key"] == "nucleus" and calls[0]["obs"]["nucleus"].dtype.kind == "i"
    np.testing.assert_array_equal(calls[0]["obs"]["nucleus"].to_numpy(), df["nucleus"].to_numpy())
    # evaluate picks the manifoldseg column of such a table by default
    code = main(["evaluate", str(tmp_path / "o.csv"), "--json"])
    assert code == 0


def test_tile_size_and_scheduler_passed_only_when_given(data, tmp_path, monkeypatch, capsys):
    calls: list = []
    base = _fake_segment(calls)

    def with_tiles(adata, *, tile_size=None, scheduler=None, **kw):
        base(adata, **kw, **({} if tile_size is None else {"tile_size": tile_size}),
             **({} if scheduler is None else {"scheduler": scheduler}))

    monkeypatch.setattr(ms.tl, "segment", with_tiles)
    assert run(["segment", data / "bins.h5ad", "-o", tmp_path / "a.h5ad", "--tile-size", "200", "--scheduler",
                "tcp://127.0.0.1:8786", "-q"]) == 0
    assert calls[-1]["tile_size"] == 200.0 and calls[-1]["scheduler"] == "tcp://127.0.0.1:8786"
    assert run(["segment", data / "bins.h5ad", "-o", tmp_path / "b.h5ad", "-q"]) == 0
    assert "tile_size" not in calls[-1] and "scheduler" not in calls[-1]
    monkeypatch.setattr(ms.tl, "segment", base)  # an ms.tl.segment without tiling
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "c.h5ad", "--tile-size", "200"], capsys)
    assert code == 2 and "--tile-size" in err and not (tmp_path / "c.h5ad").exists()


def test_nuclear_genes_option(data, tmp_path, monkeypatch, capsys):
    """--nuclear-genes: auto by default, none, or names (split on commas); an empty list is refused."""
    calls: list = []
    monkeypatch.setattr(ms.tl, "segment", _fake_segment(calls))
    for flags, want in (([], "auto"), (["--nuclear-genes", "none"], None),
                        (["--nuclear-genes", "Gene0001, Gene0002"], ["Gene0001", "Gene0002"])):
        assert run(["segment", data / "bins.h5ad", "-o", tmp_path / f"{len(calls)}.h5ad", "-q", *flags]) == 0
        assert calls[-1]["nuclear_genes"] == want
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "x.h5ad", "--nuclear-genes", ","], capsys)
    assert code == 2 and "--nuclear-genes" in err and not (tmp_path / "x.h5ad").exists()


def test_simulate_nuclear_retained(tmp_path, capsys):
    args = ["--mode", "transcripts", "--width", "40", "--height", "40", "--seed", "3", "-q"]
    assert run(["simulate", tmp_path / "n.h5ad", *args, "--nuclear-retained", "0.1"], capsys)[0] == 0
    import anndata as ad

    a = ad.read_h5ad(tmp_path / "n.h5ad")
    assert a.var["nuclear_retained"].sum() == 1
    assert a.uns["simulation"]["params"]["nuclear_retained"] == 0.1


def test_cell_diameter_is_a_prior_unless_fixed(data, tmp_path):
    """--cell-diameter is combined with the data's estimate; --fixed-diameter uses it as is. Both are
    recorded in the output's uns (what was given, the estimate, what was used)."""
    import anndata as ad

    for flags, out in (([], "p.h5ad"), (["--fixed-diameter"], "f.h5ad")):
        assert main(["segment", str(data / "bins.h5ad"), "-o", str(tmp_path / out), "--cell-diameter", "8", "-q",
                     *flags]) == 0
    prior, fixed = (ad.read_h5ad(tmp_path / o).uns["manifoldseg"] for o in ("p.h5ad", "f.h5ad"))
    est = prior["summary"]["cell_diameter_estimate"]
    assert prior["params"]["refine_diameter"] and not fixed["params"]["refine_diameter"]
    assert prior["summary"]["cell_diameter_given"] == fixed["summary"]["cell_diameter_given"] == 8.0
    assert fixed["summary"]["cell_diameter"] == 8.0 and fixed["summary"]["cell_diameter_method"] == "given"
    assert prior["summary"]["cell_diameter_method"] == "given+data"
    assert abs(np.log(prior["summary"]["cell_diameter"] / est)) < abs(np.log(8.0 / est)) / 4


# --------------------------------------------------------------------------------------------- #
# segment: refusals, failures and interruptions leave nothing behind
# --------------------------------------------------------------------------------------------- #
def test_existing_output_refused_without_force(data, tmp_path, capsys):
    (tmp_path / "cells.h5ad").write_text("old")
    before = files_in(tmp_path)
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "new.h5ad", "--cells",
                        tmp_path / "cells.h5ad"], capsys)
    assert code == 1 and "cells.h5ad" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert files_in(tmp_path) == before and (tmp_path / "cells.h5ad").read_text() == "old"  # nothing done at all


def test_output_equal_to_input_refused(data, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    shutil.copy(data / "tx.csv", inp)
    before = sha256(inp)
    for argv in (["segment", inp, "-o", inp, "--force"],
                 ["segment", inp, "-o", tmp_path / "o.csv", "--cells", tmp_path / "c.h5ad", "--boundaries",
                  tmp_path / "c.h5ad"],
                 ["segment", inp, "-o", tmp_path / "o.csv", "--boundaries", Path(os.path.relpath(inp)), "--force"]):
        code, _, err = run(argv, capsys)
        assert code == 2, err
    assert sha256(inp) == before and files_in(tmp_path) == {"in.csv"}


def test_failed_run_leaves_no_partial_output(data, tmp_path, capsys):
    code, out, err = run(["segment", data / "tx.csv", "-o", tmp_path / "o.csv", "--cells", tmp_path / "c.h5ad",
                          "--x", "no_such_column", "-q"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no_such_column" in lines[0] and "--x COL" in lines[0]
    assert files_in(tmp_path) == set()
    # --debug shows the traceback
    code, _, err = run(["segment", data / "tx.csv", "-o", tmp_path / "o.csv", "--x", "no_such_column", "-q",
                        "--debug"], capsys)
    assert code == 1 and "Traceback" in err


def test_failure_while_writing_leaves_no_output_at_all(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ms.tl, "segment", _fake_segment())

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ms.io, "cells_to_geojson", broken)
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "o.h5ad", "--cells", tmp_path / "c.h5ad",
                        "--boundaries", tmp_path / "c.geojson", "-q"], capsys)
    assert code == 1 and "disk full" in err
    assert files_in(tmp_path) == set()  # the .h5ad outputs written before the failure are not kept either


def test_interrupt_exits_130_and_writes_nothing(data, tmp_path, monkeypatch, capsys):
    def interrupted(adata, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(ms.tl, "segment", interrupted)
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "o.h5ad", "-q"], capsys)
    assert code == 130 and "interrupted" in err
    assert files_in(tmp_path) == set()


def test_unexpected_error_is_one_line(data, tmp_path, monkeypatch, capsys):
    def bug(adata, **kw):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(ms.tl, "segment", bug)
    code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "o.h5ad", "-q"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--debug" in err and "RuntimeError" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["segment"],
        ["segment", "{bins}", "-o", "{tmp}/o.csv"],  # spots cannot become a table
        ["segment", "{bins}", "-o", "{tmp}/o.txt"],  # unknown output format
        ["segment", "{bins}", "-o", "{tmp}/o.h5ad", "--cell-diameter", "-3"],
        ["segment", "{bins}", "-o", "{tmp}/o.h5ad", "--n-jobs", "0"],
        ["segment", "{bins}", "-o", "{tmp}/o.h5ad", "--x", "X"],  # table options on an h5ad
        ["segment", "{bins}", "-o", "{tmp}/o.h5ad", "--cells", "{tmp}/c.csv"],
        ["segment", "{bins}", "-o", "{tmp}/o.h5ad", "--platform", "visium"],
        ["simulate", "{tmp}/o.h5ad", "--width", "abc"],
        ["report", "{bins}", "-o", "{tmp}/r.pdf"],
        ["evaluate"],
    ],
)
def test_usage_errors_exit_2(argv, data, tmp_path, capsys):
    argv = [a.format(bins=data / "bins.h5ad", tmp=tmp_path) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2, (argv, out, err)
    assert err.strip()
    assert files_in(tmp_path) == set()


def test_spatialdata_output(data, tmp_path, capsys, monkeypatch):
    try:
        import spatialdata  # noqa: F401
    except ImportError:
        monkeypatch.setattr(ms.tl, "segment", _fake_segment())
        code, _, err = run(["segment", data / "bins.h5ad", "-o", tmp_path / "o.h5ad", "--spatialdata",
                            tmp_path / "o.zarr"], capsys)
        assert code == 1 and "pip install 'manifoldseg[spatialdata]'" in err
        assert len(err.strip().splitlines()) == 1 and files_in(tmp_path) == set()
        pytest.skip("spatialdata is not installed: only the error path was tested")
    code = run(["segment", data / "bins.h5ad", "-o", tmp_path / "o.h5ad", "--spatialdata", tmp_path / "o.zarr",
                "-q"])
    assert code == 0
    sdata = spatialdata.read_zarr(tmp_path / "o.zarr")
    assert "transcripts" in sdata.points and "cell_boundaries" in sdata.shapes and "table" in sdata.tables


# --------------------------------------------------------------------------------------------- #
# evaluate, demo
# --------------------------------------------------------------------------------------------- #
def test_evaluate_table_and_json(seg_h5ad, seg_csv, capsys):
    out = seg_h5ad["dir"] / "out.h5ad"
    code, text, _ = run(["evaluate", out], capsys)
    assert code == 0
    for name in ("f1", "ari", "precision", "recall", "in_cell_assigned", "background_assigned", "n_cells",
                 "nuclear_consistency", "mecr"):
        assert f"\n{name} " in text
    code, text, _ = run(["evaluate", out, "--json"], capsys)
    assert code == 0
    s = json.loads(text)
    assert s["n_true"] >= 10 and s["n_pred"] == s["n_cells"] >= 5
    # the numbers are ms.metrics.evaluate's on the same file (floors catch a broken pipeline, not tuning)
    direct = ms.metrics.evaluate(ms.io.read_h5ad(out))
    assert s.keys() == direct.keys()
    for k, v in direct.items():
        assert s[k] == pytest.approx(v, nan_ok=True) or (s[k] is None and not np.isfinite(v)), k
    for k in ("f1", "precision", "recall"):
        assert 0.0 < s[k] <= 1.0, (k, s[k])
    assert s["ari"] > 0.3 and s["in_cell_assigned"] > 0.5 and 0.0 <= s["background_assigned"] < 0.8
    # the segmented transcript table (reference in its true_cell column)
    code, text, _ = run(["evaluate", seg_csv, "--json"], capsys)
    assert code == 0
    t = json.loads(text)
    assert t["n_true"] >= 5 and 0.0 < t["f1"] <= 1.0 and 0.3 < t["ari"] <= 1.0
    # without a reference only reference-free metrics
    code, text, _ = run(["evaluate", out, "--json", "--truth-key", "cell_id"], capsys)
    assert code == 0 and json.loads(text)["f1"] == 1.0
    code, _, err = run(["evaluate", out, "--truth-key", "nope"], capsys)
    assert code == 1 and "nope" in err


def test_demo_prints_scores(capsys):
    code, out, _ = run(["demo", "--size", "50", "-q"], capsys)
    assert code == 0
    for label in ("cells (true / found)", "cell F1 at IoU >= 0.5", "ARI", "in-cell spots assigned",
                  "background spots assigned"):
        assert label in out
    f1 = float(next(line for line in out.splitlines() if "cell F1" in line).split()[-1])
    assert 0.0 < f1 <= 1.0


def test_evaluate_table_against_the_platforms_own_cells(data, tmp_path, capsys):
    df = pd.read_csv(data / "tx.csv")
    df["cell_id"] = df["true_cell"]
    # the reference as a vendor writes it: text ids, empty for transcripts outside cells
    df["cell"] = np.where(df["true_cell"] >= 0, "c" + df["true_cell"].astype(str), "")
    df.drop(columns=["true_cell"]).to_csv(tmp_path / "t.csv", index=False)
    code, out, err = run(["evaluate", tmp_path / "t.csv", "--truth-key", "cell", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["f1"] == 1.0 and s["ari"] == 1.0 and s["n_true"] == df.loc[df.true_cell >= 0, "true_cell"].nunique()
    code, _, err = run(["evaluate", tmp_path / "t.csv", "--truth-key", "nope"], capsys)
    assert code == 1 and "'nope'" in err and "--truth-key" in err
