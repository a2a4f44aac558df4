"""Square bins from transcripts (sequencing-like data), and the map from bins back to transcripts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._constants import NUCLEUS_KEY, SPATIAL_KEY, TRUTH_KEY, TYPE_KEY
from .._validate import InputError, MissingKeyError, _fmt_list, check_adata, check_positive

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

logger = logging.getLogger("manifoldseg")

__all__ = ["bin_transcripts", "labels_to_transcripts", "DEFAULT_BIN_LABELS"]

#: obs columns carried to bins by majority when ``labels=None`` (those present).
DEFAULT_BIN_LABELS = (TRUTH_KEY, TYPE_KEY, NUCLEUS_KEY, "vendor_cell", "vendor_nucleus")


def _majority(values: pd.Series, index: np.ndarray, weights: np.ndarray, n_bins: int) -> Any:
    """Per bin, the value with the largest total weight; ties go to the smallest value."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes, dtype=np.int64)
        winner = _majority_codes(codes, index, weights, n_bins)
        return pd.Categorical.from_codes(winner, dtype=values.dtype)
    arr = values.to_numpy()
    if arr.dtype.kind not in "biu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InputError(
                f"obs[{values.name!r}] is neither integer labels nor categorical (dtype {arr.dtype}); "
                "bin labels are carried by majority, so pass only label columns in labels=."
            )
    uniq, codes = np.unique(arr, return_inverse=True)
    winner = _majority_codes(codes.astype(np.int64), index, weights, n_bins)
    return uniq[winner]


def _majority_codes(codes: np.ndarray, index: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    shift = 1 if codes.min(initial=0) < 0 else 0  # categorical NaN code -1
    k = int(codes.max(initial=0)) + 1 + shift
    pair = index.astype(np.int64) * k + (codes + shift)
    upair, inv = np.unique(pair, return_inverse=True)
    w = np.bincount(inv, weights=weights, minlength=upair.size)
    n = np.bincount(inv, minlength=upair.size)  # so that zero-count rows still vote among themselves
    b = upair // k
    c = upair % k
    order = np.lexsort((c, -n, -w, b))  # by bin, then largest weight, then most rows, then smallest value
    first = np.ones(order.size, dtype=bool)
    first[1:] = b[order][1:] != b[order][:-1]
    chosen = order[first]
    out = np.empty(n_bins, dtype=np.int64)
    out[b[chosen]] = c[chosen] - shift
    return out


def bin_transcripts(
    adata: AnnData,
    bin_size: float,
    *,
    spatial_key: str = SPATIAL_KEY,
    labels: Sequence[str] | None = None,
    return_index: bool = False,
) -> AnnData | tuple[AnnData, np.ndarray]:
    """Sum transcripts into square bins, like sequencing-based spots (Stereo-seq, Visium HD).

    The grid is anchored at the origin: transcript ``(x, y)`` goes to bin
    ``(floor(x / bin_size), floor(y / bin_size))``, so tiles binned separately agree. z is ignored.
    The input is not modified.

    Parameters
    ----------
    adata
        Transcripts (one obs per transcript, or per GEM row with counts in ``X``), coordinates
        in ``obsm[spatial_key]`` (um).
    bin_size
        Bin side in um.
    spatial_key
        ``obsm`` key of the coordinates.
    labels
        Integer or categorical ``obs`` columns to carry to the bins by majority of the bin's
        counts (ties go to the smallest value, so -1 wins a tie with a cell). ``None`` carries
        those of ``true_cell``, ``true_type``, ``nucleus``, ``vendor_cell``, ``vendor_nucleus``
        that exist; ``()`` carries none.
    return_index
        Also return ``index`` (int64, one per input obs): the row of its bin in the result.

    Returns
    -------
    binned
        AnnData with one obs per non-empty bin, ordered by ``bin_y`` then ``bin_x``:
        ``X`` CSR summed counts (total counts conserved), ``obsm["spatial"]`` bin centres (um),
        ``obs["bin_x"]``, ``obs["bin_y"]`` (int64 grid indices), ``obs["n_transcripts"]`` (input
        obs per bin), the majority ``labels`` columns, ``uns["bins"]`` (``bin_size``,
        ``n_input``), and ``uns["manifoldseg_io"]`` copied from the input when present.
    index
        Only when ``return_index=True``: see above; map bin results back to transcripts with
        :func:`labels_to_transcripts`.
    """
    import anndata

    coords, X = check_adata(adata, spatial_key=spatial_key)
    check_positive(bin_size, "bin_size")
    bx = np.floor(coords[:, 0] / bin_size).astype(np.int64)
    by = np.floor(coords[:, 1] / bin_size).astype(np.int64)
    ox, oy = bx.min(), by.min()
    nx = int(bx.max() - ox) + 1
    ny = int(by.max() - oy) + 1
    if nx * ny < 2**62:
        key = (by - oy) * nx + (bx - ox)
        ukey, index = np.unique(key, return_inverse=True)
        ubx = ukey % nx + ox
        uby = ukey // nx + oy
    else:  # pragma: no cover - astronomically large extents
        pairs, index = np.unique(np.column_stack([by, bx]), axis=0, return_inverse=True)
        uby, ubx = pairs[:, 0], pairs[:, 1]
    index = index.astype(np.int64).ravel()
    n_bins = ubx.size
    n = coords.shape[0]
    B = sparse.csr_matrix((np.ones(n, dtype=X.dtype), (index, np.arange(n))), shape=(n_bins, n))
    Xb = sparse.csr_matrix(B @ X)
    Xb.sort_indices()
    centres = np.column_stack([(ubx + 0.5) * bin_size, (uby + 0.5) * bin_size]).astype(np.float64)

    obs = pd.DataFrame(index=pd.Index([f"bin_{a}_{b}" for a, b in zip(ubx.tolist(), uby.tolist(), strict=True)]))
    obs["bin_x"] = ubx.astype(np.int64)
    obs["bin_y"] = uby.astype(np.int64)
    obs["n_transcripts"] = np.bincount(index, minlength=n_bins).astype(np.int64)

    if labels is None:
        labels = [k for k in DEFAULT_BIN_LABELS if k in adata.obs.columns]
    else:
        if isinstance(labels, str):
            labels = [labels]
        missing = [k for k in labels if k not in adata.obs.columns]
        if missing:
            raise MissingKeyError(
                f"labels {missing} not found in adata.obs; obs columns present: {_fmt_list(adata.obs.columns)}. "
                "Pass labels=<existing columns> or labels=()."
            )
    weights = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    for key in labels:
        obs[key] = _majority(adata.obs[key], index, weights, n_bins)

    binned = anndata.AnnData(X=Xb, obs=obs, var=adata.var.copy())
    binned.obsm[SPATIAL_KEY] = centres
    binned.uns["bins"] = {"bin_size": float(bin_size), "n_input": int(n), "labels": list(labels)}
    if "manifoldseg_io" in adata.uns:
        binned.uns["manifoldseg_io"] = dict(adata.uns["manifoldseg_io"])
    if coords.shape[1] == 3:
        logger.info("bin_transcripts: z ignored; bins are 2D squares of %g um", bin_size)
    logger.info("bin_transcripts: %d obs into %d bins of %g um", n, n_bins, bin_size)
    if return_index:
        return binned, index
    return binned


def labels_to_transcripts(bin_labels: Any, index: Any) -> np.ndarray | pd.Categorical:
    """Map per-bin values back to the transcripts, using the ``index`` of :func:`bin_transcripts`.

    Parameters
    ----------
    bin_labels
        One value per bin (array, Series, or categorical), e.g. ``binned.obs["cell_id"]``.
    index
        For each transcript, the row of its bin.

    Returns
    -------
    numpy.ndarray or pandas.Categorical
        One value per transcript (``bin_labels[index]``).
    """
    idx = np.asarray(index)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise InputError("index must be the 1-D integer array returned by bin_transcripts(..., return_index=True).")
    if isinstance(bin_labels, pd.Series):
        bin_labels = bin_labels.array if isinstance(bin_labels.dtype, pd.CategoricalDtype) else bin_labels.to_numpy()
    n_bins = len(bin_labels)
    if idx.size and (idx.min() < 0 or idx.max() >= n_bins):
        raise InputError(
            f"index refers to bin {int(idx.max())} but bin_labels has {n_bins} values; pass the labels of the "
            "same binned AnnData that returned this index."
        )
    if isinstance(bin_labels, pd.Categorical):
        return bin_labels.take(idx)
    return np.asarray(bin_labels)[idx]
