"""Loaders of the real reference sets in ``../shared/data`` as transcripts with reference labels.

Every loader returns an AnnData of transcripts (one obs per transcript, one-hot ``X``, coordinates
in um in ``obsm["spatial"]``) read with :func:`manifoldseg.io.read_transcripts` where the file
allows it, plus the reference labels in

- ``obs["ref_cell"]`` (int64, -1 = not in a reference cell), where a full-cell reference exists;
- ``obs["ref_nucleus"]`` (int64 nucleus id, -1 = outside reference nuclei), where one exists;

and ``uns["reference"]`` describing where the labels come from (and any assumption made, such as
a pixel size). No reference here is ground truth (see ``../shared/data/README.md``).

The reference columns are for the metrics only: :func:`segmentation_input` strips them (and the
vendor columns that the reader keeps) before anything is passed to ``ms.tl.segment``.

The data directory is ``$MANIFOLDSEG_DATA`` or ``<repo>/../shared/data``; :func:`data_dir`
returns None when neither exists.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

import manifoldseg as ms
from manifoldseg._constants import ORDER_KEY, SPATIAL_KEY

logger = logging.getLogger("manifoldseg.benchmarks")

REPO = Path(__file__).resolve().parents[1]
REF_CELL = "ref_cell"
REF_NUCLEUS = "ref_nucleus"
#: obs columns that hold reference (or vendor) labels and must never reach the segmentation.
REFERENCE_COLUMNS = (REF_CELL, REF_NUCLEUS, "vendor_cell", "vendor_cell_name", "vendor_nucleus",
                     "vendor_nucleus_name", "vendor_compartment", "overlaps_nucleus")

#: pciSeq CA1: pixel size not stated upstream (SOURCE.txt: about 0.25-0.3 um/px); this value is assumed.
PCISEQ_PIXEL_SIZE = 0.27
#: bento MERFISH U2-OS: pixel size not stated in the package; 0.108 um/px is the usual Zhuang-lab
#: MERFISH camera pixel (assumed; it only sets the um scale).
MERFISH_PIXEL_SIZE = 0.108
#: STARmap organoid voxels (SOURCE.txt: 465 um / 1024 px in xy, about 1 um in z).
STARMAP_VOXEL = (465.0 / 1024.0, 465.0 / 1024.0, 1.0)
STARMAP_GENES = ("TNNI1", "MYH7", "MYL7", "ATP2A2", "NANOG", "EOMES", "CS44", "TBXT")

#: The real sets: name -> (loader name, loader kwargs).
REAL_SETS = {
    "cosmx_fov2": ("load_cosmx", {"fov": 2}),
    "cosmx_fov3": ("load_cosmx", {"fov": 3}),
    "merscope": ("load_merscope", {}),
    "pciseq": ("load_pciseq", {}),
    "merfish": ("load_merfish", {}),
    "starmap": ("load_starmap", {}),
}


def data_dir() -> Path | None:
    """The real datasets: ``$MANIFOLDSEG_DATA`` or ``<repo>/../shared/data`` (None when absent)."""
    env = os.environ.get("MANIFOLDSEG_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


def _root(root) -> Path:
    root = data_dir() if root is None else Path(root)
    if root is None or not root.is_dir():
        raise FileNotFoundError(
            "real datasets not found: set MANIFOLDSEG_DATA to the data folder or place it at ../shared/data "
            "beside the repository."
        )
    return root


def _finish(adata, *, ref_cell=None, ref_nucleus=None, info: dict):
    """Drop vendor columns, add ref_* columns and uns['reference']."""
    for c in REFERENCE_COLUMNS:
        if c in adata.obs:
            del adata.obs[c]
    if ref_cell is not None:
        adata.obs[REF_CELL] = np.asarray(ref_cell, dtype=np.int64)
    if ref_nucleus is not None:
        adata.obs[REF_NUCLEUS] = np.asarray(ref_nucleus, dtype=np.int64)
    summary = {}
    if ref_cell is not None:
        rc = adata.obs[REF_CELL].to_numpy()
        summary["n_ref_cells"] = int(np.unique(rc[rc >= 0]).size)
        summary["ref_assigned_fraction"] = float((rc >= 0).mean())
    if ref_nucleus is not None:
        rn = adata.obs[REF_NUCLEUS].to_numpy()
        summary["n_ref_nuclei"] = int(np.unique(rn[rn >= 0]).size)
        summary["ref_nuclear_fraction"] = float((rn >= 0).mean())
    adata.uns["reference"] = {**info, **summary, "n_transcripts": int(adata.n_obs), "n_genes": int(adata.n_vars)}
    return adata


def _dense_ids(values) -> np.ndarray:
    """Non-negative ids -> 0..k-1 (sorted), negatives -> -1."""
    v = np.asarray(values, dtype=np.int64)
    out = np.full(v.shape, -1, dtype=np.int64)
    ok = v >= 0
    if ok.any():
        _, inv = np.unique(v[ok], return_inverse=True)
        out[ok] = inv
    return out


# --------------------------------------------------------------------------------------------- #
# CosMx Lung12 (one FOV at a time)
# --------------------------------------------------------------------------------------------- #
def load_cosmx(fov: int = 2, *, root=None):
    """CosMx Lung12, one FOV (2 or 3): NanoString's cell_ID as ``ref_cell``, nuclear compartment as ``ref_nucleus``.

    Coordinates are the global pixels times 0.18 um/px (``read_transcripts(platform="cosmx")``);
    negative probes are dropped. ``ref_cell`` is cell_ID (0 = none -> -1); ``ref_nucleus`` is
    ``ref_cell`` where ``CellComp == "Nuclear"``, else -1.
    """
    path = _root(root) / "cosmx_lung12_giotto" / "Lung12_tx_file.csv"
    df = pd.read_csv(path)
    if fov not in set(df["fov"].unique()):
        raise ValueError(f"fov must be one of {sorted(df['fov'].unique())}; got {fov!r}.")
    sub = df.loc[df["fov"] == fov].reset_index(drop=True)
    adata = ms.io.read_transcripts(sub, platform="cosmx", cell=False, keep_columns=["cell_ID", "CellComp"])
    cell = adata.obs["cell_ID"].to_numpy(dtype=np.int64)
    ref_cell = _dense_ids(np.where(cell > 0, cell, -1))
    comp = adata.obs["CellComp"].astype(str).to_numpy()
    ref_nuc = np.where(comp == "Nuclear", ref_cell, -1)
    del adata.obs["cell_ID"], adata.obs["CellComp"]
    return _finish(adata, ref_cell=ref_cell, ref_nucleus=ref_nuc, info={
        "dataset": f"cosmx_lung12 fov {fov}", "pixel_size_um": 0.18,
        "ref_cell": "NanoString cell_ID (0 = none)", "ref_nucleus": "cell_ID where CellComp == 'Nuclear'"})


# --------------------------------------------------------------------------------------------- #
# MERSCOPE mouse brain
# --------------------------------------------------------------------------------------------- #
def _point_in_polygons(xy: np.ndarray, polygons: pd.DataFrame, ids: dict) -> np.ndarray:
    """Index (via ``ids``) of the polygon holding each point (-1 = none; first polygon on overlap)."""
    import shapely

    geoms, codes = [], []
    for pid, grp in polygons.groupby("poly_ID", sort=False):
        ring = grp[["x", "y"]].to_numpy(dtype=np.float64)
        poly = shapely.make_valid(shapely.polygons(ring))
        geoms.append(poly)
        codes.append(ids[pid])
    tree = shapely.STRtree(geoms)
    pts = shapely.points(xy)
    hit_pt, hit_poly = tree.query(pts, predicate="intersects")
    out = np.full(xy.shape[0], -1, dtype=np.int64)
    order = np.lexsort((hit_poly, hit_pt))  # first polygon per point
    hit_pt, hit_poly = hit_pt[order], hit_poly[order]
    first = np.ones(hit_pt.size, dtype=bool)
    first[1:] = hit_pt[1:] != hit_pt[:-1]
    out[hit_pt[first]] = np.asarray(codes, dtype=np.int64)[hit_poly[first]]
    return out


def load_merscope(*, root=None):
    """MERSCOPE mouse brain: Vizgen cell polygons (point in polygon of the transcript's own z-plane).

    Both z-planes (0, 1) are pooled in 2D (x, y in um); polygon ids are shared across planes, so a
    cell keeps one ``ref_cell`` id in both. Polygon y is stored negated (Giotto) and is flipped
    back. Blank-* barcodes are dropped. No nuclear reference.
    """
    d = _root(root) / "merscope_mousebrain_giotto"
    adata = ms.io.read_transcripts(d / "vizgen_transcripts.gz", platform="merscope")
    xy = adata.obsm[SPATIAL_KEY][:, :2]
    zp = adata.obs["z_plane"].to_numpy()
    polys = {}
    for z in (0, 1):
        p = pd.read_csv(d / "cell_boundaries" / f"z{z}_polygons.gz")
        p["y"] = -p["y"]
        polys[z] = p
    all_ids = sorted(set(polys[0]["poly_ID"].astype(str)) | set(polys[1]["poly_ID"].astype(str)))
    ids = {k: i for i, k in enumerate(all_ids)}
    ref = np.full(adata.n_obs, -1, dtype=np.int64)
    for z, p in polys.items():
        p = p.assign(poly_ID=p["poly_ID"].astype(str))
        sel = np.flatnonzero(zp == z)
        ref[sel] = _point_in_polygons(xy[sel], p, ids)
    ref = _dense_ids(ref)
    per_plane = {f"ref_assigned_fraction_z{z}": float((ref[zp == z] >= 0).mean()) for z in (0, 1)}
    per_plane.update({f"n_ref_cells_z{z}": int(np.unique(ref[(zp == z) & (ref >= 0)]).size) for z in (0, 1)})
    return _finish(adata, ref_cell=ref, info={
        "dataset": "merscope_mousebrain", "ref_cell": "Vizgen polygons, point in polygon per z-plane (y negated)",
        "planes": "z0 and z1 pooled in 2D", **per_plane})


# --------------------------------------------------------------------------------------------- #
# pciSeq CA1 (nuclear reference only)
# --------------------------------------------------------------------------------------------- #
def load_pciseq(*, root=None, pixel_size: float = PCISEQ_PIXEL_SIZE):
    """pciSeq CA1 ISS: the DAPI nuclear label image at each spot's pixel as ``ref_nucleus``.

    x = column, y = row of the label image; the 6 spots at x = -1 (off image) get -1. No full-cell
    reference. Coordinates scaled by ``pixel_size`` (assumed 0.27 um/px, recorded in
    ``uns["reference"]``).
    """
    from scipy import sparse

    d = _root(root) / "pciseq_ca1_iss"
    spots = pd.read_csv(d / "spots.csv")
    adata = ms.io.read_transcripts(spots, platform="generic", x="x", y="y", gene="Gene", pixel_size=pixel_size)
    lab = sparse.load_npz(d / "label_image.coo.npz").tocsr()
    rows = adata.obs[ORDER_KEY].to_numpy()
    col = spots["x"].to_numpy()[rows].astype(np.int64)
    row = spots["y"].to_numpy()[rows].astype(np.int64)
    inside = (col >= 0) & (row >= 0) & (col < lab.shape[1]) & (row < lab.shape[0])
    nuc = np.full(adata.n_obs, -1, dtype=np.int64)
    nuc[inside] = np.asarray(lab[row[inside], col[inside]]).ravel().astype(np.int64)
    nuc[nuc == 0] = -1
    return _finish(adata, ref_nucleus=nuc, info={
        "dataset": "pciseq_ca1", "pixel_size_um": float(pixel_size), "pixel_size_assumed": True,
        "ref_nucleus": "label_image.coo.npz at (row=y, col=x); 0 / off image -> -1",
        "n_off_image": int((~inside).sum())})


# --------------------------------------------------------------------------------------------- #
# MERFISH U2-OS (bento)
# --------------------------------------------------------------------------------------------- #
def load_merfish(*, root=None, pixel_size: float = MERFISH_PIXEL_SIZE):
    """bento MERFISH U2-OS: the points' ``cell`` and ``nucleus`` columns as references.

    Points outside cells were removed upstream, so there is no background. ``notarget``/``blank``
    codewords are dropped. Pixel size assumed (see :data:`MERFISH_PIXEL_SIZE`).
    """
    path = _root(root) / "merfish_u2os_bento" / "merfish_sample.h5ad"
    adata = ms.io.read_transcripts(path, platform="generic", x="x", y="y", gene="gene", cell="cell",
                                   nucleus="nucleus", pixel_size=pixel_size)
    cell = adata.obs["vendor_cell"].to_numpy()
    nuc = adata.obs["vendor_nucleus"].to_numpy()
    # nucleus ids are per cell; make them unique per (cell, nucleus)
    key = np.where(nuc >= 0, cell * (int(nuc.max()) + 1) + nuc, -1)
    return _finish(adata, ref_cell=_dense_ids(cell), ref_nucleus=_dense_ids(key), info={
        "dataset": "merfish_u2os", "pixel_size_um": float(pixel_size), "pixel_size_assumed": True,
        "ref_cell": "bento points 'cell'", "ref_nucleus": "bento points 'nucleus' (-1 outside)",
        "note": "points outside cells were removed upstream: no background class"})


# --------------------------------------------------------------------------------------------- #
# STARmap organoid (ClusterMap's labels: a comparison, not a reference)
# --------------------------------------------------------------------------------------------- #
def load_starmap(*, root=None):
    """STARmap cardiac organoid in 3D: ClusterMap's own labels as ``ref_cell`` (secondary comparison).

    All 55,171 spots are kept (ClusterMap's noise spots get -1); voxels scaled to um
    (0.454 um in xy, 1 um in z).
    """
    d = _root(root) / "starmap_organoid_clustermap"
    s = pd.read_csv(d / "spots_all.csv")
    df = pd.DataFrame({
        "x": s["spot_location_1"].to_numpy(np.float64) * STARMAP_VOXEL[0],
        "y": s["spot_location_2"].to_numpy(np.float64) * STARMAP_VOXEL[1],
        "z": s["spot_location_3"].to_numpy(np.float64) * STARMAP_VOXEL[2],
        "gene": np.asarray(STARMAP_GENES, dtype=object)[s["gene"].to_numpy(np.int64) - 1],
    })
    adata = ms.io.read_transcripts(df, platform="generic", x="x", y="y", z="z", gene="gene")
    ref = s["clustermap"].fillna(-1).to_numpy()[adata.obs[ORDER_KEY].to_numpy()]
    return _finish(adata, ref_cell=_dense_ids(ref.astype(np.int64)), info={
        "dataset": "starmap_organoid (3D)", "voxel_um": list(STARMAP_VOXEL),
        "ref_cell": "ClusterMap's own output (a published method), not ground truth"})


# --------------------------------------------------------------------------------------------- #
# helpers used by the harness
# --------------------------------------------------------------------------------------------- #
def load(name: str, *, root=None):
    """Load one real set by name (see :data:`REAL_SETS`)."""
    if name not in REAL_SETS:
        raise ValueError(f"unknown real set {name!r}; choose one of {sorted(REAL_SETS)}.")
    fn, kw = REAL_SETS[name]
    return globals()[fn](root=root, **kw)


def binned(adata, bin_size: float):
    """Square bins of ``bin_size`` um with ``ref_cell`` / ``ref_nucleus`` carried by majority.

    Each bin's reference label is the majority of its transcripts' labels (ties to -1), as
    ``../shared/data/README.md`` prescribes for bin-level behaviour on real data.
    """
    labels = [c for c in (REF_CELL, REF_NUCLEUS) if c in adata.obs]
    out = ms.io.bin_transcripts(adata, bin_size, labels=labels)
    out.uns["reference"] = {**dict(adata.uns.get("reference", {})), "binned_um": float(bin_size)}
    return out


def segmentation_input(adata, *, prior_key: str | None = None):
    """A copy with only what the segmentation may see: ``X``, ``var``, ``obsm["spatial"]`` and non-reference obs.

    Every reference, vendor or truth label column (:data:`REFERENCE_COLUMNS`, ``ref_*``,
    ``true_*``, ``nucleus``) and all of ``uns`` are removed, so a reference can never leak into
    ``ms.tl.segment``; only ``prior_key`` (when given, e.g. the simulator's ``"nucleus"``) is kept.
    """
    import anndata

    keep = [c for c in adata.obs.columns
            if c == prior_key or (c not in REFERENCE_COLUMNS and not c.startswith(("ref_", "true_"))
                                  and c != "nucleus")]
    out = anndata.AnnData(X=adata.X.copy(), obs=adata.obs[keep].copy(), var=adata.var.copy())
    out.obsm[SPATIAL_KEY] = np.asarray(adata.obsm[SPATIAL_KEY], dtype=np.float64).copy()
    return out
