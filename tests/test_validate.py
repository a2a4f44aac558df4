"""Input checks in manifoldseg._validate: each bad input gives one clear error naming the fix."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from manifoldseg._validate import (
    InputError,
    ManifoldsegError,
    MissingFileError,
    MissingKeyError,
    check_adata,
    check_choice,
    check_coordinates,
    check_counts,
    check_obs_key,
    check_positive,
)


def _adata(n=5, g=3, key="spatial"):
    rng = np.random.default_rng(0)
    a = ad.AnnData(X=sparse.csr_matrix(rng.poisson(1.0, (n, g)).astype(np.float32)))
    if key:
        a.obsm[key] = rng.uniform(0, 10, (n, 2))
    return a


# ------------------------------------------------------------------------------ exceptions
def test_exception_hierarchy():
    assert issubclass(InputError, ManifoldsegError) and issubclass(InputError, ValueError)
    assert issubclass(MissingKeyError, ManifoldsegError) and issubclass(MissingKeyError, KeyError)
    assert issubclass(MissingFileError, InputError) and issubclass(MissingFileError, FileNotFoundError)
    # a KeyError would print its message in quotes: ours prints it plainly for the CLI
    assert str(MissingKeyError("no obsm['spatial']")) == "no obsm['spatial']"


# ------------------------------------------------------------------------------ coordinates
def test_coordinates_converted_to_float64_c_contiguous():
    out = check_coordinates(np.asfortranarray(np.arange(6).reshape(3, 2)))
    assert out.dtype == np.float64 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, [[0, 1], [2, 3], [4, 5]])
    out3 = check_coordinates([[0, 1, 2], [3, 4, 5]])
    assert out3.shape == (2, 3)
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    np.testing.assert_array_equal(check_coordinates(df), [[1, 3], [2, 4]])


def test_coordinates_numeric_strings_accepted():
    out = check_coordinates(np.array([["1.5", "2"], ["3", "4"]], dtype=object))
    np.testing.assert_array_equal(out, [[1.5, 2], [3, 4]])


@pytest.mark.parametrize(
    ("coords", "match"),
    [
        (np.zeros((0, 2)), "empty"),
        (np.zeros(4), "1 dimension"),
        (np.zeros((2, 2, 2)), "3 dimension"),
        (np.zeros((3, 1)), "1 column"),
        (np.zeros((3, 4)), "4 column"),
        (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
        (sparse.csr_matrix(np.ones((2, 2))), "sparse"),
        (np.array([[1 + 1j, 2], [3, 4]]), "complex"),
    ],
)
def test_coordinates_bad_shapes_and_types(coords, match):
    with pytest.raises(InputError, match=match):
        check_coordinates(coords)


def test_coordinates_nan_inf_counts_rows_and_suggests_dropping():
    c = np.zeros((10, 2))
    c[2, 0] = np.nan
    c[5, 1] = np.inf
    c[7] = np.nan
    with pytest.raises(InputError) as err:
        check_coordinates(c, name="coords")
    msg = str(err.value)
    assert "coords has 3 of 10 rows" in msg
    assert "NaN (2)" in msg and "infinite (1)" in msg
    assert "[2, 5, 7]" in msg and "Drop" in msg


# ------------------------------------------------------------------------------ counts
def test_counts_dense_int_kept_as_int_csr():
    X = check_counts(np.array([[1, 0], [0, 2]], dtype=np.int64))
    assert isinstance(X, sparse.csr_matrix) and X.dtype == np.int64
    assert X.nnz == 2 and X.sum() == 3


def test_counts_float_and_bool_become_float32_and_sparse_arrays_accepted():
    assert check_counts(np.eye(3)).dtype == np.float32
    assert check_counts(np.eye(3, dtype=bool)).dtype == np.float32
    X = check_counts(sparse.csr_array(np.eye(3)))
    assert isinstance(X, sparse.csr_matrix) and X.sum() == 3
    assert isinstance(check_counts(sparse.coo_matrix(np.eye(2))), sparse.csr_matrix)


def test_counts_negative_reports_how_many_and_suggests_raw():
    X = np.array([[1.0, -2.0], [-0.5, 3.0]])
    with pytest.raises(InputError, match=r"2 negative values.*raw"):
        check_counts(X)
    with pytest.raises(InputError, match="1 negative"):
        check_counts(sparse.csr_matrix(np.array([[0, -1], [0, 0]])))


def test_counts_nan_inf_non_numeric_shape():
    with pytest.raises(InputError, match="2 NaN or infinite"):
        check_counts(np.array([[np.nan, 1.0], [np.inf, 0.0]]))
    with pytest.raises(InputError, match="non-numeric"):
        check_counts(np.array([["a", "b"]], dtype=object))
    with pytest.raises(InputError, match="has 2 rows but there are 3 coordinates"):
        check_counts(np.ones((2, 2)), n_obs=3)
    with pytest.raises(InputError, match="dimension"):
        check_counts(np.ones(3))


def test_counts_non_integer_float_logged_not_warned(caplog, recwarn):
    with caplog.at_level(logging.WARNING, logger="manifoldseg"):
        X = check_counts(np.array([[0.5, 1.0], [0.0, 2.25]]))
    assert X.dtype == np.float32 and X.sum() == pytest.approx(3.75)
    assert any("2 non-integer count values" in r.getMessage() for r in caplog.records)
    assert len(recwarn) == 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="manifoldseg"):
        check_counts(np.array([[1.0, 2.0]]))
    assert not caplog.records


def test_counts_all_zero_is_valid():
    X = check_counts(np.zeros((3, 2)))
    assert X.nnz == 0 and X.shape == (3, 2)


# ------------------------------------------------------------------------------ adata
def test_check_adata_returns_coords_and_counts():
    a = _adata()
    coords, X = check_adata(a)
    assert coords.shape == (5, 2) and X.shape == (5, 3)
    a.layers["counts"] = a.X.copy() * 2
    _, X2 = check_adata(a, layer="counts")
    assert X2.sum() == 2 * X.sum()


def test_check_adata_type_error():
    with pytest.raises(TypeError, match="expected an AnnData, got DataFrame"):
        check_adata(pd.DataFrame({"x": [1]}))


def test_check_adata_missing_spatial_lists_keys_and_fix():
    a = _adata(key="X_pos")
    with pytest.raises(MissingKeyError) as err:
        check_adata(a)
    msg = str(err.value)
    assert "obsm['spatial'] not found" in msg and "'X_pos'" in msg and "spatial_key=" in msg
    assert "adata.obs[['x', 'y']].to_numpy" in msg
    coords, _ = check_adata(a, spatial_key="X_pos")
    assert coords.shape == (5, 2)


def test_check_adata_missing_spatial_with_xy_columns_suggests_them():
    a = _adata(key=None)
    a.obs["x"] = 1.0
    a.obs["y"] = 2.0
    with pytest.raises(KeyError, match=r"obs columns \['x', 'y'\]"):
        check_adata(a)


def test_check_adata_empty_and_no_genes_and_layer():
    a = _adata()
    with pytest.raises(InputError, match="no observations"):
        check_adata(a[:0].copy())
    with pytest.raises(InputError, match="no genes"):
        check_adata(a[:, []].copy())
    with pytest.raises(MissingKeyError, match="layers present"):
        check_adata(a, layer="counts")


def test_check_adata_bad_coordinates_named_by_key():
    a = _adata()
    a.obsm["spatial"][1, 0] = np.nan
    with pytest.raises(InputError, match=r"obsm\['spatial'\] has 1 of 5 rows"):
        check_adata(a)


def test_check_adata_negative_counts():
    a = _adata()
    a.X = sparse.csr_matrix(-np.ones((5, 3), dtype=np.float32))
    with pytest.raises(InputError, match="15 negative values"):
        check_adata(a)


# ------------------------------------------------------------------------------ small checks
def test_check_choice():
    assert check_choice("a", "mode", ["a", "b"]) == "a"
    with pytest.raises(InputError, match=r"mode='c' is not valid; choose one of 'a', 'b'"):
        check_choice("c", "mode", ["a", "b"])
    with pytest.raises(InputError, match="mode="):
        check_choice(["unhashable"], "mode", {"a"})


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "1", None])
def test_check_positive_rejects(bad):
    with pytest.raises(InputError, match="bin_size"):
        check_positive(bad, "bin_size")


def test_check_positive_accepts():
    assert check_positive(0.5, "bin_size") == 0.5
    assert check_positive(np.float32(2), "bin_size") == 2
    assert check_positive(None, "bin_size", allow_none=True) is None
    assert check_positive(0, "prior_extent", allow_zero=True) == 0
    with pytest.raises(InputError, match=r"prior_extent must be a non-negative, finite number, got -0.1"):
        check_positive(-0.1, "prior_extent", allow_zero=True)


def test_check_obs_key():
    a = _adata()
    a.obs["cell_id"] = 0
    assert check_obs_key(a, "cell_id").sum() == 0
    with pytest.raises(MissingKeyError, match=r"obs\['true_cell'\] not found.*'cell_id'.*run segment first"):
        check_obs_key(a, "true_cell", hint="run segment first")
