"""Mutually exclusive co-expression rate (MECR): a reference-free score of cell purity."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse

logger = logging.getLogger("manifoldseg")


def _as_matrix(X):
    if hasattr(X, "X") and hasattr(X, "obs"):  # AnnData
        X = X.X
    if sparse.issparse(X):
        return sparse.csr_matrix(X)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be a cells x genes matrix; got shape {arr.shape}.")
    return sparse.csr_matrix(arr)


def cluster_cells(X, *, n_clusters: int = 10, n_pcs: int = 20, random_state=0) -> np.ndarray:
    """Cell types for MECR when none are given: KMeans on PCA of normalised log counts.

    Each cell's counts are scaled to the median total, ``log1p``-transformed, reduced to ``n_pcs``
    principal components (truncated SVD of the centred matrix) and clustered by KMeans with
    ``n_clusters`` (fewer when there are few cells). Cells without counts get label -1.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    M = _as_matrix(X).astype(np.float64)
    n_cells, n_genes = M.shape
    totals = np.asarray(M.sum(axis=1)).ravel()
    out = np.full(n_cells, -1, dtype=np.int64)
    ok = totals > 0
    k = int(min(n_clusters, ok.sum()))
    if k < 2:
        return out
    M = M[ok]
    scale = np.median(totals[ok]) / totals[ok]
    M = sparse.diags(scale) @ M
    M.data = np.log1p(M.data)
    dense = M.toarray() if n_genes <= 5000 else None
    n_comp = int(min(n_pcs, n_genes - 1, ok.sum() - 1))
    if dense is not None and n_comp >= 2:
        emb = PCA(n_components=n_comp, random_state=random_state).fit_transform(dense)
    elif n_comp >= 2:
        from sklearn.decomposition import TruncatedSVD

        emb = TruncatedSVD(n_components=n_comp, random_state=random_state).fit_transform(M)
    else:
        emb = M.toarray()
    out[ok] = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(emb)
    return out


def marker_genes(
    X, clusters, *, min_in: float = 0.2, max_out: float = 0.05, max_markers_per_type: int | None = 10
) -> pd.DataFrame:
    """Marker genes per cluster for MECR.

    A gene is a marker of cluster A when it is detected (count > 0) in more than ``min_in`` of A's
    cells and in less than ``max_out`` of the cells of *every* other cluster (the per-cluster
    reading of "< 5 % of others": a gene shared by two types is a marker of neither, even when the
    second type is rare and would vanish in a pooled "all other cells" fraction). Such a gene is a
    marker of at most one cluster. Per cluster the ``max_markers_per_type`` markers with the largest
    ``frac_in - max frac_out`` are kept (all when None).

    Returns
    -------
    pandas.DataFrame
        One row per marker: ``gene`` (column index), ``cluster``, ``frac_in``, ``frac_out``.
    """
    M = _as_matrix(X)
    cl = np.asarray(clusters)
    if cl.shape[0] != M.shape[0]:
        raise ValueError(f"clusters has {cl.shape[0]} entries for {M.shape[0]} cells; pass one per cell.")
    codes, uniques = pd.factorize(pd.Series(cl).where(pd.Series(cl).astype(str) != "-1"))
    keep = codes >= 0
    k = uniques.shape[0]
    empty = pd.DataFrame({"gene": [], "cluster": [], "frac_in": [], "frac_out": []})
    if k < 2:
        return empty
    B = M[keep].copy()
    B.data = (B.data > 0).astype(np.float64)
    B.eliminate_zeros()
    ind = sparse.csr_matrix(
        (np.ones(keep.sum()), (codes[keep], np.arange(keep.sum()))), shape=(k, keep.sum())
    )
    n_per = np.asarray(ind.sum(axis=1)).ravel()
    frac = np.asarray((ind @ B).todense()) / n_per[:, None]  # k x genes
    order = np.argsort(-frac, axis=0, kind="stable")
    best = order[0]
    genes = np.arange(frac.shape[1])
    f_in = frac[best, genes]
    f_out = frac[order[1], genes]
    is_marker = (f_in > min_in) & (f_out < max_out)
    df = pd.DataFrame(
        {"gene": genes[is_marker], "cluster": uniques[best[is_marker]], "frac_in": f_in[is_marker],
         "frac_out": f_out[is_marker]}
    )
    df["score"] = df["frac_in"] - df["frac_out"]
    df = df.sort_values(["cluster", "score", "gene"], ascending=[True, False, True], kind="stable")
    if max_markers_per_type is not None:
        df = df.groupby("cluster", sort=True).head(int(max_markers_per_type))
    return df.drop(columns="score").reset_index(drop=True)


def mecr(
    X,
    clusters=None,
    *,
    min_in: float = 0.2,
    max_out: float = 0.05,
    max_markers_per_type: int | None = 10,
    markers=None,
    n_clusters: int = 10,
    random_state=0,
) -> float:
    """Mutually exclusive co-expression rate of a cells x genes matrix (lower is better).

    Marker genes of each cell type are taken from the data's own clusters (:func:`marker_genes`:
    detected in > ``min_in`` of the type's cells and < ``max_out`` of every other type's). For every
    pair of markers ``(g, h)`` of *different* types,
    ``rate(g, h) = #cells(g > 0 and h > 0) / #cells(g > 0 or h > 0)``; MECR is the mean rate over
    those pairs. Genes that mark different cell types should not meet in one cell, so co-detection
    points at cells merged with their neighbours or at transcripts spilled across boundaries.
    Introduced by Hartman & Satija (2024, "Comparative analysis of multiplexed in situ gene
    expression profiling technologies", bioRxiv / eLife 2025) with markers from a scRNA-seq
    reference, and used to compare Xenium segmentations by Salas et al. (2025, Nat. Methods); here
    the markers come from the segmented data itself so that no reference is needed.

    Parameters
    ----------
    X
        Cells x genes counts (array, sparse matrix or AnnData).
    clusters
        Cell type or cluster per cell (-1 / NaN = ignore for markers). When None, computed with
        :func:`cluster_cells` (KMeans with ``n_clusters`` on PCA of normalised log counts).
    min_in, max_out
        Marker thresholds (fractions of cells with the gene detected).
    max_markers_per_type
        Keep at most this many markers per type (the most specific); None keeps all.
    markers
        Use these markers instead of deriving them from ``X``: the DataFrame returned by
        :func:`marker_genes` (columns ``gene``, ``cluster``) or a mapping ``type -> gene column
        indices``. Markers taken from a reference segmentation of the same data make the MECR of
        different segmentations comparable, and stay defined when a poor segmentation mixes cells so
        much that no gene remains specific to one of its own clusters.
    n_clusters, random_state
        Used only when ``clusters`` and ``markers`` are None.

    Returns
    -------
    float
        MECR in [0, 1]; NaN (with a logged note) when fewer than two types have markers.
    """
    M = _as_matrix(X)
    if markers is not None:
        markers = _markers_frame(markers, M.shape[1])
    else:
        if clusters is None:
            clusters = cluster_cells(M, n_clusters=n_clusters, random_state=random_state)
        markers = marker_genes(
            M, clusters, min_in=min_in, max_out=max_out, max_markers_per_type=max_markers_per_type
        )
    if markers["cluster"].nunique() < 2:
        logger.warning(
            "mecr: fewer than two cell types have marker genes (detected in > %.0f%% of one type and "
            "< %.0f%% of every other); MECR is undefined, returning NaN.", 100 * min_in, 100 * max_out
        )
        return float("nan")
    genes = markers["gene"].to_numpy(dtype=np.int64)
    types = pd.factorize(markers["cluster"])[0]
    B = M[:, genes].copy()
    B.data = (B.data > 0).astype(np.float64)
    B.eliminate_zeros()
    both = np.asarray((B.T @ B).todense())
    npos = np.diag(both)
    either = npos[:, None] + npos[None, :] - both
    iu, ju = np.triu_indices(genes.shape[0], k=1)
    sel = (types[iu] != types[ju]) & (either[iu, ju] > 0)
    if not sel.any():
        logger.warning("mecr: no pair of markers of different types is detected in any cell; returning NaN.")
        return float("nan")
    return float(np.mean(both[iu[sel], ju[sel]] / either[iu[sel], ju[sel]]))


def _markers_frame(markers, n_genes: int) -> pd.DataFrame:
    if isinstance(markers, pd.DataFrame):
        if not {"gene", "cluster"} <= set(markers.columns):
            raise ValueError("markers must have columns 'gene' and 'cluster' (as from marker_genes).")
        df = markers[["gene", "cluster"]].copy()
    elif isinstance(markers, dict):
        df = pd.DataFrame(
            [(g, c) for c, genes in markers.items() for g in np.atleast_1d(genes)], columns=["gene", "cluster"]
        )
    else:
        raise ValueError("markers must be a DataFrame from marker_genes or a dict type -> gene indices.")
    g = df["gene"].to_numpy()
    if g.size and (g.dtype.kind not in "iu" or g.min() < 0 or g.max() >= n_genes):
        raise ValueError(f"marker genes must be column indices in [0, {n_genes}); got {g[:5]}...")
    return df.drop_duplicates("gene").reset_index(drop=True)
