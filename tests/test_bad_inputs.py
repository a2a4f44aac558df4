"""Bad input, tried as a new user would, at the level of the Python API.

Readers (``ms.io``), ``ms.tl.segment`` and ``ms.tl.aggregate`` get corrupt files, wrong columns,
NaN/infinite coordinates, odd counts, degenerate tissues, odd names and bad parameters. Each must
give a valid result or a clear error: the exception type the docs promise, with a message that
names the problem and the fix; never a numba TypingError, an IndexError, a ZeroDivisionError or a
bare NumPy traceback, and never a warning from manifoldseg's own code (warnings are errors here).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

import manifoldseg as ms
from manifoldseg._validate import InputError, MissingFileError, MissingKeyError

# errors that must never reach a user
_CRASHES = (IndexError, ZeroDivisionError, AssertionError, AttributeError, UnboundLocalError)


@contextlib.contextmanager
def clear_error(exc_type, *patterns):
    """Expect ``exc_type`` whose message matches every regex in ``patterns`` (case-insensitive)."""
    with pytest.raises(Exception) as info:
        yield info
    err = info.value
    assert not isinstance(err, _CRASHES), f"crash instead of a clear error: {type(err).__name__}: {err}"
    assert "numba" not in type(err).__module__, f"numba error reached the user: {err}"
    assert isinstance(err, exc_type), f"expected {exc_type.__name__}, got {type(err).__name__}: {err}"
    msg = str(err)
    for pat in patterns:
        assert re.search(pat, msg, flags=re.IGNORECASE), f"{pat!r} not in the message: {msg!r}"


def check_valid(adata, *, key="cell_id"):
    """A valid segmentation (labels, confidence) whose aggregation conserves every count."""
    labels = adata.obs[key].to_numpy()
    assert labels.shape == (adata.n_obs,) and labels.dtype.kind == "i"
    assert labels.min() >= -1
    k = int(labels.max()) + 1
    assert np.array_equal(np.unique(labels[labels >= 0]), np.arange(k)), "labels must be 0..k-1, all used"
    conf = adata.obs[f"{key}_confidence"].to_numpy()
    assert np.isfinite(conf).all() and conf.min() >= 0 and conf.max() <= 1
    assert adata.uns["manifoldseg"]["summary"]["n_cells"] == k
    cells = ms.tl.aggregate(adata, key=key)
    assert cells.n_obs == k and cells.n_vars == adata.n_vars
    X = sparse.csr_matrix(adata.X)
    total = np.asarray(X.sum(axis=0)).ravel()
    out = np.asarray(cells.X.sum(axis=0)).ravel() + cells.uns["manifoldseg"]["background_counts"]
    np.testing.assert_allclose(out, total, rtol=1e-5, atol=1e-3)
    assert np.array_equal(cells.uns["manifoldseg"]["spot_to_cell"], labels)
    return labels


def spots(coords, X, var_names=None, obs_names=None):
    a = ad.AnnData(X=X)
    if var_names is not None:
        a.var_names = var_names
    if obs_names is not None:
        a.obs_names = obs_names
    a.obsm["spatial"] = np.asarray(coords, dtype=np.float64)
    return a


@pytest.fixture(scope="module")
def _tiny():
    """About 15 cells as 1 um bins on 40 x 40 um (segments in about 2 s)."""
    return ms.datasets.simulate(mode="bins", width=40.0, height=40.0, random_state=3)


@pytest.fixture
def tiny(_tiny):
    return _tiny.copy()


@pytest.fixture(scope="module")
def _reference(_tiny):
    a = _tiny.copy()
    ms.tl.segment(a, random_state=0)
    return a.obs["cell_id"].to_numpy(), float(a.uns["manifoldseg"]["summary"]["cell_diameter"])


@pytest.fixture
def tiny_labels(_reference):
    """The labels of the plain run on ``tiny`` (seed 0)."""
    return _reference[0].copy()


# ============================================================================ files


def test_corrupt_h5ad(tmp_path):
    path = tmp_path / "spots.h5ad"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with clear_error(InputError, "not a valid h5ad", "check the file|re-"):
        ms.io.read_h5ad(path)
    # a CSV renamed to .h5ad
    path.write_text("x,y,gene\n1,2,A\n")
    with clear_error(InputError, "not a valid h5ad", "read_transcripts"):
        ms.io.read_h5ad(path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_h5ad(tmp_path, _tiny, keep):
    good = tmp_path / "good.h5ad"
    _tiny.write_h5ad(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.h5ad"
    bad.write_bytes(data[: int(len(data) * keep)])
    with clear_error(InputError, "truncated|corrupt", "re-copy|re-export"):
        ms.io.read_h5ad(bad)
    with clear_error(InputError, "truncated|corrupt"):
        ms.io.read_transcripts(bad)


def test_missing_file_and_folder(tmp_path):
    with clear_error(MissingFileError, "not found", "check the path"):
        ms.io.read_h5ad(tmp_path / "nope.h5ad")
    with clear_error(MissingFileError, "not found"):
        ms.io.read_transcripts(tmp_path / "nope.csv")
    with clear_error(InputError, "folder"):
        ms.io.read_transcripts(tmp_path)


def test_h5ad_without_coordinates(tmp_path, _tiny):
    path = tmp_path / "nocoords.h5ad"
    ad.AnnData(_tiny.X, obs=_tiny.obs[["bin_x", "bin_y"]]).write_h5ad(path)
    with clear_error(MissingKeyError, r"obsm\['spatial'\]", "spatial_key=|obsm\\['spatial'\\] ="):
        ms.io.read_h5ad(path)


def test_csv_with_wrong_columns(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"xpos": [1.0, 2.0], "ypos": [3.0, 4.0], "target_name": ["A", "B"]}).to_csv(path, index=False)
    # the message lists the columns found and the options that fix it
    with clear_error(InputError, "no column for x, y, gene", "xpos", "target_name", r"x='\.\.\.'"):
        ms.io.read_transcripts(path)
    with clear_error(InputError, "'xpoz' not found", "xpos"):
        ms.io.read_transcripts(path, x="xpoz", y="ypos", gene="target_name")
    a = ms.io.read_transcripts(path, x="xpos", y="ypos", gene="target_name")
    assert a.shape == (2, 2)


def test_csv_semicolon_separated_names_the_single_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x;y;gene\n1;2;A\n")
    with clear_error(InputError, "x;y;gene", "pass the column names"):
        ms.io.read_transcripts(path)


def test_csv_truncated_mid_row(tmp_path):
    path = tmp_path / "t.csv"
    text = "x,y,gene\n" + "".join(f"{i},{i % 7},G{i % 3}\n" for i in range(50))
    path.write_text(text[:-7])  # the last line is cut after its first field
    with clear_error(InputError, "empty in 1 rows", "49", "drop those rows"):
        ms.io.read_transcripts(path)


def test_csv_non_numeric_coordinate_names_the_bad_value(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": ["1.0", "abc", "3"], "y": [1.0, 2.0, 3.0], "gene": list("ABC")}).to_csv(path, index=False)
    with clear_error(InputError, "non-numeric", "'abc'"):
        ms.io.read_transcripts(path)


# ============================================================================ coordinates


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_coordinates(tiny, tmp_path, bad):
    tiny.obsm["spatial"][7, 1] = bad
    with clear_error(InputError, "NaN|infinite", r"\[7\]", "drop them"):
        ms.tl.segment(tiny)
    tiny.obs["cell_id"] = 0
    with clear_error(InputError, "NaN|infinite", "drop them"):
        ms.tl.aggregate(tiny)
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, bad, 3.0], "y": [1.0, 2.0, 3.0], "gene": list("ABC")}).to_csv(path, index=False)
    with clear_error(InputError, "NaN|infinite", "drop them"):
        ms.io.read_transcripts(path)


def test_duplicated_coordinates_many_spots_at_one_place(tiny):
    # every spot stacked three times (e.g. the transcripts of one bin listed one per row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata: duplicated obs names, made unique below
        stacked = ad.concat([tiny] * 3, merge="first")
    stacked.obs_names_make_unique()
    ms.tl.segment(stacked, random_state=0)
    labels = check_valid(stacked)
    assert labels.max() + 1 >= 5
    # identical positions carry one label: the copies of a spot stay together
    per_spot = labels.reshape(3, -1)
    assert (per_spot == per_spot[0]).mean() > 0.95


def test_all_spots_at_one_place(tiny):
    sub = tiny[:300].copy()
    sub.obsm["spatial"] = np.tile([[5.0, 5.0]], (300, 1))
    ms.tl.segment(sub)
    labels = check_valid(sub)
    assert labels.max() + 1 <= 1  # one place is at most one cell


def test_coordinates_rounded_to_a_coarse_grid(tiny):
    tiny.obsm["spatial"] = np.round(tiny.obsm["spatial"] / 4) * 4  # 4 um pixels: many exact duplicates
    ms.tl.segment(tiny)
    check_valid(tiny)


def test_far_from_origin_gives_the_same_cells(tiny, tiny_labels):
    tiny.obsm["spatial"] = tiny.obsm["spatial"] + 1e7
    ms.tl.segment(tiny, random_state=0)
    labels = check_valid(tiny)
    assert adjusted_rand_score(tiny_labels, labels) > 0.99


def test_pixel_coordinates_far_from_origin(tiny, tiny_labels, _reference):
    """Pixels (0.18 um) at 1e7: a valid result; with the diameter in pixels, the same cells."""
    px = 0.18
    tiny.obsm["spatial"] = tiny.obsm["spatial"] / px + 1e7
    d_um = _reference[1]
    ms.tl.segment(tiny, cell_diameter=d_um / px, random_state=0)
    labels = check_valid(tiny)
    # not identical (some lengths inside the method are absolute um), but the same tissue
    assert adjusted_rand_score(tiny_labels, labels) > 0.5
    ms.tl.segment(tiny, random_state=0)  # diameter estimated in pixel units
    check_valid(tiny)


def test_coordinates_wrong_shape(tiny):
    tiny.obsm["spatial"] = tiny.obsm["spatial"][:, :1]
    with clear_error(InputError, "1 column", "2 \\(x, y\\) or 3"):
        ms.tl.segment(tiny)
    tiny.obsm["spatial"] = np.column_stack([tiny.obsm["spatial"]] * 4)
    with clear_error(InputError, "4 column", "coords\\[:, :2\\]"):
        ms.tl.segment(tiny)


def test_missing_spatial_key_names_the_fix(tiny):
    with clear_error(MissingKeyError, r"obsm\['xy'\] not found", "'spatial'", "spatial_key="):
        ms.tl.segment(tiny, spatial_key="xy")
    with clear_error(KeyError, "xy"):
        ms.tl.aggregate(tiny, spatial_key="xy")


def test_3d_input_is_segmented():
    d3 = ms.datasets.simulate(mode="bins", width=30.0, height=30.0, depth=6.0, random_state=3)
    assert d3.obsm["spatial"].shape[1] == 3
    ms.tl.segment(d3, random_state=0)
    labels = check_valid(d3)
    cells = ms.tl.aggregate(d3)
    assert cells.obsm["spatial"].shape == (labels.max() + 1, 3)
    assert labels.max() + 1 >= 1


def test_3d_finds_about_the_true_cells(tiny_labels):
    """3D once cut each cell into about depth-many pieces (cell mass computed as a 2D area)."""
    # the same tissue as `tiny`, as a slab 8 um deep
    d3 = ms.datasets.simulate(mode="bins", width=40.0, height=40.0, depth=8.0, random_state=3)
    n_true = d3.obs["true_cell"][d3.obs["true_cell"] >= 0].nunique()
    ms.tl.segment(d3, random_state=0)
    n3 = d3.uns["manifoldseg"]["summary"]["n_cells"]
    n2 = int(tiny_labels.max()) + 1
    assert n3 <= 2 * max(n2, n_true), f"3D: {n3} cells, 2D: {n2}, true: {n_true}"


# ============================================================================ counts


def test_negative_counts(tiny):
    X = tiny.X.tocsr().astype(np.float32)
    X.data[3] = -2.0
    tiny.X = X
    with clear_error(InputError, "negative", "raw"):
        ms.tl.segment(tiny)
    tiny.obs["cell_id"] = 0
    with clear_error(InputError, "negative", "raw"):
        ms.tl.aggregate(tiny)


def test_nan_counts(tiny):
    X = tiny.X.tocsr().astype(np.float32)
    X.data[3] = np.nan
    tiny.X = X
    with clear_error(InputError, "NaN or infinite", "replace|drop"):
        ms.tl.segment(tiny)


def test_float_counts_are_accepted_and_logged(tiny, caplog):
    tiny.X = tiny.X.astype(np.float32) * 0.37  # e.g. normalised values
    with caplog.at_level(logging.WARNING, logger="manifoldseg"):
        ms.tl.segment(tiny)
    assert "non-integer" in caplog.text and "raw integer counts" in caplog.text.lower()
    check_valid(tiny)


def test_dense_and_integer_counts_give_the_same_cells(tiny, tiny_labels):
    dense = spots(tiny.obsm["spatial"], np.asarray(tiny.X.todense(), dtype=np.int64), var_names=tiny.var_names)
    ms.tl.segment(dense, random_state=0)
    assert np.array_equal(check_valid(dense), tiny_labels)


def test_all_zero_counts(tiny):
    zero = spots(tiny.obsm["spatial"], sparse.csr_matrix(tiny.shape, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ms.tl.segment(zero)
        except InputError as err:
            assert re.search("zero|no counts", str(err), re.I), str(err)
            return
    labels = check_valid(zero)
    assert (labels == -1).all()


def test_one_gene(tiny):
    one = spots(tiny.obsm["spatial"], sparse.csr_matrix(tiny.X.sum(axis=1)), var_names=["total"])
    ms.tl.segment(one, random_state=0)
    labels = check_valid(one)
    assert labels.max() + 1 >= 3  # density alone still separates cells


def test_5000_genes_sparse(tiny):
    extra = sparse.random(tiny.n_obs, 4500, density=0.002, random_state=0, format="csr", dtype=np.float32)
    extra.data[:] = 1.0
    X = sparse.hstack([tiny.X, extra], format="csr")
    wide = spots(tiny.obsm["spatial"], X, var_names=[f"g{i}" for i in range(X.shape[1])])
    assert wide.n_vars == 5000
    ms.tl.segment(wide, random_state=0)
    labels = check_valid(wide)
    assert labels.max() + 1 >= 3


def test_three_spots_one_with_counts():
    """Typical cell mass 0 once crashed refinement (OverflowError: float infinity to integer)."""
    a = spots([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]], sparse.csr_matrix(np.array([[0.0], [2.0], [0.0]], np.float32)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ms.tl.segment(a)
    check_valid(a)


def test_blob_in_a_field_of_mostly_empty_spots():
    rng = np.random.default_rng(0)
    blob = np.array([20.0, 20.0]) + rng.normal(0, 2.5, (22, 2))
    field = rng.uniform(0, 50, (34, 2))
    counts = np.concatenate([rng.poisson(3.3, 22), rng.poisson(0.3, 34)]).astype(np.float32)[:, None]
    a = spots(np.vstack([blob, field]), sparse.csr_matrix(counts))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ms.tl.segment(a)
    check_valid(a)


# ============================================================================ tiny and empty inputs


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_few_spots(n):
    rng = np.random.default_rng(n)
    a = spots(rng.uniform(0, 10, (n, 2)), sparse.csr_matrix(rng.poisson(3, (n, 3)).astype(np.float32)))
    ms.tl.segment(a)
    labels = check_valid(a)
    assert labels.max() + 1 <= 1


def test_empty_anndata():
    empty = spots(np.zeros((0, 2)), np.zeros((0, 3), dtype=np.float32))
    with clear_error(InputError, "no observations", "nothing to segment"):
        ms.tl.segment(empty)
    no_genes = spots(np.zeros((4, 2)), np.zeros((4, 0), dtype=np.float32))
    with clear_error(InputError, "no genes", "counts"):
        ms.tl.segment(no_genes)


def test_not_an_anndata(tiny):
    with clear_error(TypeError, "expected an AnnData", "read_h5ad|read_transcripts"):
        ms.tl.segment(tiny.X)
    with clear_error(TypeError, "expected an AnnData"):
        ms.tl.aggregate(tiny.to_df())


def test_aggregate_without_labels_or_with_text_labels(tiny):
    with clear_error(KeyError, r"obs\['cell_id'\] not found", "ms.tl.segment"):
        ms.tl.aggregate(tiny)
    tiny.obs["cell_id"] = "a"
    with clear_error(ValueError, "integer cell ids"):
        ms.tl.aggregate(tiny)


def test_aggregate_all_background(tiny):
    tiny.obs["cell_id"] = -1
    cells = ms.tl.aggregate(tiny)
    assert cells.shape == (0, tiny.n_vars)
    np.testing.assert_allclose(cells.uns["manifoldseg"]["background_counts"], np.asarray(tiny.X.sum(axis=0)).ravel())


# ============================================================================ names


def test_non_unique_obs_names(tiny, tiny_labels):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata's own note on duplicated names
        tiny.obs_names = ["spot"] * tiny.n_obs
    ms.tl.segment(tiny, random_state=0)
    assert np.array_equal(check_valid(tiny), tiny_labels)


def test_unicode_gene_names(tiny, tiny_labels, tmp_path):
    names = [f"Gène-β{i}✓" if i % 2 else f"遺伝子{i}" for i in range(tiny.n_vars)]
    tiny.var_names = names
    ms.tl.segment(tiny, random_state=0)
    assert np.array_equal(check_valid(tiny), tiny_labels)
    cells = ms.tl.aggregate(tiny)
    assert list(cells.var_names) == names
    ms.io.write_h5ad(cells, tmp_path / "cells.h5ad")
    assert list(ad.read_h5ad(tmp_path / "cells.h5ad").var_names) == names
    # and in a transcript table
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0], "gene": ["Gène-β", "日本", "α/β"]}).to_csv(path, index=False)
    assert sorted(ms.io.read_transcripts(path).var_names) == sorted(["Gène-β", "日本", "α/β"])


# ============================================================================ parameters


def test_prior_key_that_does_not_exist(tiny):
    with clear_error(KeyError, "prior_key='nuclei'", "'nucleus'", "prior_key=None"):
        ms.tl.segment(tiny, prior_key="nuclei")


def test_prior_key_of_text(tiny):
    tiny.obs["nuc"] = np.where(tiny.obs["nucleus"] >= 0, "n" + tiny.obs["nucleus"].astype(str), "none")
    with clear_error(ValueError, r"obs\['nuc'\]", "integer nucleus ids"):
        ms.tl.segment(tiny, prior_key="nuc")


def test_prior_with_nan_outside_nuclei(tiny):
    tiny.obs["nuc"] = np.where(tiny.obs["nucleus"] >= 0, tiny.obs["nucleus"], np.nan)
    ms.tl.segment(tiny, prior_key="nuc", random_state=0)
    check_valid(tiny)


@pytest.mark.parametrize("value", [0, -5, 0.0, float("nan"), float("inf"), "10"])
def test_bad_cell_diameter(tiny, value):
    with clear_error(InputError, "cell_diameter", "positive"):
        ms.tl.segment(tiny, cell_diameter=value)


@pytest.mark.parametrize("value", [0, -3])
def test_bad_n_neighbors(tiny, value):
    with clear_error(InputError, "n_neighbors", "positive"):
        ms.tl.segment(tiny, n_neighbors=value)


def test_bad_embed_method(tiny):
    with clear_error(InputError, "embed_method='tsne'", "numba"):
        ms.tl.segment(tiny, embed_method="tsne")


def test_segment_a_view(_tiny):
    view = _tiny[:400]
    assert view.is_view
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ms.tl.segment(view)
    check_valid(view)


def test_failed_write_leaves_no_partial_file(tmp_path, tiny):
    tiny.uns["bad"] = object()  # cannot be written to h5ad
    target = tmp_path / "out.h5ad"
    with pytest.raises(Exception):  # noqa: B017 - anndata decides the type
        ms.io.write_h5ad(tiny, target)
    assert list(tmp_path.iterdir()) == []
