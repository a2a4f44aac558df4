"""Readers, binning and atomic writers of manifoldseg.io.

Two kinds of input: small files written here in each platform's exact format, and the real
files in ../shared/data (or $MANIFOLDSEG_DATA), skipped with a reason when absent.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import data_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import manifoldseg as ms
from manifoldseg._validate import InputError, MissingFileError, MissingKeyError

# ============================================================================ real data helpers


def _real(rel: str) -> Path:
    root = data_dir()
    if root is None:
        pytest.skip("real data folder not found: set MANIFOLDSEG_DATA or place it at <repo>/../shared/data")
    path = root / rel
    if not path.exists():
        pytest.skip(f"real data file {rel} not found under {root}")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ============================================================================ format-exact files


def _xenium_frame() -> pd.DataFrame:
    """Columns and dtypes of 10x Xenium transcripts (Xenium Onboard Analysis 1.x/2.x)."""
    return pd.DataFrame(
        {
            "transcript_id": np.array([281474976710656 + i for i in range(8)], dtype=np.uint64),
            "cell_id": ["UNASSIGNED", "aaabbbcc-1", "aaabbbcc-1", "UNASSIGNED", "aaacdeff-1", "aaacdeff-1",
                        "UNASSIGNED", "aaabbbcc-1"],
            "overlaps_nucleus": np.array([0, 1, 0, 0, 1, 1, 0, 1], dtype=np.uint8),
            "feature_name": ["EPCAM", "CD3E", "NegControlProbe_00042", "BLANK_0006", "EPCAM",
                             "UnassignedCodeword_0099", "CD3E", "EPCAM"],
            "x_location": np.array([10.5, 11.0, 12.25, 13.0, 40.0, 41.5, 80.0, 11.5], dtype=np.float32),
            "y_location": np.array([20.0, 21.5, 22.0, 23.0, 50.0, 51.0, 90.0, 20.5], dtype=np.float32),
            "z_location": np.array([15.1, 16.0, 15.5, 17.0, 14.0, 14.5, 18.0, 16.2], dtype=np.float32),
            "qv": np.array([40.0, 12.0, 30.0, 25.0, 39.9, 40.0, 19.99, 21.0], dtype=np.float32),
            "fov_name": ["A1"] * 4 + ["B2"] * 4,
            "nucleus_distance": np.array([3.0, 0.0, 1.0, 9.0, 0.0, 0.0, 12.0, 0.0], dtype=np.float32),
        }
    )


def _write_xenium_csv_gz(path: Path) -> Path:
    _xenium_frame().to_csv(path, index=False, compression="gzip")
    return path


def _write_xenium_parquet(path: Path) -> Path:
    """Older Xenium parquet stores feature_name and cell_id as binary (bytes)."""
    df = _xenium_frame()
    df["feature_name"] = [s.encode() for s in df["feature_name"]]
    df["cell_id"] = [s.encode() for s in df["cell_id"]]
    df.to_parquet(path, index=False)
    return path


MERSCOPE_CSV = """\
,barcode_id,global_x,global_y,global_z,x,y,fov,gene,transcript_id,cell_id
0,10,6400.037,4966.6514,0.0,1500.2,1033.1,12,Mlc1,ENSMUST00000001,-1
1,11,6400.041,4965.3774,1.0,1500.9,1021.0,12,Gprc5b,ENSMUST00000002,1234567890123
0,3,6401.5,4970.0,2.0,1510.0,1060.0,13,Blank-37,Blank-37,-1
2,10,6402.0,4968.0,6.0,1515.5,1050.0,13,Mlc1,ENSMUST00000001,1234567890123
"""

COSMX_CSV = """\
fov,cell_ID,x_global_px,y_global_px,x_local_px,y_local_px,z,target,CellComp
2,0,5324.26944444444,-157187.503333333,4829.825,3045.83,2,P2RY12,0
2,5,5829.52794444444,-157148.200033333,5335.0835,3085.1333,2,IL17RA,Nuclear
3,5,6000.0,-157000.0,33.3,3233.3,4,CD34,Cytoplasm
2,5,5830.0,-157149.0,5335.5,3084.3,3,NegPrb3,Membrane
3,7,6010.0,-157010.0,43.3,3223.3,1,SystemControl2,Nuclear
3,5,6001.0,-157001.0,34.3,3232.3,4,CD34,Nuclear
"""

GEM_TXT = """\
#FileFormat=GEMv0.1
#SortedBy=None
#BinSize=1
#Omics=Transcriptomics
#Stereo-seqChip=SS200000135TL_D1
#OffsetX=2500
#OffsetY=3500
geneID\tx\ty\tMIDCount
Gapdh\t100\t200\t3
Actb\t101\t200\t1
Blank-3\t101\t201\t2
Gapdh\t102\t203\t5
"""


def _write(path: Path, text: str, *, gz: bool = False) -> Path:
    if gz:
        with gzip.open(path, "wt", newline="") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


# ============================================================================ Xenium


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_xenium_exact_format(tmp_path, fmt, caplog):
    path = tmp_path / f"transcripts.{fmt}"
    (_write_xenium_csv_gz if fmt == "csv.gz" else _write_xenium_parquet)(path)
    with caplog.at_level(logging.INFO, logger="manifoldseg"):
        a = ms.io.read_transcripts(path)
    info = a.uns["manifoldseg_io"]
    assert info["platform"] == "xenium"
    assert info["n_rows_read"] == 8 and info["n_dropped_controls"] == 3
    assert any("dropped 3 control-probe rows" in r.getMessage() for r in caplog.records)
    # controls dropped, order kept, rows recorded
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 1, 4, 6, 7])
    assert list(a.obs_names) == ["0", "1", "4", "6", "7"]
    assert list(a.var_names) == ["CD3E", "EPCAM"]
    assert list(a.obs["gene"]) == ["EPCAM", "CD3E", "EPCAM", "CD3E", "EPCAM"]
    assert isinstance(a.X, sparse.csr_matrix) and a.X.dtype == np.float32
    np.testing.assert_array_equal(a.X.toarray(), [[0, 1], [1, 0], [0, 1], [1, 0], [0, 1]])
    # um, 3D from z_location
    xyz = a.obsm["spatial"]
    assert xyz.dtype == np.float64 and xyz.shape == (5, 3)
    np.testing.assert_allclose(xyz[0], [10.5, 20.0, 15.1], rtol=1e-6)
    # vendor labels: UNASSIGNED -> -1, strings -> ids with names
    vc = a.obs["vendor_cell"].to_numpy()
    assert vc[0] == -1 and vc[3] == -1 and vc[1] == vc[4] >= 0 and vc[2] != vc[1] and vc[2] >= 0
    assert a.obs["vendor_cell_name"].iloc[1] == "aaabbbcc-1"
    np.testing.assert_array_equal(a.obs["overlaps_nucleus"].to_numpy(), [False, True, True, False, True])
    np.testing.assert_array_equal(a.obs["vendor_nucleus"].to_numpy(), [-1, vc[1], vc[2], -1, vc[4]])
    assert list(a.obs["fov"]) == ["A1", "A1", "B2", "B2", "B2"]
    # the result survives an h5ad round trip
    out = ms.io.write_h5ad(a, tmp_path / "x.h5ad")
    b = ad.read_h5ad(out)
    assert b.uns["manifoldseg_io"]["n_dropped_controls"] == 3
    np.testing.assert_array_equal(b.obs["input_row"].to_numpy(), [0, 1, 4, 6, 7])


def test_xenium_qv_filter_and_controls_kept(tmp_path):
    path = _write_xenium_csv_gz(tmp_path / "transcripts.csv.gz")
    a = ms.io.read_transcripts(path, min_qv=20)
    # qv: 40, 12(dropped), ctrl, ctrl, 39.9, ctrl, 19.99(dropped), 21
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 4, 7])
    assert a.uns["manifoldseg_io"]["n_dropped_low_qv"] == 2
    assert a.uns["manifoldseg_io"]["min_qv"] == 20
    assert (a.obs["qv"].to_numpy() >= 20).all()
    b = ms.io.read_transcripts(path, drop_controls=False)
    assert b.n_obs == 8 and "BLANK_0006" in b.var_names and b.uns["manifoldseg_io"]["n_dropped_controls"] == 0
    c = ms.io.read_transcripts(path, z=False)
    assert c.obsm["spatial"].shape == (5, 2)


def test_xenium_is_gene_column_and_old_integer_cell_ids(tmp_path):
    df = _xenium_frame()
    df["cell_id"] = [-1, 7, 7, -1, 9, 9, -1, 7]  # Xenium 1.0-1.3: integer ids, -1 unassigned
    df["is_gene"] = [True, True, False, False, True, False, True, False]  # marks row 7 (EPCAM) too
    path = tmp_path / "transcripts.parquet"
    df.to_parquet(path)
    a = ms.io.read_transcripts(path)
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 1, 4, 6])
    np.testing.assert_array_equal(a.obs["vendor_cell"].to_numpy(), [-1, 7, 9, -1])
    assert "vendor_cell_name" not in a.obs
    assert a.uns["manifoldseg_io"]["n_dropped_controls"] == 4


# ============================================================================ MERSCOPE


def test_merscope_exact_format(tmp_path):
    path = _write(tmp_path / "detected_transcripts.csv", MERSCOPE_CSV)
    a = ms.io.read_transcripts(path)
    assert a.uns["manifoldseg_io"]["platform"] == "merscope"
    assert a.uns["manifoldseg_io"]["n_dropped_controls"] == 1
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 1, 3])
    assert a.obsm["spatial"].shape == (3, 2)  # global_z is a plane index: kept in obs, not used
    np.testing.assert_allclose(a.obsm["spatial"][0], [6400.037, 4966.6514])
    np.testing.assert_array_equal(a.obs["z_plane"].to_numpy(), [0, 1, 6])
    np.testing.assert_array_equal(a.obs["vendor_cell"].to_numpy(), [-1, 1234567890123, 1234567890123])
    np.testing.assert_array_equal(a.obs["fov"].to_numpy(), [12, 12, 13])
    b = ms.io.read_transcripts(path, z="global_z")  # 3D, planes 1.5 um apart
    np.testing.assert_allclose(b.obsm["spatial"][:, 2], [0.0, 1.5, 9.0])
    c = ms.io.read_transcripts(path, z="global_z", z_scale=2.0)
    np.testing.assert_allclose(c.obsm["spatial"][:, 2], [0.0, 2.0, 12.0])


# ============================================================================ CosMx


def test_cosmx_exact_format_pixels_and_per_fov_cells(tmp_path):
    path = _write(tmp_path / "Run5_tx_file.csv", COSMX_CSV)
    a = ms.io.read_transcripts(path)
    info = a.uns["manifoldseg_io"]
    assert info["platform"] == "cosmx" and info["pixel_size"] == 0.18
    assert info["n_dropped_controls"] == 2
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 1, 2, 5])
    np.testing.assert_allclose(a.obsm["spatial"][0], [5324.26944444444 * 0.18, -157187.503333333 * 0.18])
    # cell_ID 5 in FOV 2 and cell_ID 5 in FOV 3 are different cells; 0 = no cell
    vc = a.obs["vendor_cell"].to_numpy()
    assert vc[0] == -1 and vc[1] >= 0 and vc[2] >= 0 and vc[1] != vc[2] and vc[2] == vc[3]
    assert list(a.obs["vendor_cell_name"].astype(str)) == ["nan", "2_5", "3_5", "3_5"]
    assert list(a.obs["vendor_compartment"]) == ["0", "Nuclear", "Cytoplasm", "Nuclear"]
    np.testing.assert_array_equal(a.obs["vendor_nucleus"].to_numpy(), [-1, vc[1], -1, vc[3]])
    np.testing.assert_array_equal(a.obs["z_plane"].to_numpy(), [2, 2, 4, 4])
    b = ms.io.read_transcripts(path, pixel_size=0.12028)
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"] / 0.18 * 0.12028)
    with pytest.raises(InputError, match="z_scale="):
        ms.io.read_transcripts(path, z="z")
    c = ms.io.read_transcripts(path, z="z", z_scale=0.8)
    np.testing.assert_allclose(c.obsm["spatial"][:, 2], [1.6, 1.6, 3.2, 3.2])


# ============================================================================ Stereo-seq GEM


@pytest.mark.parametrize("gz", [False, True])
def test_stereoseq_gem_with_header_lines(tmp_path, gz):
    path = _write(tmp_path / ("sample.gem.gz" if gz else "sample.gem"), GEM_TXT, gz=gz)
    a = ms.io.read_transcripts(path)
    info = a.uns["manifoldseg_io"]
    assert info["platform"] == "stereoseq" and info["pixel_size"] == 0.5
    assert info["file_header"]["OffsetX"] == "2500" and info["file_header"]["BinSize"] == "1"
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), [0, 1, 3])
    assert list(a.var_names) == ["Actb", "Gapdh"]
    np.testing.assert_array_equal(a.X.toarray(), [[0, 3], [1, 0], [0, 5]])
    np.testing.assert_allclose(a.obsm["spatial"], [[50, 100], [50.5, 100], [51, 101.5]])
    ad.AnnData.write_h5ad(a, tmp_path / "gem.h5ad")  # header dict is h5ad-safe


def test_stereoseq_gem_midcounts_and_renamed_file(tmp_path):
    text = GEM_TXT.replace("MIDCount", "MIDCounts").replace("geneID", "geneName")
    path = _write(tmp_path / "renamed.txt", text)
    a = ms.io.read_transcripts(path, platform="stereoseq")
    assert a.X.sum() == 9 and a.uns["manifoldseg_io"]["columns"]["count"] == "MIDCounts"


# ============================================================================ generic


def test_generic_table_with_options(tmp_path):
    df = pd.DataFrame({"px": [1.0, 2.0, 3.0, 4.0], "py": [5.0, 6.0, 7.0, 8.0], "pz": [0, 1, 2, 3],
                       "name": ["b", "a", "b", "negcontrol_1"], "n": [1, 2, 3, 4], "lab": [3, -1, 3, 4]})
    path = tmp_path / "points.tsv"
    df.to_csv(path, sep="\t", index=False)
    a = ms.io.read_transcripts(path, x="px", y="py", z="pz", gene="name", count="n", cell="lab",
                               pixel_size=2.0, keep_columns=["n"])
    assert a.uns["manifoldseg_io"]["platform"] == "generic"
    np.testing.assert_allclose(a.obsm["spatial"], [[2, 10, 0], [4, 12, 2], [6, 14, 4]])  # z_scale = pixel_size
    np.testing.assert_array_equal(a.X.toarray(), [[0, 1], [2, 0], [0, 3]])
    np.testing.assert_array_equal(a.obs["vendor_cell"].to_numpy(), [3, -1, 3])
    np.testing.assert_array_equal(a.obs["n"].to_numpy(), [1, 2, 3])


def test_vendor_cell_names_match_rows_in_any_order(tmp_path):
    names = ["zeta-1", "alpha-1", "UNASSIGNED", "mid-1", "alpha-1", None, "zeta-1"]
    df = pd.DataFrame({"x": np.arange(7.0), "y": np.zeros(7), "gene": ["A"] * 7, "cell": names})
    for src in (df, tmp_path / "t.parquet", tmp_path / "t.csv"):
        if not isinstance(src, pd.DataFrame):
            df.to_parquet(src) if src.suffix == ".parquet" else df.to_csv(src, index=False)
        a = ms.io.read_transcripts(src, cell="cell")
        vc = a.obs["vendor_cell"].to_numpy()
        got = a.obs["vendor_cell_name"].astype(object).where(vc >= 0, None).tolist()
        # generic background tokens are -1, '' and missing; 'UNASSIGNED' is a name here
        assert got == ["zeta-1", "alpha-1", "UNASSIGNED", "mid-1", "alpha-1", None, "zeta-1"]
        assert vc[5] == -1 and vc[0] == vc[6] and vc[1] == vc[4] and len(set(vc[[0, 1, 2, 3]])) == 4


def test_generic_dataframe_input_and_unicode_genes():
    df = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 0.0, 1.0], "gene": ["Ägf", "ß-actin", "Ägf"]})
    a = ms.io.read_transcripts(df)
    assert list(a.var_names) == ["ß-actin", "Ägf"] or list(a.var_names) == sorted(["Ägf", "ß-actin"])
    assert a.uns["manifoldseg_io"]["path"] == "<DataFrame>"
    assert a.X.sum() == 3


def test_excel_bom_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("x,y,gene\n1,2,A\n".encode("utf-8-sig"))
    a = ms.io.read_transcripts(path)
    assert a.uns["manifoldseg_io"]["columns"]["x"] == "x" and a.n_obs == 1


def test_numeric_gene_codes_become_strings(tmp_path):
    path = _write(tmp_path / "spots.csv", "x,y,gene\n1,2,3\n2,3,1\n4,5,3\n")
    a = ms.io.read_transcripts(path)
    assert list(a.var_names) == ["1", "3"]
    np.testing.assert_array_equal(a.X.toarray(), [[0, 1], [1, 0], [0, 1]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False),
            st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False),
            st.sampled_from(["A", "B", "Blank-1", "C"]),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_reader_property_every_row_once_counts_conserved(rows):
    df = pd.DataFrame(rows, columns=["x", "y", "gene", "count"])
    n_ctrl = int((df["gene"] == "Blank-1").sum())
    if n_ctrl == len(df):
        with pytest.raises(InputError, match="no rows left"):
            ms.io.read_transcripts(df)
        return
    a = ms.io.read_transcripts(df)
    kept = df[df["gene"] != "Blank-1"]
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), kept.index.to_numpy())
    assert a.X.sum() == kept["count"].sum()
    np.testing.assert_allclose(a.obsm["spatial"], kept[["x", "y"]].to_numpy())
    assert list(a.obs["gene"].astype(str)) == list(kept["gene"])
    assert a.uns["manifoldseg_io"]["n_dropped_controls"] == n_ctrl


# ============================================================================ reader errors


def test_missing_columns_lists_found_and_options(tmp_path):
    path = _write(tmp_path / "t.csv", "col_a,col_b,target_name\n1,2,A\n")
    with pytest.raises(InputError) as err:
        ms.io.read_transcripts(path)
    msg = str(err.value)
    assert "no column for x, y, gene" in msg
    assert "'col_a', 'col_b', 'target_name'" in msg
    assert "x='...', y='...', gene='...'" in msg and "platform=" in msg
    with pytest.raises(InputError, match=r"x='nope' not found.*Columns found"):
        ms.io.read_transcripts(path, x="nope", y="col_b", gene="target_name")
    a = ms.io.read_transcripts(path, x="col_a", y="col_b", gene="target_name")
    assert a.n_obs == 1


def test_wrong_platform_preset_names_its_columns(tmp_path):
    path = _write(tmp_path / "t.csv", "x,y,gene\n1,2,A\n")
    with pytest.raises(InputError, match=r"platform 'xenium' looks for x in \['x_location'\]"):
        ms.io.read_transcripts(path, platform="xenium")


def test_unknown_platform():
    with pytest.raises(InputError, match=r"platform='visium' is not valid; choose one of 'xenium', 'merscope'"):
        ms.io.read_transcripts(pd.DataFrame({"x": [1.0]}), platform="visium")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_nan_inf_coordinates(tmp_path, bad):
    path = _write(tmp_path / "t.csv", f"x,y,gene\n1,2,A\n{bad},3,B\n4,5,A\n")
    with pytest.raises(InputError, match=r"1 of 3 rows with NaN.*Drop"):
        ms.io.read_transcripts(path)


def test_non_numeric_coordinates_and_counts(tmp_path):
    path = _write(tmp_path / "t.csv", "x,y,gene,count\n1,2,A,1\nabc,3,B,1\n")
    with pytest.raises(InputError, match=r"coordinate column 'x'.*non-numeric"):
        ms.io.read_transcripts(path)
    path2 = _write(tmp_path / "u.csv", "x,y,gene,count\n1,2,A,one\n")
    with pytest.raises(InputError, match=r"count column 'count'.*not numeric"):
        ms.io.read_transcripts(path2)


def test_negative_counts(tmp_path):
    path = _write(tmp_path / "s.gem", GEM_TXT.replace("\t5\n", "\t-5\n"))
    with pytest.raises(InputError, match=r"1 negative values.*raw"):
        ms.io.read_transcripts(path)


def test_float_counts_logged(tmp_path, caplog):
    path = _write(tmp_path / "t.csv", "x,y,gene,count\n1,2,A,0.5\n2,3,B,2\n")
    with caplog.at_level(logging.WARNING, logger="manifoldseg"):
        a = ms.io.read_transcripts(path)
    assert a.X.sum() == 2.5
    assert any("non-integer" in r.getMessage() for r in caplog.records)


def test_empty_inputs(tmp_path):
    with pytest.raises(InputError, match="no data rows"):
        ms.io.read_transcripts(_write(tmp_path / "h.csv", "x,y,gene\n"))
    with pytest.raises(InputError, match="is empty"):
        ms.io.read_transcripts(_write(tmp_path / "e.csv", ""))
    with pytest.raises(InputError, match="no rows left after dropping 2 control"):
        ms.io.read_transcripts(_write(tmp_path / "c.csv", "x,y,gene\n1,2,NegPrb1\n3,4,BLANK_1\n"))


def test_missing_gene_values(tmp_path):
    with pytest.raises(InputError, match=r"gene column 'gene' is empty in 1 rows \(first data rows: \[1\]\)"):
        ms.io.read_transcripts(_write(tmp_path / "t.csv", "x,y,gene\n1,2,A\n3,4,\n"))


def test_min_qv_without_qv_column(tmp_path):
    with pytest.raises(InputError, match="min_qv=20 needs a 'qv' column"):
        ms.io.read_transcripts(_write(tmp_path / "t.csv", "x,y,gene\n1,2,A\n"), min_qv=20)


def test_missing_and_corrupt_table_files(tmp_path):
    with pytest.raises(MissingFileError, match="not found"):
        ms.io.read_transcripts(tmp_path / "nope.csv")
    full = gzip.compress(b"x,y,gene\n" + b"1,2,A\n" * 5000)
    (tmp_path / "trunc.csv.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="trunc.csv.gz"):
        ms.io.read_transcripts(tmp_path / "trunc.csv.gz")
    (tmp_path / "fake.csv.gz").write_text("x,y,gene\n")
    with pytest.raises(InputError, match="not gzip-compressed"):
        ms.io.read_transcripts(tmp_path / "fake.csv.gz")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\0" * 50)
    with pytest.raises(InputError, match="not a valid Parquet"):
        ms.io.read_transcripts(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="is a folder"):
        ms.io.read_transcripts(tmp_path)


def test_bad_numeric_options():
    df = pd.DataFrame({"x": [1.0], "y": [1.0], "gene": ["A"]})
    with pytest.raises(InputError, match="pixel_size"):
        ms.io.read_transcripts(df, pixel_size=0)
    with pytest.raises(InputError, match="z_scale"):
        ms.io.read_transcripts(df, z_scale=-1)
    with pytest.raises(InputError, match="min_qv"):
        ms.io.read_transcripts(df, min_qv="high")


# ============================================================================ h5ad


def _spots(n=20, key="spatial"):
    rng = np.random.default_rng(1)
    a = ad.AnnData(X=sparse.csr_matrix(rng.poisson(1.0, (n, 4)).astype(np.float32)))
    a.obsm[key] = rng.uniform(0, 50, (n, 2))
    return a


def test_read_h5ad_roundtrip_does_not_modify(tmp_path):
    path = tmp_path / "spots.h5ad"
    _spots().write_h5ad(path)
    before = _sha(path)
    a = ms.io.read_h5ad(path)
    assert a.n_obs == 20 and a.obsm["spatial"].shape == (20, 2)
    b = ms.io.read_h5ad(path, backed="r")
    assert b.isbacked
    b.file.close()
    assert _sha(path) == before


def test_read_h5ad_missing_spatial_key(tmp_path):
    path = tmp_path / "spots.h5ad"
    _spots(key="X_coords").write_h5ad(path)
    with pytest.raises(MissingKeyError) as err:
        ms.io.read_h5ad(path)
    msg = str(err.value)
    assert "no obsm['spatial']" in msg and "'X_coords'" in msg and "spatial_key=" in msg
    assert ms.io.read_h5ad(path, spatial_key="X_coords").n_obs == 20
    assert ms.io.read_h5ad(path, spatial_key=None).n_obs == 20


def test_read_h5ad_missing_corrupt_truncated(tmp_path):
    with pytest.raises(MissingFileError, match="not found"):
        ms.io.read_h5ad(tmp_path / "missing.h5ad")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        ms.io.read_h5ad(tmp_path / "missing.h5ad")
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"this is not hdf5 at all" * 10)
    with pytest.raises(InputError, match=r"junk.h5ad' is not a valid h5ad file"):
        ms.io.read_h5ad(junk)
    good = tmp_path / "good.h5ad"
    _spots(2000).write_h5ad(good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.h5ad"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"trunc.h5ad' is not a valid h5ad file or is truncated"):
        ms.io.read_h5ad(trunc)


def test_read_transcripts_from_h5ad_points(tmp_path):
    a = _spots(3)
    a.uns["points"] = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "gene": ["A", "B"],
                                    "cell": ["c1", "c2"], "nucleus": [-1, 0]})
    path = tmp_path / "pts.h5ad"
    a.write_h5ad(path)
    t = ms.io.read_transcripts(path)
    assert t.n_obs == 2 and list(t.obs["vendor_cell_name"]) == ["c1", "c2"]
    np.testing.assert_array_equal(t.obs["vendor_nucleus"].to_numpy(), [-1, 0])
    with pytest.raises(MissingKeyError, match=r"uns\['spots'\].*'points'"):
        ms.io.read_transcripts(path, points_key="spots")


# ============================================================================ binning


def test_bin_transcripts_counts_index_and_majority():
    xy = np.array([[0.1, 0.1], [0.9, 0.2], [1.5, 0.5], [0.5, 0.9], [1.1, 1.9], [-0.5, 0.5], [0.2, 0.3]])
    gene = np.array([0, 1, 1, 0, 0, 1, 1])
    X = sparse.csr_matrix((np.array([1, 1, 1, 1, 1, 1, 3], np.float32), (np.arange(7), gene)), shape=(7, 2))
    a = ad.AnnData(X=X)
    a.obsm["spatial"] = xy
    a.obs["true_cell"] = np.array([5, 5, 2, -1, 2, 7, -1])
    a.obs["true_type"] = pd.Categorical(["t1", "t1", "t2", "t1", "t2", "t2", "t2"])
    a.obs["other"] = 1.0
    before = a.copy()
    b, index = ms.io.bin_transcripts(a, 1.0, return_index=True)
    # bins (x, y): (0,0) rows 0,1,3,6; (1,0) row 2; (1,1) row 4; (-1,0) row 5
    assert b.n_obs == 4
    assert list(zip(b.obs["bin_x"], b.obs["bin_y"], strict=True)) == [(-1, 0), (0, 0), (1, 0), (1, 1)]
    np.testing.assert_array_equal(index, [1, 1, 2, 1, 3, 0, 1])
    np.testing.assert_array_equal(b.obs["n_transcripts"].to_numpy(), [1, 4, 1, 1])
    np.testing.assert_allclose(b.obsm["spatial"], [[-0.5, 0.5], [0.5, 0.5], [1.5, 0.5], [1.5, 1.5]])
    assert b.X.sum() == a.X.sum()
    np.testing.assert_array_equal(b.X.toarray()[1], [2, 4])
    # bin (0,0): cell 5 has 2 counts, -1 has 1 + 3 = 4 counts -> -1 wins by counts
    np.testing.assert_array_equal(b.obs["true_cell"].to_numpy(), [7, -1, 2, 2])
    # bin (0,0): t1 and t2 both have 3 counts; t1 has more rows (3 vs 1) and wins
    assert list(b.obs["true_type"]) == ["t2", "t1", "t2", "t2"]
    assert "other" not in b.obs
    # the input is untouched
    assert a.obs.equals(before.obs) and np.array_equal(a.obsm["spatial"], before.obsm["spatial"])
    back = ms.io.labels_to_transcripts(b.obs["true_cell"], index)
    np.testing.assert_array_equal(back, [-1, -1, 2, -1, 2, 7, -1])
    back_cat = ms.io.labels_to_transcripts(b.obs["true_type"], index)
    assert list(back_cat) == ["t1", "t1", "t2", "t1", "t2", "t2", "t1"]


def test_bin_majority_tie_goes_to_smallest_and_zero_labels():
    a = ad.AnnData(X=sparse.csr_matrix(np.ones((4, 1), np.float32)))
    a.obsm["spatial"] = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]])
    a.obs["vendor_cell"] = [3, 3, 1, 1]
    b = ms.io.bin_transcripts(a, 2.0, labels=["vendor_cell"])
    assert b.obs["vendor_cell"].tolist() == [1]
    assert ms.io.bin_transcripts(a, 2.0, labels=()).obs.columns.tolist() == ["bin_x", "bin_y", "n_transcripts"]


def test_bin_transcripts_errors():
    a = _spots()
    with pytest.raises(InputError, match="bin_size"):
        ms.io.bin_transcripts(a, 0)
    with pytest.raises(MissingKeyError, match=r"labels \['true_cell'\] not found"):
        ms.io.bin_transcripts(a, 1.0, labels=["true_cell"])
    a.obs["score"] = np.linspace(0, 1, a.n_obs)
    with pytest.raises(InputError, match="neither integer labels nor categorical"):
        ms.io.bin_transcripts(a, 1.0, labels=["score"])
    with pytest.raises(MissingKeyError, match="spatial_key="):
        ms.io.bin_transcripts(a, 1.0, spatial_key="xy")
    with pytest.raises(InputError, match="refers to bin"):
        ms.io.labels_to_transcripts(np.arange(3), np.array([0, 5]))


def test_bin_3d_and_gem_counts(tmp_path):
    path = _write(tmp_path / "s.gem", GEM_TXT)
    g = ms.io.read_transcripts(path)  # um: (50,100) (50.5,100) (51,101.5) with counts 3, 1, 5
    b = ms.io.bin_transcripts(g, 1.0)
    assert b.X.sum() == 9 and b.n_obs == 2
    assert b.uns["bins"]["bin_size"] == 1.0 and b.uns["manifoldseg_io"]["platform"] == "stereoseq"
    a = _spots()
    a.obsm["spatial"] = np.column_stack([a.obsm["spatial"], np.arange(a.n_obs)])
    b3 = ms.io.bin_transcripts(a, 10.0)
    assert b3.obsm["spatial"].shape[1] == 2 and b3.X.sum() == a.X.sum()


# ============================================================================ writers


def test_write_h5ad_refuses_existing_then_overwrites(tmp_path):
    path = tmp_path / "out.h5ad"
    ms.io.write_h5ad(_spots(3), path)
    with pytest.raises(FileExistsError, match=r"already exists.*overwrite=True.*--force"):
        ms.io.write_h5ad(_spots(5), path)
    assert ad.read_h5ad(path).n_obs == 3
    ms.io.write_h5ad(_spots(5), path, overwrite=True)
    assert ad.read_h5ad(path).n_obs == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5ad"]


def test_write_h5ad_failure_leaves_nothing(tmp_path):
    bad = _spots(3)
    bad.uns["unwritable"] = object()
    with pytest.raises(Exception):  # noqa: B017 - whatever anndata raises
        ms.io.write_h5ad(bad, tmp_path / "out.h5ad")
    assert list(tmp_path.iterdir()) == []
    # an existing output survives a failed overwrite unchanged
    ms.io.write_h5ad(_spots(3), tmp_path / "out.h5ad")
    before = _sha(tmp_path / "out.h5ad")
    with pytest.raises(Exception):  # noqa: B017
        ms.io.write_h5ad(bad, tmp_path / "out.h5ad", overwrite=True)
    assert _sha(tmp_path / "out.h5ad") == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".parquet"])
def test_write_table_roundtrip(tmp_path, suffix):
    df = pd.DataFrame({"input_row": np.arange(4), "cell_id": [0, -1, 0, 1], "gene": list("abca")})
    path = ms.io.write_table(df, tmp_path / f"t{suffix}")
    if suffix == ".parquet":
        back = pd.read_parquet(path)
    else:
        back = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    pd.testing.assert_frame_equal(back, df)
    if suffix == ".csv.gz":
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    with pytest.raises(FileExistsError):
        ms.io.write_table(df, path)


def test_write_table_bad_suffix_and_folder(tmp_path):
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(InputError, match=r"suffixes .csv"):
        ms.io.write_table(df, tmp_path / "t.xlsx")
    with pytest.raises(InputError, match="does not exist"):
        ms.io.write_table(df, tmp_path / "nope" / "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_failure_removes_temp(tmp_path):
    target = tmp_path / "cells.geojson"
    with pytest.raises(RuntimeError):
        with ms.io.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with ms.io.atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert target.read_text() == "{}"
    # directories (zarr stores)
    store = tmp_path / "out.zarr"
    with ms.io.atomic_path(store, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    with ms.io.atomic_path(store, directory=True, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in store.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.geojson", "out.zarr"]


# ============================================================================ real files


@pytest.mark.realdata
def test_real_cosmx_lung12():
    path = _real("cosmx_lung12_giotto/Lung12_tx_file.csv")
    before = _sha(path)
    a = ms.io.read_transcripts(path)
    info = a.uns["manifoldseg_io"]
    assert info["platform"] == "cosmx" and info["n_rows_read"] == 25825
    assert info["n_dropped_controls"] == 275  # NegPrb* rows (SOURCE.txt)
    assert a.n_obs == 25825 - 275 and not any(g.startswith("NegPrb") for g in a.var_names)
    # 67 cells in FOV 2 + 53 in FOV 3 (cell_ID is per FOV)
    vc = a.obs["vendor_cell"].to_numpy()
    assert np.unique(vc[vc >= 0]).size == 120
    for fov, frac in ((2, 0.785), (3, 0.686)):
        sel = a.obs["fov"].to_numpy() == fov
        raw = pd.read_csv(path)
        raw = raw[(raw["fov"] == fov) & ~raw["target"].str.startswith("NegPrb")]
        assert (vc[sel] >= 0).mean() == pytest.approx((raw["cell_ID"] > 0).mean())
        assert (vc[sel] >= 0).mean() == pytest.approx(frac, abs=0.02)
    raw = pd.read_csv(path)
    r = a.obs["input_row"].to_numpy()
    np.testing.assert_allclose(a.obsm["spatial"][:, 0], raw["x_global_px"].to_numpy()[r] * 0.18)
    assert (a.obs["gene"].astype(str).to_numpy() == raw["target"].to_numpy()[r]).all()
    nuc = a.obs["vendor_nucleus"].to_numpy()
    assert ((nuc >= 0) == (raw["CellComp"].to_numpy()[r] == "Nuclear") & (vc >= 0)).all()
    b = ms.io.bin_transcripts(a, 2.0)
    assert b.X.sum() == a.n_obs and "vendor_cell" in b.obs and "vendor_nucleus" in b.obs
    assert _sha(path) == before


@pytest.mark.realdata
def test_real_merscope_mousebrain():
    path = _real("merscope_mousebrain_giotto/vizgen_transcripts.gz")
    a = ms.io.read_transcripts(path)
    info = a.uns["manifoldseg_io"]
    assert info["platform"] == "merscope" and info["n_rows_read"] == 80343
    assert info["n_dropped_controls"] == 337 and a.n_vars == 450  # 109 Blank-* barcodes gone
    xy = a.obsm["spatial"]
    assert xy.shape == (80006, 2)
    assert 6400 <= xy[:, 0].min() and xy[:, 0].max() <= 6901 and 4699 <= xy[:, 1].min() and xy[:, 1].max() <= 5151
    assert set(np.unique(a.obs["z_plane"])) == {0, 1}
    a3 = ms.io.read_transcripts(path, z="global_z")
    assert set(np.unique(a3.obsm["spatial"][:, 2])) == {0.0, 1.5}


@pytest.mark.realdata
def test_real_pciseq_ca1_keeps_off_image_spots():
    path = _real("pciseq_ca1_iss/spots.csv")
    a = ms.io.read_transcripts(path)  # generic: Gene, x, y (pixels)
    assert a.uns["manifoldseg_io"]["platform"] == "generic"
    assert a.n_obs == 72336 and a.n_vars == 92
    # 6 spots at x = -1 are kept (finite coordinates, one obs per row), in file order
    off = a.obsm["spatial"][:, 0] == -1
    assert off.sum() == 6
    np.testing.assert_array_equal(a.obs["input_row"].to_numpy(), np.arange(72336))
    assert a.obs["gene"].iloc[1] == "Plp1" and a.obsm["spatial"][1].tolist() == [-1.0, 4735.0]


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::anndata.OldFormatWarning")  # bento wrote the file with an old anndata
def test_real_merfish_u2os_points_in_h5ad():
    path = _real("merfish_u2os_bento/merfish_sample.h5ad")
    with pytest.raises(MissingKeyError, match=r"uns\['points'\].*read_transcripts"):
        ms.io.read_h5ad(path)
    a = ms.io.read_transcripts(path)
    assert a.uns["manifoldseg_io"]["n_rows_read"] == 221090
    n_notarget = a.uns["manifoldseg_io"]["n_dropped_controls"]
    assert n_notarget > 0 and not any(g.startswith("notarget") for g in a.var_names)
    vc = a.obs["vendor_cell"].to_numpy()
    assert np.unique(vc).size == 15 and (vc >= 0).all()  # no background in this set
    assert (a.obs["vendor_nucleus"].to_numpy() >= 0).mean() == pytest.approx(0.37, abs=0.01)
    b = ms.io.read_transcripts(path, drop_controls=False)
    assert b.n_obs == 221090 and b.n_vars == 135


@pytest.mark.realdata
def test_real_starmap_3d():
    path = _real("starmap_organoid_clustermap/spots_all.csv")
    a = ms.io.read_transcripts(
        path, x="spot_location_1", y="spot_location_2", z="spot_location_3", pixel_size=0.454, z_scale=1.0,
        cell="clustermap", keep_columns=["is_noise"],
    )
    assert a.n_obs == 55171 and a.n_vars == 8 and a.obsm["spatial"].shape == (55171, 3)
    assert a.obsm["spatial"][:, :2].max() <= 1024 * 0.454 and a.obsm["spatial"][:, 2].max() <= 97
    vc = a.obs["vendor_cell"].to_numpy()
    assert np.unique(vc[vc >= 0]).size == 1125
    assert set(np.unique(a.obs["is_noise"])) <= {-1, 0}
    b, index = ms.io.bin_transcripts(a, 2.0, return_index=True)
    assert b.X.sum() == a.n_obs and index.shape == (a.n_obs,)
    assert b.obsm["spatial"].shape[1] == 2
