"""Peak memory of ``manifoldseg segment`` on transcript tables of growing size (streaming path).

For each size, a simulated transcript table is written as Parquet (``--blocks`` distinct
``ms.datasets.simulate(mode="transcripts")`` tissues of 300 x 300 um, about 125k transcripts each,
laid side by side and repeated, written block by block), then ``manifoldseg segment TABLE -o
OUT.parquet --tile-size T`` runs in a subprocess while this script samples the resident memory of
its whole process tree (the command and its Dask workers) every 0.1 s. With a fixed tile size the
peak should grow much more slowly than the input: the driver keeps a few tens of bytes per
transcript and each worker one tile.

``--compare`` also runs the in-memory path (``ms.io.read_transcripts`` + ``ms.tl.segment`` with the
same tile size + the table writer) on the smallest size.

Usage::

    python benchmarks/memory.py                          # 250k and 1M transcripts
    python benchmarks/memory.py --sizes 250000 1000000 --tile-size 250 --compare
    python benchmarks/memory.py --sizes 250000 --io-only 2000000 8000000

``--io-only`` measures, for both paths, reading, routing, stitching and writing alone: a trivial
segmenter in one process, so the driver's memory per transcript shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BLOCK_UM = 300.0


def tree_rss(pid: int) -> int:
    """Summed RSS of a process and all its descendants (bytes)."""
    try:
        import psutil

        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total
    except ImportError:  # pragma: no cover
        sys.path.insert(0, str(HERE))
        from scaling import _proc_tree_rss

        return _proc_tree_rss(pid)


def run_measured(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> dict:
    """Run ``cmd``; wall time and the peak RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(proc.pid))
            stop.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall_seconds": round(wall, 2), "peak_rss_gb": round(peak / 1e9, 3), "stdout": out.strip()}


def write_table(n_rows: int, path: Path, *, blocks: int = 3, seed: int = 0) -> dict:
    """A Parquet table of about ``n_rows`` simulated transcripts, written block by block."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import manifoldseg as ms

    made = []
    i = written = 0
    side = None
    writer = None
    try:
        while written < n_rows:
            if i < blocks:
                a = ms.datasets.simulate(mode="transcripts", width=BLOCK_UM, height=BLOCK_UM, random_state=seed + i)
                made.append((np.asarray(a.obsm["spatial"])[:, :2], a.obs["gene"].astype(str).to_numpy(),
                             a.obs["true_cell"].to_numpy()))
            xy, gene, truth = made[i % len(made)]
            if side is None:
                side = int(np.ceil(np.sqrt(n_rows / len(xy))))
            gy, gx = divmod(i, side)
            take = min(len(xy), n_rows - written)
            t = truth[:take].copy()
            t[t >= 0] += i * 100_000
            table = pa.table({"x": np.round(xy[:take, 0] + gx * BLOCK_UM, 4), "y": np.round(xy[:take, 1] + gy * BLOCK_UM, 4),
                              "gene": gene[:take], "true_cell": t})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=100_000)
            written += take
            i += 1
    finally:
        if writer is not None:
            writer.close()
    return {"n_rows": int(written), "file_mb": round(path.stat().st_size / 1e6, 1), "blocks": i}


IN_MEMORY = """
import sys, manifoldseg as ms
from manifoldseg._cli_table import full_labels, write_labeled_table
inp, out, tile = sys.argv[1], sys.argv[2], float(sys.argv[3])
a = ms.io.read_transcripts(inp)
ms.tl.segment(a, tile_size=tile)
n = a.uns["manifoldseg_io"]["n_rows_read"]
lab, conf = full_labels(n, a.obs["input_row"].to_numpy(), a.obs["cell_id"].to_numpy(),
                        a.obs["cell_id_confidence"].to_numpy())
write_labeled_table(inp, out, n_rows=n, labels=lab, confidence=conf, label_column="cell_id",
                    confidence_column="cell_id_confidence", output_format=".parquet")
"""


def grid_segmenter(coords, X, *, cell_diameter, prior, random_state, **kw):
    """A trivial segmenter (squares of one cell diameter) for ``--io-only``: what is left is the
    memory of reading, routing, stitching and writing."""
    import numpy as np

    key = np.floor(coords[:, 0] / cell_diameter) * 1e6 + np.floor(coords[:, 1] / cell_diameter)
    return np.unique(key, return_inverse=True)[1].astype(np.int64), np.ones(len(coords), np.float32)


IO_STREAM = """
import sys
sys.path.insert(0, sys.argv[4])
from memory import grid_segmenter
from manifoldseg import _stream as S
S.segment_file(sys.argv[1], sys.argv[2], tile_size=float(sys.argv[3]), cell_diameter=10.0, segmenter=grid_segmenter,
               scheduler="synchronous", progress=False, overwrite=True)
"""

IO_IN_MEMORY = """
import sys
sys.path.insert(0, sys.argv[4])
from memory import grid_segmenter
import manifoldseg as ms
from manifoldseg._tiling import segment_tiled
from manifoldseg._cli_table import full_labels, write_labeled_table
inp, out, tile = sys.argv[1], sys.argv[2], float(sys.argv[3])
a = ms.io.read_transcripts(inp)
res = segment_tiled(a.obsm["spatial"], a.X, tile_size=tile, cell_diameter=10.0, segmenter=grid_segmenter,
                    scheduler="synchronous", progress=False)
n = a.uns["manifoldseg_io"]["n_rows_read"]
lab, conf = full_labels(n, a.obs["input_row"].to_numpy(), res.labels, res.confidence)
write_labeled_table(inp, out, n_rows=n, labels=lab, confidence=conf, label_column="cell_id",
                    confidence_column="cell_id_confidence", output_format=".parquet")
"""


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> dict:
    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 1e9, 1)
    except ImportError:  # pragma: no cover
        mem = None
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gb": mem, "processor": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[250_000, 1_000_000], help="transcripts per table")
    p.add_argument("--tile-size", type=float, default=250.0, help="tile core side in um (fixed for all sizes)")
    p.add_argument("--n-jobs", type=int, default=1, help="Dask worker processes")
    p.add_argument("--blocks", type=int, default=3, help="distinct simulated tissues in the mosaic")
    p.add_argument("--compare", action="store_true", help="also run the in-memory path on the smallest size")
    p.add_argument("--io-only", type=int, nargs="*", metavar="N",
                   help="also measure reading, routing, stitching and writing alone (a trivial segmenter, one "
                        "process) for both paths at these sizes (default 2M and 8M)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of memory.json and memory.md")
    args = p.parse_args(argv)

    exe = [sys.executable, "-m", "manifoldseg.cli"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="manifoldseg-memory-") as tmp:
        tmp = Path(tmp)
        for n in sorted(args.sizes):
            table = tmp / f"tx_{n}.parquet"
            t = time.perf_counter()
            meta = write_table(n, table, blocks=args.blocks)
            meta["write_seconds"] = round(time.perf_counter() - t, 1)
            out = tmp / f"out_{n}.parquet"
            cmd = [*exe, "segment", str(table), "-o", str(out), "--tile-size", str(args.tile_size),
                   "--n-jobs", str(args.n_jobs), "--force"]
            res = run_measured(cmd)
            row = {"path": "streaming", **meta, **res, "tile_size_um": args.tile_size, "n_jobs": args.n_jobs}
            row["transcripts_per_second"] = round(meta["n_rows"] / res["wall_seconds"], 1)
            row["bytes_per_transcript"] = round(res["peak_rss_gb"] * 1e9 / meta["n_rows"], 1)
            print(f"streaming  {meta['n_rows']:>10,} rows  {meta['file_mb']:>7.1f} MB  peak RSS "
                  f"{res['peak_rss_gb']:.2f} GB  {res['wall_seconds']:.0f} s   {res['stdout']}", flush=True)
            rows.append(row)
            if args.compare and n == min(args.sizes):
                res = run_measured([sys.executable, "-c", IN_MEMORY, str(table), str(tmp / "mem.parquet"),
                                    str(args.tile_size)])
                row = {"path": "in-memory", **meta, **res, "tile_size_um": args.tile_size, "n_jobs": 1}
                row["transcripts_per_second"] = round(meta["n_rows"] / res["wall_seconds"], 1)
                row["bytes_per_transcript"] = round(res["peak_rss_gb"] * 1e9 / meta["n_rows"], 1)
                print(f"in-memory  {meta['n_rows']:>10,} rows  {meta['file_mb']:>7.1f} MB  peak RSS "
                      f"{res['peak_rss_gb']:.2f} GB  {res['wall_seconds']:.0f} s", flush=True)
                rows.append(row)
            table.unlink()

        for n in sorted(args.io_only if args.io_only else ([2_000_000, 8_000_000] if args.io_only is not None
                                                           else [])):
            table = tmp / f"io_{n}.parquet"
            meta = write_table(n, table, blocks=args.blocks)
            for name, code in (("streaming, I/O only", IO_STREAM), ("in-memory, I/O only", IO_IN_MEMORY)):
                res = run_measured([sys.executable, "-c", code, str(table), str(tmp / "io_out.parquet"),
                                    str(args.tile_size), str(HERE)])
                row = {"path": name, **meta, **res, "tile_size_um": args.tile_size, "n_jobs": 1,
                       "transcripts_per_second": round(meta["n_rows"] / res["wall_seconds"], 1),
                       "bytes_per_transcript": round(res["peak_rss_gb"] * 1e9 / meta["n_rows"], 1)}
                print(f"{name:<20} {meta['n_rows']:>10,} rows  peak RSS {res['peak_rss_gb']:.2f} GB  "
                      f"{res['wall_seconds']:.0f} s", flush=True)
                rows.append(row)
            table.unlink()

    report = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": _commit(),
              "machine": _machine(), "command": "manifoldseg segment TABLE.parquet -o OUT.parquet --tile-size "
              f"{args.tile_size:g} --n-jobs {args.n_jobs}", "results": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Peak memory of `manifoldseg segment` on transcript tables (streaming path)",
        "",
        f"{report['date']}, commit {report['commit']}, {report['machine']['cpus']} CPUs, "
        f"{report['machine']['memory_gb']} GB RAM, {report['machine']['platform']}.",
        f"Command: `{report['command']}`; peak RSS of the whole process tree (driver + Dask workers), "
        "sampled every 0.1 s. Tables: simulated transcripts (x, y, gene, true_cell) as Parquet.",
        "",
        "| path | transcripts | Parquet MB | peak RSS GB | bytes / transcript | wall s | transcripts / s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['path']} | {r['n_rows']:,} | {r['file_mb']} | {r['peak_rss_gb']:.2f} | "
                     f"{r['bytes_per_transcript']:.0f} | {r['wall_seconds']:.0f} | {r['transcripts_per_second']:,.0f} |")
    for path in ("streaming", "streaming, I/O only", "in-memory, I/O only"):
        same = [r for r in rows if r["path"] == path]
        if len(same) >= 2:
            a, b = same[0], same[-1]
            lines += ["", f"{path}: input x{b['n_rows'] / a['n_rows']:.1f}, peak RSS "
                          f"x{b['peak_rss_gb'] / a['peak_rss_gb']:.2f}."]
    if any("I/O only" in r["path"] for r in rows):
        lines += ["", "I/O only: the same command through a trivial segmenter (squares of 10 um) in one "
                      "process, so that the peak is the memory of reading, routing, stitching and writing."]
    (args.out / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
