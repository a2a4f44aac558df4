"""Segmenting tables from disk in bounded memory (manifoldseg._stream): chunked reads, shards per
tile, incremental output; the same labels and the same output as the in-memory path."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_tiling import oracle  # the perfect local segmenter (true cells given as prior)

import manifoldseg as ms
from manifoldseg import _stream as S
from manifoldseg import _tiling as T
from manifoldseg._cli_table import full_labels, write_labeled_table
from manifoldseg._validate import InputError
from manifoldseg.cli import main

CHUNK = 3000


def failing(coords, X, *, cell_diameter, prior, random_state, **kw):
    if coords[:, 0].max() > 100:
        raise RuntimeError("tile failed on purpose")
    return oracle(coords, X, cell_diameter=cell_diameter, prior=prior, random_state=random_state)


def same_partition(a, b) -> bool:
    """Equal up to renumbering, with the same background."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = np.unique(np.stack([a[a >= 0], b[b >= 0]], 1), axis=0)
    return len(pairs) == len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1]))


def _table(adata, seed: int) -> pd.DataFrame:
    """A transcript table with extra columns and control-probe rows the reader drops."""
    xyz = np.asarray(adata.obsm["spatial"])
    df = pd.DataFrame({"x": np.round(xyz[:, 0], 4), "y": np.round(xyz[:, 1], 4),
                       "gene": adata.obs["gene"].astype(str).to_numpy(),
                       "true_cell": adata.obs["true_cell"].to_numpy().astype(np.int64),
                       "nucleus": adata.obs["nucleus"].to_numpy().astype(np.int64)})
    rng = np.random.default_rng(seed)
    df["note"] = rng.choice(["a", "b c", ""], size=len(df))
    df["qv"] = np.round(rng.uniform(10, 40, size=len(df)), 2)
    ctrl = rng.choice(len(df), size=len(df) // 50, replace=False)
    df.loc[ctrl, "gene"] = "NegControlProbe_" + pd.Series(ctrl % 7, index=ctrl).astype(str)
    return df


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """150 x 150 um of transcripts (about 32k rows, many cells on the borders of 50 um tiles)
    as Parquet with small row groups, CSV and TSV.gz."""
    d = tmp_path_factory.mktemp("stream")
    df = _table(ms.datasets.simulate(mode="transcripts", width=150.0, height=150.0, random_state=3), 0)
    df.to_parquet(d / "tx.parquet", index=False, row_group_size=2000)
    df.to_csv(d / "tx.csv", index=False)
    with gzip.open(d / "tx.tsv.gz", "wt") as fh:
        df.to_csv(fh, sep="\t", index=False)
    return d, df


def in_memory(path, segmenter=None, **kw):
    """The in-memory path: read_transcripts, segment_tiled, full labels per input row."""
    ad = ms.io.read_transcripts(path, keep_columns=["true_cell"])
    prior = ad.obs["true_cell"].to_numpy().astype(np.int64)
    res = T.segment_tiled(ad.obsm["spatial"], ad.X, prior=prior if segmenter else None, segmenter=segmenter,
                          scheduler="synchronous", progress=False, **kw)
    n_rows = ad.uns["manifoldseg_io"]["n_rows_read"]
    return res, full_labels(n_rows, ad.obs["input_row"].to_numpy(), res.labels, res.confidence)


ORACLE = {"tile_size": 50.0, "cell_diameter": 11.0, "segmenter": oracle}


@pytest.mark.parametrize(("name", "out"), [("tx.parquet", "o.parquet"), ("tx.csv", "o.csv"),
                                           ("tx.tsv.gz", "o.csv.gz"), ("tx.parquet", "o.tsv"),
                                           ("tx.csv", "o.parquet")])
def test_oracle_labels_and_output_equal_the_in_memory_path(tables, tmp_path, name, out):
    d, df = tables
    res, (lab, conf) = in_memory(d / name, **ORACLE)
    assert res.info["n_tiles"] == 9 and res.info["n_cells_left_to_neighbours"] > 20
    info = S.segment_table(d / name, tmp_path / out, chunk_rows=CHUNK, prior_column="true_cell",
                           scheduler="synchronous", progress=False, **ORACLE)
    assert np.array_equal(info["labels"], res.labels)
    assert info["n_cells"] == res.info["n_cells"] and info["n_tiles"] == 9
    assert info["max_rows_read"] <= CHUNK
    assert info["n_dropped_controls"] == len(df) // 50
    # the output is the in-memory writer's, row for row, all input columns unchanged
    fmt = out[out.index("."):]
    write_labeled_table(d / name, tmp_path / f"ref{fmt}", n_rows=len(df), labels=lab, confidence=conf,
                        label_column="cell_id", confidence_column="cell_id_confidence", output_format=fmt)
    if fmt == ".parquet":
        got, ref = pd.read_parquet(tmp_path / out), pd.read_parquet(tmp_path / f"ref{fmt}")
        pd.testing.assert_frame_equal(got, ref)
        if name.endswith(".parquet"):
            assert pq.read_table(tmp_path / out).equals(pq.read_table(tmp_path / f"ref{fmt}"))
    else:
        opener = gzip.open if fmt.endswith(".gz") else open
        with opener(tmp_path / out, "rt") as a, opener(tmp_path / f"ref{fmt}", "rt") as b:
            assert a.read() == b.read()
    sep = "\t" if fmt == ".tsv" else ","
    got = pd.read_parquet(tmp_path / out) if fmt == ".parquet" else pd.read_csv(tmp_path / out, sep=sep,
                                                                                keep_default_na=False)
    assert list(got.columns) == [*df.columns, "cell_id", "cell_id_confidence"]
    assert np.array_equal(got["x"].to_numpy(), df["x"].to_numpy())
    assert np.array_equal(got["gene"].astype(str).to_numpy(), df["gene"].to_numpy())
    controls = df["gene"].str.startswith("NegControl").to_numpy()
    assert (got["cell_id"].to_numpy()[controls] == -1).all()


def test_reads_are_chunked(tables, tmp_path, monkeypatch):
    d, df = tables
    calls = {"csv": [], "batches": []}
    read_csv, iter_batches = pd.read_csv, pq.ParquetFile.iter_batches

    def spy_csv(*a, **kw):
        assert kw.get("chunksize") is not None and kw["chunksize"] <= CHUNK, "a CSV read without chunks"
        calls["csv"].append(kw["chunksize"])
        return read_csv(*a, **kw)

    def spy_batches(self, *a, **kw):
        assert kw.get("batch_size", 65536) <= CHUNK
        for b in iter_batches(self, *a, **kw):
            calls["batches"].append(b.num_rows)
            yield b

    def whole(*a, **kw):
        raise AssertionError("the whole table was read at once")

    monkeypatch.setattr(pd, "read_csv", spy_csv)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy_batches)
    monkeypatch.setattr(pq, "read_table", whole)
    monkeypatch.setattr(pd, "read_parquet", whole)
    for name, out in (("tx.csv", "a.csv"), ("tx.parquet", "b.parquet")):
        stream = S.TableStream(d / name, chunk_rows=CHUNK, prior_column="true_cell").scan()
        res = S.segment_stream(stream, scheduler="synchronous", progress=False, **ORACLE)
        S.write_labeled_stream(stream, res, tmp_path / out, label_column="cell_id",
                               confidence_column="cell_id_confidence", output_format=out[out.index("."):])
        assert 0 < stream.max_rows_read <= CHUNK
        # scan, route and write: three passes of ceil(n / CHUNK) chunks at least
        assert stream.n_frames >= 3 * (len(df) // CHUNK)
    assert len(calls["csv"]) == 3 and max(calls["batches"]) <= CHUNK and len(calls["batches"]) >= 3 * 16


def test_prior_text_ids_and_filters_match_the_reader(tables, tmp_path):
    d, df = tables
    # Xenium column names (x_location, feature_name, qv), text nucleus ids, rows below min_qv dropped
    text = df.rename(columns={"x": "x_location", "y": "y_location", "gene": "feature_name"})
    text["nuc"] = np.where(text["true_cell"] >= 0, "cell-" + text["true_cell"].astype(str), "")
    text.to_csv(d / "text.csv", index=False)
    ad = ms.io.read_transcripts(d / "text.csv", min_qv=20)
    stream = S.TableStream(d / "text.csv", chunk_rows=CHUNK, prior_column="nuc", min_qv=20).scan()
    assert stream.plan.platform == "xenium" and stream.n_low_qv > 1000
    assert stream.n_kept == ad.n_obs and stream.n_rows == len(df) and not stream.prior_numeric
    assert np.array_equal(stream.genes, np.asarray(ad.var_names))
    res = S.segment_stream(stream, scheduler="synchronous", progress=False, **ORACLE)
    truth = ad.obs_names.astype(int).to_numpy()
    ref = T.segment_tiled(ad.obsm["spatial"], ad.X, prior=df["true_cell"].to_numpy()[truth],
                          scheduler="synchronous", progress=False, **ORACLE)
    # text ids are numbered in order of appearance: the same cells, numbered alike up to the oracle's draw
    assert same_partition(res.labels, ref.labels) and res.info["n_cells"] == ref.info["n_cells"]


def test_stereoseq_gem_with_counts_and_header_lines(tmp_path):
    a = ms.datasets.simulate(mode="transcripts", width=60.0, height=60.0, random_state=5)
    xy = np.asarray(a.obsm["spatial"])
    df = pd.DataFrame({"geneID": a.obs["gene"].astype(str).to_numpy(), "x": np.round(xy[:, 0] * 2).astype(int),
                       "y": np.round(xy[:, 1] * 2).astype(int),
                       "MIDCount": np.random.default_rng(0).integers(1, 4, len(xy)),
                       "cell": a.obs["true_cell"].to_numpy()})
    with gzip.open(tmp_path / "t.gem.gz", "wt") as fh:
        fh.write("#FileFormat=GEMv0.1\n#OffsetX=0\n")
        df.to_csv(fh, sep="\t", index=False)
    kw = {"tile_size": 20.0, "cell_diameter": 5.0, "segmenter": oracle, "scheduler": "synchronous", "progress": False}
    info = S.segment_file(tmp_path / "t.gem.gz", tmp_path / "out.tsv.gz", chunk_rows=1000, prior_column="cell", **kw)
    ad = ms.io.read_transcripts(tmp_path / "t.gem.gz", keep_columns=["cell"])
    assert ad.uns["manifoldseg_io"]["platform"] == "stereoseq"  # DNB units (0.5 um) and MIDCount in X
    ref = T.segment_tiled(ad.obsm["spatial"], ad.X, prior=ad.obs["cell"].to_numpy(), **kw)
    assert np.array_equal(info["labels"], ref.labels) and info["n_tiles"] == 9
    lab, conf = full_labels(len(df), ad.obs["input_row"].to_numpy(), ref.labels, ref.confidence)
    write_labeled_table(tmp_path / "t.gem.gz", tmp_path / "ref.tsv.gz", n_rows=len(df), labels=lab, confidence=conf,
                        label_column="cell_id", confidence_column="cell_id_confidence", output_format=".tsv.gz")
    with gzip.open(tmp_path / "out.tsv.gz", "rt") as x, gzip.open(tmp_path / "ref.tsv.gz", "rt") as y:
        text = x.read()
        assert text == y.read() and text.startswith("#FileFormat=GEMv0.1\n#OffsetX=0\ngeneID\t")


def test_a_failed_run_leaves_no_output_and_no_shards(tables, tmp_path):
    d, _ = tables
    shards = tmp_path / "shards"
    shards.mkdir()
    out = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError, match="on purpose"):
        S.segment_table(d / "tx.parquet", out, chunk_rows=CHUNK, prior_column="true_cell", tile_size=50.0,
                        cell_diameter=11.0, segmenter=failing, scheduler="synchronous", progress=False,
                        tmp_dir=shards)
    assert not out.exists() and list(tmp_path.iterdir()) == [shards] and not list(shards.iterdir())
    # an existing output is refused before any work, and a clash of column names is clear
    out.write_text("x")
    with pytest.raises(FileExistsError):
        S.segment_table(d / "tx.parquet", out, tile_size=50.0)
    with pytest.raises(InputError, match="already has a column"):
        S.segment_table(d / "tx.parquet", tmp_path / "o2.csv", key_added="nucleus", tile_size=50.0)
    assert not (tmp_path / "o2.csv").exists()


def test_row_estimate_without_reading(tables):
    d, df = tables
    assert S.estimate_rows(d / "tx.parquet") == len(df)
    assert abs(S.estimate_rows(d / "tx.csv") - len(df)) < 0.05 * len(df)
    assert abs(S.estimate_rows(d / "tx.tsv.gz") - len(df)) < 0.2 * len(df)


# ---------------------------------------------------------------- the real segmenter


REAL = {"tile_size": 36.0, "cell_diameter": 10.0, "overlap": 18.0, "n_epochs": 20}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    df = _table(ms.datasets.simulate(mode="transcripts", width=64.0, height=64.0, random_state=0), 1)
    df.to_parquet(d / "tiny.parquet", index=False, row_group_size=1500)
    res, _ = in_memory(d / "tiny.parquet", **REAL)
    return d, df, res


def test_real_segmenter_and_schedulers_give_the_in_memory_labels(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    d, df, ref = tiny
    assert ref.info["n_tiles"] == 4 and ref.info["n_cells"] > 12
    sync = S.segment_table(d / "tiny.parquet", tmp_path / "s.parquet", chunk_rows=CHUNK, scheduler="synchronous",
                           progress=False, **REAL)
    assert np.array_equal(sync["labels"], ref.labels)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        on_cluster = S.segment_table(d / "tiny.parquet", tmp_path / "c.parquet", chunk_rows=CHUNK,
                                     scheduler=lc.scheduler_address, progress=False, **REAL)
    assert on_cluster["scheduler"] == "address"
    assert np.array_equal(on_cluster["labels"], ref.labels)
    a, b = pd.read_parquet(tmp_path / "s.parquet"), pd.read_parquet(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_command_line_streams_tables_with_a_tile_size(tiny, tmp_path, capsys):
    d, df, _ = tiny
    out = tmp_path / "labeled.csv"
    code = main(["segment", str(d / "tiny.parquet"), "-o", str(out), "--tile-size", "40", "--cell-diameter", "10",
                 "--scheduler", "synchronous", "--seed", "0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "from disk in tiles" in captured.err and "tiles" in captured.err
    assert "cells," in captured.out and "% of transcripts assigned" in captured.out
    got = pd.read_csv(out, keep_default_na=False)
    assert len(got) == len(df) and list(got.columns) == [*df.columns, "cell_id", "cell_id_confidence"]
    assert (got["cell_id"] >= 0).mean() > 0.3


def test_command_line_chooses_the_path(tiny, tmp_path, caplog):
    from manifoldseg.cli import _stream_wanted, build_parser

    d, _, _ = tiny
    table = d / "tiny.parquet"

    def wanted(*extra, out="o.csv"):
        args = build_parser().parse_args(["segment", str(table), "-o", str(tmp_path / out), *extra])
        return _stream_wanted(args, table, None if out.endswith(".h5ad") else ".csv")

    assert wanted("--tile-size", "40")
    assert not wanted()  # a small table without --tile-size: in memory
    assert not wanted("--tile-size", "40", out="o.h5ad")  # a table as an AnnData needs it in memory
    # --cells needs the whole section: segmented in memory, with a clear message
    with caplog.at_level("WARNING", logger="manifoldseg"):
        assert not wanted("--tile-size", "40", "--cells", str(tmp_path / "cells.h5ad"))
    assert "segmenting in memory" in caplog.text and "--cells" in caplog.text


# ---------------------------------------------------------------- .h5ad of spots


@pytest.fixture(scope="module")
def spots_file(tmp_path_factory):
    """1 um bins of 120 x 120 um (about 10k spots) as .h5ad, with a categorical prior column."""
    d = tmp_path_factory.mktemp("spots")
    a = ms.datasets.simulate(width=120.0, height=120.0, random_state=2)
    a.obs["cat"] = pd.Categorical(a.obs["true_cell"].astype(str))
    a.write_h5ad(d / "spots.h5ad")
    return d / "spots.h5ad", a


def test_h5ad_spots_by_row_ranges_equal_the_in_memory_path(spots_file, tmp_path, monkeypatch):
    import anndata as ad

    path, a = spots_file
    loaded = []
    monkeypatch.setattr(ad, "read_h5ad", lambda *x, **k: loaded.append(x) or pytest.fail("h5ad read whole"))
    truth = a.obs["true_cell"].to_numpy().astype(np.int64)
    kw = {"tile_size": 40.0, "cell_diameter": 11.0, "segmenter": oracle, "scheduler": "synchronous", "progress": False}
    ref = T.segment_tiled(np.asarray(a.obsm["spatial"]), a.X, prior=truth, **kw)
    out = tmp_path / "out.h5ad"
    info = S.segment_file(path, out, chunk_rows=CHUNK, prior_column="true_cell", uns={"run": {"command": "test"}},
                          **kw)
    assert np.array_equal(info["labels"], ref.labels) and info["max_rows_read"] <= CHUNK and info["n_tiles"] == 9
    monkeypatch.undo()
    b = ad.read_h5ad(out)
    assert list(b.obs.columns) == [*a.obs.columns, "cell_id", "cell_id_confidence"]
    assert np.array_equal(b.obs["cell_id"].to_numpy(), ref.labels) and b.obs["cell_id"].dtype == np.int64
    assert np.allclose(b.obs["cell_id_confidence"].to_numpy(), ref.confidence)
    assert (b.X != a.X).nnz == 0 and np.array_equal(b.obsm["spatial"], a.obsm["spatial"])
    assert b.uns["manifoldseg"]["run"]["command"] == "test" and b.uns["manifoldseg"]["summary"]["n_tiles"] == 9
    # a categorical prior column is read by its codes, as ms.tl.segment reads it
    info = S.segment_file(path, tmp_path / "cat.h5ad", chunk_rows=CHUNK, prior_column="cat", **kw)
    codes = a.obs["cat"].cat.codes.to_numpy().astype(np.int64)
    ref = T.segment_tiled(np.asarray(a.obsm["spatial"]), a.X, prior=codes, **kw)
    assert np.array_equal(info["labels"], ref.labels)
    with pytest.raises(InputError, match="must be .h5ad"):
        S.segment_file(path, tmp_path / "o.csv", tile_size=40.0)


def test_command_line_streams_large_h5ad(spots_file, tmp_path, monkeypatch, capsys):
    path, a = spots_file
    monkeypatch.setattr(T, "AUTO_MIN_SPOTS", 1000)  # "large" from 1000 spots on
    out = tmp_path / "seg.h5ad"
    code = main(["segment", str(path), "-o", str(out), "--tile-size", "60", "--cell-diameter", "11",
                 "--scheduler", "synchronous", "--prior-key", "nucleus"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "from disk in tiles" in captured.err and "% of spots assigned" in captured.out
    b = ms.io.read_h5ad(out)
    assert b.n_obs == a.n_obs and (b.obs["cell_id"] >= 0).mean() > 0.3
    assert b.uns["manifoldseg"]["run"]["command"].startswith("manifoldseg segment")
    # a failing run (a missing prior column) leaves nothing
    code = main(["segment", str(path), "-o", str(tmp_path / "bad.h5ad"), "--tile-size", "60", "--prior-key", "nope",
                 "--scheduler", "synchronous", "-q"])
    assert code == 1 and "nope" in capsys.readouterr().err and list(tmp_path.iterdir()) == [out]


def test_driver_arrays_are_narrow_and_labels_unchanged(tables, tmp_path, monkeypatch):
    # what the driver keeps per spot: float64 x, y and float32 counts (exact: float32 counts sum in float32);
    # Parquet is read without pre-buffering (which keeps the rest of the file in memory); the stitcher
    # finished in small blocks gives the in-memory path's labels
    d, _ = tables
    read = []
    parquet_file, iter_batches = pq.ParquetFile.__init__, pq.ParquetFile.iter_batches

    def spy_open(self, *a, **kw):
        self.spy_pre_buffer = kw.get("pre_buffer", True)
        parquet_file(self, *a, **kw)

    def spy_batches(self, *a, **kw):
        read.append(self.spy_pre_buffer)
        return iter_batches(self, *a, **kw)

    monkeypatch.setattr(pq.ParquetFile, "__init__", spy_open)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy_batches)
    stream = S.TableStream(d / "tx.parquet", chunk_rows=CHUNK).scan()
    folder = tmp_path / "shards"
    folder.mkdir()
    shards = S.route(stream, folder, tile_size=50.0)
    assert shards.xy.dtype == np.float64 and shards.counts.dtype == np.float32
    assert len(shards.counts) == stream.n_kept and (shards.counts == 1).all()  # one transcript a row
    assert len(read) == 2 and not any(read)  # scan and route
    res, _ = in_memory(d / "tx.parquet", **ORACLE)
    monkeypatch.setattr(T, "STITCH_BLOCK", 1000)
    info = S.segment_table(d / "tx.parquet", tmp_path / "o.parquet", chunk_rows=CHUNK, prior_column="true_cell",
                           scheduler="synchronous", progress=False, **ORACLE)
    assert np.array_equal(info["labels"], res.labels) and info["n_cells"] == res.info["n_cells"]
